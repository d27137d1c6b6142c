"""MCP client sessions through the SDK's own client, against both transports, plus the same agent key
over REST and FIX.

Streamable HTTP: ``/mcp`` on a real ``perpx serve`` child (with its FIX acceptor). Stdio: ``perpx mcp
--paper`` as a child process, exactly as a desktop client starts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from mcp import Client, StdioServerParameters, types
from perpx.agents.audit import AUDIT_FILE
from perpx.cli import app as cli
from perpx.engine.commands import PlaceOrder
from perpx.journal.journal import scan
from perpx.journal.store import JOURNAL_FILE
from perpx.mcp.tools import TOOL_NAMES

from ..fix.test_gateway_e2e import FixClient, order
from ..fix.venue import FixVenue
from ..server.harness import ADMIN_TOKEN, MANUAL_CONFIG, Trader

BTC = "BTCUSDT"
ETH = "ETHUSDT"
ADMIN_HEADERS = {"X-PERPX-ADMIN": ADMIN_TOKEN}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixVenue]:
    process = FixVenue(tmp_path_factory.mktemp("mcp") / "data", config_text=MANUAL_CONFIG).start()
    try:
        yield process
    finally:
        process.stop()


def new_agent(venue: FixVenue, name: str, **policy: Any) -> tuple[str, Trader]:
    owner = venue.trader(name)
    body = {
        "accountId": owner.account_id,
        "name": name,
        "scopes": ["read", "preview", "trade", "cancel"],
        **policy,
    }
    created = venue.admin("POST", "/agents", body)
    assert created.status_code == 200, created.text
    data = created.json()
    return data["agentId"], Trader(owner.account_id, data["apiKey"], data["apiSecret"])


@asynccontextmanager
async def http_session(venue: FixVenue, agent: Trader) -> AsyncIterator[Client]:
    headers = {"X-MBX-APIKEY": agent.api_key, "X-PERPX-SECRET": agent.secret}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=15) as http,
        Client(streamable_http_client(f"{venue.base}/mcp", http_client=http)) as client,
    ):
        yield client


def data(result: Any) -> Any:
    assert not result.is_error, result.content
    content = result.structured_content
    assert content["security"]["trust"] == "untrusted_venue_data"
    return content["data"]


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


@pytest.mark.anyio
async def test_http_session_previews_places_and_refuses_a_reused_token(venue: FixVenue) -> None:
    _, agent = new_agent(venue, "mcp-http", limits={"maxOrderNotional": "1000"}, requirePreview=True)
    async with http_session(venue, agent) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        preview = data(
            await client.call_tool(
                "preview_order", {"symbol": BTC, "side": "BUY", "quantity": "0.01", "price": "59000"}
            )
        )
        placed = data(await client.call_tool("place_order", {"preview_token": preview["previewToken"]}))
        reused = error_text(await client.call_tool("place_order", {"preview_token": preview["previewToken"]}))
        over = data(
            await client.call_tool(
                "preview_order", {"symbol": BTC, "side": "BUY", "quantity": "0.02", "price": "59000"}
            )
        )
        algo = error_text(
            await client.call_tool("start_algo", {"symbol": BTC, "side": "BUY", "quantity": "1"})
        )
        opened = data(await client.call_tool("get_open_orders", {"symbol": BTC}))

    assert sorted(tools) == sorted(TOOL_NAMES)
    read_only, place = tools["get_positions"].annotations, tools["place_order"].annotations
    assert read_only is not None and read_only.read_only_hint is True
    assert place is not None and place.destructive_hint is True
    assert tools["place_order"].output_schema is not None
    assert placed["status"] == "NEW" and [o["orderId"] for o in opened] == [placed["orderId"]]
    assert "-9303" in reused and "already used" in reused
    assert over["previewToken"] is None and "maxOrderNotional" in over["wouldBeRefused"]
    assert "1180" in over["wouldBeRefused"] and "limit 1000" in over["wouldBeRefused"]
    assert "-9304" in algo and "'algo' scope" in algo  # this agent was not given algos


@pytest.mark.anyio
async def test_http_session_over_each_limit_is_refused_with_its_reason(venue: FixVenue) -> None:
    limits = {
        "maxOrderNotional": "2000",
        "maxOpenNotional": "1500",
        "maxPosition": "0.02",
        "maxSlippageBps": 50,
    }
    _, agent = new_agent(venue, "mcp-limits", limits=limits)
    cases = [
        ({"quantity": "0.04", "price": "59000"}, "maxOrderNotional"),
        ({"quantity": "0.03", "price": "59000"}, "maxOpenNotional"),
        ({"quantity": "0.01", "price": "61000"}, "maxSlippageBps"),
    ]
    async with http_session(venue, agent) as client:
        reasons = []
        for params, _ in cases:
            answer = data(await client.call_tool("preview_order", {"symbol": BTC, "side": "BUY", **params}))
            reasons.append(answer["wouldBeRefused"] or "")

    assert [name in reason for (_, name), reason in zip(cases, reasons, strict=True)] == [True] * len(cases)


@pytest.mark.anyio
async def test_http_session_killed_agent_cannot_place_but_can_cancel(venue: FixVenue) -> None:
    agent_id, agent = new_agent(venue, "mcp-kill")
    async with http_session(venue, agent) as client:
        first = data(
            await client.call_tool(
                "preview_order", {"symbol": BTC, "side": "BUY", "quantity": "0.01", "price": "58000"}
            )
        )
        resting = data(await client.call_tool("place_order", {"preview_token": first["previewToken"]}))
        second = data(
            await client.call_tool(
                "preview_order", {"symbol": BTC, "side": "BUY", "quantity": "0.01", "price": "58000"}
            )
        )
        killed = venue.admin("POST", f"/agents/{agent_id}/kill", {"on": True})
        refused = error_text(await client.call_tool("place_order", {"preview_token": second["previewToken"]}))
        canceled = data(
            await client.call_tool("cancel_order", {"symbol": BTC, "order_id": resting["orderId"]})
        )
        cancel_all = data(await client.call_tool("cancel_all", {}))

    assert killed.status_code == 200
    assert "-9302" in refused and "killed" in refused
    assert canceled["status"] == "CANCELED" and cancel_all == {"canceledIn": []}


TABLE_LIMITS = {
    "maxOrderNotional": "2000",
    "maxOpenNotional": "1500",
    "maxDailyNotional": "1250",
    "maxPosition": "0.02",
    "maxSlippageBps": 50,
    "maxOrdersPerMinute": 3,
    "sessionLossLimit": "0.0001",
}
PREVIEW_ROWS = [
    (
        {"symbol": BTC, "quantity": "0.04", "price": "59000"},
        "Agent limit maxOrderNotional refused the order: limit 2000 USDT, attempted 2360 USDT.",
    ),
    (
        {"symbol": BTC, "quantity": "0.03", "price": "59000"},
        "Agent limit maxOpenNotional refused the order: limit 1500 USDT, attempted 1770 USDT.",
    ),
    (
        {"symbol": BTC, "quantity": "0.022", "price": "59000"},
        "Agent limit maxDailyNotional refused the order: limit 1250 USDT, attempted 1298 USDT.",
    ),
    (
        {"symbol": BTC, "quantity": "0.021", "price": "57000"},
        "Agent limit maxPosition refused the order: limit 0.02 BTC, attempted 0.021 BTC in BTCUSDT.",
    ),
    (
        {
            "symbol": ETH,
            "quantity": "0.02",
            "price": "3030",
        },  # no ETH ask: it would rest 100 bps over the mark
        "Agent limit maxSlippageBps refused the order: limit 50 bps, attempted 100.00 bps against the mark.",
    ),
]


async def limit_table_session(venue: FixVenue, client: Client, agent_id: str) -> dict[str, Any]:
    """One agent's whole session under :data:`TABLE_LIMITS` (a fresh account): what each step answered."""

    async def preview(symbol: str, quantity: str, price: str) -> Any:
        return data(
            await client.call_tool(
                "preview_order", {"symbol": symbol, "side": "BUY", "quantity": quantity, "price": price}
            )
        )

    async def place(token: str) -> Any:
        return await client.call_tool("place_order", {"preview_token": token})

    seen: dict[str, Any] = {"tools": sorted(t.name for t in (await client.list_tools()).tools)}
    seen["previews"] = [await preview(**row) for row, _ in PREVIEW_ROWS]
    first, second, third = [await preview(BTC, "0.002", "58000") for _ in range(3)]
    eth = await preview(ETH, "0.02", "3000")
    seen["placed"] = data(await place(first["previewToken"]))
    seen["reused"] = error_text(await place(first["previewToken"]))
    assert venue.admin("POST", f"/agents/{agent_id}/kill", {"on": True}).status_code == 200
    seen["killed"] = error_text(await place(second["previewToken"]))
    seen["cancelled"] = data(
        await client.call_tool("cancel_order", {"symbol": BTC, "order_id": seen["placed"]["orderId"]})
    )
    assert venue.admin("POST", f"/agents/{agent_id}/kill", {"on": False}).status_code == 200
    seen["second"] = data(await place(second["previewToken"]))
    maker = venue.trader(f"table-maker-{agent_id}")
    rested = venue.signed(
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": ETH,
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "price": "3000",
            "quantity": "0.02",
        },
    )
    assert rested.status_code == 200, rested.text
    seen["eth"] = data(await place(eth["previewToken"]))  # taker fee 0.03 USDT: the day's loss
    seen["rate"] = error_text(await place(third["previewToken"]))
    seen["positions"] = data(await client.call_tool("get_positions", {}))
    seen["loss"] = await preview(BTC, "0.002", "58000")
    seen["audit"] = venue.admin("GET", f"/agents/{agent_id}/audit").json()
    return seen


