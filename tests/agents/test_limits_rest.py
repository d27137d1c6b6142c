"""Agent limits on the REST interface: each limit refuses with its name, value and attempted value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perpx.agents.audit import AUDIT_FILE, verify_chain
from tests.server.inprocess import InProcessVenue, in_process_venue

from .helpers import BTC, limit, new_agent


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessVenue]:
    with in_process_venue(tmp_path_factory.mktemp("agents") / "data") as venue:
        venue.mark(BTC, "60000")
        yield venue


def test_order_within_limits_is_placed(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "within", limits={"maxOrderNotional": "1000"})

    order = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    assert order["status"] == "NEW"


@pytest.mark.parametrize(
    ("limits", "order", "name", "value", "attempted"),
    [
        ({"maxOrderNotional": "1000"}, limit("BUY", "0.02", "59000"), "maxOrderNotional", "1000", "1180"),
        ({"maxOpenNotional": "1000"}, limit("BUY", "0.02", "59000"), "maxOpenNotional", "1000", "1180"),
        ({"maxDailyNotional": "500"}, limit("BUY", "0.01", "59000"), "maxDailyNotional", "500", "590"),
        ({"maxPosition": "0.005"}, limit("BUY", "0.01", "59000"), "maxPosition", "0.005", "0.01"),
        ({"maxSlippageBps": 10}, limit("BUY", "0.01", "61000"), "maxSlippageBps", "10", "166.67"),
        ({"maxOrdersPerMinute": 1}, None, "maxOrdersPerMinute", "1", "2"),
    ],
)
def test_order_over_a_limit_is_refused_naming_limit_value_and_attempt(
    venue: InProcessVenue,
    limits: dict[str, object],
    order: dict[str, str] | None,
    name: str,
    value: str,
    attempted: str,
) -> None:
    _, agent = new_agent(venue, f"over-{name}", limits=limits)
    if order is None:
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "59000"))
        order = limit("BUY", "0.002", "59000")

    status, code, msg = venue.refused("POST", "/fapi/v1/order", agent, order)

    assert (status, code) == (400, -9301)
    assert name in msg and f"limit {value}" in msg and f"attempted {attempted}" in msg, msg


def test_open_notional_counts_resting_orders(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "open", limits={"maxOpenNotional": "1000"})
    venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    _status, code, msg = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    assert code == -9301 and "maxOpenNotional" in msg and "attempted 1180" in msg


def test_symbol_outside_the_allow_list_is_refused(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "symbols", symbols=["ETHUSDT"])

    _, code, msg = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    assert code == -9305 and BTC in msg


def test_require_preview_refuses_an_order_without_a_token(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "needs-preview", requirePreview=True)

    _, code, msg = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    assert code == -9303 and "previewToken" in msg


def test_preview_token_places_once_and_only_the_previewed_order(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "preview", requirePreview=True)
    preview = venue.ok("POST", "/perpx/v1/agent/preview", agent, limit("BUY", "0.01", "59000"))
    token = preview["previewToken"]

    other = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.02", "59000", previewToken=token))
    placed = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000", previewToken=token))
    again = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000", previewToken=token))

    assert (
        preview["notional"] == "590" and preview["markPrice"] == "60000" and preview["wouldBeRefused"] is None
    )
    assert other[1] == -9303 and "differs" in other[2]
    assert placed["status"] == "NEW"
    assert again[1] == -9303 and "already used" in again[2]


def test_preview_of_an_order_over_a_limit_says_so_and_issues_no_token(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "preview-over", limits={"maxOrderNotional": "100"})

    preview = venue.ok("POST", "/perpx/v1/agent/preview", agent, limit("BUY", "0.01", "59000"))

    assert preview["previewToken"] is None and "maxOrderNotional" in preview["wouldBeRefused"]


def test_order_over_the_approval_threshold_waits_for_a_human(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "approval", approvalNotional="500")
    preview = venue.ok("POST", "/perpx/v1/agent/preview", agent, limit("BUY", "0.01", "59000"))
    token = preview["previewToken"]

    waiting = venue.refused(
        "POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000", previewToken=token)
    )
    pending = venue.admin("GET", "/agents/approvals").json()
    approved = venue.admin("POST", f"/agents/approvals/{token}")
    placed = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000", previewToken=token))

    assert preview["needsApproval"] is True and waiting[1] == -9306
    assert [p["previewToken"] for p in pending] == [token] and approved.status_code == 200
    assert placed["status"] == "NEW"


def test_kill_switch_refuses_orders_but_allows_cancel(venue: InProcessVenue) -> None:
    agent_id, agent = new_agent(venue, "kill")
    order = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    killed = venue.admin("POST", f"/agents/{agent_id}/kill", {"on": True})
    refused = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))
    canceled = venue.ok("DELETE", "/fapi/v1/order", agent, {"symbol": BTC, "orderId": order["orderId"]})
    venue.admin("POST", f"/agents/{agent_id}/kill", {"on": False})
    again = venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    assert killed.status_code == 200 and killed.json()["killed"] is True
    assert refused[1] == -9302
    assert canceled["status"] == "CANCELED" and again["status"] == "NEW"


def test_venue_wide_kill_with_flatten_closes_the_position(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "flatten")
    maker = venue.trader("flatten-maker")
    venue.ok("POST", "/fapi/v1/order", maker, limit("SELL", "0.01", "60000"))
    venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "60000"))
    venue.ok("POST", "/fapi/v1/order", maker, limit("BUY", "0.01", "59990"))

    answer = venue.admin("POST", "/kill", {"on": True, "flatten": True})
    positions = venue.ok("GET", "/fapi/v2/positionRisk", agent, {"symbol": BTC})
    refused = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.001", "59000"))
    venue.admin("POST", "/kill", {"on": False})

    assert answer.status_code == 200, answer.text
    assert [r["side"] for r in answer.json()["flattened"]] == ["SELL"]
    assert float(positions[0]["positionAmt"]) == 0
    assert refused[1] == -9302


def test_invalid_policy_is_refused_with_the_field(venue: InProcessVenue) -> None:
    owner = venue.trader("bad-policy")

    answer = venue.admin(
        "POST", "/agents", {"accountId": owner.account_id, "name": "x", "scopes": ["withdraw"]}
    )

    assert answer.status_code == 400 and answer.json()["code"] == -9310 and "withdraw" in answer.json()["msg"]


def test_every_decision_is_in_a_verifiable_audit_chain(venue: InProcessVenue) -> None:
    agent_id, agent = new_agent(venue, "audited", limits={"maxOrderNotional": "100"})
    venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))

    audit = venue.admin("GET", f"/agents/{agent_id}/audit").json()

    assert audit["chain"]["ok"] is True
    assert [(e["action"], e["decision"]) for e in audit["entries"]] == [
        ("create_agent", "allowed"),
        ("place_order", "refused"),
    ]
    assert "maxOrderNotional" in audit["entries"][1]["reason"]
    assert verify_chain(Path(venue.ctx.data_dir) / AUDIT_FILE).ok


def test_agent_key_cannot_place_conditional_orders_past_the_guard(venue: InProcessVenue) -> None:
    _, agent = new_agent(venue, "conditional", limits={"maxOrderNotional": "100"})
    stop = {
        "symbol": BTC,
        "side": "BUY",
        "type": "STOP_MARKET",
        "quantity": "1",
        "triggerPrice": "61000",
        "algoType": "CONDITIONAL",
    }

    via_algo = venue.refused("POST", "/fapi/v1/algoOrder", agent, stop)
    via_order = venue.refused("POST", "/fapi/v1/order", agent, {**stop, "stopPrice": "61000"})

    assert via_algo[1] == -9307
    assert via_order[1] == -4120  # /fapi/v1/order refuses conditional types for every key, as Binance does


def test_session_loss_limit_refuses_new_exposure_after_the_loss_but_lets_it_reduce(tmp_path: Path) -> None:
    with in_process_venue(tmp_path / "data") as venue:
        venue.mark(BTC, "60000")
        _, agent = new_agent(venue, "loser", limits={"sessionLossLimit": "50"})
        maker = venue.trader("loss-maker")
        venue.ok("POST", "/fapi/v1/order", maker, limit("SELL", "0.01", "60000"))
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "60000"))
        venue.mark(BTC, "54000")

        refused = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.002", "54000"))
        venue.ok("POST", "/fapi/v1/order", maker, limit("BUY", "0.01", "54000"))
        reduced = venue.ok("POST", "/fapi/v1/order", agent, limit("SELL", "0.01", "54000", reduceOnly="true"))

    assert refused[1] == -9301 and "sessionLossLimit" in refused[2] and "limit 50 USDT" in refused[2]
    assert "attempted 60" in refused[2]
    assert reduced["status"] in ("FILLED", "NEW")
