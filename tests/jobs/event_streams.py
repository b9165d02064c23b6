"""`GET /api/users/jobs/events` read as a client reads it (httpx-sse), for the events tests.

The app runs on its real engine (tests/live_app.py: data committed, as other processes see it)
behind a real HTTP server (`OpenApp.client_over_tcp`), so events arrive as they are sent.
Waits are bounded generously: an event normally arrives in milliseconds, and within a second
where the app polls; reaching a bound fails the test.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from httpx_sse import EventSource, aconnect_sse

EVENTS = "/api/users/jobs/events"
EVENT_BOUND = 10.0
JOB_KEYS = [
    "job_id",
    "status",
    "created_at",
    "job_name",
    "job_type",
    "updated_at",
    "user_id",
    "progress",
    "progress_message",
]


@dataclass(frozen=True)
class Event:
    name: str
    data: Any
    id: str


class Stream:
    """An open stream; `next()` is its next event."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self._events = source.aiter_sse()

    async def next(self, within: float = EVENT_BOUND) -> Event:
        try:
            sse = await asyncio.wait_for(anext(self._events), within)
        except TimeoutError:
            pytest.fail(f"no event within {within:g} s")
        except StopAsyncIteration:
            pytest.fail("the stream ended")
        return Event(sse.event, json.loads(sse.data), sse.id)

    async def until(
        self, wanted: Callable[[Event], bool], within: float = EVENT_BOUND
    ) -> list[Event]:
        """Events up to and including the first that is `wanted`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        seen = [await self.next(within)]
        while not wanted(seen[-1]):
            seen.append(await self.next(max(deadline - loop.time(), 0.001)))
        return seen

    async def batch(self, within: float = EVENT_BOUND) -> list[Event]:
        """The events up to and including the next `stats` (which closes every batch)."""
        return await self.until(lambda event: event.name == "stats", within)

    async def ends(self, within: float = EVENT_BOUND) -> list[Event]:
        """The events the stream still sends before it ends."""
        rest: list[Event] = []
        try:
            async with asyncio.timeout(within):
                async for sse in self._events:
                    rest.append(Event(sse.event, json.loads(sse.data), sse.id))
        except TimeoutError:
            pytest.fail(f"the stream did not end within {within:g} s (sent {rest})")
        return rest


@asynccontextmanager
async def open_stream(
    client: AsyncClient, headers: dict[str, str], last_event_id: str | bytes | None = None
) -> AsyncIterator[Stream]:
    extra: dict[str, str | bytes] = (
        {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    )
    async with aconnect_sse(client, "GET", EVENTS, headers={**headers, **extra}) as source:
        assert source.response.status_code == 200, await source.response.aread()
        yield Stream(source)


def job_events(events: list[Event]) -> dict[int, dict[str, Any]]:
    """The jobs a batch sent, by id (the last state of each)."""
    return {event.data["job_id"]: event.data for event in events if event.name == "job"}