def assert_limit_table(seen: dict[str, Any]) -> None:
    assert seen["tools"] == sorted(TOOL_NAMES)
    assert [p["wouldBeRefused"] for p in seen["previews"]] == [reason for _, reason in PREVIEW_ROWS]
    assert all(p["previewToken"] is None for p in seen["previews"])
    assert seen["placed"]["status"] == "NEW"
    assert "-9303" in seen["reused"] and "already used" in seen["reused"]
    assert "-9302" in seen["killed"] and seen["cancelled"]["status"] == "CANCELED"
    assert seen["second"]["status"] == "NEW" and seen["eth"]["status"] in ("NEW", "FILLED")  # an ack
    assert [(p["symbol"], p["positionAmt"]) for p in seen["positions"]] == [(ETH, "0.02")]
    assert "-9301" in seen["rate"]
    assert "maxOrdersPerMinute refused the order: limit 3, attempted 4 orders within 60 s" in seen["rate"]
    assert seen["loss"]["wouldBeRefused"] == (
        "Agent limit sessionLossLimit refused the order: limit 0.0001 USDT, attempted 0.03 USDT."
    )
    assert seen["audit"]["chain"]["ok"] is True
    refusals = [e.get("code") for e in seen["audit"]["entries"] if e["decision"] == "refused"]
    assert refusals.count(-9302) == 1 and refusals.count(-9301) == 1 and refusals.count(-9303) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["streamable-http", "stdio"])
