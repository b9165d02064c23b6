"""Admission to the database pools (app/core/db.py): FairGate lets requests in first come,
first served, gives up with PoolExhausted (a 503) after its timeout and never loses or invents
a slot; PoolReader, the dashboard polls' pool on PostgreSQL, survives a pooled connection that
died and fails fast when the database cannot be reached.
"""

import asyncio
import threading
import time
from collections.abc import Iterable

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import FairGate, PoolExhausted, create_engine, create_reader
from app.core.errors import is_database_unavailable
from tests.conftest import TEST_SECRET_KEY


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


# --------------------------------------------------------------------------- PoolReader


def _terminate_without_yielding(dsn: str, pids: Iterable[int]) -> None:
    """pg_terminate_backend from another connection, run on a thread of its own while this
    event loop stands still: asyncpg gets no chance to see the connection close before the
    next read, which then meets a dead connection (as after a network blip or a failover)."""
    pids = list(pids)
    failure: list[BaseException] = []

    async def terminate() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            for pid in pids:
                # Waits (up to 5 s) until the backend has exited.
                assert await connection.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
        finally:
            await connection.close()

    def run() -> None:
        try:
            asyncio.run(terminate())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()  # blocks the event loop on purpose
    if failure:
        raise failure[0]


def _asyncpg_dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.postgres_only
async def test_a_pool_reader_survives_a_pooled_connection_that_died(
    engine: AsyncEngine, settings: Settings
) -> None:
    reader = create_reader(engine, settings)
    assert reader is not None
    try:
        row = await reader.fetchrow("SELECT 1")
        assert row is not None
        assert row[0] == 1
        [pid] = await reader.fetchrow("SELECT pg_backend_pid()")  # type: ignore[misc]

        _terminate_without_yielding(_asyncpg_dsn(engine), [pid])
        row = await reader.fetchrow("SELECT pg_backend_pid()")

        assert row is not None
        assert row[0] != pid
        # And again, when the event loop did see the close coming.
        [pid] = await reader.fetchrow("SELECT pg_backend_pid()")  # type: ignore[misc]
        other = await asyncpg.connect(_asyncpg_dsn(engine))
        try:
            assert await other.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
        finally:
            await other.close()
        row = await reader.fetchrow("SELECT 2")
        assert row is not None
        assert row[0] == 2
    finally:
        await reader.close()


@pytest.mark.postgres_only
async def test_a_pool_reader_survives_every_pooled_connection_dying(
    engine: AsyncEngine, settings: Settings
) -> None:
    reader = create_reader(engine, settings.model_copy(update={"database_pool_size": 3}))
    assert reader is not None
    query = "SELECT pg_backend_pid() FROM pg_sleep(0.05)"
    try:
        # Three reads at once: three pooled connections.
        rows = await asyncio.gather(*(reader.fetchrow(query) for _ in range(3)))
        pids = {row[0] for row in rows if row is not None}
        assert len(pids) == 3

        _terminate_without_yielding(_asyncpg_dsn(engine), pids)
        rows = await asyncio.gather(*(reader.fetchrow(query) for _ in range(3)))

        assert all(row is not None for row in rows)
        assert not pids & {row[0] for row in rows if row is not None}
    finally:
        await reader.close()


@pytest.mark.postgres_only
async def test_a_pool_reader_fails_fast_and_recognisably_when_nothing_listens() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/x",
        database_timeout_seconds=1,
        database_pool_size=1,
        secret_key=TEST_SECRET_KEY,
    )
    engine = create_engine(settings.database_url)
    reader = create_reader(engine, settings)
    assert reader is not None
    try:
        # Three in a row through the single slot: a failed read gives its slot back.
        for _ in range(3):
            started = time.monotonic()
            try:
                await reader.fetchrow("SELECT 1")
            except Exception as exc:
                error = exc
            else:
                pytest.fail("a read with nothing listening answered")
            assert time.monotonic() - started < 1.5
            assert not isinstance(error, PoolExhausted), error
            assert is_database_unavailable(error), repr(error)
    finally:
        await reader.close()
        await engine.dispose()
