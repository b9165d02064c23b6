"""The ceiling for the benchmark: a plain ASGI callable, no framework, no database.

It answers every HTTP request with the bytes in the file named by BENCH_BARE_BODY (the body the
real list endpoint returned, captured once at the start of a run) as application/json. Run it
under the same uvicorn command as the API, so the difference between the two is what the
framework, the middleware, the authentication and the database cost.
"""

import os
from pathlib import Path
from typing import Any

_BODY = Path(os.environ["BENCH_BARE_BODY"]).read_bytes()
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode("ascii")),
    ],
}
_BODY_MESSAGE = {"type": "http.response.body", "body": _BODY, "more_body": False}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    # Drain a request body, if any, so that keep-alive connections stay in step.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY_MESSAGE)
