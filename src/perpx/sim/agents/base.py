"""What every simulated agent is: an object with ``setup(ctx)`` and ``act(ctx, now_ns)``.

An agent trades only through the public command interface and only with accounts it opened
itself (through :meth:`AgentContext.open_account`). It reads the venue through the engine's public
query objects: ``engine.books`` (best prices and levels), ``engine.marks``, ``engine.indexes``,
``engine.last_trade_ticks``, ``engine.accounts[...]`` read-only, ``engine.risk(account)`` and
``engine.pricing.view(market)``. It draws every random number from ``ctx.rng`` and stamps every
command with the time it is given. The module does no I/O.

How agents are driven
---------------------
Callers drive agents through :class:`perpx.sim.driver.SimDriver` (the simulator's runner, the
server's demo), which:

1. builds agents from config tables with :func:`perpx.sim.agents.build_agents`;
2. gives each one an :class:`AgentContext` with its own ``rng`` and a ``submit(command) ->
   events`` that goes through the caller's sequencer (the journaled store, the server's queue);
3. calls ``setup(ctx)`` once (it opens and funds the agent's accounts through ``ctx.submit`` and
   returns further set-up commands), submits what it returns, then every ``agent.interval_s``
   seconds sets ``ctx.now_ns`` and calls ``act(ctx, now_ns)``, whose commands the caller applies
   in order.

Units: an agent's parameters are decimal amounts a person writes (``"20000"`` USDT, ``"0.5"`` BTC);
:class:`AgentContext` turns them into ticks, lots and atoms (prices to the nearest tick, quantities
down to whole lots, both through ``Decimal``, never ``float * scale``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

from perpx.engine import formulas
from perpx.engine.commands import (
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    SetLeverage,
    TimeInForce,
)
from perpx.engine.config import MarketSpec
from perpx.engine.engine import Engine
from perpx.engine.events import AccountCreated, Event
from perpx.engine.values import AccountId, MarketId, Side, TxId
from perpx.sim.sources import price_to_ticks

Submit = Callable[[Command], list[Event]]


class AgentError(ValueError):
    """An agent description that cannot be used; the message names the agent and the key."""


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AgentError(f"{what} was {value!r}, which is not finite")
        return Decimal(repr(value))
    if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
        try:
            result = Decimal(value)
        except ArithmeticError as exc:
            raise AgentError(f"{what} was {value!r}, which is not a number") from exc
        if result.is_finite():
            return result
    raise AgentError(f"{what} was {value!r}, which is not a number")


class AgentContext:
    """An agent's window on the venue: read-only engine access, a ``submit`` function, its own rng.

    Parameters
    ----------
    engine
        The venue engine, for reading (never call its methods that change state).
    submit
        Sends one command through the driver's sequencer and returns its events.
    rng
        The agent's own seeded generator.
    now_ns
        Venue time of the current call; the driver sets it before ``setup`` and each ``act``.
    """

    def __init__(self, engine: Engine, submit: Submit, rng: random.Random, now_ns: int = 0) -> None:
        self.engine = engine
        self.submit = submit
        self.rng = rng
        self.now_ns = now_ns
        self._tx = 0

    # ------------------------------------------------------------------ specs and units

    @property
    def markets(self) -> list[MarketId]:
        """Every listed market, in config order."""
        return list(self.engine.specs)

    def spec(self, market: MarketId) -> MarketSpec:
        return self.engine.specs[market]

    def ticks(self, market: MarketId, price: float | Decimal | str) -> int:
        """A price as whole ticks of ``market``, to the nearest tick of its current filter (at least one).

        The result is in the market's price unit and on the tick filter the engine holds now (an
        operator may have made it coarser than the unit), so an agent's order is never off the grid.
        """
        spec = self.engine.specs[market]
        return price_to_ticks(price, spec.filter_tick_size) * spec.tick_step_ticks

    def lots(self, market: MarketId, qty: float | Decimal | str) -> int:
        """A base quantity as whole lots of ``market``, rounded down to its current step filter."""
        spec = self.engine.specs[market]
        value = _decimal(qty, "quantity") / spec.filter_lot_size
        return int(value.to_integral_value(rounding=ROUND_DOWN)) * spec.lot_step_lots

    def atoms(self, amount: object) -> int:
        """An amount of the settlement asset as whole atoms, rounded down."""
        value = _decimal(amount, "amount") / self.engine.config.settlement.atom
        return int(value.to_integral_value(rounding=ROUND_DOWN))

    def price(self, market: MarketId, ticks: int) -> float:
        """Ticks back to a float price, for an agent's own reasoning (never for money)."""
        return ticks * float(self.engine.specs[market].tick_size)

    def lots_for_notional(self, market: MarketId, notional_atoms: int, price_ticks: int) -> int:
        """Whole lots whose notional at ``price_ticks`` is at most ``notional_atoms``."""
        lot_atoms = formulas.notional_atoms(price_ticks, 1, self.engine.specs[market].contract_atoms)
        return notional_atoms // lot_atoms if lot_atoms > 0 else 0

    def tradable_lots(self, market: MarketId, lots: int, price_ticks: int) -> bool:
        """True when ``lots`` at ``price_ticks`` passes the market's min quantity and min notional."""
        spec = self.engine.specs[market]
        notional = formulas.notional_atoms(price_ticks, lots, spec.contract_atoms)
        return lots >= spec.min_qty_lots and notional >= spec.min_notional_atoms

    # ------------------------------------------------------------------ venue reads

    def mark_ticks(self, market: MarketId) -> int | None:
        return self.engine.marks.get(market)

    def index_ticks(self, market: MarketId) -> int | None:
        return self.engine.indexes.get(market)

    def reference_ticks(self, market: MarketId) -> int | None:
        """The index when the market has one, else the mark."""
        return self.engine.indexes.get(market) or self.engine.marks.get(market)

    def best_bid_ticks(self, market: MarketId) -> int | None:
        return self.engine.books[market].bids.best_price()

    def best_ask_ticks(self, market: MarketId) -> int | None:
        return self.engine.books[market].asks.best_price()

    def position_lots(self, account_id: AccountId, market: MarketId) -> int:
        """The account's signed position in lots (0 when it has none); creates nothing."""
        account = self.engine.accounts.get(account_id)
        position = None if account is None else account.positions.get(market)
        return 0 if position is None else position.qty_lots

    def open_orders(self, account_id: AccountId, market: MarketId) -> int:
        account = self.engine.accounts.get(account_id)
        position = None if account is None else account.positions.get(market)
        return 0 if position is None else len(position.open_orders)

    def price_band_ticks(self, market: MarketId) -> tuple[int, int] | None:
        """The lowest and highest limit price the percent-price filter accepts now (``None``: no mark)."""
        mark = self.engine.marks.get(market)
        if mark is None:
            return None
        spec = self.engine.specs[market]
        low = -((-mark * spec.percent_price_down_e8) // 10**8)
        high = mark * spec.percent_price_up_e8 // 10**8
        return max(low, spec.min_price_ticks), min(high, spec.max_price_ticks)

    # ------------------------------------------------------------------ commands

    def tx_id(self, label: str) -> TxId:
        """A transfer id unique to this context: ``label-<n>``."""
        self._tx += 1
        return TxId(f"{label}-{self._tx}")

    def open_account(self, name: str, deposit: object) -> AccountId:
        """Create an account named ``name`` and deposit ``deposit`` settlement units; its id.

        Raises
        ------
        AgentError
            If the venue refused to create the account.
        """
        events = self.submit(CreateAccount(ts_ns=self.now_ns, name=name))
        created = next((e for e in events if isinstance(e, AccountCreated)), None)
        if created is None:
            raise AgentError(f"the venue did not create account {name!r}: {events!r}")
        amount = self.atoms(deposit)
        if amount > 0:
            self.submit(
                Deposit(
                    ts_ns=self.now_ns,
                    account_id=created.account_id,
                    asset=self.engine.asset,
                    amount_atoms=amount,
                    tx_id=self.tx_id(f"{name}-{created.account_id}-deposit"),
                )
            )
        return created.account_id

    def market_order(
        self, account_id: AccountId, market: MarketId, side: Side, lots: int, reduce_only: bool = False
    ) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=self.now_ns,
            account_id=account_id,
            market=market,
            side=side,
            order_type=OrderType.MARKET,
            qty_lots=lots if reduce_only else self.on_step(market, lots),
            reduce_only=reduce_only,
        )

    def limit_order(
        self,
        account_id: AccountId,
        market: MarketId,
        side: Side,
        lots: int,
        price_ticks: int,
        tif: TimeInForce = TimeInForce.GTC,
    ) -> PlaceOrder:
        return PlaceOrder(
            ts_ns=self.now_ns,
            account_id=account_id,
            market=market,
            side=side,
            order_type=OrderType.LIMIT,
            qty_lots=self.on_step(market, lots),
            price_ticks=self.on_tick(market, price_ticks),
            tif=tif,
        )

    def on_tick(self, market: MarketId, price_ticks: int) -> int:
        """``price_ticks`` to the nearest price on the market's current tick filter (at least one tick)."""
        step = self.engine.specs[market].tick_step_ticks
        below = price_ticks - price_ticks % step
        nearest = below + step if 2 * (price_ticks - below) >= step else below
        return max(step, nearest)

    def on_step(self, market: MarketId, lots: int) -> int:
        """``lots`` down to the market's current step filter (at least one step; 0 stays 0)."""
        step = self.engine.specs[market].lot_step_lots
        return lots if lots <= 0 else max(step, lots - lots % step)

    def leverage(self, account_id: AccountId, market: MarketId, leverage: int) -> SetLeverage:
        """``SetLeverage`` clamped to 1 .. the market's maximum."""
        capped = max(1, min(leverage, self.engine.specs[market].max_leverage))
        return SetLeverage(ts_ns=self.now_ns, account_id=account_id, market=market, leverage=capped)


