"""Conditional GET for per-user data."""

from fastapi import Response

# Per-user answers: browsers may keep them but must revalidate; shared caches must not keep them.
PRIVATE_CACHE_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization, Cookie"}
# Answers that carry a token: nobody keeps them (RFC 6749, section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison, as If-None-Match uses."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(",")
    )


def conditional_response(etag: str, body: bytes | None) -> Response:
    """A 200 with `body` (JSON), or a 304 when there is none (the client's copy is current)."""
    return not_modified(etag) if body is None else json_with_etag(body, etag)


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, **PRIVATE_CACHE_HEADERS})


def private_json(body: bytes, status_code: int = 200) -> Response:
    """A per-user answer whose JSON was serialized already (the headers every authenticated
    answer carries are set here: FastAPI adds the dependencies' headers only to answers it
    serializes itself)."""
    return Response(
        body, status_code=status_code, media_type="application/json", headers=PRIVATE_CACHE_HEADERS
    )


def json_with_etag(body: bytes, etag: str) -> Response:
    """A 200 whose JSON was serialized already, with its ETag (after Content-Length and
    Content-Type, as every other answer)."""
    response = Response(body, media_type="application/json")
    response.headers.update({"ETag": etag, **PRIVATE_CACHE_HEADERS})
    return response
