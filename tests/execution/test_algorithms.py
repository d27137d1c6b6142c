"""Each algorithm on the real engine: what it sends, why, and that it finishes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from perpx.execution.childlog import CancelRecord, PlaceRecord
from perpx.execution.model import decode_parent
from perpx.execution.runner import ParentRunner
from perpx.execution.venue import ChildStatus

from .market import Market

BASE: dict[str, Any] = {"market": "BTCUSDT", "side": "buy", "client_algo_id": "a1"}


def _run(
    market: Market, runner: ParentRunner, seconds: int = 900, every_s: int = 5, flow: str | None = None
) -> None:
    for _ in range(seconds // every_s):
        if runner.done:
            return
        market.requote()
        if flow is not None:
            market.trade("SELL", flow)
            market.requote()
        market.advance(every_s)
        runner.step()


def _places(runner: ParentRunner) -> list[PlaceRecord]:
    return [r for r in runner.log.records if isinstance(r, PlaceRecord)]


def test_twap_taking_fills_the_parent_in_equal_slices() -> None:
    market = Market()
    parent = decode_parent(
        {**BASE, "algo": "twap", "qty": "1", "duration_s": 600, "slice_interval_s": 60, "passiveness_bps": 0}
    )
    runner = market.runner(parent)

    _run(market, runner)

    places = _places(runner)
    assert runner.done
    assert [p.qty_lots for p in places] == [100] * 10
    assert all(p.reason.startswith("TWAP slice") for p in places)
    assert market.tv.position("algo", "BTCUSDT") == Decimal(1)


def test_twap_randomised_sizes_still_sum_to_the_parent_and_replay_from_the_seed() -> None:
    data = {
        **BASE,
        "algo": "twap",
        "qty": "1",
        "duration_s": 600,
        "slice_interval_s": 60,
        "passiveness_bps": 0,
        "randomize_size_bps": 3000,
    }
    sizes = []
    for _ in range(2):
        market = Market()
        runner = market.runner(decode_parent(data), seed=42)
        _run(market, runner)
        sizes.append([p.qty_lots for p in _places(runner)])

    assert sizes[0] == sizes[1]
    assert sum(sizes[0]) == 1000
    assert len(set(sizes[0])) > 1


def test_twap_slices_respect_min_notional_by_using_fewer_slices() -> None:
    market = Market()
    # 0.005 BTC is 300 USDT at 60000; min notional is 100, so at most 3 slices although 10 were asked
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "0.005",
            "duration_s": 600,
            "slice_interval_s": 60,
            "passiveness_bps": 0,
        }
    )
    runner = market.runner(parent)

    _run(market, runner)

    places = _places(runner)
    assert len(places) == 2
    assert sum(p.qty_lots for p in places) == 5


def test_buy_children_never_exceed_the_limit_price() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "1",
            "duration_s": 300,
            "slice_interval_s": 60,
            "passiveness_bps": 0,
            "limit_price": "59999",
        }
    )
    runner = market.runner(parent)

    _run(market, runner, seconds=400)

    places = _places(runner)
    assert places
    assert all(p.price_ticks is not None and p.price_ticks <= 600005 for p in places)
    assert market.tv.position("algo", "BTCUSDT") <= Decimal(
        "0.5"
    )  # only the first ask level is at or under the limit


def test_max_clip_caps_every_child() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "1",
            "duration_s": 120,
            "slice_interval_s": 60,
            "passiveness_bps": 0,
            "max_clip": "0.2",
            "end_behavior": "complete_aggressive",
        }
    )
    runner = market.runner(parent)

    _run(market, runner)

    assert all(p.qty_lots <= 200 for p in _places(runner))
    assert market.tv.position("algo", "BTCUSDT") == Decimal(1)


def test_passive_twap_rests_inside_the_spread_and_cancels_unfilled_slices() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "0.2",
            "duration_s": 120,
            "slice_interval_s": 60,
            "passiveness_bps": 5000,
        }
    )
    runner = market.runner(parent)

    _run(market, runner, seconds=200)

    places = _places(runner)
    assert places[0].tif == "GTC" and places[0].price_ticks is not None and places[0].price_ticks < 600005
    assert runner.done  # window ended: the unfilled remainder was canceled
    assert not market.venue.open_orders("BTCUSDT")


def test_end_behavior_complete_aggressive_takes_the_remainder() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "0.2",
            "duration_s": 120,
            "slice_interval_s": 60,
            "passiveness_bps": 5000,
            "end_behavior": "complete_aggressive",
        }
    )
    runner = market.runner(parent)

    _run(market, runner, seconds=300)

    assert runner.done
    assert market.tv.position("algo", "BTCUSDT") == Decimal("0.2")
    assert any("window ended" in p.reason for p in _places(runner))


def test_pov_participation_stays_in_its_band() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "pov",
            "qty": "5",
            "pov_target_bps": 1000,
            "pov_min_bps": 800,
            "pov_max_bps": 1200,
            "passiveness_bps": 0,
        }
    )
    runner = market.runner(parent)

    _run(market, runner, seconds=300, flow="0.1")

    last = runner.history[-1]
    rate = last.filled_lots / last.market_volume_lots
    assert last.filled_lots > 0
    assert 0.08 <= rate <= 0.12


def test_pov_takes_everything_at_the_would_price() -> None:
    market = Market()
    parent = decode_parent(
        {**BASE, "algo": "pov", "qty": "0.3", "pov_target_bps": 100, "would_price": "60001"}
    )
    runner = market.runner(parent)

    _run(market, runner, seconds=10)

    assert market.tv.position("algo", "BTCUSDT") == Decimal("0.3")
    assert "would price" in _places(runner)[0].reason


def test_scaled_ladder_places_linear_prices_and_increasing_sizes() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "scaled",
            "qty": "0.6",
            "ladder_levels": 3,
            "ladder_start_price": "59990",
            "ladder_end_price": "59980",
            "ladder_sizes": "increasing",
        }
    )
    runner = market.runner(parent)

    runner.step()

    places = _places(runner)
    assert [p.price_ticks for p in places] == [599900, 599850, 599800]
    assert [p.qty_lots for p in places] == [100, 200, 300]


def test_iceberg_shows_only_its_display_size_and_refills() -> None:
    market = Market()
    parent = decode_parent(
        {**BASE, "algo": "iceberg", "qty": "0.3", "display_qty": "0.1", "limit_price": "59999.7"}
    )
    runner = market.runner(parent)
    runner.step()
    assert [c.qty_lots for c in market.venue.open_orders("BTCUSDT")] == [100]

    market.trade("SELL", "0.1")
    runner.step()

    assert market.tv.position("algo", "BTCUSDT") == Decimal("0.1")
    working = market.venue.open_orders("BTCUSDT")
    assert [c.qty_lots for c in working] == [100]
    assert len(_places(runner)) == 2


def test_vwap_and_is_finish_the_parent() -> None:
    for algo in ("vwap", "is"):
        market = Market()
        parent = decode_parent(
            {
                **BASE,
                "algo": algo,
                "qty": "1",
                "duration_s": 600,
                "slice_interval_s": 60,
                "passiveness_bps": 0,
                "urgency": "high",
            }
        )
        runner = market.runner(parent)

        _run(market, runner)

        assert runner.done, algo
        assert market.tv.position("algo", "BTCUSDT") == Decimal(1), algo


def test_is_with_high_urgency_front_loads() -> None:
    sizes = {}
    for urgency in ("low", "high"):
        market = Market()
        parent = decode_parent(
            {
                **BASE,
                "algo": "is",
                "qty": "1",
                "duration_s": 600,
                "slice_interval_s": 60,
                "passiveness_bps": 0,
                "urgency": urgency,
            }
        )
        runner = market.runner(parent)
        _run(market, runner)
        sizes[urgency] = [p.qty_lots for p in _places(runner)]

    assert sizes["high"][0] > sizes["low"][0]
    assert sizes["high"][0] > sizes["high"][-1]


def test_rejected_child_returns_its_quantity_to_the_remainder(tmp_path: Path) -> None:
    market = Market()
    # reduce-only buy with no short position: the venue rejects every child
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "0.2",
            "duration_s": 120,
            "slice_interval_s": 60,
            "passiveness_bps": 0,
            "reduce_only": True,
        }
    )
    runner = market.runner(parent, tmp_path / "log.jsonl")

    record = runner.step()
    runner.log.close()

    states = [market.venue.order("BTCUSDT", p.client_order_id) for p in _places(runner)]
    assert all(s is None or s.status in (ChildStatus.REJECTED, ChildStatus.CANCELED) for s in states)
    assert record.remaining_lots == 200


def test_twap_takes_everything_when_the_would_price_is_reached() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "0.4",
            "duration_s": 600,
            "slice_interval_s": 60,
            "would_price": "60001",
        }
    )
    runner = market.runner(parent)

    runner.step()

    assert market.tv.position("algo", "BTCUSDT") == Decimal("0.4")
    assert "would price" in _places(runner)[0].reason


def test_iceberg_repegs_when_the_touch_moves_away() -> None:
    market = Market()
    parent = decode_parent({**BASE, "algo": "iceberg", "qty": "0.3", "display_qty": "0.1", "repeg_ticks": 3})
    runner = market.runner(parent)
    runner.step()
    first = market.venue.open_orders("BTCUSDT")[0]

    market.mid += Decimal(1)  # the bid rises 10 ticks above the iceberg's price
    market.requote()
    runner.step()
    runner.step()

    working = market.venue.open_orders("BTCUSDT")
    assert len(working) == 1
    assert working[0].price_ticks is not None and first.price_ticks is not None
    assert working[0].price_ticks == first.price_ticks + 10
    assert any(isinstance(r, CancelRecord) and "re-peg" in r.reason for r in runner.log.records)


def test_leave_passive_rests_the_remainder_at_the_touch_after_the_window() -> None:
    market = Market()
    parent = decode_parent(
        {
            **BASE,
            "algo": "twap",
            "qty": "0.3",
            "duration_s": 60,
            "slice_interval_s": 60,
            "passiveness_bps": 10000,
            "end_behavior": "leave_passive",
        }
    )
    runner = market.runner(parent)

    _run(market, runner, seconds=90)

    kept = market.venue.open_orders("BTCUSDT")
    market.mid += Decimal(2)  # the touch moves up past the resting child
    market.requote()
    market.advance(5)
    runner.step()

    working = market.venue.open_orders("BTCUSDT")
    assert not runner.done
    assert [w.qty_lots for w in kept] == [300] and kept[0].price_ticks == 599995  # at the touch: left alone
    assert [w.qty_lots for w in working] == [300]
    assert working[0].price_ticks == 600015
    assert "window ended: rest" in _places(runner)[-1].reason
