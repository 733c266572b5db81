"""``together``: two plans' steps share each round trip, and each gets its own replies."""

from __future__ import annotations

from typing import Any

from zevents.redis.protocol import Batch, Call, Command, Plan
from zevents.redis.protocol.together import together


def two_steps() -> Plan[list[Any]]:
    first = yield Command("get", ("a",))
    second = yield Batch([Command("get", ("b",)), Call("x.lua", [], [])])
    return [first, second]


def one_step() -> Plan[str]:
    reply = yield Call("y.lua", ["k"], [1])
    return f"y={reply}"


def test_together_batches_both_plans_steps_and_hands_each_its_replies() -> None:
    plan = together(two_steps(), one_step())
    rounds: list[Batch] = []
    step = next(plan)
    replies: list[list[Any]] = [["A", "Y"], ["B", "X"]]
    try:
        while True:
            assert isinstance(step, Batch)
            rounds.append(step)
            step = plan.send(replies[len(rounds) - 1])
    except StopIteration as done:
        result = done.value
    assert [[type(s).__name__ for s in r.steps] for r in rounds] == [
        ["Command", "Call"],
        ["Command", "Call"],  # the second plan is done: the first's batch alone
    ]
    assert result == (["A", ["B", "X"]], "y=Y")
