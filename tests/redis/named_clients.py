"""Finding a queue's own connections on the test server: the ``named`` fixture's URL
carries a client name, and ``CLIENT LIST`` read through another client shows them (and
``CLIENT KILL`` closes them, no one else's)."""

from __future__ import annotations

import redis

#: The client name the queues of these tests connect with.
NAME = "kept-conn"
__all__ = ["NAME", "connections", "kill_named"]


def connections(admin: redis.Redis) -> list[dict[str, str]]:
    """The connections named ``NAME``."""
    return [c for c in admin.client_list() if c.get("name") == NAME]


def kill_named(admin: redis.Redis) -> None:
    """Close the connections named ``NAME`` from the server side."""
    for connection in connections(admin):
        admin.client_kill_filter(_id=connection["id"])
