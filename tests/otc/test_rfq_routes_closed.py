"""A venue without a desk, or with an invalid ``[otc]`` section, answers the RFQ routes with -9568 and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpx.otc import errors
from tests.server.harness import MANUAL_CONFIG
from tests.server.inprocess import in_process_venue

MISSPELT = """
[otc]
desk_account = 1
last_look_bsp = "5"
"""


@pytest.mark.parametrize(
    ("extra", "why"),
    [("", "no [otc] section"), (MISSPELT, "unknown key otc.last_look_bsp: did you mean 'last_look_bps'?")],
)
def test_rfq_on_a_venue_without_a_working_desk_is_refused_with_the_reason(
    tmp_path: Path, extra: str, why: str
) -> None:
    with in_process_venue(tmp_path / "data", MANUAL_CONFIG + extra) as venue:
        client = venue.trader("client")

        status, code, msg = venue.refused(
            "POST", "/perpx/v1/rfq", client, {"symbol": "BTCUSDT", "quantity": "1"}
        )

    assert (status, code) == (400, errors.DESK_UNAVAILABLE) and why in msg
