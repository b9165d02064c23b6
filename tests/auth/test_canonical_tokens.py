"""Only the spelling of a token we issued is accepted: other base64url spellings of the same
signed bytes (extra padding, stray bits, foreign characters) are refused before the claims cache
is consulted, so they neither work nor take a slot in it."""

import string

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

import app.core.security as security
from app.core.config import Settings
from app.core.security import InvalidToken, decode_access_token
from tests.factories import access_token, create_user

ME_URL = "/api/users/me"
_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _same_bytes_other_last_char(segment: str) -> str:
    """The segment with its unused low bits set differently: it decodes to the same bytes."""
    unused_bits = {2: 4, 3: 2}[len(segment) % 4]
    index = _ALPHABET.index(segment[-1])
    return segment[:-1] + _ALPHABET[index ^ ((1 << unused_bits) - 1)]


def _variants(token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    return {
        "padded-signature": f"{token}=",
        "double-padded-signature": f"{token}==",
        "triple-padded-signature": f"{token}===",
        "padded-header": f"{header}==.{payload}.{signature}",
        "padded-payload": f"{header}.{payload}=.{signature}",
        "stray-bits-in-signature": f"{header}.{payload}.{_same_bytes_other_last_char(signature)}",
        "foreign-character": f"{header}.{payload}.{signature[:10]}!{signature[10:]}",
        "inner-whitespace": f"{header}.{payload}.{signature[:10]} {signature[10:]}",
        "standard-alphabet": f"{header}.{payload}.{signature}+/",
        "fourth-segment": f"{token}.",
        "empty-signature": f"{header}.{payload}.",
        "over-long": f"{header}.{payload}.{signature}{'A' * 4096}",
    }


async def test_non_canonical_spellings_of_a_valid_token_are_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    token = access_token(user, settings)
    assert (
        await client.get(ME_URL, headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200

    for name, variant in _variants(token).items():
        by_bearer = await client.get(ME_URL, headers={"Authorization": f"Bearer {variant}"})
        by_cookie = await client.get(ME_URL, headers={"Cookie": f"access_token={variant}"})
        assert by_bearer.status_code == 401, name
        assert by_cookie.status_code == 401, name


def test_non_canonical_spellings_take_no_slot_in_the_claims_cache(settings: Settings) -> None:
    token = security.create_access_token(42, 0, settings).token
    decode_access_token(token, settings)
    entries = security._verified_claims.cache_info().currsize

    for name, variant in _variants(token).items():
        with pytest.raises(InvalidToken):
            decode_access_token(variant, settings)
        assert security._verified_claims.cache_info().currsize == entries, name

    assert decode_access_token(token, settings).user_id == 42
