"""One kline selection and one summing for trade, mark, index and premium klines (candles.py)."""

from __future__ import annotations

from perpx.server.marketdata.candles import MINUTE_MS, kline_opens, merge, sum_into_klines
from perpx.server.marketdata.price_candles import PriceCandle

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def test_without_a_start_the_last_limit_klines_up_to_now_are_selected() -> None:
    opens = kline_opens("1m", T0, T0 + 2 * MINUTE_MS, T0 + 10 * MINUTE_MS + 5, 3, None, None)

    assert opens == [T0 + 8 * MINUTE_MS, T0 + 9 * MINUTE_MS, T0 + 10 * MINUTE_MS]


def test_a_start_inside_an_interval_selects_from_the_next_one_and_never_before_the_first() -> None:
    late = kline_opens("1m", T0, T0, T0 + 5 * MINUTE_MS, 2, T0 + MINUTE_MS + 1, None)
    early = kline_opens(
        "1m", T0 + MINUTE_MS, T0 + MINUTE_MS, T0 + 5 * MINUTE_MS, 2, T0 - 10 * MINUTE_MS, None
    )

    assert late == [T0 + 2 * MINUTE_MS, T0 + 3 * MINUTE_MS]
    assert early == [T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]


def test_an_end_time_caps_the_selection() -> None:
    opens = kline_opens("1m", T0, T0, T0 + 60 * MINUTE_MS, 5, None, T0 + 2 * MINUTE_MS + 30_000)

    assert opens == [T0, T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]


def test_price_and_trade_klines_fill_a_gap_alike_with_the_previous_close() -> None:
    opens = [T0, T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]
    price_rows = [(T0, 10, 12, 9, 11, 4), (T0 + 2 * MINUTE_MS, 13, 13, 13, 13, 1)]
    trade_rows = [
        (T0, 10, 12, 9, 11, 5, 50, 2, 1, 10, 1, 2),
        (T0 + 2 * MINUTE_MS, 13, 13, 13, 13, 1, 13, 1, 0, 0, 3, 3),
    ]

    prices = sum_into_klines(
        "1m",
        opens,
        price_rows,
        None,
        lambda o, c, g: PriceCandle(o, c, g[0][1], max(r[2] for r in g), min(r[3] for r in g), g[-1][4], 1),
        lambda o, c, p: PriceCandle(o, c, p, p, p, p, 0),
        lambda k: k.close_value,
    )
    trades = merge("1m", opens, trade_rows, None)

    assert [(k.open_value, k.close_value, k.count) for k in prices] == [(10, 11, 1), (11, 11, 0), (13, 13, 1)]
    assert [(k.open_ticks, k.close_ticks, k.count) for k in trades] == [(10, 11, 2), (11, 11, 0), (13, 13, 1)]


def test_intervals_before_the_first_close_are_left_out() -> None:
    rows = [(T0 + MINUTE_MS, 5, 5, 5, 5, 1)]

    out = sum_into_klines(
        "1m",
        [T0, T0 + MINUTE_MS],
        rows,
        None,
        lambda o, c, g: (o, g[-1][4]),
        lambda o, c, p: (o, p),
        lambda k: k[1],
    )

    assert out == [(T0 + MINUTE_MS, 5)]
