"""Which credential a request presents: the one reading used by both authentication and the
CSRF check, so the two can never disagree about whether a request is cookie-authenticated.

A check that parses the Cookie header one way while authentication parses it another can be
walked around (a cookie one parser gives up on hides the login cookie from the check while the
other still finds it), so every reading of a Cookie header in the service goes through
`parse_cookie_header`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers

# RFC 6265 §5.2 trims only spaces and horizontal tabs around names and values.
_COOKIE_WHITESPACE = " \t"


def parse_cookie_header(values: Iterable[str]) -> dict[str, str]:
    """The cookies of one request, from all its Cookie header lines.

    Lenient the way browsers are, and total: it never fails, whatever the header holds.
    Several Cookie lines are one list (HTTP/2 splits the header; RFC 9113 §8.2.3). Pairs are
    split at `;` and at the first `=`, so a value may itself hold `=`; a piece without `=`, a
    nameless pair or any other unparseable neighbour is skipped without affecting the rest.
    Names are case-sensitive. A value in double quotes loses the quotes (RFC 6265's
    cookie-value grammar allows them). When a name repeats, the first one wins: browsers send
    the cookie with the most specific path first (RFC 6265 §5.4), and a site on a sibling
    domain can only add cookies, never reorder ours ahead of its own.
    """
    cookies: dict[str, str] = {}
    for header in values:
        for piece in header.split(";"):
            name, has_value, value = piece.partition("=")
            name = name.strip(_COOKIE_WHITESPACE)
            if not has_value or not name or name in cookies:
                continue
            value = value.strip(_COOKIE_WHITESPACE)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = value
    return cookies


@dataclass(frozen=True, slots=True)
class PresentedToken:
    token: str
    source: Literal["bearer", "cookie"]


def presented_token(headers: Headers, cookie_name: str) -> PresentedToken | None:
    """The access token a request presents: a Bearer token first, else the login cookie.

    An `Authorization: Bearer` header with nothing after it presents no Bearer token, so it
    neither exempts the request from the CSRF check nor hides a cookie behind it.
    """
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    token = credentials.strip()
    if scheme.lower() == "bearer" and token:
        return PresentedToken(token, "bearer")
    cookie = parse_cookie_header(headers.getlist("cookie")).get(cookie_name)
    if cookie is not None:
        return PresentedToken(cookie, "cookie")
    return None
