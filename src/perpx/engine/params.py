"""Changing a market's parameters that the venue could not change live: brackets, the default
leverage, funding settings, index sources and the tick and lot filters
(:class:`~perpx.engine.commands.ChangeMarketParams`).

A change is the market re-read by the config's own rules as if its table were written with the
new values (:func:`changed_spec`), then checked against the venue's state by the rules an operator
expects, each refused with its code and a message naming what to do:

* resting orders the new filters would refuse (price outside ``min_price..max_price``, quantity
  outside ``min_qty..max_qty``, a non-reduce-only order under ``min_notional``) are counted and
  refuse the change (``-9407``), unless the command says ``cancel_off_grid``: then they are
  cancelled, each with its ``OrderCanceled`` as any cancel;
* new brackets that would put any account at or over its maintenance margin refuse the change,
  naming how many (``-9408``): a parameter change never liquidates anyone. There is no flag to
  force it; lower the brackets in steps, or ask the accounts to add margin first;
* a position whose leverage is above the new first bracket's maximum is clamped to it (as Binance
  does when it lowers a market's brackets), each with a ``LeverageChanged``; the default
  leverage follows the new maximum down unless the change sets it;
* new index sources must keep the quorum satisfiable: a market whose index has quorum now keeps it
  with the quotes it holds (``-9409``); the index table cannot be added or removed (``-9410``);
* a new funding interval takes effect from the next settlement: the running interval settles at
  its scheduled time, and the interval after it has the new length (no settlement is doubled or
  skipped). Cap, floor and interest rate apply to the rate computed at that next settlement;
* a new tick or lot size is a change of a *filter*, not of a unit. The engine holds every price
  and quantity of a market in integer units fixed for its life (``MarketSpec.tick_size`` and
  ``lot_size``: the config's ``price_unit`` and ``qty_unit``, by default the tick and lot at
  listing); the filters orders must sit on are whole multiples of them
  (``tick_step_ticks``, ``lot_step_lots``). So a tick change rewrites no stored price: positions,
  fills, journals, snapshots and read models stay valid, every adapter's wire conversion stays
  the same, and only the filters (what exchangeInfo publishes, what placing and amending check)
  change. A new size must be a whole multiple of the unit (``-9411`` tick, ``-9412`` lot): a
  finer grid than the unit cannot be held; list the market with a finer ``price_unit`` /
  ``qty_unit`` up front if it may need one. Resting orders off the new grid are refused like
  any off-filter order (``-9407``) or cancelled with ``cancel_off_grid``. A reduce-only order
  for a whole position is exempt from the step (a position opened on the old step can always
  be closed);
* the units and the base asset stay fixed (``-9406``): they name what every stored price,
  quantity and position means.

What the change invalidates is rebuilt for that market only: the pricing stage's copy of the
spec (and the index, recomputed from the quotes the market holds), the risk watch's maintenance
bounds, every holder's margin (rechecked and re-banded by the liquidation stage) and the order
margin of every position there.

Why the settings are state. The engine's specs start as the config's and an operator's change is
recorded as config-file text of the parameters that differ (``Core.param_overrides``, one map per
market). The journal holds the command, so replay makes the same change at the same point; the
snapshot holds the overrides (and the state hash covers them), and a restore re-reads the market
from the config with them. Both paths derive the spec by the one function, :func:`changed_spec`,
so a venue restored from a snapshot taken after a change is the venue that replay reaches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from perpx.engine.codes import RejectCode
from perpx.engine.commands import ChangeMarketParams, MarginMode, MarketMode
from perpx.engine.config import (
    MARKET_KEYS,
    MARKET_PARAMS,
    MAX_FILTER_STEPS,
    NO_CAP,
    ConfigError,
    MarketSpec,
    filter_steps,
    parse_market_table,
)
from perpx.engine.events import LeverageChanged, MarketParamsChanged, ParamChange
from perpx.engine.liquidation.figures import liquidatable, scope_figures
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT
from perpx.engine.values import RATE_SCALE, AccountId, MarketId, format_units

if TYPE_CHECKING:
    from perpx.engine.accounts import Position
    from perpx.engine.book import Order
    from perpx.engine.engine import Engine
    from perpx.engine.triggers.order import ConditionalOrder

FUNDING_PARAMS: Final = (
    "funding_interval_hours",
    "interest_rate",
    "funding_cap",
    "funding_floor",
    "impact_margin_notional",
)
"""The funding settings a change may set (config-file names)."""

FILTERS: Final = ("tick_size", "lot_size")
"""The tick and lot filters: whole multiples of the market's fixed units (module docstring)."""

