"""Incident drill: walk ``docs/runbooks/index-below-quorum.md`` on a simulated venue.

An index-priced venue on a manual clock is scraped once a venue minute. One of BTCUSDT's two
live feeders stops: the scraped series are fed to the real alert rules (``promtool test rules``),
which must fire ``PerpxIndexBelowQuorum`` with its runbook link; then each runbook step is done
against the venue: confirm (the metrics and premiumIndex), the effect it states (opening orders
refused, the index frozen), the fix (the feeder quotes again), and the alert resolving.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ..server.inprocess import InProcessVenue, in_process_venue
from ..server.test_metrics import BTC, limit, scrape, value
from .test_live_metrics import MANUAL_PRICED, advance, quote

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
RUNBOOK = "docs/runbooks/index-below-quorum.md"


@pytest.fixture
def priced(tmp_path: Path) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path / "drill", MANUAL_PRICED) as started:
        yield started


def minute(venue: InProcessVenue, sources: tuple[str, ...], price: str) -> tuple[float, float]:
    """One venue minute: the live feeders quote, then Prometheus scrapes."""
    advance(venue, 60_000)
    for source in sources:
        quote(venue, source, price)
    _, samples = scrape(venue)
    return (
        value(samples, "perpx_index_sources_live", symbol=BTC),
        value(samples, "perpx_index_sources_min", symbol=BTC),
    )


def alert_test(live: list[float], quorum: list[float], firing_at: int, quiet_at: int) -> dict[str, object]:
    """A promtool unit test over the scraped series: firing at ``firing_at``, quiet at ``quiet_at``."""
    labels = f'{{instance="drill",symbol="{BTC}"}}'
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"perpx_index_sources_live{labels}",
                        "values": " ".join(f"{v:g}" for v in live),
                    },
                    {
                        "series": f"perpx_index_sources_min{labels}",
                        "values": " ".join(f"{v:g}" for v in quorum),
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{firing_at}m",
                        "alertname": "PerpxIndexBelowQuorum",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "page", "instance": "drill", "symbol": BTC},
                                "exp_annotations": {
                                    "summary": f"{BTC} index has 1 live sources, below its quorum",
                                    "description": "The index and mark are frozen and the market accepts only"
                                    " reduce-only orders until enough sources quote again.",
                                    "runbook_url": RUNBOOK,
                                },
                            }
                        ],
                    },
                    {"eval_time": f"{quiet_at}m", "alertname": "PerpxIndexBelowQuorum"},
                ],
            }
        ],
    }


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)",
)
def test_drill_index_below_quorum(priced: InProcessVenue, tmp_path: Path) -> None:
    # Arrange: two healthy minutes, a position-less trader ready to open one
    live: list[float] = []
    quorum: list[float] = []
    trader = priced.trader("drill")
    for _ in range(2):
        got = minute(priced, ("binance", "okx"), "30000")
        live.append(got[0])
        quorum.append(got[1])

    # Act: the binance feeder dies for four minutes, then comes back
    for _ in range(4):
        got = minute(priced, ("okx",), "30500")
        live.append(got[0])
        quorum.append(got[1])
    premium_down = priced.client.get("/fapi/v1/premiumIndex", params={"symbol": BTC}).json()
    status, _, msg = priced.refused("POST", "/fapi/v1/order", trader, limit("BUY", "0.01", "30000"))
    for _ in range(2):
        got = minute(priced, ("binance", "okx"), "30500")
        live.append(got[0])
        quorum.append(got[1])
    premium_up = priced.client.get("/fapi/v1/premiumIndex", params={"symbol": BTC}).json()
    placed = priced.signed("POST", "/fapi/v1/order", trader, limit("BUY", "0.01", "30000"))

    # Assert: the real rule fires on the scraped series, with the runbook this drill walks
    assert live == [2, 2, 1, 1, 1, 1, 2, 2]
    assert set(quorum) == {2}
    test_file = tmp_path / "drill_test.yml"
    test_file.write_text(yaml.safe_dump(alert_test(live, quorum, firing_at=4, quiet_at=7)))
    done = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (REPO / RUNBOOK).is_file()
    # the runbook's "what it means": the index is frozen and opening orders are refused
    assert premium_down["indexPrice"] == "30000"
    assert status == 400 and "reduce" in msg.lower(), msg
    # its "what to do": the feeder quotes again, the index follows, orders are taken
    assert premium_up["indexPrice"] == "30500"
    assert placed.status_code == 200, placed.text
