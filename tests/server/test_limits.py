"""Rate limits: weight per IP per minute, 429 then escalating 418 bans, order counts per account."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.server.errors import ApiError
from perpx.server.limits import FIRST_BAN_S, MAX_BAN_S, Limits, RateLimiter, limits_from

from .harness import ServerProcess


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 6_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: int) -> RateLimiter:
    return RateLimiter(Limits(**limits), monotonic=clock, wall=lambda: 1_700_000_000.0)


def refusal(fn: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fn(*args)  # type: ignore[operator]
    return caught.value


# ---------------------------------------------------------------------- weight per IP


def test_weight_within_the_limit_is_counted_per_ip_and_minute() -> None:
    # Arrange
    clock = Clock()
    limits = limiter(clock, weight_1m=10)
    # Act
    limits.charge_ip("1.1.1.1", 4)
    limits.charge_ip("1.1.1.1", 6)
    limits.charge_ip("2.2.2.2", 1)
    # Assert
    assert limits.used_weight("1.1.1.1") == 10
    assert limits.used_weight("2.2.2.2") == 1
    clock.now += 60
    assert limits.used_weight("1.1.1.1") == 0


def test_weight_over_the_limit_is_429_with_retry_after_to_the_next_minute() -> None:
    # Arrange
    clock = Clock(6_015.0)  # 15 s into a minute
    limits = limiter(clock, weight_1m=10)
    limits.charge_ip("ip", 10)
    # Act
    error = refusal(limits.charge_ip, "ip", 1)
    # Assert
    assert (error.status, error.code) == (429, -1003)
    assert error.msg == "Too many requests; current limit is 10 requests per minute."
    assert error.headers == {"Retry-After": "45"}


def test_client_that_keeps_sending_while_limited_is_banned_with_418() -> None:
    # Arrange
    clock = Clock()
    limits = limiter(clock, weight_1m=1, ban_after=2)
    limits.charge_ip("ip", 1)
    for _ in range(2):
        assert refusal(limits.charge_ip, "ip", 1).status == 429
    # Act
    banned = refusal(limits.charge_ip, "ip", 1)
    clock.now += 60  # a new minute does not lift a ban
    still = refusal(limits.charge_ip, "ip", 1)
    # Assert
    assert (banned.status, banned.code) == (418, -1003)
    assert banned.msg == f"Way too many requests; IP banned until {1_700_000_000_000 + 120_000}."
    assert banned.headers == {"Retry-After": "120"}
    assert (still.status, still.headers) == (418, {"Retry-After": "60"})
    clock.now += 60
    limits.charge_ip("ip", 1)  # the ban is over


def test_bans_double_up_to_three_days_and_reset_after_a_clean_day() -> None:
    # Arrange
    clock = Clock()
    limits = limiter(clock, weight_1m=1, ban_after=0)
    durations: list[float] = []
    # Act
    for _ in range(14):
        limits.charge_ip("ip", 1)
        error = refusal(limits.charge_ip, "ip", 1)
        assert error.status == 418
        durations.append(float(error.headers["Retry-After"]))
        clock.now += durations[-1]
    clock.now += 86_401
    limits.charge_ip("ip", 1)
    reset = refusal(limits.charge_ip, "ip", 1)
    # Assert
    assert durations[:4] == [FIRST_BAN_S, 2 * FIRST_BAN_S, 4 * FIRST_BAN_S, 8 * FIRST_BAN_S]
    assert max(durations) == MAX_BAN_S
    assert durations[-1] == MAX_BAN_S
    assert reset.headers["Retry-After"] == str(int(FIRST_BAN_S))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.floats(0, 5)), min_size=1, max_size=200))
def test_a_client_that_honours_retry_after_is_never_banned(requests: list[tuple[int, float]]) -> None:
    # Arrange
    clock = Clock()
    limits = limiter(clock, weight_1m=50, ban_after=1)
    # Act, Assert
    for weight, pause in requests:
        clock.now += pause
        try:
            limits.charge_ip("polite", weight)
        except ApiError as error:
            assert error.status == 429
            clock.now += float(error.headers["Retry-After"])


# ---------------------------------------------------------------------- orders per account


def test_order_counts_are_per_account_and_refused_orders_are_not_counted() -> None:
    # Arrange
    clock = Clock(6_000.0)
    limits = limiter(clock, orders_10s=3, orders_1m=5)
    # Act
    counts = [limits.count_account_orders(7, 1) for _ in range(3)]
    over_10s = refusal(limits.count_account_orders, 7, 1)
    other = limits.count_account_orders(8, 2)
    clock.now += 10
    more = limits.count_account_orders(7, 2)
    over_1m = refusal(limits.count_account_orders, 7, 1)
    # Assert
    assert counts == [(1, 1), (2, 2), (3, 3)]
    assert (over_10s.status, over_10s.code) == (429, -1015)
    assert over_10s.msg == "Too many new orders; current limit is 3 orders per TEN_SECONDS."
    assert other == (2, 2)
    assert more == (2, 5)
    assert over_1m.msg == "Too many new orders; current limit is 5 orders per MINUTE."
    assert over_1m.headers == {"Retry-After": "50"}


def test_limits_come_from_env_then_config_then_defaults() -> None:
    # Act
    default = limits_from({}, {})
    configured = limits_from({"server": {"rate_limit_weight_1m": 100, "order_limit_10s": 5}}, {})
    overridden = limits_from(
        {"server": {"rate_limit_weight_1m": 100}},
        {"PERPX_RATE_LIMIT_WEIGHT_1M": "7", "PERPX_ORDER_LIMIT_1M": "9"},
    )
    # Assert
    assert default == Limits(weight_1m=2400, orders_10s=300, orders_1m=1200)
    assert (configured.weight_1m, configured.orders_10s) == (100, 5)
    assert (overridden.weight_1m, overridden.orders_1m) == (7, 9)
    with pytest.raises(ValueError, match="PERPX_ORDER_LIMIT_10S"):
        limits_from({}, {"PERPX_ORDER_LIMIT_10S": "-3"})
    with pytest.raises(ValueError, match=r"server\.ban_after"):
        limits_from({"server": {"ban_after": "x"}}, {})


# ---------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "PERPX_RATE_LIMIT_WEIGHT_1M": "40",
        "PERPX_RATE_LIMIT_BAN_AFTER": "3",
        "PERPX_ORDER_LIMIT_10S": "2",
    }
    process = ServerProcess(tmp_path_factory.mktemp("limits") / "data", env=env).start()
    try:
        yield process
    finally:
        process.stop()


def away_from_a_minute_boundary() -> None:
    """Server and test read the same CLOCK_MONOTONIC: keep a test's requests inside one window."""
    left = 60 - time.monotonic() % 60
    if left < 6:
        time.sleep(left + 0.05)


