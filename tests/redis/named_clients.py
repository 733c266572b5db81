"""Finding a queue's own connections on the test server: the ``named`` fixture's URL
carries a client name, and ``CLIENT LIST`` read through another client shows them."""

from __future__ import annotations

import redis

#: The client name the queues of these tests connect with.
NAME = "kept-conn"
__all__ = ["NAME", "connections"]


def connections(admin: redis.Redis) -> list[dict[str, str]]:
    """The connections named ``NAME``."""
    return [c for c in admin.client_list() if c.get("name") == NAME]
