"""The native prototype (``perpx.native``) against the engine: same commands, same answers, same state.

Each command goes to a fresh :class:`~perpx.engine.engine.Engine` and to the native engine. The
engine's events are folded into the native event vocabulary (:func:`engine_answer`): the
command's answer (order id, account id, 0, or the reject code), then every fill (trade id, taker
and maker order and account, price, quantity, both fees and both realised PnLs), expiry (with its
reason) and cancel, in order. After the stream the resting book (queue order included), every
account's wallet, position, cost, realised PnL, order margin, open-order sums and 30-day volume,
the fees collected, open interest and the id counters must be equal too.

Two streams: the matching benchmark's own (``benchmarks/matching.py``: passive places, cancels,
sweeps, no refusal) and a seeded mix that makes the margin check refuse (small wallets, marks
and indexes that move, orders outside the filters, every self-trade prevention mode, unknown
accounts and orders, fee tiers reached and expired by the clock).

The native module is compiled on first use (a few seconds); without Cython or a C compiler the
tests are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import random
from array import array
from collections.abc import Iterable, Sequence

import pytest

from matching import MARKET, START_NS, build_workload
from perpx.engine.codes import RejectCode
from perpx.engine.commands import (
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetMarkPrice,
    StpMode,
    TimeInForce,
    Withdraw,
)
from perpx.engine.config import FeeTier, VenueConfig, default_config
from perpx.engine.engine import Engine
from perpx.engine.events import (
    AccountCreated,
    CommandRejected,
    DepositApplied,
    Event,
    MarkClamped,
    MarkPriceSet,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    TransferRejected,
)
from perpx.engine.values import AccountId, AssetId, ClientOrderId, OrderId, Side, TxId
from perpx.native import (
    NativeEngine,
    NativeRangeError,
    NativeUnavailable,
    NativeUnsupported,
    native_engine,
)

USDT = 10**8
IGNORED = (DepositApplied, MarkPriceSet, MarkClamped)
"""Events the native engine answers with a status only (or not at all)."""


def new_native(config: VenueConfig) -> NativeEngine:
    try:
        return native_engine(config, MARKET)
    except NativeUnavailable as exc:
        pytest.skip(f"the native prototype cannot be built here: {exc}")


def engine_answer(outcome: Iterable[Event]) -> tuple[int, list[tuple[object, ...]]]:
    """The engine's events of one command in the native vocabulary: ``(status, events)``."""
    status = 0
    out: list[tuple[object, ...]] = []
    taker: OrderFilled | None = None
    for event in outcome:
        if isinstance(event, OrderAccepted):
            status = event.order_id
        elif isinstance(event, AccountCreated):
            status = event.account_id
        elif isinstance(event, OrderRejected | CommandRejected | TransferRejected):
            status = int(event.code)
        elif isinstance(event, OrderFilled):
            if not event.is_maker:
                taker = event
                continue
            assert taker is not None and taker.trade_id == event.trade_id
            out.append(
                (
                    "fill",
                    event.trade_id,
                    taker.order_id,
                    event.order_id,
                    taker.account_id,
                    event.account_id,
                    event.price_ticks,
                    event.qty_lots,
                    taker.fee_atoms,
                    event.fee_atoms,
                    taker.realized_pnl_atoms,
                    event.realized_pnl_atoms,
                )
            )
        elif isinstance(event, OrderExpired):
            out.append(("expired", event.order_id, event.account_id, event.leaves_lots, event.reason.value))
        elif isinstance(event, OrderCanceled):
            out.append(("canceled", event.order_id, event.account_id, event.leaves_lots))
        elif not isinstance(event, IGNORED):
            raise AssertionError(f"the stream left the native subset: the engine emitted {event}")
    return status, out