def test_server_counts_weight_then_429_then_418_and_ccxt_raises_ddos_protection(
    limited: ServerProcess,
) -> None:
    # Arrange
    trader = limited.trader("ddos")
    exchange = limited.ccxt(trader)
    away_from_a_minute_boundary()
    first = httpx.get(f"{limited.base}/fapi/v1/time")
    used = int(first.headers["X-MBX-USED-WEIGHT-1M"])
    # Act
    answers = [httpx.get(f"{limited.base}/fapi/v1/time") for _ in range(40 - used)]
    limited_answers = [httpx.get(f"{limited.base}/fapi/v1/time") for _ in range(3)]
    banned = httpx.get(f"{limited.base}/fapi/v1/time")
    # Assert
    assert [int(a.headers["X-MBX-USED-WEIGHT-1M"]) for a in answers] == list(range(used + 1, 41))
    assert {a.status_code for a in answers} == {200}
    for answer in limited_answers:
        assert answer.status_code == 429
        assert answer.json() == {
            "code": -1003,
            "msg": "Too many requests; current limit is 40 requests per minute.",
        }
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert banned.status_code == 418
    assert banned.json()["msg"].startswith("Way too many requests; IP banned until ")
    assert 110 <= int(banned.headers["Retry-After"]) <= 120
    import ccxt

    with pytest.raises(ccxt.DDoSProtection):
        exchange.fetch_time()
    assert limited.admin("GET", "/state").status_code == 200  # the admin API is not rate limited


def test_order_count_headers_and_limit_on_the_order_endpoint(tmp_path: Path) -> None:
    # Arrange
    process = ServerProcess(tmp_path / "data", env={"PERPX_ORDER_LIMIT_10S": "2"}).start()
    try:
        trader = process.trader("orders")
        process.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"})
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
        }
        # Act
        while 10 - time.monotonic() % 10 < 3:
            time.sleep(0.2)
        answers = [
            process.signed("POST", "/fapi/v1/order", trader, {**order, "price": str(29000 + i)})
            for i in range(3)
        ]
    finally:
        process.stop()
    # Assert
    assert [a.status_code for a in answers] == [200, 200, 429], answers[-1].text
    assert [a.headers.get("X-MBX-ORDER-COUNT-10S") for a in answers[:2]] == ["1", "2"]
    assert [a.headers.get("X-MBX-ORDER-COUNT-1M") for a in answers[:2]] == ["1", "2"]
    assert answers[2].json() == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 2 orders per TEN_SECONDS.",
    }
