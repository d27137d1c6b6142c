"""The admin token guard as a rulebook, on a clock the test moves: who is refused, with what, how long.

The end-to-end lockout (a real server, real addresses) is in ``test_listeners.py``; here every
edge of the rule is checked exactly.
"""

from __future__ import annotations

import pytest

from perpx.server.auth import AdminGuard, Lockout, tokens_match
from perpx.server.errors import ApiError

TOKEN = "the-admin-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def refusal(guard: AdminGuard, given: str | None, client: str = "10.0.0.1") -> tuple[int, int, str | None]:
    """(HTTP status, code, Retry-After) of a refused check; fails the test if the check passes."""
    with pytest.raises(ApiError) as caught:
        guard.check(TOKEN, given, client)
    return caught.value.status, caught.value.code, caught.value.headers.get("Retry-After")


def guess(guard: AdminGuard, times: int, client: str = "10.0.0.1") -> list[int]:
    return [refusal(guard, f"wrong-{n}", client)[0] for n in range(times)]


def test_fifth_wrong_token_within_a_minute_locks_the_address_out_with_retry_after() -> None:
    # Arrange
    guard = AdminGuard(monotonic=Clock())
    # Act
    statuses = guess(guard, 4)
    fifth = refusal(guard, "wrong-5")
    # Assert
    assert statuses == [401] * 4
    assert fifth == (429, -9204, "60")


def test_right_token_during_a_lockout_is_refused_until_it_ends() -> None:
    # Arrange
    clock = Clock()
    guard = AdminGuard(monotonic=clock)
    guess(guard, 5)
    # Act
    clock.now += 59.5
    during = refusal(guard, TOKEN)
    clock.now += 0.5
    guard.check(TOKEN, TOKEN, "10.0.0.1")
    # Assert
    assert during == (429, -9204, "1")


def test_lockouts_double_up_to_an_hour_and_start_over_after_a_quiet_day() -> None:
    # Arrange
    clock = Clock()
    guard = AdminGuard(monotonic=clock)
    lengths = []
    # Act
    for _ in range(8):
        guess(guard, 5)
        lengths.append(guard.locked_out_for("10.0.0.1"))
        clock.now += lengths[-1]
    clock.now += 86_400.5
    guess(guard, 5)
    # Assert
    assert lengths == [60, 120, 240, 480, 960, 1_920, 3_600, 3_600]
    assert guard.locked_out_for("10.0.0.1") == 60


def test_wrong_tokens_spread_wider_than_the_window_never_lock_out() -> None:
    # Arrange
    clock = Clock()
    guard = AdminGuard(monotonic=clock)
    statuses = []
    # Act
    for _ in range(50):
        statuses += guess(guard, 1)
        clock.now += 15.0  # four guesses a minute: always under five within 60 s
    # Assert
    assert set(statuses) == {401}


def test_missing_token_and_requests_during_a_lockout_are_not_counted() -> None:
    # Arrange
    clock = Clock()
    guard = AdminGuard(monotonic=clock)
    # Act
    missing = [refusal(guard, given)[:2] for given in (None, "", None, "", None, "")]
    guess(guard, 5)
    during = [refusal(guard, "wrong")[0] for _ in range(100)]
    clock.now += 60
    after = guess(guard, 4)
    # Assert
    assert missing == [(401, -9202)] * 6
    assert set(during) == {429}
    assert after == [401] * 4
    assert guard.locked_out_for("10.0.0.1") == 0


def test_lockout_is_per_address() -> None:
    # Arrange
    guard = AdminGuard(monotonic=Clock())
    guess(guard, 5, client="10.0.0.1")
    # Act
    guard.check(TOKEN, TOKEN, "10.0.0.2")
    other = guess(guard, 4, client="10.0.0.2")
    # Assert
    assert other == [401] * 4


def test_disabled_admin_api_is_403_whatever_is_sent() -> None:
    # Arrange
    guard = AdminGuard(monotonic=Clock())
    # Act
    answers = []
    for given in (None, "", "anything", TOKEN):
        with pytest.raises(ApiError) as caught:
            guard.check(None, given, "10.0.0.1")
        answers.append((caught.value.status, caught.value.code))
    # Assert
    assert answers == [(403, -9201)] * 4


def test_a_flood_of_addresses_stays_bounded_and_forgets_the_idle_before_the_locked_out() -> None:
    # Arrange
    clock = Clock()
    guard = AdminGuard(Lockout(max_tracked=100), monotonic=clock)
    guess(guard, 5, client="10.0.0.1")
    for n in range(99):
        refusal(guard, "wrong", client=f"192.0.2.{n}")
    clock.now += 61  # the flood's guesses leave the window; 10.0.0.1's lockout has ended
    # Act
    refusal(guard, "wrong", client="198.51.100.1")
    tracked_after_sweep = len(guard._clients)
    guess(guard, 5, client="10.0.0.1")
    second_lockout = guard.locked_out_for("10.0.0.1")
    for n in range(1_000):
        refusal(guard, "wrong", client=f"203.0.113.{n}")
    # Assert
    assert tracked_after_sweep == 2  # the idle flood is gone, 10.0.0.1's lockout history is kept
    assert second_lockout == 120
    assert len(guard._clients) <= 100
    assert guard.locked_out_for("10.0.0.1") == 120  # a flood of one-guess addresses does not free it


@pytest.mark.parametrize(
    ("given", "expected", "match"),
    [
        (TOKEN, TOKEN, True),
        (TOKEN + "x", TOKEN, False),
        (TOKEN[:-1], TOKEN, False),
        ("", TOKEN, False),
        ("ä" * 3, "ä" * 3, True),
        ("\x00", "", False),
    ],
)
def test_tokens_match_only_the_same_text(given: str, expected: str, match: bool) -> None:
    # Act, Assert
    assert tokens_match(given, expected) is match