class Agent:
    """Base of every agent kind: parameters, its accounts, and the two calls a driver makes.

    Subclasses set ``kind`` and ``DEFAULTS`` (every parameter they accept, with its default) and
    implement :meth:`setup` and :meth:`act`. Unknown parameters are refused, so a typo in a
    scenario is an error instead of a silent default.
    """

    kind: ClassVar[str] = ""
    DEFAULTS: ClassVar[Mapping[str, Any]] = {}
    COMMON: ClassVar[Mapping[str, Any]] = {"interval_s": 1.0, "markets": None, "deposit": "100000"}

    def __init__(self, name: str, params: Mapping[str, Any]) -> None:
        allowed = {**self.COMMON, **self.DEFAULTS}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise AgentError(
                f"agent {name!r} ({self.kind}) has no parameter {', '.join(map(repr, unknown))};"
                f" its parameters are {', '.join(sorted(allowed))}"
            )
        self.name = name
        self.params: dict[str, Any] = {**allowed, **params}
        self.interval_s = self.number("interval_s")
        if self.interval_s <= 0:
            raise AgentError(f"agent {name!r}: interval_s must be greater than zero")
        self.accounts: list[AccountId] = []

    # ------------------------------------------------------------------ parameters

    def number(self, key: str) -> float:
        value = self.params[key]
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise AgentError(f"agent {self.name!r}: {key} was {value!r}, which is not a number")
        try:
            return float(value)
        except ValueError as exc:
            raise AgentError(f"agent {self.name!r}: {key} was {value!r}, which is not a number") from exc

    def amount(self, key: str) -> Decimal:
        return _decimal(self.params[key], f"agent {self.name!r}: {key}")

    def market_list(self, ctx: AgentContext) -> list[MarketId]:
        """The markets this agent trades: its ``markets`` parameter, or every listed market."""
        chosen = self.params["markets"]
        if chosen is None:
            return ctx.markets
        if isinstance(chosen, str):
            chosen = [chosen]
        out: list[MarketId] = []
        for market in chosen:
            if market not in ctx.engine.specs:
                raise AgentError(f"agent {self.name!r}: market {market!r} is not listed on this venue")
            out.append(MarketId(market))
        return out

    @property
    def account_id(self) -> AccountId:
        """The agent's first (usually only) account."""
        return self.accounts[0]

    # ------------------------------------------------------------------ the two calls

    def setup(self, ctx: AgentContext) -> list[Command]:
        """Open and fund the agent's account(s) through ``ctx``; return further set-up commands."""
        self.accounts.append(ctx.open_account(self.name, self.params["deposit"]))
        return []

    def act(self, ctx: AgentContext, now_ns: int) -> list[Command]:
        """The commands the agent sends at ``now_ns`` (stamped with it), in order."""
        raise NotImplementedError


def choose_weighted(rng: random.Random, values: Sequence[Any], weights: Sequence[float] | None) -> Any:
    """One of ``values``, drawn with ``weights`` (uniform when ``None``)."""
    if weights is None:
        return values[rng.randrange(len(values))]
    total = sum(weights)
    pick = rng.random() * total
    for value, weight in zip(values, weights, strict=True):
        pick -= weight
        if pick < 0:
            return value
    return values[-1]


def side_to_reach(current_lots: int, target_lots: int) -> tuple[Side, int] | None:
    """The side and lots that move a position from ``current_lots`` to ``target_lots`` (``None``: there)."""
    diff = target_lots - current_lots
    if diff == 0:
        return None
    return (Side.BUY, diff) if diff > 0 else (Side.SELL, -diff)


def unit_count(value: object, what: str) -> int:
    """A whole non-negative count from a scenario value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AgentError(f"{what} was {value!r}; use a whole number >= 0")
    return value


__all__ = [
    "Agent",
    "AgentContext",
    "AgentError",
    "Submit",
    "choose_weighted",
    "side_to_reach",
    "unit_count",
]
