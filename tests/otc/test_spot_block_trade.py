"""Spot-style block trades: the client and the desk swap BTC for USDT on the ledger, all or nothing.

The venue is the Multi-Assets one of the lending tests (BTC listed with an index at 50,000 USDT);
the test kit checks every invariant, money per asset included, after every command.
"""

from __future__ import annotations

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from perpx.engine.codes import RejectCode
from perpx.engine.commands import AnyCommand, BookSpotBlockTrade
from perpx.engine.events import AnyEvent, Event, SpotBlockTradeBooked
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import AccountId, AssetId, Side
from perpx.testkit import Venue
from tests.lending.helpers import rejection
from tests.lending.multi_assets import BTC, USDT, MultiVenue, atoms


def _venue(client_usdt: str = "100000", desk_btc: str = "10") -> MultiVenue:
    v = MultiVenue()
    v.venue.account("client", client_usdt)
    v.venue.account("desk", "100000")
    v.deposit("desk", BTC, desk_btc)
    return v


def _spot(
    v: Venue,
    side: Side,
    btc: str,
    usdt: str,
    *,
    client: AccountId | None = None,
    desk: AccountId | None = None,
    asset: AssetId = BTC,
    quote_id: str = "q-1",
) -> list[Event]:
    return list(
        v.apply(
            BookSpotBlockTrade(
                ts_ns=v.tick(),
                client_id=v.names["client"] if client is None else client,
                desk_id=v.names["desk"] if desk is None else desk,
                base_asset=asset,
                side=side,
                base_atoms=atoms(btc),
                quote_atoms=atoms(usdt),
                quote_id=quote_id,
            )
        ).own
    )


def _wallets(v: MultiVenue, name: str) -> tuple[int, int]:
    return v.balance(name, BTC), v.balance(name, USDT)


@pytest.mark.parametrize(
    ("side", "client_after", "desk_after"),
    [
        (Side.BUY, ("1", "49990"), ("9", "150010")),
        (Side.SELL, None, None),
    ],
)
def test_spot_block_trade_swaps_both_assets_between_client_and_desk(
    side: Side, client_after: tuple[str, str] | None, desk_after: tuple[str, str] | None
) -> None:
    v = _venue()
    if side is Side.SELL:
        v.deposit("client", BTC, "2")
        client_after, desk_after = ("1", "150010"), ("11", "49990")
    assert client_after is not None and desk_after is not None

    events = _spot(v.venue, side, "1", "50010")

    booked = [e for e in events if isinstance(e, SpotBlockTradeBooked)]
    assert [(e.account_id, e.side, e.is_desk) for e in booked] == [
        (v.venue.names["client"], side, False),
        (v.venue.names["desk"], Side.SELL if side is Side.BUY else Side.BUY, True),
    ]
    assert booked[0].trade_id == booked[1].trade_id
    assert _wallets(v, "client") == (atoms(client_after[0]), atoms(client_after[1]))
    assert _wallets(v, "desk") == (atoms(desk_after[0]), atoms(desk_after[1]))
    assert [(e.base_balance_atoms, e.quote_balance_atoms) for e in booked] == [
        _wallets(v, "client"),
        _wallets(v, "desk"),
    ]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("desk short of BTC", RejectCode.SPOT_BLOCK_FUNDS),
        ("client short of USDT", RejectCode.SPOT_BLOCK_FUNDS),
        ("client USDT held as margin", RejectCode.SPOT_BLOCK_FUNDS),
        ("client sells BTC it lacks", RejectCode.SPOT_BLOCK_FUNDS),
        ("settlement asset as base", RejectCode.SPOT_BLOCK_BASE_ASSET),
        ("unlisted asset", RejectCode.UNKNOWN_ASSET),
        ("zero base amount", RejectCode.AMOUNT_NOT_POSITIVE),
        ("negative quote amount", RejectCode.AMOUNT_NOT_POSITIVE),
        ("same account", RejectCode.BLOCK_SAME_ACCOUNT),
        ("insurance fund as desk", RejectCode.BLOCK_INSURANCE_ACCOUNT),
        ("unknown client", RejectCode.UNKNOWN_ACCOUNT),
        ("empty quote id", RejectCode.BLOCK_QUOTE_ID),
        ("collateral backing margin", RejectCode.BALANCE_INSUFFICIENT),
    ],
)
def test_spot_block_trade_refusals_move_nothing(case: str, code: RejectCode) -> None:
    v = _venue(client_usdt="60000", desk_btc="2")
    venue = v.venue
    client, desk = venue.names["client"], venue.names["desk"]
    kwargs: dict[str, object] = {}
    side, btc, usdt = Side.BUY, "1", "50000"
    if case == "desk short of BTC":
        btc = "2.5"
    elif case == "client short of USDT":
        usdt = "60000.01"
    elif case == "client USDT held as margin":
        v.trade("client", "bob", "1", "50000")  # margin in use: 59,000 of the 60,000 is not free
        usdt = "59000"
    elif case == "client sells BTC it lacks":
        side = Side.SELL
    elif case == "settlement asset as base":
        kwargs["asset"] = USDT
    elif case == "unlisted asset":
        kwargs["asset"] = AssetId("DOGE")
    elif case == "zero base amount":
        btc = "0"
    elif case == "negative quote amount":
        usdt = "-1"
    elif case == "same account":
        kwargs["desk"] = client
    elif case == "insurance fund as desk":
        kwargs["desk"] = INSURANCE_ACCOUNT
    elif case == "unknown client":
        kwargs["client"] = AccountId(999)
    elif case == "empty quote id":
        kwargs["quote_id"] = ""
    elif case == "collateral backing margin":
        v.deposit("client", BTC, "1")
        v.withdraw("client", USDT, "60000")
        v.mode("client")
        v.trade("client", "bob", "0.5", "50000")  # its only margin is the BTC collateral
        side = Side.SELL
    balances = {a: dict(venue.engine.accounts[a].balances) for a in (client, desk)}

    events = _spot(venue, side, btc, usdt, **kwargs)  # type: ignore[arg-type]

    refused = rejection(events)
    assert refused is not None and refused[0] == code, refused
    assert refused[1]
    assert not any(isinstance(e, SpotBlockTradeBooked) for e in events)
    assert {a: dict(venue.engine.accounts[a].balances) for a in (client, desk)} == balances
    assert v.balance("desk", BTC) == atoms("2")