async def test_session_over_each_limit_kill_and_audit_on_both_transports(
    venue: FixVenue, transport: str
) -> None:
    assert (
        venue.admin("POST", "/marks", {"symbol": ETH, "markPrice": "3000", "indexPrice": "3000"}).status_code
        == 200
    )
    agent_id, agent = new_agent(venue, f"table-{transport}", limits=TABLE_LIMITS)
    if transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable,
            args=[
                "-m",
                "perpx",
                "mcp",
                "--venue",
                venue.base,
                "--key",
                agent.api_key,
                "--secret",
                agent.secret,
            ],
        )
        async with Client(params) as client:
            seen = await asyncio.wait_for(limit_table_session(venue, client, agent_id), 120)
    else:
        async with http_session(venue, agent) as client:
            seen = await asyncio.wait_for(limit_table_session(venue, client, agent_id), 120)

    assert_limit_table(seen)


def test_mcp_endpoint_refuses_a_request_without_an_agent_key(venue: FixVenue) -> None:
    plain = venue.trader("mcp-plain")

    missing = httpx.post(f"{venue.base}/mcp", json={})
    not_agent = httpx.post(
        f"{venue.base}/mcp", json={}, headers={"X-MBX-APIKEY": plain.api_key, "X-PERPX-SECRET": plain.secret}
    )
    wrong = httpx.post(
        f"{venue.base}/mcp", json={}, headers={"Authorization": f"Bearer {plain.api_key}:nope"}
    )

    assert [r.status_code for r in (missing, not_agent, wrong)] == [401, 401, 401]
    assert "agent key" in not_agent.json()["msg"]


