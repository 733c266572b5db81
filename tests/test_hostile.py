"""A running service fed garbage from a raw ZeroMQ socket in another process: it stays
up, reports each bad message, goes on with the good ones, and keeps its memory bounded;
payloads are never unpickled."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import zmq

from tests.helpers import ServiceProcess

#: How much the service's resident memory may grow while fed garbage (a 64 MB frame
#: among it): far less than the frame, so it was never buffered whole.
MEMORY_GROWTH_LIMIT = 24 * 1024 * 1024


def _garbage(rng: random.Random) -> list[list[bytes]]:
    """Messages no decoder takes, each failing differently."""
    return [
        [rng.randbytes(64) + b"\xff"],  # random bytes: not a UTF-8 name
        [b""],  # one empty frame (ZeroMQ has no message without frames)
        [b"many.frames", *([b"\xff\xfe"] * 999)],  # 1,000 frames, none JSON
        [b"\xc3\x28.invalid.utf8", b"1"],  # an invalid UTF-8 name
        [b"bad.json", b"{not json"],
        [b"bad.json.many", b"1", b"[", b"2"],
    ]


def _peak_rss(pid: int) -> int:
    """The highest resident memory of process ``pid`` so far, in bytes (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM line in /proc/PID/status")


def test_garbage_is_reported_one_by_one_and_good_events_still_arrive(
    tmp_path: Path, tcp_endpoint: str
) -> None:
    service = ServiceProcess(tmp_path, {"bind": tcp_endpoint}).wait_ready()
    context = zmq.Context()
    try:
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 5000)
        push.connect(tcp_endpoint)
        garbage = _garbage(random.Random(20261201))
        for number, frames in enumerate(garbage):
            push.send_multipart(frames)
            push.send_multipart([b"good", str(number).encode()])
        good = service.wait_events("good", len(garbage))
        errors = service.wait_events("zevents.service.error", len(garbage))
        push.close()
    finally:
        context.destroy(linger=0)
        service.stop()
    assert [row["payload"] for row in good] == list(range(len(garbage)))
    assert [row["payload"]["error_type"] for row in errors] == ["DecodeError"] * len(garbage)
    assert [row["payload"]["event"] for row in errors] == [
        None,
        None,
        "many.frames",
        None,
        "bad.json",
        "bad.json.many",
    ]
    # each report keeps the first frames (at most 8), hex, so the sender can be found
    assert errors[1]["payload"]["frames"] == [""]
    assert len(errors[2]["payload"]["frames"]) == 8


def test_a_64_mb_frame_is_refused_and_memory_stays_bounded(
    tmp_path: Path, tcp_endpoint: str
) -> None:
    service = ServiceProcess(tmp_path, {"bind": tcp_endpoint}).wait_ready()
    context = zmq.Context()
    try:
        before = _peak_rss(service.proc.pid)
        big = context.socket(zmq.PUSH)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(tcp_endpoint)
        big.send_multipart([b"huge", b'"' + b"x" * (64 * 1024 * 1024) + b'"'])  # valid JSON
        # the service drops the connection (max_message_size, 16 MiB by default); the
        # peer reconnects and sends the rest of its queue, so the next event still comes
        big.send_multipart([b"after.huge", b"1"])
        service.wait_events("after.huge", 1, timeout=30)
        grown = _peak_rss(service.proc.pid) - before
        big.close()
    finally:
        context.destroy(linger=0)
        service.stop()
    assert service.events("huge") == []
    assert grown < MEMORY_GROWTH_LIMIT, f"service grew by {grown:,} bytes"


class _Exploit:
    """Unpickling this would create ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_a_pickle_payload_is_never_unpickled(tmp_path: Path, ipc_endpoint: str) -> None:
    """Only the configured serializer runs on received bytes: with JSON, a pickle is a
    malformed message; nothing evaluates it."""
    marker = tmp_path / "unpickled"
    service = ServiceProcess(tmp_path, {"bind": ipc_endpoint}).wait_ready()
    context = zmq.Context()
    try:
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 5000)
        push.connect(ipc_endpoint)
        push.send_multipart([b"evil", pickle.dumps(_Exploit(marker))])
        push.send_multipart([b"good", b"1"])
        service.wait_events("good", 1)
        errors = service.wait_events("zevents.service.error", 1)
        push.close()
    finally:
        context.destroy(linger=0)
        service.stop()
    assert errors[0]["payload"]["event"] == "evil"
    assert errors[0]["payload"]["error_type"] == "DecodeError"
    assert not marker.exists()
