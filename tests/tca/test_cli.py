"""``perpx tca FILLS.csv ...``: the files it writes, the fixed tca.json fields, and one-line refusals.

docs/tca.md's worked example is :func:`test_tca_from_csv_writes_the_fixed_metrics`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from perpx.cli import app

FILLS = "ts_ms,price,qty,fee,liquidity\n1000,102,4,0.4,TAKER\n2000,103,6,-0.12,MAKER\n"
TRADES = "ts_ms,price,qty,own\n500,99,3,0\n1000,102,4,1\n1500,100,10,0\n2000,103,6,1\n2500,101,5,0\n"
QUOTES = "ts_ms,bid,ask\n0,100.5,101.5\n1000,101,102\n2000,103,104\n3000,102.5,103.5\n400000,102.5,103.5\n"
ORDER = [
    "--side",
    "buy",
    "--qty",
    "12",
    "--decision-price",
    "100",
    "--arrival-price",
    "101",
    "--end-price",
    "104",
]

FIXED_FIELDS = [
    "filled_qty",
    "fill_rate",
    "avg_price",
    "arrival_slippage_bps",
    "arrival_slippage_with_fees_bps",
    "is_total",
    "is_bps",
    "is_delay",
    "is_execution",
    "is_spread_impact",
    "is_timing",
    "is_opportunity",
    "is_fees",
    "interval_vwap",
    "interval_vwap_ex_own",
    "vwap_slippage_bps",
    "vwap_ex_own_slippage_bps",
    "participation",
    "maker_share",
    "fee_bps",
    "markout_bps",
    "spread_capture",
    "effective_spread_bps",
]
"""The fields issue 15 fixes in tca.json (clients depend on these names)."""


def _write(tmp_path: Path, fills: str = FILLS, trades: str = TRADES, quotes: str = QUOTES) -> dict[str, Path]:
    paths = {}
    for name, text in (("fills", fills), ("trades", trades), ("quotes", quotes)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return paths


def _run(paths: dict[str, Path], order: list[str], out: Path) -> tuple[int, str]:
    files = ["--trades", str(paths["trades"]), "--quotes", str(paths["quotes"])]
    result = CliRunner().invoke(app, ["tca", str(paths["fills"]), *order, *files, "--out", str(out)])
    return result.exit_code, result.output


def test_tca_from_csv_writes_the_fixed_metrics(tmp_path: Path) -> None:
    # Arrange
    paths = _write(tmp_path)
    out = tmp_path / "out"
    # Act
    code, output = _run(paths, ORDER, out)
    # Assert
    assert code == 0, output
    summary = json.loads((out / "tca.json").read_text())
    fixed = {name: summary[name] for name in FIXED_FIELDS}
    assert fixed == {
        # F = 10 of Q = 12; sum q p = 4*102 + 6*103 = 1026, p_bar = 102.6
        "filled_qty": "10",
        "fill_rate": "0.8333",
        "avg_price": "102.6",
        # (102.6 - 101)/101 = 158.4158 bps, + fees 0.28/(10*101) = 2.7723 bps
        "arrival_slippage_bps": "158.4158",
        "arrival_slippage_with_fees_bps": "161.1881",
        # IS = (1026 - 1000) + 2*(104 - 100) + 0.28 = 34.28, in bps of Q P_d = 1200
        "is_total": "34.28",
        "is_bps": "285.6667",
        "is_delay": "10",  # 10*(101 - 100)
        "is_execution": "16",  # 1026 - 10*101
        "is_spread_impact": "-1",  # mids 101.5, 103.5: 4*0.5 + 6*(-0.5)
        "is_timing": "17",  # 4*(101.5 - 101) + 6*(103.5 - 101)
        "is_opportunity": "8",  # 2*(104 - 100)
        "is_fees": "0.28",  # 0.4 - 0.12 (a maker rebate)
        # [1000, 2000]: (408 + 1000 + 618)/20 = 101.3; without the own = 1 rows 1000/10 = 100
        "interval_vwap": "101.3",
        "interval_vwap_ex_own": "100",
        "vwap_slippage_bps": "128.3317",  # 1.3/101.3
        "vwap_ex_own_slippage_bps": "260.0000",  # 2.6/100
        "participation": "0.5000",  # 10/20
        "maker_share": "0.6000",  # 6/10
        "fee_bps": "2.7290",  # 0.28/1026
        # the taker buy at 102 sees mid 103.5 after 1 s (+147.0588) and 103 after (+98.0392);
        # the maker buy at 103 sees 103 (0): quantity-weighted over 10
        "markout_bps": {
            "1s": "58.8235",
            "5s": "39.2157",
            "30s": "39.2157",
            "60s": "39.2157",
            "300s": "39.2157",
        },
        # the taker crossed at the far touch (-1), the maker sat at its own (+1): (4*-1 + 6*1)/10
        "spread_capture": "0.2000",
        # (4 * 2*0.5/101.5 - 6 * 2*0.5/103.5)/10 in bps
        "effective_spread_bps": "-18.5621",
    }
    parts = ["is_delay", "is_execution", "is_opportunity", "is_fees"]
    assert sum(Decimal(summary[p]) for p in parts) == Decimal(summary["is_total"])
    assert Decimal(summary["is_spread_impact"]) + Decimal(summary["is_timing"]) == Decimal(
        summary["is_execution"]
    )
    assert all(summary["identity_check"].values())
    assert summary["end_price_source"] == "given (--end-price)"
    assert summary["mid_source"] == f"quotes file ({paths['quotes']})"
    assert summary["reversion_bps"]["1s"] == "49.5050"  # mid 103.5 at 2000, 103 a second later: 0.5/101
    frame = pl.read_parquet(out / "fills.parquet")
    assert frame.height == 2 and frame["liquidity"].to_list() == ["TAKER", "MAKER"]
    assert {"ts_ms", "markout_1s_bps", "markout_300s_bps", "spread_capture", "mid", "is_timing"} <= set(
        frame.columns
    )
    html = (out / "report.html").read_text()
    # one self-contained file: three figures, plotly's script inline, nothing fetched
    assert html.count('class="plotly-graph-div"') == 3 and 'src="http' not in html
    assert (
        "Fills over the price path" in html and "Markout curve" in html and "Implementation shortfall" in html
    )
    assert "implementation shortfall 34.28" in output


def _mirror_csv(text: str, columns: tuple[str, ...]) -> str:
    """Reflect the price columns around 100 (``p -> 200 - p``); a bid becomes an ask and back."""
    header, *rows = text.strip().splitlines()
    names = header.split(",")
    out = [header]
    for row in rows:
        cells = dict(zip(names, row.split(","), strict=True))
        for name in columns:
            cells[name] = str(200 - Decimal(cells[name]))
        if "bid" in cells:
            cells["bid"], cells["ask"] = cells["ask"], cells["bid"]
        out.append(",".join(cells[n] for n in names))
    return "\n".join(out) + "\n"


def test_a_sell_mirrored_from_the_buy_reports_the_same_positive_costs(tmp_path: Path) -> None:
    # Arrange: every price reflected around 100 (P_d stays 100, P_a 101 -> 99, P_c 104 -> 96)
    paths = _write(
        tmp_path,
        _mirror_csv(FILLS, ("price",)),
        _mirror_csv(TRADES, ("price",)),
        _mirror_csv(QUOTES, ("bid", "ask")),
    )
    order = ["--side", "sell", "--qty", "12", "--decision-price", "100", "--arrival-price", "99"]
    # Act
    code, output = _run(paths, [*order, "--end-price", "96"], tmp_path / "sell")
    (tmp_path / "b").mkdir()
    _run(_write(tmp_path / "b"), ORDER, tmp_path / "buy")
    # Assert: the costs keep their sign (positive = cost) and the money terms are equal
    assert code == 0, output
    sell = json.loads((tmp_path / "sell" / "tca.json").read_text())
    buy = json.loads((tmp_path / "buy" / "tca.json").read_text())
    money = [
        "is_total",
        "is_delay",
        "is_execution",
        "is_spread_impact",
        "is_timing",
        "is_opportunity",
        "is_fees",
    ]
    assert (
        [sell[m] for m in money] == [buy[m] for m in money] == ["34.28", "10", "16", "-1", "17", "8", "0.28"]
    )
    assert sell["is_bps"] == buy["is_bps"] == "285.6667"
    assert sell["spread_capture"] == buy["spread_capture"] == "0.2000"
    # the taker sold 4 at 98 and the mid fell to 96.5 (+1.5/98), the maker 6 at 97 saw 97: weighted
    assert sell["markout_bps"]["1s"] == "61.2245"
    assert sell["interval_vwap_ex_own"] == "100" and sell["vwap_ex_own_slippage_bps"] == "260.0000"


def test_tca_without_quotes_reports_mid_based_metrics_as_null(tmp_path: Path) -> None:
    # Arrange: no quotes; a partly filled order with no --end-price takes P_c from the tape
    paths = _write(tmp_path)
    options = ORDER[: ORDER.index("--end-price")]
    # Act
    result = CliRunner().invoke(
        app,
        [
            "tca",
            str(paths["fills"]),
            *options,
            "--trades",
            str(paths["trades"]),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "tca.json").read_text())
    assert all(name in summary for name in FIXED_FIELDS)
    assert summary["is_spread_impact"] is None and summary["is_timing"] is None
    assert summary["is_execution"] == "16" and summary["spread_capture"] is None
    assert summary["markout_bps"] == dict.fromkeys(["1s", "5s", "30s", "60s", "300s"])
    assert summary["mid_source"].startswith("none")
    # P_c is the last print at or before the last fill (103 at 2000): 2*(103 - 100) = 6
    assert (
        summary["end_price_source"] == "last trade at or before end_ms" and summary["is_opportunity"] == "6"
    )
    assert summary["identity_check"]["is_spread_impact + is_timing == is_execution"] is None
    schema = pl.read_parquet(tmp_path / "o" / "fills.parquet").schema
    assert schema["mid"] == pl.Float64 and schema["liquidity"] == pl.String and schema["trade_id"] == pl.Int64


def test_end_price_defaults_to_the_mid_at_the_end_of_the_orders_life(tmp_path: Path) -> None:
    # Arrange: no --end-price; the life ends at --end-ms 3000, where the mid is 103
    paths = _write(tmp_path)
    options = [*ORDER[: ORDER.index("--end-price")], "--start-ms", "500", "--end-ms", "3000"]
    # Act
    code, output = _run(paths, options, tmp_path / "o")
    # Assert
    assert code == 0, output
    summary = json.loads((tmp_path / "o" / "tca.json").read_text())
    assert summary["end_price"] == "103" and summary["end_price_source"] == "mid at end_ms"
    assert summary["is_opportunity"] == "6"  # 2*(103 - 100)
    # [500, 3000] adds 3@99 and 5@101: (297 + 2026 + 505)/28 = 101; ex own (2328 - 1026)/18
    assert summary["interval_vwap"] == "101" and summary["participation"] == "0.3571"


HEADER = "ts_ms,price,qty,fee,liquidity\n"
BAD = [
    ("missing_column", "ts_ms,price,qty,fee\n1000,102,4,0\n", [], "row 1 (header): missing column liquidity"),
    ("old_time_column", "time_ms,price,qty,fee,liquidity\n1000,102,4,0,TAKER\n", [], "missing column ts_ms"),
    ("non_numeric_price", HEADER + "1000,10x2,4,0,TAKER\n", [], "row 2, column price: not a number: '10x2'"),
    (
        "negative_qty",
        HEADER + "1000,102,4,0,TAKER\n2000,103,-6,0,MAKER\n",
        [],
        "row 3, column qty: must be positive",
    ),
    ("bad_time", HEADER + "soon,102,4,0,TAKER\n", [], "row 2, column ts_ms: not an integer"),
    ("bad_liquidity", HEADER + "1000,102,4,0,maybe\n", [], "row 2, column liquidity: must be MAKER or TAKER"),
    ("empty_fee", HEADER + "1000,102,4,,TAKER\n", [], "row 2, column fee: empty"),
    ("non_numeric_fee", HEADER + "1000,102,4,cheap,TAKER\n", [], "row 2, column fee: not a number"),
    ("empty_file", "", [], "empty file"),
    ("header_only", HEADER, [], "no fills"),
    ("side_not_buy_or_sell", FILLS, ["--side", "hold"], "--side must be buy or sell, was 'hold'"),
    ("negative_order_qty", FILLS, ["--qty", "-12"], "--qty must be a positive number, was -12"),
    ("non_numeric_decision", FILLS, ["--decision-price", "abc"], "--decision-price: not a number: 'abc'"),
    ("overfilled", FILLS, ["--qty", "5"], "the fills add up to 10, more than --qty 5"),
]


@pytest.mark.parametrize(("text", "override", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_naming_file_row_and_column(
    tmp_path: Path, text: str, override: list[str], message: str
) -> None:
    # Arrange: the order options with one of them replaced
    fills = tmp_path / "fills.csv"
    fills.write_text(text)
    options = list(ORDER)
    for name, value in zip(override[::2], override[1::2], strict=True):
        options[options.index(name) + 1] = value
    # Act
    result = CliRunner().invoke(app, ["tca", str(fills), *options, "--out", str(tmp_path / "o")])
    # Assert
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    if override == []:
        assert str(fills) in lines[0]
    assert not (tmp_path / "o" / "tca.json").exists()


BAD_MARKET = [
    ("trades", "ts_ms,price,qty\n1000,102,4\n", "row 1 (header): missing column own"),
    ("trades", "ts_ms,price,qty,own\n1000,102,4,yes\n", "row 2, column own: must be 1 or 0, was 'yes'"),
    ("trades", "ts_ms,price,qty,own\n1000,0,4,1\n", "row 2, column price: must be positive"),
    ("quotes", "ts_ms,bid,ask\n1000,102,101\n", "row 2, column ask: below the bid"),
    ("quotes", "ts_ms,bid,ask\n1000,101,\n", "row 2, column ask: empty"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_MARKET)
def test_bad_trades_or_quotes_name_their_file_row_and_column(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    paths = _write(tmp_path)
    paths[name].write_text(text)
    code, output = _run(paths, ORDER, tmp_path / "o")
    assert code == 2 and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1 and f"error: {paths[name]}: {message}" in output, output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--start-ms", "soon"], "--start-ms: not an integer number of milliseconds: 'soon'"),
        (["--end-ms", "-5"], "--end-ms must not be negative"),
        (["--account", "7"], "--account goes with --data, not with FILLS.csv"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, options: list[str], message: str) -> None:
    paths = _write(tmp_path)
    code, output = _run(paths, [*ORDER, *options], tmp_path / "o")
    assert code == 2 and len(output.strip().splitlines()) == 1 and message in output, output


def test_missing_out_is_one_line(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    result = CliRunner().invoke(app, ["tca", str(paths["fills"]), *ORDER])
    assert result.exit_code == 2 and result.output.strip() == "error: --out DIR is required"


def test_partial_fill_without_an_end_price_or_market_data_is_refused(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    options = ORDER[: ORDER.index("--end-price")]
    result = CliRunner().invoke(app, ["tca", str(paths["fills"]), *options, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "give --end-price" in result.output


ESTIMATE = ["tca", "estimate", "--symbol", "BTCUSDT", "--side", "buy", "--qty", "1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tca", "--data", "DIR", "--account", "1", "--algo", "twap-1"], "it is not a perpx data directory"),
        (
            [*ESTIMATE, "--duration-s", "60", "--venue", "venue.example"],
            "--venue must be an http(s) URL",
        ),
        (
            [*ESTIMATE, "--duration-s", "60"],
            "--data DIR or --venue URL is required",
        ),
        (
            [*ESTIMATE, "--duration-s", "x", "--data", "DIR"],
            "--duration-s: not a number: 'x'",
        ),
    ],
)
def test_a_data_or_venue_source_that_cannot_be_used_is_refused_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    args = [str(tmp_path) if a == "DIR" else a for a in args]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)] if "estimate" not in args else args)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output