def test_fix_orders_of_an_agent_key_meet_the_same_limits(venue: FixVenue) -> None:
    agent_id, agent = new_agent(venue, "fix-agent", limits={"maxOrderNotional": "1000"})
    client = FixClient(venue.fix_port, agent, "AGENT1")
    client.logon()

    client.send("D", order("a-1", "1", "0.010", "59000"))
    accepted = client.expect("8", t150="0")
    client.send("D", order("a-2", "1", "0.020", "59000"))
    refused = client.expect("8", t150="8")
    venue.admin("POST", f"/agents/{agent_id}/kill", {"on": True})
    client.send("D", order("a-3", "1", "0.001", "59000"))
    killed = client.expect("8", t150="8")
    client.close()

    assert accepted.get(11) == "a-1"
    assert "-9301" in (refused.get(58) or "") and "maxOrderNotional" in (refused.get(58) or "")
    assert "-9302" in (killed.get(58) or "")


async def rest_order(client: httpx.AsyncClient, agent: Trader, quantity: str) -> httpx.Response:
    """A signed LIMIT BUY of ``quantity`` BTC at 59,000 on ``/fapi/v1/order``."""
    items = [
        ("timestamp", str(time.time_ns() // 1_000_000)),
        ("symbol", BTC),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("quantity", quantity),
        ("price", "59000"),
        ("timeInForce", "GTC"),
    ]
    payload = urlencode(items)
    signature = hmac.new(agent.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return await client.post(
        "/fapi/v1/order",
        content=f"{payload}&signature={signature}",
        headers={"X-MBX-APIKEY": agent.api_key, "Content-Type": "application/x-www-form-urlencoded"},
    )


def test_concurrent_rest_orders_together_never_exceed_max_open_notional(venue: FixVenue) -> None:
    _, agent = new_agent(venue, "concurrent", limits={"maxOpenNotional": "1000"})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=venue.base, timeout=15) as client:
            return list(await asyncio.gather(*(rest_order(client, agent, "0.005") for _ in range(10))))

    answers = asyncio.run(burst())

    accepted = [a for a in answers if a.status_code == 200]
    refused = [a.json() for a in answers if a.status_code != 200]
    assert len(accepted) == 3  # 3 x 295 = 885 fits under 1,000; a fourth would make 1,180
    assert {r["code"] for r in refused} == {-9301} and all("maxOpenNotional" in r["msg"] for r in refused)


def test_concurrent_rest_and_fix_orders_of_one_key_together_never_exceed_max_open_notional(
    venue: FixVenue,
) -> None:
    _, agent = new_agent(venue, "concurrent-mixed", limits={"maxOpenNotional": "1000"})
    fix = FixClient(venue.fix_port, agent, "MIXED1")
    fix.logon()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=venue.base, timeout=15) as client:
            rest = [asyncio.create_task(rest_order(client, agent, "0.005")) for _ in range(5)]
            for i in range(5):
                fix.send("D", order(f"mixed-{i}", "1", "0.005", "59000"))
            return list(await asyncio.wait_for(asyncio.gather(*rest), 60))

    try:
        answers = asyncio.run(burst())
        reports = [fix.expect("8", t11=f"mixed-{i}") for i in range(5)]
    finally:
        fix.close()

    accepted = sum(a.status_code == 200 for a in answers) + sum(r.get(150) == "0" for r in reports)
    refusals = [a.json()["msg"] for a in answers if a.status_code != 200] + [
        r.get(58) or "" for r in reports if r.get(150) != "0"
    ]
    assert accepted == 3  # 3 x 295 = 885 fits under 1,000 whichever interface each came by
    assert len(refusals) == 7 and all("maxOpenNotional" in text for text in refusals)


def test_kill_racing_rest_and_fix_orders_lets_no_order_of_the_key_be_sequenced_after_it(
    venue: FixVenue,
) -> None:
    agent_id, agent = new_agent(venue, "kill-race")
    fix = FixClient(venue.fix_port, agent, "RACE1")
    fix.logon()
    per_wave = 15

    async def race() -> tuple[list[httpx.Response], httpx.Response]:
        async with (
            httpx.AsyncClient(base_url=venue.base, timeout=15) as client,
            httpx.AsyncClient(base_url=venue.admin_base, timeout=15) as admin,
        ):
            early = [asyncio.create_task(rest_order(client, agent, "0.002")) for _ in range(per_wave)]
            for i in range(per_wave):
                fix.send("D", order(f"race-{i}", "1", "0.002", "59000"))
            await asyncio.sleep(0)
            kill = asyncio.create_task(
                admin.post(f"/admin/v1/agents/{agent_id}/kill", json={"on": True}, headers=ADMIN_HEADERS)
            )
            late = [asyncio.create_task(rest_order(client, agent, "0.002")) for _ in range(per_wave)]
            for i in range(per_wave, 2 * per_wave):
                fix.send("D", order(f"race-{i}", "1", "0.002", "59000"))
            answers = await asyncio.wait_for(asyncio.gather(*early, *late), 60)
            return list(answers), await asyncio.wait_for(kill, 30)

    try:
        rest, kill = asyncio.run(race())
        reports = [fix.expect("8", t11=f"race-{i}") for i in range(2 * per_wave)]
    finally:
        fix.close()
    kill_seq = kill.json()["killSeq"]
    placed = [
        r.seq
        for r in scan(venue.data_dir / JOURNAL_FILE).records
        if isinstance(r.command, PlaceOrder) and r.command.account_id == agent.account_id
    ]
    accepted = sum(a.status_code == 200 for a in rest) + sum(r.get(150) == "0" for r in reports)
    refusals = [a.json()["code"] for a in rest if a.status_code != 200] + [
        r.get(58) for r in reports if r.get(150) != "0"
    ]

    assert kill.status_code == 200, kill.text
    assert placed and max(placed) <= kill_seq
    assert len(placed) == accepted  # every acknowledged order, and nothing else of the key, was sequenced
    assert all(code == -9302 or "-9302" in str(code) for code in refusals)


def test_audit_chain_verifies_and_a_tampered_entry_is_reported(venue: FixVenue, tmp_path: Path) -> None:
    agent_id, _ = new_agent(venue, "audit-check")
    audit = venue.admin("GET", f"/agents/{agent_id}/audit").json()
    copy = tmp_path / "data"
    copy.mkdir()
    lines = (venue.data_dir / AUDIT_FILE).read_text().splitlines()
    (copy / AUDIT_FILE).write_text("\n".join(lines) + "\n")
    runner = CliRunner()

    intact = runner.invoke(cli, ["audit", "verify", "--data", str(copy)])
    entry = json.loads(lines[1])
    entry["decision"] = "allowed" if entry["decision"] != "allowed" else "refused"
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    (copy / AUDIT_FILE).write_text("\n".join(lines) + "\n")
    tampered = runner.invoke(cli, ["audit", "verify", "--data", str(copy)])

    assert audit["chain"]["ok"] is True and audit["entries"][0]["action"] == "create_agent"
    assert intact.exit_code == 0 and "intact" in intact.output
    assert tampered.exit_code == 1 and "broken at entry 2" in tampered.output


@pytest.mark.anyio
async def test_stdio_paper_session_trades_with_preview_tokens(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "perpx", "mcp", "--paper", "--data", str(tmp_path / "paper")]
    )
    async with Client(params) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        markets = data(await client.call_tool("get_markets", {}))
        book = data(await client.call_tool("get_order_book", {"symbol": BTC, "limit": 5}))
        without = data(
            await client.call_tool(
                "preview_order", {"symbol": BTC, "side": "BUY", "quantity": "0.01", "order_type": "MARKET"}
            )
        )
        placed = data(await client.call_tool("place_order", {"preview_token": without["previewToken"]}))
        again = error_text(await client.call_tool("place_order", {"preview_token": without["previewToken"]}))
        positions = data(await client.call_tool("get_positions", {}))

    assert names == sorted(TOOL_NAMES)
    assert BTC in [m["symbol"] for m in markets] and float(book["asks"][0][0]) == 60060
    assert placed["status"] in ("NEW", "FILLED") and "already used" in again
    assert [(p["symbol"], p["positionAmt"]) for p in positions] == [(BTC, "0.01")]