CHANGEABLE: Final = (
    *MARKET_PARAMS,
    "default_leverage",
    "brackets",
    "index",
    *FUNDING_PARAMS,
    *FILTERS,
)
"""Every market parameter a :class:`ChangeMarketParams` may set (config-file names and units)."""

STRUCTURED: Final = ("brackets", "index")
"""Parameters whose value is a table: written as its config table in JSON text."""

WHOLE: Final = ("max_open_orders", "default_leverage", "funding_interval_hours")
"""Parameters that are integers in the config file (the rest are decimal strings)."""

MAX_TEXT: Final = 20_000
"""The longest value text accepted (a bracket table of dozens of tiers fits)."""

_RATE_UNIT: Final = Decimal(1) / RATE_SCALE
_MAX_WHOLE: Final = 10**9


def _rate(value_e8: int) -> str:
    return format_units(value_e8, _RATE_UNIT)


def _size(value: Decimal) -> str:
    return f"{value.normalize():f}"


class FilterGridError(ConfigError):
    """A new tick or lot size that is not a whole multiple of the market's unit (its own code)."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def market_table(spec: MarketSpec, atom: Decimal) -> dict[str, Any]:
    """``spec`` as the ``[markets.NAME]`` table that reads back to it (the inverse of the config).

    ``parse_market_table(name, market_table(spec, atom), ...) == spec`` for every spec the config
    produced (tested over the shipped configurations).
    """
    lot, tick, risk = spec.lot_size, spec.tick_size, spec.risk
    table: dict[str, Any] = {
        "base": spec.base,
        "tick_size": _size(spec.filter_tick_size),
        "lot_size": _size(spec.filter_lot_size),
        "min_qty": format_units(spec.min_qty_lots, lot),
        "max_qty": format_units(spec.max_qty_lots, lot),
        "market_max_qty": format_units(spec.market_max_qty_lots, lot),
        "min_price": format_units(spec.min_price_ticks, tick),
        "max_price": format_units(spec.max_price_ticks, tick),
        "min_notional": format_units(spec.min_notional_atoms, atom),
        "percent_price_up": _rate(spec.percent_price_up_e8),
        "percent_price_down": _rate(spec.percent_price_down_e8),
        "market_take_bound": _rate(spec.market_take_bound_e8),
        "max_open_orders": spec.max_open_orders,
        "default_leverage": spec.default_leverage,
        "brackets": [
            {
                "notional_cap": format_units(b.cap_atoms, atom),
                "max_leverage": b.max_leverage,
                "mmr": _rate(b.mmr_e8),
            }
            for b in spec.brackets
        ],
        "liquidation_fee": _rate(risk.liquidation_fee_e8),
        "funding_interval_hours": risk.funding_interval_hours,
        "interest_rate": _rate(risk.interest_rate_e8),
        "funding_cap": _rate(risk.funding_cap_e8),
        "funding_floor": _rate(risk.funding_floor_e8),
        "impact_margin_notional": format_units(risk.impact_margin_notional_atoms, atom),
        "premium_sample_s": risk.premium_sample_s,
        "mark_basis_window_s": risk.mark_basis_window_s,
        "trigger_protect": _rate(risk.trigger_protect_e8),
        "mark_policy": risk.mark_policy,
        "max_algo_orders": risk.max_algo_orders,
        "adl_ranking": risk.adl_ranking,
        "mark_index_band": _rate(risk.mark_index_band_e8),
        "upnl_collateral": risk.upnl_collateral,
        "insurance_unwind_clip": _rate(risk.insurance_unwind_clip_e8),
        "insurance_unwind_interval_s": risk.insurance_unwind_interval_s,
        "insurance_unwind_limit": _rate(risk.insurance_unwind_limit_e8),
    }
    if spec.tick_step_ticks != 1:
        table["price_unit"] = _size(tick)
    if spec.lot_step_lots != 1:
        table["qty_unit"] = _size(lot)
    if risk.max_open_interest_lots is not None:
        table["max_open_interest"] = format_units(risk.max_open_interest_lots, lot)
    if risk.insurance_takeover_cap_e8 is not None:
        table["insurance_takeover_cap"] = _rate(risk.insurance_takeover_cap_e8)
    if spec.index is not None:
        table["index"] = {
            "policy": spec.index.policy,
            "sources": dict(spec.index.weights),
            "stale_after_s": spec.index.stale_after_ns // 1_000_000_000,
            "min_sources": spec.index.min_sources,
            "outlier_pct": _rate(spec.index.outlier_e8),
        }
    return table


def canonical(value: Any) -> str:
    """A structured value as canonical JSON text (sorted keys, no spaces): equal tables, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def param_texts(spec: MarketSpec, atom: Decimal) -> dict[str, str]:
    """Every :data:`CHANGEABLE` parameter of ``spec`` as the text a change carries, by name."""
    table = market_table(spec, atom)
    out: dict[str, str] = {}
    for name in CHANGEABLE:
        if name in STRUCTURED:
            out[name] = canonical(table[name]) if name in table else NO_CAP
        else:
            out[name] = str(table.get(name, NO_CAP))
    return out


