"""How `python -m app serve` reads requests: uvicorn's HTTP/1.1 protocol with two bounds.

uvicorn closes an idle keep-alive connection after a few seconds, but a connection that never
finishes its request (headers trickled in, a body cut short, or nothing at all after connecting)
is kept forever: a few hundred of them from one client pile up until the process runs out of
file descriptors. Here each request must arrive in full within REQUEST_READ_TIMEOUT_SECONDS of
its first byte (of the connection, for the first request), or the connection is closed.

Its httptools protocol also buffers a request line and headers of any size (its h11 one stops
at 16 KiB); past MAX_HEADER_BYTES the request is answered 431 and the connection closed.
"""

import asyncio
import json

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.core.config import get_settings
from app.core.errors import error_body

MAX_HEADER_BYTES = 64 * 1024
_TOO_LARGE_BODY = json.dumps(error_body("Request header fields too large")).encode()
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_TOO_LARGE_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _TOO_LARGE_BODY
)


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
        self._headers_complete = False
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._headers_complete or self.transport.is_closing():
            return
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES:
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_complete = False
        self._header_bytes = 0
        if self._read_deadline is None:
            self._arm_read_deadline()

    def on_headers_complete(self) -> None:
        self._headers_complete = True
        super().on_headers_complete()

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
