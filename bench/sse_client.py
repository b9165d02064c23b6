"""Event streams held the way a browser's EventSource holds them, many from one process: raw
asyncio connections, HTTP/1.1 framing by h11, the text/event-stream format read line by line.
Used by bench/events.py."""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import h11

EVENTS_PATH = "/api/users/jobs/events"
OPEN_AT_ONCE = 100  # streams being opened at the same time (uvicorn's listen backlog is 2048)
# A refused stream is tried again after 1 s, then 2 s, 4 s..., as the dashboard does.
RETRIED_STATUSES = (429, 503)
TRIES = 6


@dataclass
class Stream:
    """One event stream as a browser's EventSource holds it: tried again while refused, never
    reconnected once open."""

    user_id: int
    token: str
    status: int | None = None
    first_event: str | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)  # its first event arrived
    error: str | None = None  # why it closed or never opened
    refusals: dict[int, int] = field(default_factory=dict)  # status -> times, tried again
    closed: bool = False
    events: dict[str, int] = field(default_factory=dict)
    pings: int = 0
    without_id: int = 0
    foreign: int = 0  # `job` events about somebody else's job
    # job_id -> (arrival, progress) of every `job` event, in arrival order
    arrivals: dict[int, list[tuple[float, int]]] = field(default_factory=dict)

    async def run(self, port: int) -> None:
        try:
            for attempt in range(TRIES):
                self.error, self.status = None, None
                try:
                    await self._run(port)
                # A broken connection, bad framing or a `job` event that is not the job's JSON:
                # the stream is lost, and why is counted.
                except (OSError, h11.ProtocolError, ValueError, KeyError, TypeError) as exc:
                    self.error = f"{type(exc).__name__}: {exc}"[:200]
                refused_with = self.status if self.first_event is None else None
                last = attempt == TRIES - 1
                if refused_with is None or refused_with not in RETRIED_STATUSES or last:
                    return
                self.refusals[refused_with] = self.refusals.get(refused_with, 0) + 1
                await asyncio.sleep(2**attempt)
        finally:
            self.closed = True
            self.opened.set()  # nobody waits forever for a stream that failed

    async def _run(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            http = h11.Connection(h11.CLIENT)
            headers = [
                ("Host", f"127.0.0.1:{port}"),
                ("Authorization", f"Bearer {self.token}"),
                ("Accept", "text/event-stream"),
            ]
            writer.write(http.send(h11.Request(method="GET", target=EVENTS_PATH, headers=headers)))
            writer.write(http.send(h11.EndOfMessage()))
            await writer.drain()
            lines = SseLines()
            body = b""
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    self.status = event.status_code
                elif isinstance(event, h11.Data):
                    if self.status != 200:
                        body += event.data
                        continue
                    for name, event_id, data in lines.feed(event.data):
                        self._on_event(name, event_id, data)
                    self.pings += lines.take_comments()
                else:  # the end of the response or of the connection
                    reason = f"HTTP {self.status}: {body[:150]!r}" if self.status != 200 else ""
                    self.error = reason or "the server ended the stream"
                    return
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _on_event(self, name: str, event_id: str | None, data: str) -> None:
        now = time.monotonic()
        self.events[name] = self.events.get(name, 0) + 1
        self.without_id += event_id is None
        if self.first_event is None:
            self.first_event = name
            self.opened.set()
        if name == "job":
            job = json.loads(data)
            if job["user_id"] != self.user_id:
                self.foreign += 1
            self.arrivals.setdefault(job["job_id"], []).append((now, job["progress"]))


class SseLines:
    """The text/event-stream format: fields up to a blank line make an event."""

    def __init__(self) -> None:
        self._pending = b""
        self._name = ""
        self._id: str | None = None
        self._data: list[str] = []
        self._comments = 0

    def feed(self, chunk: bytes) -> list[tuple[str, str | None, str]]:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        ready = []
        for raw in lines:
            line = raw.rstrip(b"\r").decode()
            if not line:
                if self._data or self._name:
                    ready.append((self._name or "message", self._id, "\n".join(self._data)))
                self._name, self._id, self._data = "", None, []
            elif line.startswith(":"):
                self._comments += 1
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    self._name = value
                elif name == "data":
                    self._data.append(value)
                elif name == "id":
                    self._id = value
        return ready

    def take_comments(self) -> int:
        comments, self._comments = self._comments, 0
        return comments


async def open_streams(
    streams: list[Stream], port: int, at_once: int = OPEN_AT_ONCE
) -> tuple[list[asyncio.Task[None]], float]:
    """Opens every stream, `at_once` at a time; returns their tasks once each has had its
    first event (or failed for good), and how long that took."""
    gate = asyncio.Semaphore(at_once)
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()

    async def one(stream: Stream) -> None:
        async with gate:
            tasks.append(asyncio.create_task(stream.run(port)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.opened.wait(), 120)

    await asyncio.gather(*(one(stream) for stream in streams))
    return tasks, time.monotonic() - started


async def close_streams(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stream_counts(streams: list[Stream]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    refusals: dict[str, int] = {}
    for stream in streams:
        if stream.error:
            errors[stream.error] = errors.get(stream.error, 0) + 1
        for status, times in stream.refusals.items():
            refusals[str(status)] = refusals.get(str(status), 0) + times
    return {
        "streams": len(streams),
        "open": sum(s.first_event is not None and not s.closed for s in streams),
        "first_event_stats": sum(s.first_event == "stats" for s in streams),
        "errors": dict(sorted(errors.items(), key=lambda item: -item[1])[:5]),
        "refusals_tried_again": refusals,
        "pings": sum(s.pings for s in streams),
        "events": sum(sum(s.events.values()) for s in streams),
        "events_without_id": sum(s.without_id for s in streams),
        "foreign_job_events": sum(s.foreign for s in streams),
    }