def _plain(text: str, signed: bool) -> bool:
    body = text[1:] if signed and text.startswith("-") else text
    head, _, tail = body.partition(".")
    return (
        0 < len(head) <= 20
        and head.isdigit()
        and head.isascii()
        and (not _ or (0 < len(tail) <= 18 and tail.isdigit() and tail.isascii()))
    )


def _check_leaves(value: Any, where: str) -> None:
    """Structured values hold plain decimal strings, small positive integers and names only."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "policy":
                if not isinstance(item, str) or len(item) > 40:
                    raise ConfigError(f"{where}.policy must be a policy name")
                continue
            _check_leaves(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_leaves(item, f"{where}[{index}]")
    elif isinstance(value, bool | float):
        raise ConfigError(
            f'{where} was {value!r}; write decimals as strings ("0.004") and counts as integers'
        )
    elif isinstance(value, int):
        if not 0 < value < _MAX_WHOLE:
            raise ConfigError(f"{where} was {value}; use an integer from 1 to {_MAX_WHOLE - 1}")
    elif isinstance(value, str):
        if not _plain(value, signed=False):
            raise ConfigError(f'{where} was {value[:40]!r}; write a plain decimal, like "50000" or "0.004"')
    else:
        raise ConfigError(f"{where} was {type(value).__name__}; use tables, lists, strings and integers")


def table_value(market: MarketId, name: str, text: str) -> Any:
    """The config-table value of parameter ``name`` written as ``text`` (checked for its shape)."""
    key = f"markets.{market}.{name}"
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ConfigError(f"{key} must be text of at most {MAX_TEXT} characters")
    if name == "index" and text == NO_CAP:
        return None  # no index table (a market priced by SetMarkPrice)
    if name in STRUCTURED:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{key} is not a JSON table: {exc}") from exc
        if name == "brackets" and (not isinstance(value, list) or not 1 <= len(value) <= 100):
            raise ConfigError(f"{key} must be a list of 1 to 100 tiers (notional_cap, max_leverage, mmr)")
        if name == "index" and (not isinstance(value, dict) or len(value.get("sources") or ()) > 64):
            raise ConfigError(
                f"{key} must be a table (policy, sources, stale_after_s, min_sources, outlier_pct)"
            )
        _check_leaves(value, key)
        return value
    if name in WHOLE:
        if not (text.isdigit() and text.isascii() and 0 < len(text) <= 9):
            raise ConfigError(f'{key} was {text[:40]!r}; write a positive integer, like "8"')
        return int(text)
    if name == "max_open_interest" and text == NO_CAP:
        return None
    if not _plain(text, signed=name == "funding_floor"):
        raise ConfigError(f'{key} was {text[:40]!r}; write a plain decimal, like "100" or "0.05"')
    return text


def changed_spec(spec: MarketSpec, atom: Decimal, changes: Mapping[str, str]) -> MarketSpec:
    """``spec`` with ``changes`` (name -> text) applied, re-read by every rule of the config.

    A bracket change without ``default_leverage`` brings the default down to the new first
    bracket's maximum when it was above it.

    Raises
    ------
    ConfigError
        If a name is not in :data:`CHANGEABLE`, a value has the wrong shape, or the re-read market
        breaks a rule of the config (naming its key); :class:`FilterGridError` for a tick or lot
        size off the market's unit.
    """
    table = market_table(spec, atom)
    table["price_unit"], table["qty_unit"] = _size(spec.tick_size), _size(spec.lot_size)  # never change
    for name in sorted(changes):
        if name not in CHANGEABLE:
            raise ConfigError(
                f"markets.{spec.market}.{name} cannot be changed; changeable: {', '.join(CHANGEABLE)}"
            )
        value = table_value(spec.market, name, changes[name])
        if name in FILTERS:
            check_filter(spec, name, value)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value
    if "brackets" in changes and "default_leverage" not in changes:
        tiers = table["brackets"]
        first = tiers[0].get("max_leverage") if tiers and isinstance(tiers[0], dict) else None
        if isinstance(first, int) and table["default_leverage"] > first:
            table["default_leverage"] = first
    return parse_market_table(spec.market, table, spec.settlement_asset, atom)


def check_filter(spec: MarketSpec, name: str, text: str) -> None:
    """Refuse a new ``tick_size`` or ``lot_size`` that is not a whole multiple of the market's unit.

    Raises
    ------
    FilterGridError
        With ``-9411`` (tick) or ``-9412`` (lot), naming the unit and the nearest allowed sizes.
    """
    is_tick = name == "tick_size"
    unit = spec.tick_size if is_tick else spec.lot_size
    size = Decimal(text)
    try:
        filter_steps(size, unit, f"markets.{spec.market}.{name}", "price_unit" if is_tick else "qty_unit")
    except ConfigError as exc:
        whole = max(1, min(int(size / unit), MAX_FILTER_STEPS))
        raise FilterGridError(
            RejectCode.TICK_NOT_UNIT if is_tick else RejectCode.LOT_NOT_UNIT,
            f"{exc}; the unit is fixed at listing, so a {name} must be k x {_size(unit)}"
            f" (for instance {_size(unit * whole)} or {_size(unit * min(whole + 1, MAX_FILTER_STEPS))})",
        ) from exc


def overrides(configured: MarketSpec, spec: MarketSpec, atom: Decimal) -> dict[str, str]:
    """The parameters of ``spec`` that differ from the config's ``configured``, as change text."""
    base, now = param_texts(configured, atom), param_texts(spec, atom)
    return {name: text for name, text in sorted(now.items()) if text != base[name]}