@pytest.mark.anyio
async def test_stdio_paper_session_starts_follows_and_cancels_an_algo(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "perpx", "mcp", "--paper", "--data", str(tmp_path / "paper")]
    )

    async def status_until(client: Client, algo_id: int, done: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + 60
        while True:
            status = data(await client.call_tool("algo_status", {"algo_id": algo_id}))
            if done(status) or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.2)

    async with Client(params) as client:
        too_big = error_text(
            await client.call_tool("start_algo", {"symbol": BTC, "side": "BUY", "quantity": "0.1"})
        )
        started = data(
            await client.call_tool(
                "start_algo",
                {
                    "symbol": BTC,
                    "side": "BUY",
                    "quantity": "0.05",
                    "duration_s": 300,
                    "client_algo_id": "paper-twap",
                },
            )
        )
        working = await status_until(client, started["algoId"], lambda s: Decimal(s["executedQty"]) > 0)
        cancelled = data(await client.call_tool("cancel_algo", {"algo_id": started["algoId"]}))
        ended = await status_until(client, started["algoId"], lambda s: s["algoStatus"] != "WORKING")
        positions = data(await client.call_tool("get_positions", {}))
        costs = data(await client.call_tool("get_tca", {"algo_id": "paper-twap"}))
        mixed = error_text(await client.call_tool("get_tca", {"algo_id": "paper-twap", "symbol": BTC}))

    assert "-9301" in too_big and "maxOrderNotional" in too_big  # the whole parent, against the paper policy
    assert started["success"] is True and started["clientAlgoId"] == "paper-twap"
    assert working["algoStatus"] == "WORKING" and working["executedQty"] == "0.01"
    assert [c["clientOrderId"] for c in working["children"]] == ["paper-twap-c0"]
    assert cancelled["success"] is True
    assert ended["algoStatus"] == "CANCELLED" and ended["executedQty"] == "0.01"
    assert [(p["symbol"], p["positionAmt"]) for p in positions] == [(BTC, "0.01")]
    assert Decimal(costs["filled_qty"]) == Decimal("0.01") and Decimal(costs["fill_rate"]) == Decimal("0.2")
    assert "-1102" in mixed and "algoId" in mixed


