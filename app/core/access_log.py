"""One log line and one metrics observation per request."""

import logging
import time
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import LATENCY, REQUESTS

logger = logging.getLogger("app.access")


@lru_cache(maxsize=4096)
def _series(method: str, template: str, status: int) -> tuple[Any, Any]:
    """The request's counter and histogram children. labels() takes a lock and builds a key
    on every call; the set of (method, route template, status) is small and fixed."""
    return REQUESTS.labels(method, template, str(status)), LATENCY.labels(method, template)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # What the client gets if the app fails before answering.

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # The template, not the path: /api/users/jobs/{job_id}, so ids don't become labels.
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            requests, latency = _series(method, template, status)
            requests.inc()
            latency.observe(elapsed)
            logger.info(
                "%s %s %s",
                method,
                template,
                status,
                extra={
                    "method": method,
                    "route": template,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "user_id": scope.get("state", {}).get("user_id"),
                },
            )
