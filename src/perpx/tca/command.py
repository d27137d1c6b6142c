"""``perpx tca``: post-trade TCA from CSV files or a venue's read models, and the pre-trade estimate.

``perpx tca FILLS.csv ...`` and ``perpx tca --data DIR --account ID`` run :func:`report` (the
group's default command, so ``report`` need not be typed); ``perpx tca estimate`` runs
:func:`estimate_command`. Bad input ends in one line naming the file, row and column (or the
option) and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from perpx.execution.ids import algo_prefix
from perpx.tca.algo import (
    algo_children,
    find_child_log,
    log_client_algo_id,
    log_market,
    parent_record,
)
from perpx.tca.analysis import Sources, analyse
from perpx.tca.benchmarks import QuoteBook
from perpx.tca.calibration import (
    ALGOS,
    CALIBRATION_HTML,
    CALIBRATION_JSON,
    CALM_DAY,
    ORDERS_CSV,
    Plan,
    calibrate_orders,
    headline,
    write_calibration,
)
from perpx.tca.estimate import PRIOR_IMPACT_Y, estimate
from perpx.tca.inputs import (
    Fill,
    InputError,
    ParentOrder,
    Quote,
    Side,
    Trade,
    check_fills,
    read_fills,
    read_quotes,
    read_trades,
)
from perpx.tca.pretrade import compare, realised_cost_bps, unavailable
from perpx.tca.report import FILLS_PARQUET, REPORT_HTML, TCA_JSON, write_report
from perpx.tca.rest import venue_data
from perpx.tca.venue import (
    LOOKAHEAD_MS,
    LOOKBACK_MS,
    READMODEL_FILE,
    TAPE_MID,
    Market,
    account_fills,
    account_symbols,
    market,
    minute_candles,
    open_config,
    taker_orders,
    tape,
)

ESTIMATE_WINDOW_MS = 86_400_000
"""The estimate reads the last day of the venue's data: candles, tape and taker orders."""


