"""Login throttling: too many failed logins for one email from one client -> 429; and a budget
of password checks (logins, registrations) per client across all emails, so that varying the
email does not buy unlimited argon2 work.

The count lives behind a small interface: in process memory by default, in Redis when
REDIS_URL is set, so that every instance of the API shares one count.
"""

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis

from app.core.config import Settings
from app.core.errors import TooManyRequests


class FailureCounter(Protocol):
    async def count(self, key: str) -> tuple[int, float]:
        """Failures in the current window, and seconds until the window ends."""

    async def add(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Counts one more; the new count and seconds until the window ends, in one step."""

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryFailureCounter:
    """One process's count; a window opens at the first failure and lasts `window_seconds`."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}

    async def count(self, key: str) -> tuple[int, float]:
        failures, ends_at = self._windows.get(key, (0, 0.0))
        remaining = ends_at - time.monotonic()
        if remaining <= 0:
            self._windows.pop(key, None)
            return 0, 0.0
        return failures, remaining

    async def add(self, key: str, window_seconds: int) -> tuple[int, float]:
        now = time.monotonic()
        self._drop_expired(now)
        failures, ends_at = self._windows.get(key, (0, 0.0))
        if ends_at <= now:
            failures, ends_at = 0, now + window_seconds
        self._windows[key] = (failures + 1, ends_at)
        return failures + 1, ends_at - now

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    async def close(self) -> None:
        self._windows.clear()

    def _drop_expired(self, now: float) -> None:
        # Keeps memory bounded by the clients active within one window.
        if len(self._windows) > 10_000:
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}


class RedisFailureCounter:
    """A count shared by every instance: INCR with an expiry set by the first failure."""

    def __init__(self, redis: Redis, prefix: str = "login-failures:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def count(self, key: str) -> tuple[int, float]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.prefix + key)
            pipe.pttl(self.prefix + key)
            raw, ttl_ms = await pipe.execute()
        if raw is None or ttl_ms <= 0:
            return 0, 0.0
        return int(raw), ttl_ms / 1000

    async def add(self, key: str, window_seconds: int) -> tuple[int, float]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, window_seconds, nx=True)
            pipe.pttl(self.prefix + key)
            count, _, ttl_ms = await pipe.execute()
        return int(count), max(ttl_ms, 0) / 1000

    async def clear(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)

    async def close(self) -> None:
        await self.redis.aclose()


class TooManyLoginAttempts(TooManyRequests):
    detail = "Too many failed login attempts; try again later"


class TooManyPasswordChecks(TooManyRequests):
    detail = "Too many login or registration attempts from this client; try again later"


def _retry_after(remaining: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(remaining)))}


# Besides the checks one client has in progress, three times as many may wait for a turn.
_QUEUED_PER_SLOT = 4


class _ClientSlots:
    def __init__(self, slots: int) -> None:
        self.free = asyncio.Semaphore(slots)
        self.holders = 0  # in progress or waiting


class LoginThrottle:
    def __init__(
        self,
        counter: FailureCounter,
        max_failures: int,
        window_seconds: int,
        *,
        client_max_checks: int,
        client_window_seconds: int,
        client_max_concurrent_checks: int,
        client_max_wait_seconds: float,
    ) -> None:
        self.counter = counter
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.client_max_checks = client_max_checks
        self.client_window_seconds = client_window_seconds
        self.client_max_concurrent_checks = client_max_concurrent_checks
        self.client_max_wait_seconds = client_max_wait_seconds
        self._client_slots: dict[str, _ClientSlots] = {}

    @staticmethod
    def key(email: str, client: str) -> str:
        # Hashed, so the store holds no email addresses.
        return hashlib.sha256(f"{email}\x00{client}".encode()).hexdigest()

    async def check(self, key: str) -> None:
        failures, remaining = await self.counter.count(key)
        if failures >= self.max_failures:
            raise TooManyLoginAttempts(headers=_retry_after(remaining))

    async def failed(self, key: str) -> None:
        await self.counter.add(key, self.window_seconds)

    async def succeeded(self, key: str) -> None:
        await self.counter.clear(key)

    @asynccontextmanager
    async def client_check_slot(self, client: str) -> AsyncIterator[None]:
        """Holds one of the client's few concurrent password checks in this process. A burst
        from one client would otherwise fill the hashing queue (app/core/security.py) and make
        everyone else wait behind it; here it waits behind itself. A few more may wait their
        turn, for up to `client_max_wait_seconds`; past that, or past the few, 429."""
        slots = self._client_slots.get(client)
        if slots is None:
            slots = self._client_slots[client] = _ClientSlots(self.client_max_concurrent_checks)
        if slots.holders >= self.client_max_concurrent_checks * _QUEUED_PER_SLOT:
            raise TooManyPasswordChecks(headers=_retry_after(1))
        slots.holders += 1
        try:
            try:
                async with asyncio.timeout(self.client_max_wait_seconds):
                    await slots.free.acquire()
            except TimeoutError:
                raise TooManyPasswordChecks(headers=_retry_after(1)) from None
            try:
                yield
            finally:
                slots.free.release()
        finally:
            slots.holders -= 1
            if not slots.holders:
                del self._client_slots[client]

    async def spend_client_check(self, client: str) -> None:
        """Counts a password check an unauthenticated caller asks for, whatever the email;
        past the client's budget for the window -> 429 before any hashing. Counted in one step
        (INCR), so a burst of concurrent requests cannot slip past the budget together."""
        key = "client\x00" + hashlib.sha256(client.encode()).hexdigest()
        checks, remaining = await self.counter.add(key, self.client_window_seconds)
        if checks > self.client_max_checks:
            raise TooManyPasswordChecks(headers=_retry_after(remaining))


def create_login_throttle(settings: Settings) -> LoginThrottle:
    counter: FailureCounter = (
        RedisFailureCounter(
            Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        )
        if settings.redis_url
        else MemoryFailureCounter()
    )
    return LoginThrottle(
        counter,
        settings.login_max_failures,
        settings.login_failure_window_seconds,
        client_max_checks=settings.client_max_password_checks,
        client_window_seconds=settings.client_password_check_window_seconds,
        client_max_concurrent_checks=settings.client_max_concurrent_password_checks,
        client_max_wait_seconds=settings.password_hash_max_wait_seconds,
    )