def run_both(
    config: VenueConfig, commands: Sequence[Command]
) -> tuple[Engine, NativeEngine, list[tuple[int, list[tuple[object, ...]]]]]:
    """Apply ``commands`` to both, asserting equal answers command by command; return both and the answers."""
    native = new_native(config)
    engine = Engine(config)
    answers: list[tuple[int, list[tuple[object, ...]]]] = []
    for n, command in enumerate(commands):
        expected = engine_answer(engine.apply(command))
        got = (native.apply(command), native.events())
        assert got == expected, f"command {n}: {command}"
        answers.append(expected)
    return engine, native, answers


def assert_same_state(engine: Engine, native: NativeEngine) -> None:
    """Book in queue order, every account's figures, fees, open interest and id counters."""
    book = engine.books[MARKET]
    resting = [
        (o.order_id, o.account_id, int(o.side), o.price_ticks, o.leaves_lots)
        for side in (book.bids, book.asks)
        for o in side.orders()
    ]
    assert native.book.resting() == resting
    assert native.book.depth() == (book.bids.depth(), book.asks.depth())
    asset = engine.asset
    assert native.accounts_count == engine.next_account_id - 1
    for account_id, account in engine.accounts.items():
        if account_id == 0:
            continue  # the venue's own account: no trading, not in the prototype
        position = account.positions.get(MARKET)
        figures = native.account(account_id)
        expected = {
            "wallet_atoms": account.balance(asset),
            "volume_30d_atoms": account.volume_30d_atoms,
        }
        if position is not None:
            expected |= {
                "qty_lots": position.qty_lots,
                "cost_atoms": position.cost_atoms,
                "realized_pnl_atoms": position.realized_pnl_atoms,
                "order_margin_atoms": position.order_margin_atoms,
                "buy_qty_lots": position.buy_qty_lots,
                "buy_notional_atoms": position.buy_notional_atoms,
                "sell_qty_lots": position.sell_qty_lots,
                "sell_notional_atoms": position.sell_notional_atoms,
                "open_orders": len(position.open_orders),
            }
        assert {key: figures[key] for key in expected} == expected, f"account {account_id}"
        assert figures["available_atoms"] == engine.risk(AccountId(account_id)).available_atoms
    assert native.fees_atoms == engine.fees_atoms.get(asset, 0)
    assert native.open_interest_lots == engine.open_interest_lots[MARKET]
    assert (native.next_order_id, native.next_trade_id) == (engine.next_order_id, engine.next_trade_id)


def test_native_book_fills_the_benchmark_stream_as_the_engine_does() -> None:
    workload = build_workload(20_000, seed=3)
    engine, native, answers = run_both(default_config(), [*workload.setup, *workload.stream])

    fills = sum(1 for _, events in answers for event in events if event[0] == "fill")
    assert 2 * fills == workload.fills > 1_000
    assert_same_state(engine, native)


