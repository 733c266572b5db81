"""zevents on asyncio: the same fabric, awaited instead of blocking.

``zevents.aio.redis`` holds the Redis queue and worker on redis-py's asyncio client
(extra ``zevents[redis]``).
"""
