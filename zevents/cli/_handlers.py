"""User handlers given as ``--handler MODULE:CALLABLE`` (``serve`` and ``worker``)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from zevents.cli._options import F
from zevents.errors import ConfigError
from zevents.events import INTERNAL_PREFIX
from zevents.serializers import import_object

__all__ = ["Handler", "handler_option", "import_app", "is_internal", "load_handler"]


def is_internal(event: str, pattern: str) -> bool:
    """Whether ``event`` is one of zevents' own and ``pattern`` did not ask for those."""
    return event.startswith(INTERNAL_PREFIX) and not pattern.startswith(INTERNAL_PREFIX)


class Handler:
    """Calls a user handler as ``handler(event, payload)``, skipping internal events.

    Args:
        spec: The ``MODULE:CALLABLE`` it was loaded from.
        function: The user's callable.
        pattern: The pattern it is registered for.
    """

    def __init__(self, spec: str, function: Callable[[str, Any], Any], pattern: str) -> None:
        self.spec = spec
        self.function = function
        self.pattern = pattern

    def __call__(self, event: str, payload: Any) -> Any:
        if is_internal(event, self.pattern):
            return None
        return self.function(event, payload)

    def __repr__(self) -> str:
        return f"<handler {self.spec}>"


def _importable_from_cwd() -> None:
    """Put the working directory first on ``sys.path``, as RQ and Celery do, so that a
    handler module beside the user is found: ``python -m`` does it by itself, the
    ``zevents`` script does not. It stays there, for modules a handler imports later."""
    cwd = os.getcwd()
    if sys.path[:1] not in ([cwd], [""]):
        sys.path.insert(0, cwd)


def load_handler(spec: str, pattern: str) -> Handler:
    """Import ``module:callable`` as a handler (modules in the working directory first).

    Raises:
        ConfigError: It cannot be imported, or is not callable.
    """
    _importable_from_cwd()
    function = import_object(spec, what="handler")
    if not callable(function):
        raise ConfigError(f"handler {spec!r} is {type(function).__name__}, not a callable")
    return Handler(spec, function, pattern)


def import_app(spec: str) -> object:
    """Import ``MODULE:OBJECT`` (the object) or ``MODULE`` (the module), modules in the
    working directory first.

    Raises:
        ConfigError: It cannot be imported.
    """
    _importable_from_cwd()
    if ":" in spec:
        return import_object(spec, what="app")
    try:
        return importlib.import_module(spec)
    except Exception as exc:
        raise ConfigError(f"app {spec!r}: cannot import {spec!r}: {exc}") from exc


def handler_option(help: str, *, required: bool = False) -> Callable[[F], F]:
    """``--handler MODULE:CALLABLE`` (repeatable), passed on as ``handlers``."""
    return click.option(
        "--handler",
        "handlers",
        multiple=True,
        required=required,
        metavar="MODULE:CALLABLE",
        help=help,
    )
