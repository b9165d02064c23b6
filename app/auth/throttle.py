"""Login throttling: too many failed logins for one email from one client -> 429.

The count lives behind a small interface: in process memory by default, in Redis when
REDIS_URL is set, so that every instance of the API shares one count.
"""

import hashlib
import math
import time
from typing import Protocol

from redis.asyncio import Redis

from app.core.errors import TooManyRequests


class FailureCounter(Protocol):
    async def count(self, key: str) -> tuple[int, float]:
        """Failures in the current window, and seconds until the window ends."""

    async def add(self, key: str, window_seconds: int) -> None: ...

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

    async def add(self, key: str, window_seconds: int) -> None:
        now = time.monotonic()
        self._drop_expired(now)
        failures, ends_at = self._windows.get(key, (0, 0.0))
        if ends_at <= now:
            failures, ends_at = 0, now + window_seconds
        self._windows[key] = (failures + 1, ends_at)

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

    async def add(self, key: str, window_seconds: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, window_seconds, nx=True)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)

    async def close(self) -> None:
        await self.redis.aclose()


class TooManyLoginAttempts(TooManyRequests):
    detail = "Too many failed login attempts; try again later"


class LoginThrottle:
    def __init__(self, counter: FailureCounter, max_failures: int, window_seconds: int) -> None:
        self.counter = counter
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    @staticmethod
    def key(email: str, client: str) -> str:
        # Hashed, so the store holds no email addresses.
        return hashlib.sha256(f"{email}\x00{client}".encode()).hexdigest()

    async def check(self, key: str) -> None:
        failures, remaining = await self.counter.count(key)
        if failures >= self.max_failures:
            retry_after = str(max(1, math.ceil(remaining)))
            raise TooManyLoginAttempts(headers={"Retry-After": retry_after})

    async def failed(self, key: str) -> None:
        await self.counter.add(key, self.window_seconds)

    async def succeeded(self, key: str) -> None:
        await self.counter.clear(key)


def create_login_throttle(
    redis_url: str | None, max_failures: int, window_seconds: int
) -> LoginThrottle:
    counter: FailureCounter = (
        RedisFailureCounter(Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2))
        if redis_url
        else MemoryFailureCounter()
    )
    return LoginThrottle(counter, max_failures, window_seconds)