def margin_stream(seed: int, commands: int) -> list[Command]:
    """A seeded mix that the margin check, the filters and self-trade prevention refuse or shape.

    Twelve accounts with 200 to 20,000 USDT (a thirteenth id is never opened), a mark near 30,000
    that moves by up to 1% with an index up to 1% away from it, orders from 1 lot (below the
    minimum notional) to 130 BTC (beyond what a wallet or ``market_max_qty`` allows), prices up
    to 7% from the mark (beyond the percent-price band), cancels of orders that may be filled,
    foreign or unknown. The clock steps 15 minutes a command, so 30-day volume both reaches fee
    tiers and leaves the window.
    """
    rng = random.Random(seed)
    config = default_config()
    ts = START_NS
    step_ns = 15 * 60 * 10**9
    out: list[Command] = []

    def tick() -> int:
        nonlocal ts
        ts += step_ns
        return ts

    accounts = 12
    for n in range(1, accounts + 1):
        out.append(CreateAccount(ts_ns=tick(), name=f"acct-{n}"))
        out.append(
            Deposit(
                ts_ns=tick(),
                account_id=AccountId(n),
                asset=config.settlement_asset,
                amount_atoms=rng.randint(200, 20_000) * USDT,
                tx_id=TxId(f"dep-{n}"),
            )
        )
    out.append(
        Deposit(
            ts_ns=tick(),
            account_id=AccountId(1),
            asset=config.settlement_asset,
            amount_atoms=USDT,
            tx_id=TxId("dep-1"),
        )
    )
    out.append(
        Deposit(
            ts_ns=tick(),
            account_id=AccountId(99),
            asset=config.settlement_asset,
            amount_atoms=USDT,
            tx_id=TxId("dep-99"),
        )
    )
    out.append(
        Deposit(
            ts_ns=tick(),
            account_id=AccountId(2),
            asset=AssetId("BTC"),
            amount_atoms=USDT,
            tx_id=TxId("dep-btc"),
        )
    )
    mark = 300_000
    out.append(SetMarkPrice(ts_ns=tick(), market=MARKET, index_ticks=mark, mark_ticks=mark))
    placed = 0
    stp_modes = list(StpMode)
    while len(out) < commands:
        draw = rng.random()
        if draw < 0.03:
            mark = max(297_000, min(303_000, mark + rng.randint(-1_500, 1_500)))
            index = mark + rng.randint(-3_000, 3_000) if rng.random() < 0.5 else mark
            out.append(SetMarkPrice(ts_ns=tick(), market=MARKET, index_ticks=index, mark_ticks=mark))
        elif draw < 0.25 and placed:
            order_id = OrderId(rng.randint(1, placed + 2))
            out.append(
                CancelOrder(
                    ts_ns=tick(),
                    account_id=AccountId(rng.randint(1, accounts + 1)),
                    market=MARKET,
                    order_id=order_id,
                )
            )
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            qty = rng.choice([rng.randint(1, 40), rng.randint(40, 2_000), rng.randint(2_000, 130_000)])
            account = AccountId(rng.randint(1, accounts) if rng.random() < 0.98 else accounts + 1)
            stp = rng.choice(stp_modes)
            kind = rng.random()
            if kind < 0.15:
                out.append(
                    PlaceOrder(
                        ts_ns=tick(),
                        account_id=account,
                        market=MARKET,
                        side=side,
                        order_type=OrderType.MARKET,
                        qty_lots=qty,
                        tif=TimeInForce.IOC,
                        stp=stp,
                    )
                )
            else:
                spread = rng.random()
                if spread < 0.88:
                    away = rng.randint(-2_100, 300)  # near the touch, some through it
                elif spread < 0.97:
                    away = rng.randint(-2_100, 2_100)  # through the book
                else:
                    away = rng.randint(14_000, 22_000) * rng.choice((-1, 1))  # around the 5% band
                price = mark + side * away
                out.append(
                    PlaceOrder(
                        ts_ns=tick(),
                        account_id=account,
                        market=MARKET,
                        side=side,
                        order_type=OrderType.LIMIT,
                        qty_lots=qty,
                        price_ticks=price,
                        tif=TimeInForce.GTC if kind < 0.75 else TimeInForce.IOC,
                        stp=stp,
                    )
                )
            placed += 1
    return out


def low_tier_config() -> VenueConfig:
    """The default venue with fee tiers a small account reaches: 20,000 and 300,000 USDT of 30-day
    volume (the top tier pays makers a rebate, capped by what the fee account holds)."""
    return dataclasses.replace(
        default_config(),
        fee_tiers=(
            FeeTier(min_30d_volume_atoms=0, maker_e8=20_000, taker_e8=50_000),
            FeeTier(min_30d_volume_atoms=20_000 * USDT, maker_e8=16_000, taker_e8=40_000),
            FeeTier(min_30d_volume_atoms=300_000 * USDT, maker_e8=-5_000, taker_e8=30_000),
        ),
    )


