"""Names of the events zevents itself fires, in one place."""

from __future__ import annotations

__all__ = [
    "CONFIRMED",
    "INTERNAL_PREFIX",
    "PUSH_ERROR",
    "SERVICE_ERROR",
    "SERVICE_IDLE",
    "SERVICE_STOP",
    "WORKER_AFTER",
    "WORKER_BEFORE",
    "WORKER_FAILED",
    "ZEROEVENTS_CONFIRMED",
]

#: Every internal event starts with this prefix.
INTERNAL_PREFIX = "zevents."

#: A listener could not deliver an event; never forwarded by a listener.
PUSH_ERROR = "zevents.push.error"
#: Wire-level acknowledgement of a confirmed message (never fired on a bus).
CONFIRMED = "zevents.confirmed"
#: The PHP package zeroevents' confirmation (payload: the event name); spoken with
#: ``confirmed="zeroevents"``.
ZEROEVENTS_CONFIRMED = "zeroevents.confirmed"
#: A service waited ``poll_timeout`` seconds without an event.
SERVICE_IDLE = "zevents.service.idle"
#: Fire it (locally or remotely) to stop a running service.
SERVICE_STOP = "zevents.service.stop"
#: A message failed to decode, or a receiver raised, inside a service.
SERVICE_ERROR = "zevents.service.error"
#: A Redis worker is about to run the receivers of a message.
WORKER_BEFORE = "zevents.worker.before"
#: A Redis worker finished a message.
WORKER_AFTER = "zevents.worker.after"
#: A Redis worker's receivers failed on a message.
WORKER_FAILED = "zevents.worker.failed"