def restored_spec(configured: MarketSpec, atom: Decimal, changes: Mapping[str, str]) -> MarketSpec:
    """The spec a snapshot's overrides describe (older snapshots hold live parameters only)."""
    return changed_spec(configured, atom, changes)


# ---------------------------------------------------------------------- the venue's rules


def off_filter(spec: MarketSpec, order: Order) -> bool:
    """Would ``spec``'s filters refuse ``order`` as it rests (tick, step, price, quantity, notional)?

    A reduce-only order is held to the tick but not to the step (it may close an odd position).
    """
    if order.price_ticks % spec.tick_step_ticks:
        return True
    if order.qty_lots % spec.lot_step_lots and not order.reduce_only:
        return True
    if not spec.min_price_ticks <= order.price_ticks <= spec.max_price_ticks:
        return True
    if not spec.min_qty_lots <= order.qty_lots <= spec.max_qty_lots:
        return True
    if order.reduce_only:
        return False
    return order.price_ticks * order.qty_lots * spec.contract_atoms < spec.min_notional_atoms


def orders_off_filter(engine: Engine, market: MarketId, spec: MarketSpec) -> list[Order]:
    """The market's resting orders ``spec`` would refuse, in order id order."""
    book = engine.books[market]
    found = [o for side in (book.bids, book.asks) for o in side.orders() if off_filter(spec, o)]
    return sorted(found, key=lambda o: o.order_id)