class _ReportByDefault(TyperGroup):
    """A group whose first argument, when it names no subcommand, belongs to ``report``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["report", *args]
        return super().parse_args(ctx, args)


tca_app = typer.Typer(
    cls=_ReportByDefault,
    help="Transaction cost analysis (docs/tca.md): `perpx tca FILLS.csv --side buy|sell --qty Q"
    " --decision-price PD --arrival-price PA [--end-price PC] [--start-ms T0 --end-ms T1]"
    " [--trades TRADES.csv] [--quotes QUOTES.csv] --out DIR`; `perpx tca --data DIR --account ID"
    " [--algo ALGO_ID | --from --to] --out DIR`; `perpx tca estimate --symbol S --side buy|sell --qty Q"
    " --duration-s D [--data DIR | --venue URL]`. `perpx tca report --help` lists every option.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _decimal(option: str, text: str | None, *, required: bool = True) -> Decimal | None:
    if text is None:
        if required:
            raise InputError(f"{option} is required")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{option}: not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise InputError(f"{option} must be a positive number, was {text}")
    return value


def _side(text: str | None) -> Side | None:
    if text is None:
        return None
    try:
        return Side(text.lower())
    except ValueError:
        raise InputError(f"--side must be buy or sell, was {text!r}") from None


def _millis(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{option}: not an integer number of milliseconds: {text!r}") from None
    if value < 0:
        raise InputError(f"{option} must not be negative, was {text}")
    return value


@tca_app.command("report")
def report(
    fills: Annotated[
        Path | None, typer.Argument(help="Fills CSV: ts_ms, price, qty, fee, liquidity (MAKER/TAKER).")
    ] = None,
    side: Annotated[str | None, typer.Option(help="buy or sell.")] = None,
    qty: Annotated[str | None, typer.Option(help="Ordered quantity Q.")] = None,
    decision_price: Annotated[str | None, typer.Option(help="Decision price P_d.")] = None,
    arrival_price: Annotated[str | None, typer.Option(help="Arrival price P_a (the mid on arrival).")] = None,
    end_price: Annotated[
        str | None,
        typer.Option(help="P_c for the unfilled remainder (default: the mid at --end-ms; docs/tca.md)."),
    ] = None,
    start_ms: Annotated[
        str | None, typer.Option(help="Start of the order's life T0, ms (default: first fill).")
    ] = None,
    end_ms: Annotated[
        str | None, typer.Option(help="End of the order's life T1, ms (default: last fill).")
    ] = None,
    trades: Annotated[
        Path | None, typer.Option(help="Market trades CSV, own included: ts_ms, price, qty, own (1/0).")
    ] = None,
    quotes: Annotated[Path | None, typer.Option(help="Quotes CSV: ts_ms, bid, ask.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory: tca.json, fills.parquet, report.html.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="A venue data directory (read-only) instead of CSV files.")
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="With --data: the account whose fills to analyse.")
    ] = None,
    algo: Annotated[
        str | None,
        typer.Option(
            help="With --data: one execution algo (its algoId or clientAlgoId): its children's fills."
        ),
    ] = None,
    child_log: Annotated[
        Path | None,
        typer.Option(help="With --algo: the parent's child log (default: found in DATA/algos/)."),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option(help="With --data: the market (needed if it traded several).")
    ] = None,
    from_ms: Annotated[str | None, typer.Option("--from", help="With --data: first fill time, ms.")] = None,
    to_ms: Annotated[str | None, typer.Option("--to", help="With --data: last fill time, ms.")] = None,
) -> None:
    """Post-trade TCA of one parent order: arrival, Perold shortfall, VWAP, spreads, markouts.

    Costs are positive when the trader lost money (for a sell too); markouts and spread capture
    are positive when favourable. Writes DIR/tca.json, DIR/fills.parquet and DIR/report.html.
    """
    try:
        if out is None:
            raise InputError("--out DIR is required")
        start, end = _millis("--start-ms", start_ms), _millis("--end-ms", end_ms)
        if data is not None:
            if fills is not None or trades is not None or quotes is not None:
                raise InputError("give either FILLS.csv (with --trades/--quotes) or --data, not both")
            if account is None:
                raise InputError("--data needs --account")
            if algo is not None:
                if from_ms is not None or to_ms is not None:
                    raise InputError("give either --algo or --from/--to, not both")
                if symbol is not None or side is not None:
                    raise InputError(
                        "--algo fixes the market and side (its children's): drop --symbol/--side"
                    )
                order, own, tape_trades, tape_quotes, extra = algo_order(
                    data,
                    _account(account),
                    algo,
                    child_log,
                    qty,
                    decision_price,
                    arrival_price,
                    end_price,
                    start,
                    end,
                )
            else:
                if child_log is not None:
                    raise InputError("--child-log goes with --algo")
                order, own, tape_trades, tape_quotes, extra = account_order(
                    data,
                    _account(account),
                    symbol,
                    _millis("--from", from_ms),
                    _millis("--to", to_ms),
                    side,
                    qty,
                    decision_price,
                    arrival_price,
                    end_price,
                    start,
                    end,
                )
            sources = Sources(mid=TAPE_MID, trades=f"venue tape ({data / 'market.sqlite'})")
        else:
            if fills is None:
                raise InputError("give FILLS.csv or --data DIR --account ID")
            for name, given in (
                ("--account", account),
                ("--algo", algo),
                ("--from", from_ms),
                ("--to", to_ms),
                ("--child-log", child_log),
            ):
                if given is not None:
                    raise InputError(f"{name} goes with --data, not with FILLS.csv")
            parsed_side = _side(side)
            if parsed_side is None:
                raise InputError("--side is required (buy or sell)")
            order = ParentOrder(
                side=parsed_side,
                qty=_req(_decimal("--qty", qty)),
                decision_price=_req(_decimal("--decision-price", decision_price)),
                arrival_price=_req(_decimal("--arrival-price", arrival_price)),
                end_price=_decimal("--end-price", end_price, required=False),
                start_ms=start,
                end_ms=end,
            )
            own = read_fills(fills)
            check_fills(order, own, str(fills))
            tape_trades = read_trades(trades) if trades is not None else []
            tape_quotes = read_quotes(quotes) if quotes is not None else []
            extra = {"source": {"fills": str(fills), "trades": _name(trades), "quotes": _name(quotes)}}
            sources = Sources(
                mid=f"quotes file ({quotes})" if quotes else "none (no --quotes: mid-based metrics are null)",
                trades=f"trades file ({trades})" if trades else "none (no --trades: VWAP metrics are null)",
            )
        analysis = analyse(order, own, tape_trades, tape_quotes, sources)
        summary = write_report(analysis, out, extra)
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(
        f"{summary['side']} {summary['qty']}: filled {summary['filled_qty']} at {summary['avg_price']}"
    )
    typer.echo(
        f"implementation shortfall {summary['is_total']} ({summary['is_bps']} bps):"
        f" delay {summary['is_delay']}, execution {summary['is_execution']},"
        f" opportunity {summary['is_opportunity']}, fees {summary['is_fees']}"
    )
    typer.echo(
        f"arrival slippage {summary['arrival_slippage_bps']} bps; VWAP slippage"
        + (
            f" {summary['vwap_slippage_bps']} bps (ex own {summary['vwap_ex_own_slippage_bps'] or 'n/a'})"
            if summary["vwap_slippage_bps"] is not None
            else " n/a (no trades)"
        )
    )
    typer.echo(f"wrote {out / TCA_JSON}, {out / FILLS_PARQUET}, {out / REPORT_HTML}")


def _account(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"--account: not an account id: {text!r}") from None
    if value < 0:
        raise InputError(f"--account must not be negative, was {text}")
    return value


def _req(value: Decimal | None) -> Decimal:
    assert value is not None
    return value


def _name(path: Path | None) -> str | None:
    return None if path is None else str(path)


def account_order(
    data: Path,
    account: int,
    symbol: str | None,
    from_ms: int | None,
    to_ms: int | None,
    side_text: str | None,
    qty_text: str | None,
    decision_text: str | None,
    arrival_text: str | None,
    end_text: str | None,
    start_ms: int | None,
    end_ms: int | None,
) -> tuple[ParentOrder, list[Fill], list[Trade], list[Quote], dict[str, Any]]:
    """The parent order, fills, tape and quotes of ``account`` from the read models in ``data``.

    ``perpx tca --data`` and the server's ``GET /perpx/v1/tca`` both use it (read-only: it may run
    beside a live venue).

    The fills in the window (one market, one side) are taken as one parent order: ``Q`` defaults to
    what was filled, ``P_a`` to the inferred mid in force at the first fill (else the last print
    before it, else the first fill's price) and ``P_d`` to ``P_a``; each default is named in
    tca.json under ``source``.
    """
    config = open_config(data)
    symbols = account_symbols(data, account, from_ms, to_ms)
    if not symbols:
        raise InputError(f"account {account} has no fills in {data / 'readmodel.sqlite'} in the window")
    if symbol is None:
        if len(symbols) > 1:
            raise InputError(f"account {account} traded {', '.join(symbols)}: give --symbol")
        symbol = symbols[0]
    units = market(config, symbol)
    found = account_fills(data, units, account, symbol, from_ms, to_ms)
    side = _side(side_text)
    sides = sorted({f.side.value for f in found})
    if side is None:
        if len(sides) != 1:
            raise InputError(f"account {account} both bought and sold {symbol} in the window: give --side")
        side = Side(sides[0])
    own = [f.fill for f in found if f.side is side]
    if not own:
        raise InputError(f"account {account} has no {side.value} fills in {symbol} in the window")
    first, last = own[0].time_ms, own[-1].time_ms
    prints = tape(data, units, symbol, first - LOOKBACK_MS, last + LOOKAHEAD_MS)
    book = QuoteBook(prints.quotes)
    filled = sum((f.qty for f in own), Decimal(0))
    arrival = _decimal("--arrival-price", arrival_text, required=False)
    arrival_source = "given (--arrival-price)"
    if arrival is None:
        arrival, arrival_source = _arrival(book, prints.trades, own[0])
    decision = _decimal("--decision-price", decision_text, required=False)
    order = ParentOrder(
        side=side,
        qty=_decimal("--qty", qty_text, required=False) or filled,
        decision_price=decision or arrival,
        arrival_price=arrival,
        end_price=_decimal("--end-price", end_text, required=False),
        start_ms=start_ms,
        end_ms=end_ms,
    )
    check_fills(order, own, f"account {account}")
    extra = {
        "source": {
            "data": str(data),
            "account": account,
            "symbol": symbol,
            "fills": f"{len(own)} {side.value} fills of account {account} in {symbol}",
            "qty": "given (--qty)" if qty_text else "the filled quantity",
            "arrival_price": arrival_source,
            "decision_price": "given (--decision-price)" if decision else "the arrival price",
        },
        "pre_trade": _pre_trade(data, units, symbol, order, own, prints.quotes),
    }
    return order, own, prints.trades, prints.quotes, extra


def _pre_trade(
    data: Path,
    units: Market,
    symbol: str,
    order: ParentOrder,
    own: Sequence[Fill],
    quotes: Sequence[Quote],
    start_ms: int | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """What ``perpx tca estimate`` would have predicted when the order started, against what happened.

    The order starts at ``start_ms`` (an algo's recorded start) or else its first fill, and lasts
    ``duration_s`` (an algo's window) or else first .. last fill. Only data from before the start
    is used (the last day of it). The realized figure is the arrival slippage without fees, the
    quantity the estimate predicts; ``surprise_std`` is the difference in the estimate's standard
    deviations. Comparing the two over many orders is what recalibrates the impact coefficient.
    """
    first = own[0].time_ms if start_ms is None else start_ms
    if duration_s is None:
        duration_s = max((own[-1].time_ms - first) / 1000, 1.0)
    candles = [
        c
        for c in minute_candles(data, units, symbol)
        if first - ESTIMATE_WINDOW_MS <= c.open_ms <= first - 60_000
    ]
    orders = [
        o for o in taker_orders(data, units, symbol) if first - ESTIMATE_WINDOW_MS <= o.first_ms < first
    ]
    try:
        predicted = estimate(
            order.side, order.qty, duration_s, candles, [q for q in quotes if q.time_ms <= first], orders
        )
    except InputError as exc:
        return unavailable(str(exc))
    return compare(predicted, realised_cost_bps(order.side, order.arrival_price, own))


def algo_order(
    data: Path,
    account: int,
    algo: str,
    child_log: Path | None,
    qty_text: str | None,
    decision_text: str | None,
    arrival_text: str | None,
    end_text: str | None,
    start_ms: int | None,
    end_ms: int | None,
) -> tuple[ParentOrder, list[Fill], list[Trade], list[Quote], dict[str, Any]]:
    """The parent order of one execution algo, its children's fills, the tape and the quotes.

    ``algo`` is the server's ``algoId`` or the ``clientAlgoId``; the children are the account's
    orders with child ids of it, the parent's ``Q``, ``P_a``, start and end come from its child log
    (:mod:`perpx.tca.algo`, which also says what is not recorded and what stands in without a log).
    Options given explicitly override what was recorded; tca.json's ``source`` names each choice.
    """
    config = open_config(data)
    path = find_child_log(data, algo, child_log)
    client_algo_id = algo if path is None else log_client_algo_id(path)
    children = algo_children(data, account, client_algo_id)
    if not children:
        ids = "" if path is not None else f" (child order ids '{algo_prefix(client_algo_id)}-c<n>')"
        raise InputError(
            f"account {account} has no child orders of algo {algo!r}{ids} in {data / READMODEL_FILE}"
        )
    symbol = log_market(path) if path is not None else children[0].symbol
    units = market(config, symbol)
    record = None if path is None else parent_record(path, units)
    child_ids = {c.order_id for c in children if c.symbol == symbol}
    found = [f for f in account_fills(data, units, account, symbol, None, None) if f.order_id in child_ids]
    side = record.side if record is not None else children[0].side
    own = [f.fill for f in found if f.side is side]
    if not own:
        raise InputError(f"algo {algo!r}: its {len(children)} child orders have no fills: nothing to analyse")
    first_child_ms = min(c.time_ms for c in children)
    start = start_ms if start_ms is not None else record.start_ms if record is not None else first_child_ms
    end = end_ms if end_ms is not None else record.done_ms if record is not None else None
    prints = tape(data, units, symbol, start - LOOKBACK_MS, (end or own[-1].time_ms) + LOOKAHEAD_MS)
    book = QuoteBook(prints.quotes)
    arrival = _decimal("--arrival-price", arrival_text, required=False)
    if arrival is not None:
        arrival_source = "given (--arrival-price)"
    elif record is not None:
        arrival, arrival_source = record.arrival_price, "the child log: the mid when the parent arrived"
    else:
        arrival, arrival_source = _arrival_at(book, prints.trades, start, own[0])
    decision = _decimal("--decision-price", decision_text, required=False)
    filled = sum((f.qty for f in own), Decimal(0))
    qty = _decimal("--qty", qty_text, required=False)
    order = ParentOrder(
        side=side,
        qty=qty or (record.qty if record is not None else filled),
        decision_price=decision or arrival,
        arrival_price=arrival,
        end_price=_decimal("--end-price", end_text, required=False),
        start_ms=start,
        end_ms=end,
    )
    check_fills(order, own, f"algo {algo!r}")
    planned = (
        (record.planned_end_ms - record.start_ms) / 1000
        if record is not None and record.planned_end_ms is not None
        else None
    )
    extra = {
        "source": {
            "data": str(data),
            "account": account,
            "symbol": symbol,
            "fills": f"{len(own)} fills of {len(children)} child orders of algo {client_algo_id!r}",
            "qty": "given (--qty)"
            if qty
            else "the child log"
            if record is not None
            else "the filled quantity (no child log)",
            "arrival_price": arrival_source,
            "decision_price": "given (--decision-price)"
            if decision
            else "the arrival price: the venue records no decision price apart from arrival",
            "start_ms": "given (--start-ms)"
            if start_ms is not None
            else "the child log: the parent's start"
            if record is not None
            else "the first child order (no child log)",
            "end_ms": "given (--end-ms)"
            if end_ms is not None
            else "the child log: the parent's end"
            if record is not None and record.done_ms is not None
            else "the last fill",
        },
        "algo": {
            "client_algo_id": client_algo_id,
            "child_log": None if path is None else str(path),
            "child_orders": len(children),
            "children_logged": None if record is None else record.children_logged,
            "done_reason": None if record is None else record.done_reason,
        },
        "pre_trade": _pre_trade(data, units, symbol, order, own, prints.quotes, start, planned),
    }
    return order, own, prints.trades, prints.quotes, extra


def _arrival_at(book: QuoteBook, trades: Sequence[Trade], start_ms: int, first: Fill) -> tuple[Decimal, str]:
    mid = book.mid_at(start_ms)
    if mid is not None:
        return mid, "the tape-inferred mid when the first child was sent (no child log)"
    return _arrival(book, trades, first)


def _arrival(book: QuoteBook, trades: Sequence[Trade], first: Fill) -> tuple[Decimal, str]:
    mid = book.mid_at(first.time_ms)
    if mid is not None:
        return mid, "the tape-inferred mid in force at the first fill"
    before = [t for t in trades if t.time_ms <= first.time_ms and t.trade_id != first.trade_id]
    if before:
        return before[-1].price, "the last print before the first fill"
    return first.price, "the first fill's price (no earlier print)"


@tca_app.command("estimate")
def estimate_command(
    symbol: Annotated[str | None, typer.Option(help="Market, e.g. BTCUSDT.")] = None,
    side: Annotated[str | None, typer.Option(help="buy or sell.")] = None,
    qty: Annotated[str | None, typer.Option(help="Quantity to trade.")] = None,
    duration_s: Annotated[str | None, typer.Option(help="Seconds to trade it over.")] = None,
    data: Annotated[Path | None, typer.Option(help="A venue data directory (read-only).")] = None,
    venue: Annotated[
        str | None,
        typer.Option(help="A running venue's base URL (Binance USDS-M public REST), e.g. perpx serve's."),
    ] = None,
) -> None:
    """Pre-trade: expected cost and its std (volatility, spread, square-root impact fitted on the venue's fills)."""
    try:
        if symbol is None:
            raise InputError("--symbol is required")
        parsed_side = _side(side)
        if parsed_side is None:
            raise InputError("--side is required (buy or sell)")
        order_qty = _req(_decimal("--qty", qty))
        duration = _req(_decimal("--duration-s", duration_s))
        if data is not None and venue is not None:
            raise InputError("give either --data or --venue, not both")
        if venue is not None:
            read = venue_data(venue, symbol)
            result = estimate(parsed_side, order_qty, float(duration), read.candles, read.quotes, read.orders)
            provenance = (
                f"from {venue}: {len(read.candles)} one-minute candles (volatility, volume), spread from the"
                f" book now and quotes inferred from the last {read.trades} aggTrades, impact fitted on"
                " their taker orders"
            )
        elif data is None:
            raise InputError("--data DIR or --venue URL is required")
        else:
            units = market(open_config(data), symbol)
            candles = minute_candles(data, units, symbol)
            last = candles[-1].open_ms + 60_000 if candles else 0
            first = last - ESTIMATE_WINDOW_MS
            window = [c for c in candles if c.open_ms >= first]
            prints = tape(data, units, symbol, first, last)
            orders = [o for o in taker_orders(data, units, symbol) if o.first_ms >= first]
            result = estimate(parsed_side, order_qty, float(duration), window, prints.quotes, orders)
            provenance = (
                f"from the venue's last {ESTIMATE_WINDOW_MS // 3_600_000} h of data: spread from quotes"
                f" {TAPE_MID}; volatility and volume from one-minute candles"
            )
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from None
    for line in result.lines():
        typer.echo(line)
    typer.echo(provenance)


@tca_app.command("calibrate")
def calibrate_command(
    orders: Annotated[int, typer.Option(help="How many simulated parent orders to run.")] = 200,
    out: Annotated[
        Path | None, typer.Option(help="Output directory: calibration.json, orders.csv, calibration.html.")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seeds the draw of every order (side, size, duration, seed).")
    ] = 1,
    scenario: Annotated[Path, typer.Option(help="The risk-lab scenario to trade in.")] = CALM_DAY,
    market: Annotated[str, typer.Option(help="The scenario's market.")] = "BTCUSDT",
    algo: Annotated[str, typer.Option(help=f"The algorithm: {', '.join(ALGOS)}.")] = "twap",
    qty_min: Annotated[str, typer.Option(help="Smallest quantity (drawn log-uniform).")] = "0.1",
    qty_max: Annotated[str, typer.Option(help="Largest quantity.")] = "5",
    duration_min_s: Annotated[int, typer.Option(help="Shortest window, s (drawn uniform).")] = 60,
    duration_max_s: Annotated[int, typer.Option(help="Longest window, s.")] = 600,
    warmup_s: Annotated[int, typer.Option(help="Market history before each order, s.")] = 600,
    passiveness_bps: Annotated[
        int, typer.Option(help="The algo's passiveness: 0 crosses the spread, 10000 rests at the touch.")
    ] = 0,
    impact_y: Annotated[
        float, typer.Option(help="Y of the square-root impact term to test.")
    ] = PRIOR_IMPACT_Y,
) -> None:
    """Run N simulated algo orders and report whether the pre-trade estimate is biased (docs/tca.md)."""
    try:
        if out is None:
            raise InputError("--out DIR is required")
        plan = Plan(
            orders=orders,
            seed=seed,
            scenario=scenario,
            market=market,
            algo=algo,
            qty_min=_req(_decimal("--qty-min", qty_min)),
            qty_max=_req(_decimal("--qty-max", qty_max)),
            duration_min_s=duration_min_s,
            duration_max_s=duration_max_s,
            warmup_s=warmup_s,
            passiveness_bps=passiveness_bps,
            impact_y=impact_y,
        )
        outcomes = calibrate_orders(plan)
        summary = write_calibration(outcomes, plan, out)
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    for line in headline(summary):
        typer.echo(line)
    typer.echo(f"wrote {out / CALIBRATION_JSON}, {out / ORDERS_CSV}, {out / CALIBRATION_HTML}")
