"""RQ, Dramatiq and Celery, each run in its own process the way its documentation says.

Usage: ``python -m benchmarks.peers enqueue|work|fill-work PEER URL QUEUE COUNT``.

``enqueue`` sends ``COUNT`` no-op jobs one at a time and prints the rate. ``work`` runs
one worker process the documented way — RQ: ``SimpleWorker`` in burst mode; Dramatiq: one
process with one worker thread (``dramatiq --processes 1 --threads 1``; its default is one
process per core with 8 threads each); Celery: the solo pool — and prints the rate from
the first job to the ``COUNT``-th, timed inside the job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from benchmarks.harness import BODY, emit, ready

PEERS = ("rq", "dramatiq", "celery")

# Times of the first and the COUNT-th job run in this process.
_marks: list[float] = []
_seen = 0
_done = threading.Event()


def _count_job() -> None:
    global _seen
    _seen += 1
    if _seen == 1 or _seen == int(os.environ["ZB_COUNT"]):
        _marks.append(time.monotonic())
        if len(_marks) == 2:
            _done.set()


def rq_job(payload: Any) -> None:
    """The RQ no-op job (importable by the worker)."""
    _count_job()


def _result(count: int) -> dict[str, float]:
    return {"rate": (count - 1) / (_marks[1] - _marks[0])}


# --- RQ -----------------------------------------------------------------------------


def rq_enqueue(url: str, queue: str, count: int) -> None:
    from redis import Redis
    from rq import Queue

    q = Queue(queue, connection=Redis.from_url(url))
    ready()
    start = time.monotonic()
    for i in range(count):
        q.enqueue(rq_job, {"i": i, "body": BODY})
    emit({"rate": count / (time.monotonic() - start)})


def rq_work(url: str, queue: str, count: int) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker

    connection = Redis.from_url(url)
    worker = SimpleWorker([Queue(queue, connection=connection)], connection=connection)
    ready()
    worker.work(burst=True, logging_level="WARNING")
    emit(_result(count))


# --- Dramatiq ------------------------------------------------------------------------


def _dramatiq_actor(url: str, queue: str) -> Any:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name=queue, max_retries=0)
    def noop(payload: Any) -> None:
        _count_job()

    return noop


def dramatiq_enqueue(url: str, queue: str, count: int) -> None:
    noop = _dramatiq_actor(url, queue)
    ready()
    start = time.monotonic()
    for i in range(count):
        noop.send({"i": i, "body": BODY})
    emit({"rate": count / (time.monotonic() - start)})


def dramatiq_work(url: str, queue: str, count: int) -> None:
    import dramatiq

    noop = _dramatiq_actor(url, queue)
    worker = dramatiq.Worker(noop.broker, worker_threads=1)
    ready()
    worker.start()
    try:
        if not _done.wait(timeout=600):
            raise SystemExit("dramatiq did not finish in time")
    finally:
        worker.stop()
    emit(_result(count))


# --- Celery --------------------------------------------------------------------------


def _celery_app(url: str, queue: str) -> Any:
    from celery import Celery

    app = Celery("zbench", broker=url)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        worker_redirect_stdouts=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="zbench.noop")
    def noop(payload: Any) -> None:
        _count_job()
        if _done.is_set():
            emit(_result(int(os.environ["ZB_COUNT"])))

    return app, noop


def celery_enqueue(url: str, queue: str, count: int) -> None:
    _app, noop = _celery_app(url, queue)
    ready()
    start = time.monotonic()
    for i in range(count):
        noop.delay({"i": i, "body": BODY})
    emit({"rate": count / (time.monotonic() - start)})


def celery_work(url: str, queue: str, count: int) -> None:
    app, _noop = _celery_app(url, queue)
    ready()
    # The harness stops the worker once the COUNT-th job printed the result.
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--queues",
            queue,
        ]
    )


def main(argv: list[str]) -> None:
    action, peer, url, queue, count = argv
    os.environ["ZB_COUNT"] = count
    if action == "fill-work":
        # Queue every job first (its rate line is skipped), then work them all.
        globals()[f"{peer}_enqueue"](url, queue, int(count))
        action = "work"
    globals()[f"{peer}_{action}"](url, queue, int(count))


if __name__ == "__main__":
    # Run as the importable module, so RQ finds the job and its counters are the same.
    from benchmarks import peers

    peers.main(sys.argv[1:])