def conditionals_off_grid(engine: Engine, market: MarketId, spec: MarketSpec) -> list[ConditionalOrder]:
    """The market's untriggered conditional orders off ``spec``'s tick or step, in algo id order.

    Their trigger, activation or limit price off the tick, or their quantity off the step, would
    be refused when placed now, and their child order when they fire.
    """
    step = spec.tick_step_ticks
    found = []
    for algo_id in sorted(engine.triggers.orders):
        order = engine.triggers.orders[algo_id]
        if order.market != market:
            continue
        prices = (order.trigger_price_ticks, order.activation_price_ticks, order.price_ticks)
        off_tick = any(ticks is not None and ticks % step for ticks in prices)
        off_step = order.qty_lots is not None and order.qty_lots % spec.lot_step_lots != 0
        if off_tick or off_step:
            found.append(order)
    return found


def under_maintenance(engine: Engine, market: MarketId, spec: MarketSpec) -> list[AccountId]:
    """Holders of ``market`` that ``spec``'s brackets would put at or over maintenance, not there now.

    Only the market's holders are looked at (a bracket change moves no other account's margin).
    """
    if market not in engine.marks:
        return []
    holders = [
        a for a, p in sorted(engine.market_positions[market].items()) if p.qty_lots and a != INSURANCE_ACCOUNT
    ]
    scopes = {a: None if not engine.accounts[a].positions[market].is_isolated else market for a in holders}
    before = {a: liquidatable(scope_figures(engine, engine.accounts[a], scopes[a])) for a in holders}
    current = engine.specs[market]
    engine.specs[market] = spec
    try:
        return [
            a
            for a in holders
            if not before[a] and liquidatable(scope_figures(engine, engine.accounts[a], scopes[a]))
        ]
    finally:
        engine.specs[market] = current


def fresh_sources(engine: Engine, market: MarketId, spec: MarketSpec) -> int:
    """How many of ``spec``'s index sources hold a quote fresh at the venue's time now."""
    state = engine.pricing.markets.get(market)
    index = spec.index
    if state is None or index is None:
        return 0
    now = engine.now_ns
    return sum(
        1
        for source, quote in state.quotes.items()
        if source in index.weights and now - quote.ts_ns <= index.stale_after_ns
    )


