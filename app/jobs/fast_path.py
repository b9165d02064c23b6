"""The dashboard's polls, `GET /api/users/jobs` and `/stats`, answered beneath FastAPI's routing.

Every open dashboard tab sends these requests every few seconds. Through the regular route it
costs about 2.4 ms of CPU, most of it in dependency resolution, ORM execution and response
validation (docs/benchmarks.md has the profile); here it costs a fraction of that: the token's
signature is checked once per token (app/core/security.py), and one statement on asyncpg checks
that the token still holds and returns the page already rendered as JSON. A revalidation whose
user and token are remembered unchanged (app/jobs/revalidation_cache.py) needs no statement.

It answers only what it can answer in full: 200 and 304, on PostgreSQL, for a token that still
holds and a query string that JobListParams accepts. Everything else (no token, a revoked one,
bad parameters, a garbled cursor, SQLite) goes on to the regular route in app/jobs/router.py,
which gives the precise error. The two therefore cannot disagree on who may see what, only on
speed; tests/jobs/test_fast_path.py checks that they answer with the same bytes.
"""

import json
from collections.abc import Sequence
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.db import Reader
from app.core.http_cache import PRIVATE_CACHE_HEADERS, etag_matches
from app.core.security import InvalidToken, TokenClaims, decode_access_token
from app.jobs.router import router as jobs_router
from app.jobs.schemas import JobListParams, JobListResponse, JobStats, JobStatsResponse
from app.jobs.service import InvalidCursor, JobFeed, JobQuery, JobService, RenderedPage

LIST_PATH = "/api/users/jobs"
STATS_PATH = "/api/users/jobs/stats"
_LIST_MESSAGE = json.dumps(JobListResponse.model_fields["message"].default)
_CACHE_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in PRIVATE_CACHE_HEADERS.items()
]
_SINGLE_VALUED = frozenset({"limit", "cursor"})
_READ_HEADERS = frozenset({b"authorization", b"cookie", b"if-none-match"})


def _route(path: str) -> APIRoute:
    """The regular route a fast answer stands in for (the access log reads its template)."""
    return next(
        route
        for route in jobs_router.routes
        if isinstance(route, APIRoute) and route.path == path and "GET" in (route.methods or ())
    )


_ROUTES = {LIST_PATH: _route(LIST_PATH), STATS_PATH: _route(STATS_PATH)}


class DashboardFastPath:
    """ASGI middleware, innermost: takes the dashboard's two polls before routing (the list and
    the totals by status) and passes on everything else."""

    def __init__(self, app: ASGIApp, cookie_name: str) -> None:
        self.app = app
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in _ROUTES:
            if await self._answer(scope, send):
                return
            # The regular route notes the user itself, once it has checked the token.
            scope.get("state", {}).pop("user_id", None)
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Sends the answer and returns True, or returns False having sent nothing."""
        state = scope["app"].state
        reader: Reader | None = state.reader
        if reader is None:
            return False
        headers = _request_headers(scope["headers"])
        if headers is None:
            return False
        claims = self._claims(headers, state.settings)
        if claims is None:
            return False
        _note(scope, claims)  # before any statement, so that a failure is logged with both
        feed = JobFeed(reader, state.revalidation_cache)
        etag: str | None
        if scope["path"] == LIST_PATH:
            # The regular route ignores a query string on the stats; so does this.
            query = _query(scope["query_string"])
            if query is None:
                return False
            current_etag = partial(feed.list_etag, claims, query)
            current_answer = partial(_list_answer, feed, claims, query)
        else:
            current_etag = partial(feed.stats_etag, claims)
            current_answer = partial(_stats_answer, feed, claims)
        if_none_match = headers.get(b"if-none-match")
        if if_none_match is not None:
            etag = await current_etag()
            if etag is None:
                return False
            if etag_matches(if_none_match.decode("latin-1"), etag):
                await _send(send, 304, [(b"etag", etag.encode()), *_CACHE_HEADERS])
                return True
        answer = await current_answer()
        if answer is None:
            return False
        etag, body = answer
        await _send(
            send,
            200,
            [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
                (b"etag", etag.encode()),
                *_CACHE_HEADERS,
            ],
            body,
        )
        return True

    def _claims(self, headers: dict[bytes, bytes], settings: Any) -> TokenClaims | None:
        # As the regular route reads it: a Bearer header first, else the login cookie.
        token = None
        authorization = headers.get(b"authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                token = credentials
        if not token and (cookie := headers.get(b"cookie")) is not None:
            token = cookie_parser(cookie.decode("latin-1")).get(self.cookie_name)
        if not token:
            return None
        try:
            return decode_access_token(token, settings)
        except InvalidToken:
            return None


def _note(scope: Scope, claims: TokenClaims) -> None:
    """What the access log reads: the route (for its template) and the user."""
    scope["route"] = _ROUTES[scope["path"]]
    scope.setdefault("state", {})["user_id"] = claims.user_id


async def _list_answer(
    feed: JobFeed, claims: TokenClaims, query: JobQuery
) -> tuple[str, bytes] | None:
    page = await feed.list_jobs(claims, query)
    return None if page is None else (page.etag, _list_body(page))


async def _stats_answer(feed: JobFeed, claims: TokenClaims) -> tuple[str, bytes] | None:
    found = await feed.stats(claims)
    if found is None:
        return None
    etag, stats = found
    return etag, JobStatsResponse(stats=JobStats(**stats)).model_dump_json().encode()


def _request_headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes] | None:
    """The headers the poll reads; None when one of them is repeated: which copy counts is
    the regular route's decision."""
    headers: dict[bytes, bytes] = {}
    for name, value in raw:
        if name in _READ_HEADERS:
            if name in headers:
                return None
            headers[name] = value
    return headers


def _query(query_string: bytes) -> JobQuery | None:
    """The validated query, or None for anything the regular route should judge."""
    if not query_string:
        return JobService.query()
    fields: dict[str, Any] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "status":
            fields.setdefault("status", []).append(value)
        elif name in _SINGLE_VALUED:
            if name in fields:
                return None
            fields[name] = value
    try:
        params = JobListParams.model_validate(fields)
        return JobService.query(params.status, params.limit, params.cursor)
    except (ValidationError, InvalidCursor):
        return None


def _list_body(page: RenderedPage) -> bytes:
    # JobListResponse's fields, in its order, as FastAPI would serialize them.
    return (
        '{"jobs":['
        + ",".join(page.jobs)
        + '],"message":'
        + _LIST_MESSAGE
        + ',"success":true,"total":'
        + str(page.total)
        + ',"next_cursor":'
        + ("null" if page.next_cursor is None else f'"{page.next_cursor}"')  # base64url: no escapes
        + "}"
    ).encode()


async def _send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
