"""Cross-site request forgery guard for cookie-authenticated requests.

A browser attaches the login cookie to requests that other sites trigger, so a state-changing
request that relies on the cookie must come from an origin we trust: one of CORS_ORIGINS or
the API's own. Requests with a Bearer header are exempt: a foreign page cannot set that header.
Login is covered too, so no foreign page can log a visitor into another account.
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.credentials import presented_token
from app.core.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOGIN_PATHS = frozenset({"/api/auth/login", "/api/auth/token"})
# Routes that never read the cookie: a stale cookie riding along does not make them
# cookie-authenticated.
COOKIELESS_PATHS = LOGIN_PATHS | {"/api/auth/register"}


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CSRFMiddleware:
    def __init__(self, app: ASGIApp, trusted_origins: Iterable[str], cookie_name: str) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.trusted_origins = frozenset(origin.lower().rstrip("/") for origin in trusted_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Read as authentication reads it (app/core/credentials.py): a request is
        # cookie-authenticated exactly when the route will take its token from the cookie.
        presented = presented_token(headers, self.cookie_name)
        cookie_auth = (
            presented is not None
            and presented.source == "cookie"
            and scope["path"] not in COOKIELESS_PATHS
        )
        is_login = scope["path"] in LOGIN_PATHS
        if cookie_auth or is_login:
            source = self._request_source(headers)
            # A cookie-authenticated write must say where it comes from; a login from curl
            # (no Origin, no Referer) has no victim and stays allowed.
            refused = (source is None and cookie_auth) or (
                source is not None and not self._trusted(source, scope, headers)
            )
            if refused:
                response = error_response(403, "Cross-site request refused")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _request_source(headers: Headers) -> str | None:
        origin = headers.get("origin")
        if origin is not None:
            return origin.lower()  # "null" stays "null": an opaque origin is foreign.
        referer = headers.get("referer")
        if referer is not None:
            return _origin_of(referer) or "null"
        return None

    def _trusted(self, source: str, scope: Scope, headers: Headers) -> bool:
        if source in self.trusted_origins:
            return True
        host = headers.get("host")
        return host is not None and source == f"{scope['scheme']}://{host}".lower()
