"""A loopback TCP proxy that tests can cut and restore, to play a database outage.

    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()            # listens on 127.0.0.1:<free port>, forwards to the upstream
    await proxy.cut(REFUSE)        # current connections reset; new ones refused (ECONNREFUSED)
    await proxy.cut(BLACKHOLE)     # current connections reset; new ones accepted, then silence
    await proxy.cut(BLACKHOLE, freeze_existing=True)
                                   # a partition mid-flight: current connections stay open but
                                   # nothing crosses them any more, in either direction
    proxy.latency = 0.5            # every chunk waits this long before it is forwarded
    await proxy.restore()          # forwards again on the same port
    await proxy.stop()             # closes everything; safe to call twice or after a failure

Only loopback addresses are accepted, for both the listener and the upstream.
"""

import asyncio
import contextlib
import enum
import ipaddress
from dataclasses import dataclass, field

CHUNK = 64 * 1024


class Cut(enum.Enum):
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"


REFUSE = Cut.REFUSE
BLACKHOLE = Cut.BLACKHOLE


def _require_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address")


@dataclass(eq=False)
class _Link:
    """One client connection and, when forwarding, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    frozen: bool = False
    tasks: list["asyncio.Task[None]"] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()  # RST, as when a server or a firewall drops it


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        _require_loopback(upstream_host)
        _require_loopback(host)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = host
        self.port = 0
        self.cut_mode: Cut | None = None
        self.latency = 0.0  # seconds each chunk is held before it is forwarded
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        await self._listen(self.port)
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self, mode: Cut, *, freeze_existing: bool = False) -> None:
        """Take the upstream away. New connections are refused or blackholed according to
        `mode`; current ones are reset, or with `freeze_existing` kept open and starved."""
        self.cut_mode = mode
        if mode is REFUSE:
            await self._close_listener()
        for link in list(self._links):
            if freeze_existing:
                link.frozen = True
            else:
                self._drop(link)

    async def restore(self) -> None:
        """Forward again. Connections held during the cut are reset: a client that kept one
        would otherwise wait on a conversation the server never saw."""
        self.cut_mode = None
        for link in list(self._links):
            if link.frozen or link.upstream is None:
                self._drop(link)
        if self._server is None:
            await self._listen(self.port)

    async def stop(self) -> None:
        self.cut_mode = None
        await self._close_listener()
        for link in list(self._links):
            self._drop(link)
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=5)

    async def __aenter__(self) -> "TcpProxy":
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # ------------------------------------------------------------------ internals

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, port, reuse_address=True
        )

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # wait_closed() also waits for handlers on Python 3.12+; ours are tracked instead.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=1)

    def _drop(self, link: _Link) -> None:
        link.abort()
        for task in link.tasks:
            task.cancel()
        self._links.discard(link)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        link = _Link(client=writer)
        self._links.add(link)
        try:
            if self.cut_mode is not None:
                # Accepted, then nothing: what a client sees across a partition. Whatever it
                # sends is read and dropped so that its writes never push back.
                link.frozen = True
                await self._drain_forever(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                return
            link.upstream = up_writer
            link.tasks = [
                asyncio.create_task(self._pump(reader, up_writer, link)),
                asyncio.create_task(self._pump(up_reader, writer, link)),
            ]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            self._drop(link)
            self._handlers.discard(task)

    @staticmethod
    async def _drain_forever(reader: asyncio.StreamReader) -> None:
        while await reader.read(CHUNK):
            pass

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                if self.latency:
                    await asyncio.sleep(self.latency)
                if link.frozen:
                    continue  # lost in the partition
                writer.write(data)
                await writer.drain()
