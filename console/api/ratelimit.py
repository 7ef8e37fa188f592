"""Token buckets per key (a token's name, a client address): ``burst`` requests at once, then
``rate_per_s`` on average. Thread-safe; memory is bounded (the least recently used key goes first,
and a forgotten key comes back with a full bucket, which is what it would have refilled to)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``take(key)`` spends one request of ``key``'s bucket: 0.0 when allowed, else the seconds until
    one is available again (the ``Retry-After``)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if not rate_per_s > 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, *, rate_per_s: float | None = None, burst: int | None = None) -> float:
        """Spend one request; ``rate_per_s``/``burst`` override the defaults for this key."""
        rate = rate_per_s or self.rate_per_s
        size = burst or self.burst
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = _Bucket(float(size), now)
                self._buckets[key] = bucket
                while len(self._buckets) > self._max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                bucket.tokens = min(float(size), bucket.tokens + (now - bucket.at) * rate)
                bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate

    def peek(self, key: str, *, rate_per_s: float | None = None, burst: int | None = None) -> float:
        """Like :meth:`take` without spending: 0.0 when a request would be allowed."""
        rate = rate_per_s or self.rate_per_s
        size = burst or self.burst
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            tokens = min(float(size), bucket.tokens + (self._clock() - bucket.at) * rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
