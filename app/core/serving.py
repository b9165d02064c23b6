"""How `python -m app serve` reads requests: uvicorn's HTTP/1.1 protocol with a deadline.

uvicorn closes an idle keep-alive connection after a few seconds, but a connection that never
finishes its request (headers trickled in, a body cut short, or nothing at all after connecting)
is kept forever: a few hundred of them from one client pile up until the process runs out of
file descriptors. Here each request must arrive in full within REQUEST_READ_TIMEOUT_SECONDS of
its first byte (of the connection, for the first request), or the connection is closed.
"""

import asyncio

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.core.config import get_settings


class DeadlineHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Read here, not passed in: uvicorn builds the protocol itself, in every worker process.
        self.request_read_timeout = get_settings().request_read_timeout_seconds
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:
            self._arm_read_deadline()

    def on_message_complete(self) -> None:
        self._disarm_read_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def _arm_read_deadline(self) -> None:
        self._read_deadline = self.loop.call_later(
            self.request_read_timeout, self._read_deadline_passed
        )

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_deadline_passed(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
