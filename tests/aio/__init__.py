"""Tests of zevents.aio and the asyncio side of the bus."""
