"""CURVE keys: encryption and authentication of ``tcp://`` endpoints.

A key is a 40-character Z85 string, or the path of a key file in the certificate format
of ``zmq.auth`` (what ``zevents keys generate`` and ``zmq.auth.create_certificates``
write): ``NAME.key`` holds the public key, ``NAME.key_secret`` both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zmq

from zevents.errors import ConfigError

__all__ = [
    "CURVE_OPTIONS",
    "Z85_LENGTH",
    "curve_options",
    "generate_keys",
    "load_key",
    "require_curve",
]

#: The listener options of CURVE security.
CURVE_OPTIONS = ("curve_secret_key", "curve_public_key", "curve_server_key", "curve_allow")

#: Characters of a Z85-encoded CURVE key.
Z85_LENGTH = 40
_Z85 = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)


def require_curve() -> None:
    """Raise ``ConfigError`` unless libzmq was built with CURVE."""
    if not zmq.has("curve"):
        raise ConfigError("this libzmq has no CURVE security (zmq.has('curve') is False)")


def _is_z85(value: str) -> bool:
    return len(value) == Z85_LENGTH and all(c in _Z85 for c in value)


def load_key(value: object, option: str, *, secret: bool) -> bytes:
    """The Z85 key ``value`` names: the key itself, or a key file (the public key of
    ``NAME.key``; the secret key of ``NAME.key_secret`` when ``secret``).

    Raises:
        ConfigError: Not a key, or a file that holds none (of the kind asked).
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"option {option!r} takes a Z85 key or a key file path", option=option)
    if _is_z85(value):
        return value.encode("ascii")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"option {option!r}: {value!r} is neither a 40-character Z85 key nor a key file",
            option=option,
        )
    try:
        import zmq.auth  # a key file only

        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"option {option!r}: cannot read key file {path}: {exc}", option=option
        ) from None
    key = secret_key if secret else public
    if key is None:
        raise ConfigError(
            f"option {option!r}: {path} holds no secret key (give the .key_secret file)",
            option=option,
        )
    return key


def generate_keys(name: str, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write a new key pair as ``DIRECTORY/NAME.key`` (public: give it to the other
    side, or put it in a server's ``curve_allow`` directory) and ``NAME.key_secret``
    (secret: keep it, readable only by its owner).

    Raises:
        ConfigError: A bad name, or a key file of that name already exists.
    """
    require_curve()
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"key name {name!r} must be a plain file name", option="name")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = folder / f"{name}.key", folder / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise ConfigError(f"{path} already exists: remove it, or choose another name")
    import zmq.auth

    public_file, secret_file = zmq.auth.create_certificates(str(folder), name)
    os.chmod(secret_file, 0o600)
    return Path(public_file), Path(secret_file)


def curve_options(given: dict[str, Any]) -> dict[str, Any]:
    """The CURVE listener options, resolved: keys as Z85 bytes, the allow directory.

    ``curve_allow`` (a directory of allowed clients' public keys) makes a CURVE server
    that authenticates its clients; ``curve_server_key`` (the server's public key) a
    CURVE client; ``curve_secret_key`` is this side's own secret key (a server needs it;
    a client without one gets a fresh key pair, which a server with ``curve_allow``
    refuses). ``curve_public_key`` is read from the secret key's file, or computed.

    Raises:
        ConfigError: A bad key, a server without a secret key, both roles at once.
    """
    secret_spec = given.get("curve_secret_key")
    public_spec = given.get("curve_public_key")
    server_spec = given.get("curve_server_key")
    allow = given.get("curve_allow")
    if secret_spec is None and public_spec is None and server_spec is None and allow is None:
        return dict.fromkeys(CURVE_OPTIONS)
    require_curve()
    if server_spec is not None and allow is not None:
        raise ConfigError(
            "curve_server_key (a CURVE client) and curve_allow (a CURVE server) exclude each other",
            option="curve_allow",
        )
    secret = None if secret_spec is None else load_key(secret_spec, "curve_secret_key", secret=True)
    if allow is not None and not Path(str(allow)).expanduser().is_dir():
        raise ConfigError(
            f"option 'curve_allow': {allow} is not a directory of client keys", option="curve_allow"
        )
    if server_spec is None and secret is None:
        raise ConfigError(
            "a CURVE server (curve_allow) needs its curve_secret_key", option="curve_secret_key"
        )
    if secret is None:  # a client with no key of its own: a fresh pair
        public, secret = zmq.curve_keypair()
    elif public_spec is not None:
        public = load_key(public_spec, "curve_public_key", secret=False)
    else:
        public = zmq.curve_public(secret)
    server = (
        None if server_spec is None else load_key(server_spec, "curve_server_key", secret=False)
    )
    return {
        "curve_secret_key": secret,
        "curve_public_key": public,
        "curve_server_key": server,
        "curve_allow": None if allow is None else str(Path(str(allow)).expanduser()),
    }
