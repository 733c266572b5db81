"""``zevents list``: the events an application's bus listens to, its receivers, and where
each ``EventListener`` among them forwards."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import click

from zevents.cli._handlers import import_app
from zevents.cli._output import print_json
from zevents.cli._queue_tables import output_option, wants_json
from zevents.cli._tables import make_table, print_table
from zevents.eventbus import Bus, Subscription, default_bus
from zevents.listener import EventListener

__all__ = ["list_events", "subscriptions_of"]

_EPILOG = """\b
Examples:
  zevents list --app shop.events:bus
  zevents list --app shop.events            # every Bus the module defines
  zevents list --app shop.events --compact  # the patterns only
  zevents list --app shop.events --json | jq -c 'select(.forwards_to) | .forwards_to'

\b
APP is MODULE:OBJECT (a Bus) or MODULE: then every Bus among the module's names,
and the default bus (zevents.bus) when importing the module registered receivers on
it. The module is imported from the working directory first, as --handler is.
Importing runs its code; nothing else is called.
"""


def _buses_of(app: object, spec: str) -> list[Bus]:
    if isinstance(app, Bus):
        return [app]
    if not isinstance(app, types.ModuleType):
        raise click.BadParameter(
            f"{spec!r} is {type(app).__name__}, not a Bus or a module", param_hint="'--app'"
        )
    buses = [value for value in vars(app).values() if isinstance(value, Bus)]
    shared = default_bus
    if shared not in buses and shared.subscriptions():
        buses.append(shared)
    if not buses:
        raise click.BadParameter(
            f"module {spec!r} defines no Bus and registered nothing on zevents.bus",
            param_hint="'--app'",
        )
    return list(dict.fromkeys(buses))


def _receiver_name(receiver: Any) -> str:
    target = getattr(receiver, "function", receiver)  # a --handler wrapper: its function
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None)
    if module and name:
        return f"{module}.{name}"
    return repr(target)


def _row(bus: Bus, item: Subscription) -> dict[str, Any]:
    receiver = item.receiver
    row: dict[str, Any] = {
        "bus": bus.name,
        "pattern": item.pattern,
        "receiver": _receiver_name(receiver),
        "async": item.is_async,
        "blinker": item.native,
        "forwards_to": None,
    }
    if isinstance(receiver, EventListener):
        options = receiver.options
        row["receiver"] = "EventListener"
        row["forwards_to"] = {
            "socket_type": options.sending_type(),
            "connect": list(options.connect),
            "bind": list(options.bind),
        }
    return row


def _cells(row: dict[str, Any]) -> list[str]:
    """The table cells of a row: pattern, receiver, forwards to."""
    receiver = row["receiver"] + (" (async)" if row["async"] else "")
    forwards = row["forwards_to"]
    if forwards is None:
        return [row["pattern"], receiver, "-"]
    ends = [f"{e} (connect)" for e in forwards["connect"]]
    ends += [f"{e} (bind)" for e in forwards["bind"]]
    return [row["pattern"], f"{receiver} ({forwards['socket_type']})", ", ".join(ends)]


def subscriptions_of(buses: list[Bus]) -> Iterator[dict[str, Any]]:
    """One row per receiver of each bus, in registration order."""
    for bus in buses:
        for item in bus.subscriptions():
            yield _row(bus, item)


@click.command("list", epilog=_EPILOG)
@click.option(
    "--app",
    "spec",
    required=True,
    metavar="MODULE[:OBJECT]",
    help="The bus to list (MODULE:OBJECT), or a module whose buses to list.",
)
@click.option("--compact", is_flag=True, help="Print the patterns only, one per line.")
@output_option
def list_events(spec: str, compact: bool, as_json: bool | None) -> None:
    """List the events an application listens to, with their receivers, and the
    endpoints each EventListener forwards them to. It only reads."""
    rows = list(subscriptions_of(_buses_of(import_app(spec), spec)))
    if compact:
        for pattern in dict.fromkeys(row["pattern"] for row in rows):
            click.echo(pattern)
        return
    if wants_json(as_json):
        for row in rows:
            print_json(row)
        return
    several = len({row["bus"] for row in rows}) > 1
    columns = ["pattern", "receiver", "forwards to"]
    table_rows = [[row["bus"], *_cells(row)] if several else _cells(row) for row in rows]
    print_table(make_table(["bus", *columns] if several else columns, table_rows, wrap=columns[2:]))