@pytest.mark.anyio
@pytest.mark.parametrize("human_says", [True, False, None])
async def test_order_over_the_approval_threshold_asks_the_human_at_the_client(
    venue: FixVenue, human_says: bool | None
) -> None:
    """``None``: the agent does not ask the human (a client without elicitation); the order waits for an admin."""
    _, agent = new_agent(venue, f"mcp-approve-{human_says}", approvalNotional="500", clientApproval=True)
    asked: list[str] = []

    async def human(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": human_says})

    headers = {"X-MBX-APIKEY": agent.api_key, "X-PERPX-SECRET": agent.secret}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=15) as http,
        Client(
            streamable_http_client(f"{venue.base}/mcp", http_client=http),
            elicitation_callback=None if human_says is None else human,
        ) as client,
    ):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        preview = data(
            await client.call_tool(
                "preview_order", {"symbol": BTC, "side": "BUY", "quantity": "0.01", "price": "57000"}
            )
        )
        placed = await client.call_tool(
            "place_order", {"preview_token": preview["previewToken"], "ask_human": human_says is not None}
        )

    assert "approval" not in tools["place_order"].input_schema["properties"]
    assert preview["needsApproval"] is True and preview["approvalBy"] == "admin or client"
    if human_says is None:
        assert asked == [] and "-9306" in error_text(placed)
        return
    assert len(asked) == 1 and "BUY 0.01 BTCUSDT at 57000" in asked[0]
    if human_says:
        assert data(placed)["status"] == "NEW"
    else:
        assert "-9306" in error_text(placed)