def test_native_margin_check_refuses_what_the_engine_refuses() -> None:
    config = low_tier_config()
    engine, native, answers = run_both(config, margin_stream(seed=11, commands=6_000))

    codes = {status for status, _ in answers if status < 0}
    for code in (
        RejectCode.MARGIN_INSUFFICIENT,
        RejectCode.MIN_NOTIONAL,
        RejectCode.PERCENT_PRICE,
        RejectCode.QTY_ABOVE_MAX,
        RejectCode.UNKNOWN_ORDER,
        RejectCode.UNKNOWN_ACCOUNT,
        RejectCode.DUPLICATE_TX,
        RejectCode.UNKNOWN_ASSET,
    ):
        assert code in codes, f"the stream never exercised {code.name}"
    reasons = {event[4] for _, events in answers for event in events if event[0] == "expired"}
    assert {"IOC_REMAINDER", "STP_MAKER", "STP_TAKER"} <= reasons
    assert sum(1 for _, events in answers for event in events if event[0] == "fill") > 300
    fees = [
        fee
        for _, events in answers
        for event in events
        if event[0] == "fill" and isinstance(fee := event[9], int)
    ]
    assert min(fees) < 0 < max(fees), "no maker rebate, or no maker fee: the tiers were not exercised"
    assert_same_state(engine, native)
    # last: reading a tier expires old volume in the engine (the native engine does it on its next fill)
    tiers = {engine.fee_rates(account) for account in engine.accounts.values()}
    assert len(tiers) == len(config.fee_tiers), "some tier was never reached, or never left"


def test_native_refuses_out_of_range_integers_before_changing_anything() -> None:
    config = default_config()
    native = new_native(config)
    setup: list[Command] = [
        CreateAccount(ts_ns=1, name="a"),
        Deposit(
            ts_ns=2,
            account_id=AccountId(1),
            asset=config.settlement_asset,
            amount_atoms=10**6 * USDT,
            tx_id=TxId("d"),
        ),
        SetMarkPrice(ts_ns=3, market=MARKET, index_ticks=300_000, mark_ticks=300_000),
    ]
    for command in setup:
        assert native.apply(command) >= 0

    def order(qty_lots: int, price_ticks: int) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=4,
            account_id=AccountId(1),
            market=MARKET,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty_lots=qty_lots,
            price_ticks=price_ticks,
        )

    with pytest.raises(NativeRangeError, match="qty_lots"):
        native.apply(order(2**70, 300_000))
    with pytest.raises(NativeRangeError, match="price_ticks"):
        native.apply(order(10, -(2**64)))
    with pytest.raises(NativeRangeError, match="amount_atoms"):
        native.apply(
            Deposit(
                ts_ns=5,
                account_id=AccountId(1),
                asset=config.settlement_asset,
                amount_atoms=2**62,
                tx_id=TxId("e"),
            )
        )
    assert native.next_order_id == 1 and native.book.resting() == [] and native.events() == []
    assert native.account(1)["wallet_atoms"] == 10**6 * USDT and native.now_ns == 3
    # in range but beyond the market's filters: the engine's own refusals
    assert native.apply(order(2_000_000, 300_000)) == RejectCode.QTY_ABOVE_MAX
    assert native.apply(order(10, 10**12)) == RejectCode.PRICE_ABOVE_MAX
    # a mark at max_price lets the filters pass 10**20 atoms of notional: beyond the prototype's range
    assert native.apply(SetMarkPrice(ts_ns=7, market=MARKET, index_ticks=10**10, mark_ticks=10**10)) == 0
    with pytest.raises(NativeRangeError, match="2\\*\\*61"):
        native.apply(order(10**6, 10**10))
    assert native.next_order_id == 1 and native.events() == [] and native.now_ns == 7


