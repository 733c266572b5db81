"""ipc:// socket files (private): whether a live process listens on one, and removing
the ones a socket bound."""

from __future__ import annotations

import contextlib
import os
import socket
import stat

__all__ = ["ipc_files", "ipc_in_use", "remove_ipc_files"]


def ipc_in_use(endpoint: str) -> bool:
    """Whether a live process is listening on the ipc socket file of ``endpoint``.

    libzmq removes an existing socket file before it binds, which would silently take
    the path over from a running service; a stale file (nobody listening) is fine.
    """
    path = endpoint[len("ipc://") :]
    if not endpoint.startswith("ipc://") or path.startswith("@") or not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


def ipc_files(bound: list[str]) -> list[tuple[str, int]]:
    """The socket files of the bound ipc endpoints, with their inode numbers."""
    files = []
    for endpoint in bound:
        path = endpoint[len("ipc://") :]
        if endpoint.startswith("ipc://") and not path.startswith("@"):
            with contextlib.suppress(OSError):
                files.append((path, os.stat(path).st_ino))
    return files


def remove_ipc_files(files: list[tuple[str, int]]) -> None:
    """Remove the socket files this socket bound, unless another socket took the path
    over meanwhile (a different inode)."""
    for path, inode in files:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode and stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)
