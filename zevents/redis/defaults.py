"""The defaults of the Redis layer, in one place (importable without redis-py).

The command line shows these in its help instead of retyping them.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_CAP",
    "DEFAULT_GROUP",
    "DEFAULT_JITTER",
    "DEFAULT_KEEP_ALIVE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RECLAIMS",
    "DEFAULT_MIN_REPLICAS",
    "DEFAULT_PREFETCH",
    "DEFAULT_PREFIX",
    "DEFAULT_REPLICA_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "DRIVERS",
    "URL_ENV",
]

#: The driver names ``RedisQueue`` accepts.
DRIVERS = ("list", "sorted-set", "stream", "set")
#: Prefix of every key zevents writes.
DEFAULT_PREFIX = "zevents:"
#: The stream consumer group a queue reads as.
DEFAULT_GROUP = "default"
#: Seconds any single Redis call may take before it fails.
DEFAULT_SOCKET_TIMEOUT = 5.0
#: Replicas that must acknowledge a send before it is confirmed (0: the master's word).
DEFAULT_MIN_REPLICAS = 0
#: Seconds a send waits for ``min_replicas`` replicas (Redis ``WAIT``) before it fails.
DEFAULT_REPLICA_TIMEOUT = 1.0
#: The environment variable read when no URL is given.
URL_ENV = "ZEVENTS_REDIS_URL"

#: Seconds a taken message stays leased without a heartbeat.
DEFAULT_KEEP_ALIVE = 30.0
#: Most messages a worker takes in one round trip.
DEFAULT_PREFETCH = 100
#: How often a stream entry may be claimed from a silent consumer before it fails.
DEFAULT_MAX_RECLAIMS = 3

#: Attempts before a message goes to the failed store.
DEFAULT_MAX_ATTEMPTS = 5
#: How the wait between attempts grows: ``"exponential"`` or ``"linear"``.
DEFAULT_BACKOFF = "exponential"
#: Seconds of the first wait.
DEFAULT_BACKOFF_BASE = 1.0
#: The longest wait, in seconds.
DEFAULT_BACKOFF_CAP = 960.0
#: The fraction of each wait drawn at random (0: exact waits).
DEFAULT_JITTER = 0.0