@pytest.mark.anyio
async def test_http_session_runs_an_algo_checked_whole_against_the_agent_limits(venue: FixVenue) -> None:
    maker = venue.trader("mcp-algo-maker", "1000000")
    rested = venue.signed(
        "POST",
        "/fapi/v1/order",
        maker,
        {
            "symbol": BTC,
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "price": "60000",
            "quantity": "1",
        },
    )
    assert rested.status_code == 200, rested.text
    agent_id, agent = new_agent(
        venue, "mcp-algo", scopes=["read", "trade", "algo", "cancel"], limits={"maxOrderNotional": "5000"}
    )
    async with http_session(venue, agent) as client:
        too_big = error_text(
            await client.call_tool(
                "start_algo", {"symbol": BTC, "side": "BUY", "quantity": "0.1", "duration_s": 300}
            )
        )
        started = data(
            await client.call_tool(
                "start_algo",
                {
                    "symbol": BTC,
                    "side": "BUY",
                    "quantity": "0.05",
                    "duration_s": 300,
                    "client_algo_id": "mcp-twap",
                },
            )
        )
        for _ in range(5):  # 75 s of venue time: the first and second slices go
            assert venue.admin("POST", "/clock", {"advanceMs": 15_000}).status_code == 200
        working = data(await client.call_tool("algo_status", {"algo_id": started["algoId"]}))
        cancelled = data(await client.call_tool("cancel_algo", {"algo_id": started["algoId"]}))
        assert venue.admin("POST", "/clock", {"advanceMs": 5_000}).status_code == 200
        ended = data(await client.call_tool("algo_status", {"algo_id": started["algoId"]}))
        pov = data(
            await client.call_tool(
                "start_algo",
                {"symbol": BTC, "side": "BUY", "quantity": "0.01", "algo": "POV", "urgency": "LOW"},
            )
        )
        pov_status = data(await client.call_tool("algo_status", {"algo_id": pov["algoId"]}))
        unknown = error_text(await client.call_tool("algo_status", {"algo_id": 10**9}))

    assert "-9301" in too_big and "maxOrderNotional" in too_big and "6000" in too_big  # the whole parent
    assert started["success"] is True and started["clientAlgoId"] == "mcp-twap"
    assert working["algoStatus"] == "WORKING" and working["executedQty"] == "0.02"
    assert [c["clientOrderId"] for c in working["children"]] == ["mcp-twap-c0", "mcp-twap-c1"]
    assert cancelled["success"] is True
    assert ended["algoStatus"] == "CANCELLED" and ended["executedQty"] == "0.02"
    assert pov_status["algoType"] == "POV" and pov_status["urgency"] == "LOW"
    assert "-20124" in unknown
    audit = venue.admin("GET", f"/agents/{agent_id}/audit").json()
    decisions = [(e["action"], e["decision"]) for e in audit["entries"] if e["action"] == "start_algo"]
    assert decisions == [("start_algo", "refused"), ("start_algo", "allowed"), ("start_algo", "allowed")]
