"""How ``zevents emit`` sends a run of events: waiting for peers, one by one or with a
window of confirmations in flight, bad lines skipped, and the summary line."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import click

from zevents.cli._lines import BadLine, Line
from zevents.cli._progress import Progress, rate
from zevents.config import DEFAULT_SNDTIMEO
from zevents.errors import DeliveryError, DeliveryTimeout, EncodeError, RemoteError
from zevents.eventbus import Bus
from zevents.events import PUSH_ERROR
from zevents.listener import EventListener

__all__ = ["DEFAULT_PUB_WAIT", "DEFAULT_WINDOW", "send_all", "send_timeout", "window_bus"]

#: Seconds a PUB waits before its first send unless ``--wait`` says otherwise.
DEFAULT_PUB_WAIT = 0.5
#: Confirmations in flight when a confirmed run reads stdin or sends ``--count`` > 1.
DEFAULT_WINDOW = 1000


def send_timeout(listener: EventListener) -> float:
    """Seconds a send of ``listener`` may wait for a peer (``sndtimeo``; -1, infinite,
    counts as the default here, so that no wait before sending is endless)."""
    millis = listener.options.sndtimeo
    return (millis if millis >= 0 else DEFAULT_SNDTIMEO) / 1000


@dataclass
class _Tally:
    """What a run did so far, for its summary."""

    sent: int = 0
    bad: int = 0
    #: Windowed runs: events found not confirmed (a remote error, no confirmation).
    unconfirmed: int = 0
    #: The line sending stopped at, when a failure found meanwhile stopped it.
    stopped_at: int | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class _Failure:
    """The event that was not delivered, and the error that says why."""

    line: Line
    error: DeliveryError | EncodeError


def _get_ready(listener: EventListener, wait: float | None) -> None:
    """Open the socket, then wait for the receivers before the first send.

    A PUB pauses for its subscribers (it cannot tell when they have joined). Any other
    socket waits, at most ``wait`` (default: the send timeout), until each endpoint it
    connects to has a peer: sending at once, a short run would all go to the first
    peer whose connection completed.

    Raises:
        EndpointError: The socket cannot bind or connect.
    """
    if listener.options.sending_type() == "pub":
        listener.socket  # noqa: B018 - bind/connect now, so --wait counts from here
        pause = DEFAULT_PUB_WAIT if wait is None else wait
        if pause > 0:
            time.sleep(pause)
        return
    bound = send_timeout(listener) if wait is None else wait
    if listener.options.connect and bound > 0:
        listener.wait_for_peers(bound)
    else:
        listener.socket  # noqa: B018 - bind/connect now: a bad endpoint fails here


def send_all(
    listener: EventListener,
    items: Iterable[Line | BadLine],
    *,
    count: int,
    wait: float | None,
    summary: bool,
) -> None:
    """Send every item; report bad lines, the first failure, and a summary.

    Raises:
        EndpointError: The socket cannot bind or connect.
        DeliveryError: An event was not delivered, or its remote handler failed
            (sending stopped there).
        click.ClickException: Some lines were bad (exit status 1).
    """
    _get_ready(listener, wait)
    progress = Progress(sys.stderr, enabled=None if summary else False)
    tally = _Tally()
    if listener.bus is not None:  # windowed: count what is found unconfirmed
        listener.bus.listen(PUSH_ERROR, lambda event, report: _count_unconfirmed(tally))
    try:
        failure = _send_items(listener, items, count, tally, progress)
        _flush(listener)
    except KeyboardInterrupt:
        tally.interrupted = True
        raise
    finally:
        elapsed = progress.elapsed
        progress.clear()
        listener.close(0 if tally.interrupted else None)
        if summary:
            click.echo(_summary(tally, listener, elapsed), err=True)
    if failure is not None:
        raise _undelivered(failure, listener) from failure.error
    if tally.unconfirmed:
        raise click.ClickException(_unconfirmed_text(tally))
    if tally.bad:
        rest = "the rest was sent" if tally.sent else "no event was sent"
        raise click.ClickException(
            f"{tally.bad} bad line{_s(tally.bad)} skipped (see above); {rest}"
        )


def _send_items(
    listener: EventListener,
    items: Iterable[Line | BadLine],
    count: int,
    tally: _Tally,
    progress: Progress,
) -> _Failure | None:
    """Send each line ``count`` times, skipping bad lines; stop at the first failure."""
    for item in items:
        if isinstance(item, BadLine):
            tally.bad += 1
            progress.clear()
            click.echo(f"zevents emit: line {item.number}: {item.reason}; skipped", err=True)
            continue
        for _ in range(count):
            if tally.unconfirmed:  # found meanwhile (windowed): send no more
                tally.stopped_at = item.number
                return None
            try:
                listener.send(item.event, item.payload)
            except (DeliveryError, EncodeError) as exc:
                return _Failure(item, exc)
            tally.sent += 1
            progress.update(tally.sent)
    return None


def window_bus() -> Bus:
    """The bus of a windowed run's listener: its ``zevents.push.error`` reports the
    events found unconfirmed (each also logged at WARNING by the listener)."""
    return Bus("emit")


def _count_unconfirmed(tally: _Tally) -> None:
    tally.unconfirmed += 1


def _flush(listener: EventListener) -> None:
    """Wait for the confirmations still due (windowed); each failure was counted, and
    logged, as it was found."""
    with contextlib.suppress(DeliveryError):
        listener.flush()


def _unconfirmed_text(tally: _Tally) -> str:
    """Why a windowed run exits with status 1."""
    text = (
        f"{tally.unconfirmed} event{_s(tally.unconfirmed)} not confirmed (see the warnings "
        f"above); {tally.sent - tally.unconfirmed:,} confirmed"
    )
    if tally.stopped_at is not None:
        text += (
            f"; sending stopped at line {tally.stopped_at} (the rest: tail -n +{tally.stopped_at})"
        )
    return text


def _undelivered(failure: _Failure, listener: EventListener) -> DeliveryError:
    """The error that ends the run: the event, its line, the endpoint and the reason."""
    line, error = failure.line, failure.error
    endpoint = listener.options.endpoints
    where = f" (line {line.number})" if line.number is not None else ""
    if isinstance(error, RemoteError):
        # Delivered: a resend would run the handler again, so the next line resumes;
        # but a handler that failed before doing its work (a bridge that could not
        # store the event) wants the line itself again.
        message = (
            f"{line.event!r}{where} was sent to {endpoint} and delivered; "
            f"the remote handler failed: {error}"
        )
        if line.number is not None:
            message += (
                f"; stopped there (resume with: tail -n +{line.number + 1}; or "
                f"tail -n +{line.number} to send it again, e.g. to a bridge that could "
                "not store it)"
            )
        return RemoteError(message, event=line.event, endpoint=endpoint)
    reason = f"{error} ({type(error).__name__})"
    if isinstance(error, DeliveryTimeout) and not error.sent and listener.options.confirmed:
        # A confirmed DEALER cannot pair with a plain PULL service: say so.
        reason += "; is the service running with --confirmed?"
    message = f"could not deliver {line.event!r}{where} to {endpoint}: {reason}"
    if line.number is not None:
        message += f"; stopped there (resume with: tail -n +{line.number})"
    return DeliveryError(message, event=line.event, endpoint=endpoint)


def _summary(tally: _Tally, listener: EventListener, elapsed: float) -> str:
    """The last line of a run: what was sent where, how fast, what was confirmed, and
    what was not."""
    endpoint = listener.options.endpoints
    text = f"zevents emit: sent {tally.sent:,} event{_s(tally.sent)} to {endpoint}"
    text += f" in {elapsed:.2f} s ({rate(tally.sent, elapsed)})"
    if listener.options.confirmed:
        text += f"; {tally.sent - tally.unconfirmed:,} confirmed"
        if tally.unconfirmed:
            text += f", {tally.unconfirmed:,} not"
    if tally.bad:
        text += f"; {tally.bad} bad line{_s(tally.bad)} skipped"
    if tally.interrupted:
        text += "; interrupted"
    return text


def _s(count: int) -> str:
    """The plural ending for ``count`` things."""
    return "" if count == 1 else "s"