def test_spot_block_trade_revalues_multi_assets_collateral_of_the_buyer() -> None:
    v = _venue()
    v.mode("client")
    before = v.collateral("client")

    _spot(v.venue, Side.BUY, "1", "50000")

    assert before == 0
    assert v.collateral("client") == atoms("47500")  # 1 BTC at 50,000 less the 5% haircut


def test_spot_block_trade_command_and_events_survive_the_journal_codec() -> None:
    v = _venue()
    command = BookSpotBlockTrade(
        ts_ns=v.venue.tick(),
        client_id=v.venue.names["client"],
        desk_id=v.venue.names["desk"],
        base_asset=BTC,
        side=Side.BUY,
        base_atoms=atoms("0.5"),
        quote_atoms=atoms("25000"),
        quote_id="q-codec",
    )
    events = list(v.venue.apply(command).own)

    assert msgspec.msgpack.decode(msgspec.msgpack.encode(command), type=AnyCommand) == command
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(events), type=list[AnyEvent]) == events


_TRADES = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=-(10**8), max_value=3 * 10**8),
        st.integers(min_value=-(10**9), max_value=2 * 10**13),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trades=_TRADES)
def test_spot_block_trades_conserve_each_asset(trades: list[tuple[Side, int, int]]) -> None:
    v = _venue(client_usdt="100000", desk_btc="2")
    v.deposit("client", BTC, "1")
    engine = v.venue.engine
    parties = (v.venue.names["client"], v.venue.names["desk"])
    totals = {a: sum(engine.accounts[p].balance(a) for p in parties) for a in (BTC, USDT)}

    for index, (side, base_atoms, quote_atoms) in enumerate(trades):
        v.venue.apply(
            BookSpotBlockTrade(
                ts_ns=v.venue.tick(),
                client_id=parties[0],
                desk_id=parties[1],
                base_asset=BTC,
                side=side,
                base_atoms=base_atoms,
                quote_atoms=quote_atoms,
                quote_id=f"q-{index}",
            )
        )
        for asset, total in totals.items():
            assert sum(engine.accounts[p].balance(asset) for p in parties) == total
        assert all(engine.accounts[p].balance(a) >= 0 for p in parties for a in (BTC, USDT))
