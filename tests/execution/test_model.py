"""The parent-order model: strict decoding, and every error naming its field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perpx.execution.ids import algo_prefix, child_id, parse_child_id
from perpx.execution.model import Algo, ParentOrder, ParentOrderError, ParentSide, decode_parent

TWAP = {
    "algo": "twap",
    "market": "BTCUSDT",
    "side": "buy",
    "client_algo_id": "desk-1",
    "qty": "2.5",
    "duration_s": 600,
}


def _fields(data: dict[str, object]) -> list[str]:
    with pytest.raises(ParentOrderError) as caught:
        decode_parent(data)
    return [error.field for error in caught.value.errors]


def test_decode_twap_gives_decimals_and_enums() -> None:
    parent = decode_parent(TWAP)

    assert parent.algo is Algo.TWAP
    assert parent.side is ParentSide.BUY
    assert parent.qty == Decimal("2.5")


def test_decode_json_bytes_equals_decode_mapping() -> None:
    raw = b'{"algo":"twap","market":"BTCUSDT","side":"buy","client_algo_id":"desk-1","qty":"2.5","duration_s":600}'

    assert decode_parent(raw) == decode_parent(TWAP)


def test_unknown_field_is_rejected_naming_it() -> None:
    assert _fields({**TWAP, "limit_prce": "100"}) == ["limit_prce"]


def test_wrong_type_is_rejected_naming_the_field() -> None:
    assert _fields({**TWAP, "duration_s": "soon"}) == ["duration_s"]


def test_qty_and_notional_together_are_rejected() -> None:
    assert "qty" in _fields({**TWAP, "notional": "1000"})


def test_timed_algo_without_window_is_rejected() -> None:
    data = {k: v for k, v in TWAP.items() if k != "duration_s"}

    assert _fields(data) == ["duration_s"]


def test_every_problem_is_reported_at_once() -> None:
    fields = _fields({**TWAP, "qty": "-1", "passiveness_bps": 20_000, "client_algo_id": "has space"})

    assert set(fields) == {"qty", "passiveness_bps", "client_algo_id"}


def test_pov_band_must_contain_target() -> None:
    data = {**TWAP, "algo": "pov", "pov_target_bps": 1000, "pov_min_bps": 1500, "pov_max_bps": 500}

    assert set(_fields(data)) == {"pov_min_bps", "pov_max_bps"}


def test_post_only_cannot_finish_aggressively() -> None:
    assert _fields({**TWAP, "post_only": True, "end_behavior": "complete_aggressive"}) == ["end_behavior"]


def test_invalid_json_is_a_field_error_not_a_crash() -> None:
    with pytest.raises(ParentOrderError, match="not valid JSON"):
        decode_parent(b"{")


def test_parent_is_immutable() -> None:
    parent = decode_parent(TWAP)

    with pytest.raises(AttributeError):
        parent.qty = Decimal(3)  # type: ignore[misc]
    assert isinstance(parent, ParentOrder)


def test_child_ids_are_stable_short_and_parse_back() -> None:
    long_id = "x" * 32

    cid = child_id(long_id, 1234)

    assert cid == child_id(long_id, 1234)
    assert len(cid) <= 36
    assert parse_child_id(cid) == (algo_prefix(long_id), 1234)
    assert algo_prefix("x" * 31 + "y") != algo_prefix(long_id)


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity", "1e40"])
def test_non_finite_or_absurd_decimals_are_field_errors(value: str) -> None:
    assert _fields({**TWAP, "qty": value}) == ["qty"]
    assert _fields({**TWAP, "limit_price": value}) == ["limit_price"]
