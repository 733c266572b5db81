"""The config file: finding it, and reading its tables (``[connections.NAME]``,
``[redis.NAME]``).

Only this module (and the CLI) reads the environment variable and files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from zevents.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["CONFIG_ENV", "find_table", "load_connection"]

#: Environment variable naming the config file.
CONFIG_ENV = "ZEVENTS_CONFIG"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc


def _config_files(path: str | os.PathLike[str] | None) -> list[tuple[Path, tuple[str, ...]]]:
    """The config files to search, each with the table zevents' settings are under."""
    explicit = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if explicit is None:
        return [(Path("zevents.toml"), ()), (Path("pyproject.toml"), ("tool", "zevents"))]
    file = Path(explicit)
    if not file.is_file():
        source = "" if path is not None else f" (from {CONFIG_ENV})"
        raise ConfigError(f"config file {file}{source} does not exist")
    return [(file, ("tool", "zevents") if file.name == "pyproject.toml" else ())]


def find_table(
    section: str, name: str, path: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """Table ``[section.name]`` of the first config file that has it.

    Returns:
        The table (a new dict) or None, and the files searched (for messages).

    Raises:
        ConfigError: An explicit file is missing, a file is malformed, or the entry is
            not a table.
    """
    candidates = _config_files(path)
    searched = []
    for file, table in candidates:
        if not file.is_file():
            continue
        searched.append(str(file))
        data: Any = _read_toml(file)
        for key in (*table, section):
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if isinstance(data, dict) and name in data:
            found = data[name]
            if not isinstance(found, dict):
                raise ConfigError(f"{section}.{name} in {file} is not a table")
            return dict(found), searched
    if not searched:
        looked = ", ".join(str(f) for f, _ in candidates)
        searched = [f"no config file found (looked for {looked})"]
    return None, searched


def load_connection(name: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Look up the options of connection ``name``.

    The file is ``path`` if given, else the one named by ``ZEVENTS_CONFIG``, else
    ``./zevents.toml`` (table ``[connections.NAME]``), else ``./pyproject.toml``
    (table ``[tool.zevents.connections.NAME]``).

    Returns:
        The connection's options as a new dict.

    Raises:
        ConfigError: The file is missing or malformed, or has no such connection;
            the message names every file searched.
    """
    found, searched = find_table("connections", name, path)
    if found is None:
        raise ConfigError(f"unknown connection {name!r}; searched: {', '.join(searched)}")
    return found