def refusal(
    engine: Engine, market: MarketId, spec: MarketSpec, changed: MarketSpec, cancel: bool
) -> tuple[RejectCode, str] | None:
    """The first venue rule ``changed`` breaks against the state now; ``None`` when it may apply."""
    if (spec.index is None) != (changed.index is None):
        return (
            RejectCode.INDEX_TABLE,
            f"market {market} {'has' if spec.index else 'has no'} index table; a change may set its sources but"
            " cannot add or remove the table (that changes how the mark is priced: list it anew)",
        )
    if changed.index is not None and changed.index != spec.index:
        state = engine.pricing.markets[market]
        has_quorum = state.index_ticks is not None and market not in engine.index_stale
        fresh = fresh_sources(engine, market, changed)
        if has_quorum and fresh < changed.index.min_sources:
            return (
                RejectCode.INDEX_QUORUM,
                f"the new index sources of {market} hold {fresh} fresh quote(s) and need {changed.index.min_sources}:"
                " the index would go stale at once; add a source after it has quoted, or lower min_sources",
            )
    if not cancel:
        off = orders_off_filter(engine, market, changed)
        algos = conditionals_off_grid(engine, market, changed)
        if off or algos:
            return (
                RejectCode.ORDERS_OFF_FILTER,
                f"{len(off)} resting order(s) and {len(algos)} conditional order(s) of {market} break the new"
                " filters (tick, step, price, quantity or min notional); send the change with cancelOffGrid to"
                " cancel them, or wait until they are gone",
            )
    if changed.brackets != spec.brackets:
        under = under_maintenance(engine, market, changed)
        if under:
            return (
                RejectCode.BRACKETS_UNDER_MAINTENANCE,
                f"the new brackets would put {len(under)} account(s) holding {market} at or over maintenance"
                " margin; change the brackets in smaller steps or after those accounts add margin",
            )
    return None


def fixed_reason(name: str) -> str:
    """Why the config-file market key ``name`` (not in :data:`CHANGEABLE`) stays fixed."""
    if name in ("price_unit", "qty_unit"):
        return (
            "every price, quantity and position of the market is held in its units; the tick_size and"
            " lot_size filters may change to whole multiples of them"
        )
    if name == "base":
        return "the base asset names the market's positions"
    return "the pricing and liquidation stages hold state built on it (mark samples, the fund's unwind)"


@dataclass(frozen=True, slots=True)
class Preview:
    """What a change would do to the venue now, without doing it (a proposal's dry run)."""

    refused: tuple[int, str] | None
    """The code and message the engine would refuse the change with; ``None``: it would apply."""
    orders_off_filter: int
    """Resting orders the new filters refuse (cancelled with ``cancel_off_grid``, else a refusal)."""
    under_maintenance: int
    """Accounts the new brackets would put at or over maintenance margin (a refusal)."""
    leverage_clamped: int
    """Position records whose leverage is above the new cap (clamped at apply)."""
    fresh_sources: int | None
    """Fresh quotes among the new index sources (``None``: the market has no index)."""
    conditionals_off_grid: int = 0
    """Untriggered conditional orders off the new tick or step (cancelled or a refusal, as orders)."""


def preview(engine: Engine, market: MarketId, changes: Mapping[str, str], cancel: bool) -> Preview:
    """:class:`Preview` of ``changes`` on ``market`` in the engine's state now; changes nothing."""
    spec = engine.specs[market]
    fixed = sorted(name for name in changes if name in MARKET_KEYS and name not in CHANGEABLE)
    if fixed:
        return Preview((int(RejectCode.PARAM_FIXED), fixed_reason(fixed[0])), 0, 0, 0, None)
    try:
        changed = changed_spec(spec, engine.config.settlement.atom, changes)
    except FilterGridError as exc:
        return Preview((int(exc.code), str(exc)), 0, 0, 0, None)
    except ConfigError as exc:
        return Preview((int(RejectCode.BAD_PARAMETER), str(exc)), 0, 0, 0, None)
    refused = refusal(engine, market, spec, changed, cancel)
    cap = changed.max_leverage
    return Preview(
        refused=None if refused is None else (int(refused[0]), refused[1]),
        orders_off_filter=len(orders_off_filter(engine, market, changed)),
        under_maintenance=len(under_maintenance(engine, market, changed))
        if changed.brackets != spec.brackets
        else 0,
        leverage_clamped=sum(1 for p in engine.market_positions[market].values() if p.leverage > cap),
        fresh_sources=None if changed.index is None else fresh_sources(engine, market, changed),
        conditionals_off_grid=len(conditionals_off_grid(engine, market, changed)),
    )


