"""QuickFIX validates the desk's FIX messages (R, S, AG, and the block ExecutionReport) against the dictionary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perpx.engine.config import default_config
from perpx.engine.values import MarketId, Side
from perpx.fix.codec import FixMessage
from perpx.fix.dictionary import dictionary_xml
from perpx.otc.store import QuoteRecord
from perpx.server.otc_fix import block_report, quote_fields

pytest.importorskip("quickfix", reason="the QuickFIX client (pip install quickfix-ssl==1.15.1.post4)")

from tests.fix.test_dictionary import frame

RECORD = QuoteRecord(
    quote_id="Q00000007",
    account_id=3,
    tier="standard",
    symbol="BTCUSDT",
    requested="TWO_WAY",
    qty_lots=500,
    bid_ticks=299_900,
    ask_ticks=300_100,
    index_ticks=300_000,
    mark_ticks=300_000,
    bid_half_bps="3",
    ask_half_bps="3",
    skew_bps="0",
    volatility_bps="0",
    inventory_lots=0,
    created_ns=1_767_225_600_000_000_000,
    expires_ns=1_767_225_605_000_000_000,
    state="FILLED",
    accept_side="BUY",
    accept_ns=1_767_225_601_000_000_000,
    trade_id=42,
)


def test_quickfix_validates_the_desks_messages(tmp_path: Path) -> None:
    spec = default_config().markets[MarketId("BTCUSDT")]
    order = FixMessage(((11, "take-1"),))
    frames = [
        frame("R", [(131, "rfq-1"), (146, "1"), (55, "BTCUSDT"), (54, "1"), (38, "0.5")]),
        frame("S", list(quote_fields(RECORD, spec, "rfq-1"))),
        frame("AG", [(131, "rfq-2"), (658, "99"), (146, "1"), (55, "BTCUSDT"), (58, "-9566: No quote.")]),
        frame("8", list(block_report(order, RECORD, spec, Side.BUY, 300_100))),
        frame(
            "D",
            [
                (11, "t"),
                (55, "BTCUSDT"),
                (54, "1"),
                (60, "20261203-06:00:00.000"),
                (38, "0.5"),
                (40, "D"),
                (117, "Q1"),
            ],
        ),
    ]

    assert _validate_all(tmp_path, frames) == ["ok"] * len(frames)


def _validate_all(tmp_path: Path, frames: list[str]) -> list[str]:
    """All ``frames`` in one QuickFIX process (they are all expected valid; one process starts in ~3 s)."""
    path = tmp_path / "FIX44-perpx.xml"
    path.write_text(dictionary_xml())
    script = Path(__file__).parents[1] / "fix" / "qf_validate.py"
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        check=False,
        input="\n".join(frames) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"QuickFIX aborted ({done.returncode}): {done.stderr[-500:]}"
    return done.stdout.strip().splitlines()