def test_native_refuses_commands_outside_its_subset() -> None:
    config = default_config()
    native = new_native(config)
    assert native.apply(CreateAccount(ts_ns=1, name="a")) == 1

    def limit(
        tif: TimeInForce = TimeInForce.GTC, reduce_only: bool = False, coid: str | None = None
    ) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=2,
            account_id=AccountId(1),
            market=MARKET,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty_lots=10,
            price_ticks=300_000,
            tif=tif,
            reduce_only=reduce_only,
            client_order_id=None if coid is None else ClientOrderId(coid),
        )

    for command in (
        limit(tif=TimeInForce.FOK),
        limit(tif=TimeInForce.GTX),
        limit(reduce_only=True),
        limit(coid="c"),
        CancelOrder(ts_ns=3, account_id=AccountId(1), market=MARKET, client_order_id=ClientOrderId("c")),
        Withdraw(
            ts_ns=4, account_id=AccountId(1), asset=config.settlement_asset, amount_atoms=1, tx_id=TxId("w")
        ),
    ):
        with pytest.raises(NativeUnsupported):
            native.apply(command)
    assert native.next_order_id == 1 and native.events() == []


def test_native_fill_guard_expires_a_maker_the_fill_would_bankrupt() -> None:
    """A bid placed at 30,000 that the mark has left 6% below: filling it would take its owner below zero.

    Account 1 (1,000 USDT, no position) bids 0.6 BTC at 30,000 (900 USDT of initial margin). The
    mark falls to 28,200; account 2 sells into the bid. Trading 0.6 BTC at 30,000 against a mark of
    28,200 loses 1,080 USDT at once: the maker expires (``BANKRUPTCY``), the next bid (account 3)
    fills (2,990 USDT: taker fee 1.495, maker fee 0.598 USDT), the taker's remainder expires.
    """
    config = default_config()
    asset = config.settlement_asset

    def place(
        ts_ns: int, account_id: int, side: Side, qty_lots: int, price_ticks: int, tif: TimeInForce
    ) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=ts_ns,
            account_id=AccountId(account_id),
            market=MARKET,
            side=side,
            order_type=OrderType.LIMIT,
            qty_lots=qty_lots,
            price_ticks=price_ticks,
            tif=tif,
        )

    commands: list[Command] = []
    for n, usdt in ((1, 1_000), (2, 1_000_000), (3, 1_000_000)):
        commands.append(CreateAccount(ts_ns=n, name=f"a{n}"))
        commands.append(
            Deposit(
                ts_ns=n, account_id=AccountId(n), asset=asset, amount_atoms=usdt * USDT, tx_id=TxId(f"d{n}")
            )
        )
    commands += [
        SetMarkPrice(ts_ns=10, market=MARKET, index_ticks=300_000, mark_ticks=300_000),
        place(11, 1, Side.BUY, 600, 300_000, TimeInForce.GTC),
        place(12, 3, Side.BUY, 100, 299_000, TimeInForce.GTC),
        SetMarkPrice(ts_ns=13, market=MARKET, index_ticks=282_000, mark_ticks=282_000),
        place(14, 2, Side.SELL, 1_000, 290_000, TimeInForce.IOC),
    ]
    engine, native, answers = run_both(config, commands)

    assert answers[-1] == (
        3,
        [
            ("expired", 1, 1, 600, "BANKRUPTCY"),
            ("fill", 1, 3, 2, 2, 3, 299_000, 100, 149_500_000, 59_800_000, 0, 0),
            ("expired", 3, 2, 900, "IOC_REMAINDER"),
        ],
    )
    assert_same_state(engine, native)


def test_native_batch_applies_the_stream_as_apply_does() -> None:
    """``run_batch`` over the packed stream (the benchmark's C loop) answers and ends as ``apply`` does."""
    workload = build_workload(5_000, seed=5)
    config = default_config()
    one_by_one, batched = new_native(config), new_native(config)
    for command in workload.setup:
        assert one_by_one.apply(command) >= 0 and batched.apply(command) >= 0
    expected = array("q", [one_by_one.apply(command) for command in workload.stream])
    answers = array("q", bytes(8 * len(workload.stream)))

    assert batched.run_batch(batched.pack(workload.stream), answers) == len(workload.stream)
    assert answers == expected
    assert batched.events() == one_by_one.events()
    assert batched.book.resting() == one_by_one.book.resting()
    assert [batched.account(n) for n in range(1, 101)] == [one_by_one.account(n) for n in range(1, 101)]
