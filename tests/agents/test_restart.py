"""Agent state that decides what an agent may do survives a restart: policy, kill switches, daily notional,
and the audit chain goes on from where it stopped."""

from __future__ import annotations

from pathlib import Path

from perpx.agents.audit import AUDIT_FILE, verify_chain

from ..server.inprocess import in_process_venue
from .helpers import BTC, limit, new_agent


def test_kill_switch_daily_notional_and_audit_chain_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data) as venue:
        venue.mark(BTC, "60000")
        agent_id, agent = new_agent(venue, "durable", limits={"maxDailyNotional": "1000"})
        _, killed = new_agent(venue, "durable-killed")
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))
        venue.admin(
            "POST", f"/agents/{venue.admin('GET', '/agents').json()[0]['agentId']}/kill", {"on": False}
        )
        killed_id = next(
            a["agentId"] for a in venue.admin("GET", "/agents").json() if a["name"] == "durable-killed"
        )
        venue.admin("POST", f"/agents/{killed_id}/kill", {"on": True})
        entries_before = verify_chain(data / AUDIT_FILE).entries

    with in_process_venue(data) as venue:
        over_daily = venue.refused("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))
        still_killed = venue.refused("POST", "/fapi/v1/order", killed, limit("BUY", "0.01", "59000"))
        agents = {a["name"]: a for a in venue.admin("GET", "/agents").json()}

    assert (
        over_daily[1] == -9301 and "maxDailyNotional" in over_daily[2] and "attempted 1180" in over_daily[2]
    )
    assert still_killed[1] == -9302
    assert agents["durable"]["agentId"] == agent_id and agents["durable"]["limits"] == {
        "maxDailyNotional": "1000"
    }
    report = verify_chain(data / AUDIT_FILE)
    assert report.ok and report.entries == entries_before + 2


def test_a_broken_audit_log_stops_agents_but_not_other_accounts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with in_process_venue(data) as venue:
        venue.mark(BTC, "60000")
        _, agent = new_agent(venue, "audited")
        venue.ok("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))
    log = data / AUDIT_FILE
    log.write_text(log.read_text().replace('"allowed"', '"refused"', 1))

    with in_process_venue(data) as venue:
        plain = venue.trader("plain")
        stopped = venue.signed("POST", "/fapi/v1/order", agent, limit("BUY", "0.01", "59000"))
        placed = venue.ok("POST", "/fapi/v1/order", plain, limit("BUY", "0.01", "59000"))

    assert stopped.status_code == 503 and stopped.json()["code"] == -9308
    assert "broken at entry 1" in stopped.json()["msg"]
    assert placed["status"] == "NEW"