def change_market_params(engine: Engine, cmd: ChangeMarketParams) -> None:
    """Apply ``cmd`` all or nothing (module docstring: the rules and what is rebuilt)."""
    market = cmd.market
    spec = engine.specs.get(market)
    if spec is None:
        engine.reject_command(
            cmd, None, RejectCode.BAD_SYMBOL, f"market {market} is not listed on this venue"
        )
        return
    if engine.modes[market] is MarketMode.SETTLED:
        engine.reject_command(
            cmd,
            None,
            RejectCode.MARKET_SETTLED,
            f"market {market} is settled; it has no parameters to change",
        )
        return
    if not cmd.params:
        engine.reject_command(cmd, None, RejectCode.BAD_PARAMETER, "no parameter to change was given")
        return
    fixed = sorted(name for name in cmd.params if name in MARKET_KEYS and name not in CHANGEABLE)
    if fixed:
        engine.reject_command(
            cmd,
            None,
            RejectCode.PARAM_FIXED,
            f"{', '.join(fixed)} cannot change on a listed market ({fixed_reason(fixed[0])});"
            f" changeable: {', '.join(CHANGEABLE)}",
        )
        return
    atom = engine.config.settlement.atom
    try:
        changed = changed_spec(spec, atom, cmd.params)
    except FilterGridError as exc:
        engine.reject_command(cmd, None, exc.code, str(exc))
        return
    except ConfigError as exc:
        engine.reject_command(cmd, None, RejectCode.BAD_PARAMETER, str(exc))
        return
    refused = refusal(engine, market, spec, changed, cmd.cancel_off_grid)
    if refused is not None:
        engine.reject_command(cmd, None, refused[0], refused[1])
        return
    apply_spec(engine, market, spec, changed)
    old, new = param_texts(spec, atom), param_texts(changed, atom)
    engine.emit(
        MarketParamsChanged(
            ts_ns=engine.now_ns,
            market=market,
            changes=tuple(ParamChange(param=n, old=old[n], new=new[n]) for n in sorted(cmd.params)),
            operator=cmd.operator,
        )
    )


def follows_default(position: Position, default_leverage: int) -> bool:
    """A position record holding nothing a fresh one would not: no exposure, PnL or own settings.

    Such a record is the same as an absent one (snapshots leave it out), so it follows the
    market's default leverage when a change moves the default, without an event.
    """
    return (
        position.qty_lots == 0
        and position.cost_atoms == 0
        and position.isolated_margin_atoms == 0
        and position.realized_pnl_atoms == 0
        and position.leverage == default_leverage
        and position.margin_mode is MarginMode.CROSS
        and not position.open_orders
    )


def apply_spec(engine: Engine, market: MarketId, spec: MarketSpec, changed: MarketSpec) -> None:
    """Adopt ``changed`` for ``market``: cancel what it refuses, clamp leverage, rebuild the caches."""
    for order in orders_off_filter(engine, market, changed):
        engine.cancel_order(order)
    for conditional in conditionals_off_grid(engine, market, changed):
        engine.triggers.cancel_one(conditional)
    engine.specs[market] = changed
    atom = engine.config.settlement.atom
    kept = overrides(engine.config.markets[market], changed, atom)
    if kept:
        engine.param_overrides[market] = kept
    else:
        engine.param_overrides.pop(market, None)
    cap = changed.max_leverage
    for account_id, position in sorted(engine.market_positions[market].items()):
        if follows_default(position, spec.default_leverage):
            position.leverage = changed.default_leverage  # as a record created now: no event
        elif position.leverage > cap:
            position.leverage = cap
            engine.emit(
                LeverageChanged(
                    ts_ns=engine.now_ns,
                    account_id=account_id,
                    market=market,
                    leverage=cap,
                    max_notional_atoms=changed.max_notional_at_leverage(cap),
                )
            )
        engine.touch(position)
        if position.qty_lots:
            engine.margin_changed(account_id)
    engine.post_trade()
    engine.pricing.respec(market, changed)
    engine.liquidation.watch.respec(market)
