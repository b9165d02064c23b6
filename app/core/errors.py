"""Domain errors raised by services, and the handlers that render every error as JSON."""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis import exceptions as redis_exc
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 400
    detail = "Bad request"
    default_headers: ClassVar[Mapping[str, str] | None] = None

    def __init__(self, detail: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail
        self.headers = headers or self.default_headers


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflict"


class Forbidden(AppError):
    status_code = 403
    detail = "Forbidden"


class InvalidInput(AppError):
    status_code = 400
    detail = "Invalid input"


class NotAuthenticated(AppError):
    status_code = 401
    detail = "Authentication required"
    default_headers: ClassVar[Mapping[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class TooManyRequests(AppError):
    status_code = 429
    detail = "Too many requests"


def error_body(detail: Any) -> dict[str, Any]:
    return {"detail": detail, "success": False}


def error_response(
    status_code: int, detail: Any, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(detail), status_code=status_code, headers=headers)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's list of field errors, minus the echoed input: it may hold a password.
    errors = [_public_error(error) for error in exc.errors()]
    return error_response(422, jsonable_encoder(errors))


def _public_error(error: Mapping[str, Any]) -> dict[str, Any]:
    public = {key: value for key, value in error.items() if key not in {"input", "url", "ctx"}}
    # A body that is not acceptable JSON: the parser's reason says which rule it broke (it
    # never quotes the body).
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and isinstance(reason, str):
        public["msg"] = f"Invalid JSON: {reason}"
    return public


# What a lost, refused or timed-out connection to the database (or Redis) surfaces as.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy_exc.OperationalError,
    sqlalchemy_exc.InterfaceError,
    sqlalchemy_exc.TimeoutError,
    redis_exc.ConnectionError,
    redis_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, DATABASE_UNAVAILABLE_ERRORS)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("Database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return error_response(
        503, "Service temporarily unavailable, try again shortly", headers={"Retry-After": "5"}
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        return await _database_unavailable(request, exc)
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for error_type in (*DATABASE_UNAVAILABLE_ERRORS, sqlalchemy_exc.DBAPIError):
        app.add_exception_handler(error_type, _unexpected_error)
    app.add_exception_handler(Exception, _unexpected_error)


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]
    success: Literal[False] = False


_ERROR_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Validation error",
    429: "Too many attempts; see Retry-After",
    503: "Database unavailable or too busy; retry after Retry-After",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's error answers, all with the shared error body."""
    return {
        code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]}
        for code in status_codes
    }


def json_error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """The same, for a route whose own answer is not JSON (an event stream): FastAPI would
    file a `model` under the route's media type."""
    schema = ErrorBody.model_json_schema()
    return {
        code: {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": schema}},
        }
        for code in status_codes
    }


class UnhandledErrorMiddleware:
    """Renders an exception no handler took as the JSON 500 (or 503 for an outage) from inside
    the CORS layer, so a browser can read it; Starlette's own last-resort handler sits outside
    CORS, where the dashboard would only see a network error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            response = await _unexpected_error(Request(scope), exc)
            await response(scope, receive, send)
