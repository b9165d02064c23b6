"""RevalidationCache (app/auth/revalidation_cache.py) on its own: what it keeps, for which
tokens, and when it lets go. The running app with its listener is in test_change_listener.py."""

from datetime import UTC, datetime

import pytest

from app.auth.caller import Caller, InvalidSession, check_token
from app.auth.revalidation_cache import MAX_TOKENS_PER_USER, RevalidationCache
from app.core.security import TokenClaims


def claims(user_id: int = 1, token_version: int = 0, jti: str = "a") -> TokenClaims:
    return TokenClaims(
        user_id=user_id, token_version=token_version, jti=jti, expires_at=datetime.now(UTC)
    )


def caller(version: int, *, user_id: int = 1) -> Caller:
    """A user's row; `version` (its token version) tells one read of it from another."""
    return Caller(user_id=user_id, is_active=True, is_admin=False, token_version=version)


def live_cache(max_users: int = 100) -> RevalidationCache:
    cache = RevalidationCache(max_users)
    cache.go_live()
    return cache


def remember(cache: RevalidationCache, token: TokenClaims, version: int) -> None:
    """A read that nothing crossed: it started at the current generation."""
    found = caller(version, user_id=token.user_id)
    cache.remember(token, found, cache.generation())


def version_of(cache: RevalidationCache, token: TokenClaims) -> int | None:
    found = cache.lookup(token)
    return None if found is None else found.token_version


def test_nothing_is_remembered_while_dark() -> None:
    cache = RevalidationCache(100)

    remember(cache, claims(), 3)

    assert not cache.live
    assert cache.lookup(claims()) is None
    assert len(cache) == 0


def test_an_answer_is_remembered_once_live() -> None:
    cache = live_cache()

    remember(cache, claims(), 3)

    assert cache.live
    assert version_of(cache, claims()) == 3
    assert len(cache) == 1


@pytest.mark.parametrize("forget", ["one user", "another user", "everyone"])
def test_a_read_that_crossed_a_forget_is_not_kept(forget: str) -> None:
    """The read started before a change was forgotten, its answer arrives after: it may
    predate the change, so it is dropped, whichever user the forget was about."""
    cache = live_cache()
    generation = cache.generation()
    if forget == "one user":
        cache.forget([1])
    elif forget == "another user":
        cache.forget([2])
    else:
        cache.forget_all()

    cache.remember(claims(), caller(3), generation)

    assert cache.lookup(claims()) is None
    assert len(cache) == 0


def test_forgetting_one_user_keeps_the_others() -> None:
    cache = live_cache()
    remember(cache, claims(user_id=1), 3)
    remember(cache, claims(user_id=2), 7)

    cache.forget([1])

    assert cache.lookup(claims(user_id=1)) is None
    assert version_of(cache, claims(user_id=2)) == 7


def test_only_the_tokens_remembered_are_answered() -> None:
    """Another token of the same user may have been revoked, or predate a password change: it
    is asked about in the database until remembered itself."""
    cache = live_cache()
    remember(cache, claims(jti="a"), 3)

    assert cache.lookup(claims(jti="b")) is None
    assert cache.lookup(claims(user_id=2, jti="a")) is None
    # The rule still applies to what memory holds: a token from before a password change.
    with pytest.raises(InvalidSession):
        check_token(claims(token_version=1, jti="a"), cache.lookup(claims(jti="a")), revoked=False)

    remember(cache, claims(jti="b"), 3)
    assert version_of(cache, claims(jti="a")) == 3
    assert version_of(cache, claims(jti="b")) == 3


def test_a_user_keeps_a_bounded_number_of_tokens() -> None:
    cache = live_cache()
    tokens = [claims(jti=f"t{n}") for n in range(MAX_TOKENS_PER_USER + 1)]
    for token in tokens:
        remember(cache, token, 3)

    assert cache.lookup(tokens[0]) is None
    assert version_of(cache, tokens[-1]) == 3


def test_going_dark_forgets_everything() -> None:
    cache = live_cache()
    remember(cache, claims(user_id=1), 3)
    remember(cache, claims(user_id=2), 7)
    generation = cache.generation()

    cache.go_dark()
    remember(cache, claims(user_id=3), 1)  # while dark: not kept either

    assert not cache.live
    assert len(cache) == 0
    cache.go_live()
    cache.remember(
        claims(user_id=1), caller(3, user_id=1), generation
    )  # a read from before the outage
    assert len(cache) == 0
    assert all(cache.lookup(claims(user_id=n)) is None for n in (1, 2, 3))


def test_going_live_starts_from_nothing() -> None:
    """Going live again (a reconnection) forgets what was remembered before: changes may
    have been missed in between."""
    cache = live_cache()
    remember(cache, claims(), 3)

    cache.go_live()

    assert cache.lookup(claims()) is None


def test_two_reads_that_disagree_leave_nothing() -> None:
    """Two reads of one user saw different jobs_cache with no change heard of in between:
    its notice is still on the way, so neither answer is kept."""
    cache = live_cache()
    remember(cache, claims(jti="a"), 3)

    remember(cache, claims(jti="b"), 4)

    assert cache.lookup(claims(jti="a")) is None
    assert cache.lookup(claims(jti="b")) is None
    assert len(cache) == 0


def test_max_users_drops_the_longest_remembered_user() -> None:
    cache = live_cache(max_users=2)
    for user_id in (1, 2, 3):
        remember(cache, claims(user_id=user_id), user_id * 10)

    assert len(cache) == 2
    assert cache.lookup(claims(user_id=1)) is None
    assert version_of(cache, claims(user_id=2)) == 20
    assert version_of(cache, claims(user_id=3)) == 30


def test_max_users_zero_remembers_nothing() -> None:
    cache = live_cache(max_users=0)

    remember(cache, claims(), 3)

    assert cache.lookup(claims()) is None
    assert len(cache) == 0


# --- answers (ETags) found current, per user and request --------------------------------


def test_an_answer_is_remembered_for_its_request_until_the_user_changes() -> None:
    cache = live_cache()
    remember(cache, claims(), 3)
    mark = cache.mark_answer(1)

    cache.remember_answer(1, b"list", '"e1"', mark)

    assert cache.remembered_answer(1, b"list") == '"e1"'
    assert cache.remembered_answer(1, b"stats") is None  # another request: not answered
    assert cache.remembered_answer(2, b"list") is None  # another user: not answered
    cache.forget([1])
    assert cache.remembered_answer(1, b"list") is None


def test_an_answer_read_across_a_change_is_not_kept() -> None:
    """The answer may predate the change: the next revalidation must read again."""
    cache = live_cache()
    remember(cache, claims(), 3)
    mark = cache.mark_answer(1)
    cache.forget([1])
    remember(cache, claims(), 3)  # the caller is read again before the answer comes back

    cache.remember_answer(1, b"list", '"e1"', mark)

    assert cache.remembered_answer(1, b"list") is None


def test_an_answer_is_kept_only_for_a_remembered_caller() -> None:
    cache = live_cache()  # the caller was not remembered (e.g. a write, or while dark)
    mark = cache.mark_answer(1)

    cache.remember_answer(1, b"list", '"e1"', mark)

    assert cache.remembered_answer(1, b"list") is None


def test_a_change_to_another_user_keeps_this_users_answers() -> None:
    cache = live_cache()
    remember(cache, claims(user_id=1), 3)
    remember(cache, claims(user_id=2), 3)
    mark = cache.mark_answer(1)
    cache.forget([2])

    cache.remember_answer(1, b"list", '"e1"', mark)

    assert cache.remembered_answer(1, b"list") == '"e1"'
