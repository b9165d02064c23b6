"""Admission to the database pool (app/core/db.py): FairGate lets requests in first come,
first served, gives up with PoolExhausted (a 503) after its timeout and never loses or invents
a slot.
"""

import asyncio
import time
from collections.abc import Iterable

import pytest

from app.core.db import FairGate, PoolExhausted
from app.core.errors import is_database_unavailable


async def _visit(gate: FairGate, name: object, order: list[object], hold: float = 0.01) -> None:
    async with gate.admit():
        order.append(name)
        await asyncio.sleep(hold)


async def _held(gate: FairGate) -> "asyncio.Task[None]":
    """A task inside the gate until it is cancelled (see _release)."""
    inside = asyncio.Event()

    async def hold() -> None:
        async with gate.admit():
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await inside.wait()
    return task


async def _release(holders: list["asyncio.Task[None]"]) -> None:
    for task in holders:
        task.cancel()
    for task in holders:
        with pytest.raises(asyncio.CancelledError):
            await task


async def _queue(
    gate: FairGate, names: Iterable[object], order: list[object]
) -> list["asyncio.Task[None]"]:
    tasks = []
    for name in names:
        tasks.append(asyncio.create_task(_visit(gate, name, order)))
        await asyncio.sleep(0)  # it reaches the gate before the next one starts
    return tasks


async def _peak_inside(gate: FairGate, visitors: int) -> int:
    """Sends `visitors` requests at once; all must get in (within 2 s), never more at a time
    than the gate has slots. Returns how many were inside together at most."""
    inside = peak = 0

    async def visit() -> None:
        nonlocal inside, peak
        async with gate.admit():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    async with asyncio.timeout(2):
        await asyncio.gather(*(visit() for _ in range(visitors)))
    return peak


async def test_waiters_are_admitted_in_arrival_order() -> None:
    gate = FairGate(1, timeout=5)
    order: list[object] = []
    holder = await _held(gate)
    tasks = await _queue(gate, range(5), order)

    await _release([holder])
    await asyncio.gather(*tasks)

    assert order == [0, 1, 2, 3, 4]


async def test_with_several_slots_the_queue_is_still_first_come_first_served() -> None:
    gate = FairGate(2, timeout=5)
    order: list[object] = []
    holders = [await _held(gate), await _held(gate)]
    tasks = await _queue(gate, range(8), order)

    await _release(holders)
    await asyncio.gather(*tasks)

    assert order == list(range(8))
    assert await _peak_inside(gate, 6) == 2


async def test_a_newcomer_does_not_overtake_a_queued_waiter() -> None:
    gate = FairGate(1, timeout=5)
    order: list[object] = []
    holder = gate.admit()
    await holder.__aenter__()
    [waiter] = await _queue(gate, ["waiter"], order)

    # The newcomer is scheduled before the slot comes free, and so runs before the waiter
    # hears that it did: it reaches a free-looking gate first. The slot is the waiter's.
    newcomer = asyncio.create_task(_visit(gate, "newcomer", order))
    await holder.__aexit__(None, None, None)  # leaves without yielding to the event loop
    later = asyncio.create_task(_visit(gate, "later", order))
    await asyncio.gather(waiter, newcomer, later)

    assert order == ["waiter", "newcomer", "later"]


async def test_a_waiter_gives_up_with_pool_exhausted_after_the_timeout() -> None:
    gate = FairGate(1, timeout=0.05)
    holder = await _held(gate)

    started = time.monotonic()
    with pytest.raises(PoolExhausted) as caught:
        async with gate.admit():
            pytest.fail("admitted while the only slot was held")
    waited = time.monotonic() - started

    assert 0.04 <= waited < 1
    assert is_database_unavailable(caught.value)
    assert isinstance(caught.value, TimeoutError)
    assert "0.05 s" in str(caught.value)
    # The slot it never got is not lost: once the holder leaves, the gate is whole.
    await _release([holder])
    assert await _peak_inside(gate, 3) == 1


async def test_an_uncontended_request_is_admitted_even_with_a_tiny_timeout() -> None:
    gate = FairGate(3, timeout=1e-9)
    order: list[object] = []

    for name in range(3):
        await _visit(gate, name, order, hold=0)

    assert order == [0, 1, 2]


async def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    gate = FairGate(1, timeout=5)
    order: list[object] = []
    holder = await _held(gate)
    [gone, stays] = await _queue(gate, ["gone", "stays"], order)

    gone.cancel()
    with pytest.raises(asyncio.CancelledError):  # cancelled, not turned into PoolExhausted
        await gone
    await _release([holder])
    await stays

    assert order == ["stays"]
    assert await _peak_inside(gate, 3) == 1


async def test_a_waiter_cancelled_just_as_the_slot_is_handed_to_it_passes_it_on() -> None:
    gate = FairGate(1, timeout=5)
    order: list[object] = []
    holder = gate.admit()
    await holder.__aenter__()
    [gone, next_in_line] = await _queue(gate, ["gone", "next"], order)

    # Leaving does not yield to the event loop: the slot is promised to "gone", which has not
    # run yet when it is cancelled (a client that hung up, or its timeout, at that moment).
    await holder.__aexit__(None, None, None)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    async with asyncio.timeout(1):
        await next_in_line

    assert order == ["next"]
    assert await _peak_inside(gate, 3) == 1


async def test_a_waiter_that_timed_out_does_not_leak_a_slot_either() -> None:
    gate = FairGate(2, timeout=0.05)
    holders = [await _held(gate), await _held(gate)]
    for _ in range(3):
        with pytest.raises(PoolExhausted):
            async with gate.admit():
                pytest.fail("admitted past two held slots")

    await _release(holders)

    assert await _peak_inside(gate, 5) == 2
