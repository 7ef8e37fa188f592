"""Token buckets: a burst, then the rate; per key; Retry-After; exact under threads; bounded memory."""

from __future__ import annotations

import threading

import pytest

from console.api.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)  # one request refills in 1/rate seconds
    clock.now += 0.25
    assert limiter.take("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.take("a") == 0.0
    clock.now += 100  # a long pause refills to the burst, never beyond
    assert [limiter.take("a") for _ in range(4)][-1] > 0


def test_keys_have_their_own_buckets_and_overrides():
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=clock)
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert limiter.take("b") == 0.0
    assert [limiter.take("c", burst=5) for _ in range(5)] == [0.0] * 5
    assert limiter.take("c", burst=5, rate_per_s=10.0) == pytest.approx(0.1)


def test_peek_does_not_spend():
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=Clock())
    assert limiter.peek("a") == 0.0 and limiter.peek("a") == 0.0
    limiter.take("a")
    assert limiter.peek("a") > 0


def test_exactly_the_burst_passes_under_concurrency():
    limiter = RateLimiter(rate_per_s=1e-6, burst=50)
    allowed = []
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        allowed.extend(1 for _ in range(40) if limiter.take("k") == 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 50


def test_memory_is_bounded():
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=Clock(), max_keys=100)
    for i in range(1000):
        limiter.take(f"ip:{i}")
    assert len(limiter._buckets) == 100


def test_retry_after_is_whole_seconds_at_least_one():
    assert retry_after(0.01) == "1" and retry_after(1.2) == "2" and retry_after(30) == "30"


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=1, burst=0)
