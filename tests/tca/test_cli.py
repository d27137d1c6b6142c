"""``perpx tca FILLS.csv ...``: the files it writes, their fixed content, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from perpx.cli import app

FILLS = "time_ms,price,qty,fee,maker\n1000,102,4,0.4,false\n2000,103,6,-0.12,true\n"
TRADES = "time_ms,price,qty\n500,99,3\n1000,102,4\n1500,100,10\n2000,103,6\n2500,101,5\n"
QUOTES = "time_ms,bid,ask\n0,100.5,101.5\n1000,101,102\n2000,103,104\n3000,102.5,103.5\n70000,102.5,103.5\n"
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


def _write(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, text in (("fills", FILLS), ("trades", TRADES), ("quotes", QUOTES)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return paths


def test_tca_from_csv_writes_the_fixed_metrics(tmp_path: Path) -> None:
    # Arrange
    paths = _write(tmp_path)
    out = tmp_path / "out"
    # Act
    files = ["--trades", str(paths["trades"]), "--quotes", str(paths["quotes"])]
    result = CliRunner().invoke(app, ["tca", str(paths["fills"]), *ORDER, *files, "--out", str(out)])
    # Assert
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tca.json").read_text())
    # value 1026, F 10, Q 12: IS = 1026 - 1000 + 2*(104-100) + 0.28 = 34.28
    # mids 101.5 and 103.5: spread+impact 4*0.5 + 6*(-0.5) = -1, timing 4*0.5 + 6*2.5 = 17
    assert summary["shortfall"] == {
        "benchmark": "decision price P_d (paper portfolio Q x P_d)",
        "opportunity_priced_from": "P_d",
        "paper_notional": "1200",
        "implementation_shortfall": "34.28",
        "delay": "10",
        "execution": "16",
        "spread_impact": "-1",
        "timing": "17",
        "opportunity": "8",
        "fees": "0.28",
        "implementation_shortfall_bps": "285.6667",
        "delay_bps": "83.3333",
        "execution_bps": "133.3333",
        "spread_impact_bps": "-8.3333",
        "timing_bps": "141.6667",
        "opportunity_bps": "66.6667",
        "fees_bps": "2.3333",
        "identity_holds": True,
    }
    assert summary["fills"] == {
        "count": 2,
        "filled_qty": "10",
        "fill_rate": "0.8333",
        "avg_price": "102.6",
        "notional": "1026",
        "fees": "0.28",
        "fee_bps": "2.7290",
        "maker_share": "0.6000",
    }
    # (102.6 - 101)/101 = 158.4158 bps, + 0.28/(10*101) = 2.7723 bps of fees
    assert summary["arrival"]["slippage_bps"] == "158.4158"
    assert summary["arrival"]["slippage_with_fees_bps"] == "161.1881"
    assert summary["vwap"]["vwap"] == "101.3" and summary["vwap"]["vwap_ex_own"] == "100"
    assert (
        summary["vwap"]["slippage_ex_own_bps"] == "260.0000" and summary["vwap"]["participation"] == "0.5000"
    )
    # the taker buy at 102 against (101, 102) crossed (-1), the maker buy at 103 against (103, 104)
    # sat at its own touch (+1): (4*-1 + 6*1)/10; ES (4*2*0.5/101.5 - 6*2*0.5/103.5)/10
    assert summary["spread"]["spread_capture"] == "0.2000"
    assert summary["spread"]["effective_spread_bps"] == "-18.5621"
    # 1 s after the fills the mids are 103.5 and 103: (4*1.5/102 + 6*0/103)/10 in bps
    assert summary["markouts_bps"]["1s"] == {
        "all": "58.8235",
        "maker": "0.0000",
        "taker": "147.0588",
        "qty": "10",
    }
    # the mid at the end (2000) is 103.5, a second later 103: (103.5 - 103)/101
    assert summary["reversion_bps"]["1s"] == "49.5050"
    assert summary["order"]["end_price_source"] == "given (--end-price)"
    frame = pl.read_parquet(out / "fills.parquet")
    assert frame.height == 2 and {"markout_1s_bps", "spread_capture", "mid"} <= set(frame.columns)
    html = (out / "report.html").read_text()
    # one self-contained file: three figures, plotly's script inline, nothing fetched
    assert html.count('class="plotly-graph-div"') == 3 and 'src="http' not in html
    assert (
        "Fills over the price path" in html and "Markout curve" in html and "Implementation shortfall" in html
    )
    assert "implementation shortfall 34.28" in result.output


def test_tca_without_quotes_reports_mid_based_metrics_as_null(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    result = CliRunner().invoke(app, ["tca", str(paths["fills"]), *ORDER, "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "tca.json").read_text())
    assert summary["shortfall"]["spread_impact"] is None and summary["shortfall"]["execution"] == "16"
    assert summary["vwap"]["vwap"] is None and summary["spread"]["mid_source"].startswith("none")
    schema = pl.read_parquet(tmp_path / "o" / "fills.parquet").schema
    assert schema["mid"] == pl.Float64 and schema["maker"] == pl.Boolean and schema["trade_id"] == pl.Int64


BAD = [
    ("missing_column", "time_ms,price\n1000,102\n", [], "row 1 (header): missing column qty"),
    (
        "non_numeric_price",
        "time_ms,price,qty\n1000,10x2,4\n",
        [],
        "row 2, column price: not a number: '10x2'",
    ),
    (
        "negative_qty",
        "time_ms,price,qty\n1000,102,4\n2000,103,-6\n",
        [],
        "row 3, column qty: must be positive",
    ),
    ("bad_time", "time_ms,price,qty\nsoon,102,4\n", [], "row 2, column time_ms: not an integer"),
    (
        "bad_maker_flag",
        "time_ms,price,qty,maker\n1000,102,4,maybe\n",
        [],
        "row 2, column maker: not true/false",
    ),
    ("empty_file", "", [], "empty file"),
    ("header_only", "time_ms,price,qty\n", [], "no fills"),
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


def test_bad_quotes_file_names_the_quotes_file(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    paths["quotes"].write_text("time_ms,bid,ask\n1000,102,101\n")
    result = CliRunner().invoke(
        app,
        ["tca", str(paths["fills"]), *ORDER, "--quotes", str(paths["quotes"]), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 2
    assert f"{paths['quotes']}: row 2, column ask: below the bid" in result.output


def test_partial_fill_without_an_end_price_or_market_data_is_refused(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    options = ORDER[: ORDER.index("--end-price")]
    result = CliRunner().invoke(app, ["tca", str(paths["fills"]), *options, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "give --end-price" in result.output
