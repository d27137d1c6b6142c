"""One execution algo's parent order and its children, read from a venue's data directory.

An algo's children are ordinary orders whose client order id is ``{prefix}-c{n}``
(:func:`perpx.execution.ids.child_id`), so the trading read model (``DATA/readmodel.sqlite``,
``orders`` and ``trades``) holds them and their fills under the account that ran the algo.

The parent itself is recorded in its **child log** (:mod:`perpx.execution.childlog`), whose first
record (``bound``) fixed, when the parent arrived, its quantity in lots, its start and end and its
arrival price in ticks (the mid then); a ``done`` record says when it ended. The server keeps it at
``DATA/algos/<algoId>.childlog``; a backtest writes ``OUT/child_log.jsonl``. :func:`find_child_log`
finds it by the numeric ``algoId`` or by the ``clientAlgoId``.

**Not recorded anywhere:** a decision price apart from arrival. The runner binds the parent at the
mid when it arrives, and nothing earlier is kept, so ``P_d = P_a`` and the delay cost is zero;
tca.json's ``source.decision_price`` says so. Without a child log (the read models alone) ``Q`` is
what was filled, ``P_a`` the tape-inferred mid when the first child was sent, and the order's life
the first child .. the last fill.

Everything here is read-only: the child log is read, never opened for appending (which would cut
a torn last line).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from perpx.execution.childlog import BoundRecord, DoneRecord, PlaceRecord, Record, read_log
from perpx.execution.ids import algo_prefix, parse_child_id
from perpx.tca.inputs import InputError, Side
from perpx.tca.venue import READMODEL_FILE, Market, read_only

ALGOS_DIR = "algos"
CHILD_LOG_SUFFIX = ".childlog"
NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class ParentRecord:
    """What the child log recorded of the parent, in the market's decimals."""

    path: Path
    client_algo_id: str
    market: str
    side: Side
    qty: Decimal
    arrival_price: Decimal
    start_ms: int
    planned_end_ms: int | None
    done_ms: int | None
    done_reason: str | None
    children_logged: int


@dataclass(frozen=True, slots=True)
class Child:
    """One child order of the algo in the read model."""

    order_id: int
    client_order_id: str
    index: int
    symbol: str
    side: Side
    time_ms: int


def _bound(path: Path) -> BoundRecord | None:
    try:
        records = read_log(path)
    except (OSError, ValueError):
        return None
    first = records[0] if records else None
    return first if isinstance(first, BoundRecord) else None


def find_child_log(data: Path, algo: str, given: Path | None) -> Path | None:
    """The child log of ``algo`` (an ``algoId`` or a ``clientAlgoId``), or ``None`` if there is none.

    ``given`` (``--child-log``) wins and must exist and be a child log. Otherwise the server's
    ``DATA/algos/<algo>.childlog`` when ``algo`` is a number, else the one log in ``DATA/algos/``
    whose parent has that ``clientAlgoId``.
    """
    if given is not None:
        if not given.is_file():
            raise InputError(f"--child-log: {given} does not exist")
        if _bound(given) is None:
            raise InputError(f"--child-log: {given} is not a child log (no 'bound' record first)")
        return given
    directory = data / ALGOS_DIR
    by_number = directory / f"{algo}{CHILD_LOG_SUFFIX}"
    if algo.isdigit() and by_number.is_file():
        return by_number
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob(f"*{CHILD_LOG_SUFFIX}")):
        bound = _bound(path)
        if bound is not None and bound.parent.client_algo_id == algo:
            return path
    return None


def parent_record(path: Path, units: Market) -> ParentRecord:
    """The parent as its child log at ``path`` recorded it (module docstring).

    Raises
    ------
    InputError
        If the file is not a child log.
    """
    try:
        records: list[Record] = read_log(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable child log ({exc})") from exc
    bound = records[0] if records else None
    if not isinstance(bound, BoundRecord):
        raise InputError(f"{path}: not a child log (no 'bound' record first)")
    done = next((r for r in records if isinstance(r, DoneRecord)), None)
    parent = bound.parent
    return ParentRecord(
        path=path,
        client_algo_id=parent.client_algo_id,
        market=parent.market,
        side=Side.BUY if parent.side.sign > 0 else Side.SELL,
        qty=units.qty(bound.qty_lots),
        arrival_price=units.price(bound.arrival_ticks),
        start_ms=bound.start_ns // NS_PER_MS,
        planned_end_ms=None if bound.end_ns is None else bound.end_ns // NS_PER_MS,
        done_ms=None if done is None else done.ts_ns // NS_PER_MS,
        done_reason=None if done is None else done.reason,
        children_logged=sum(1 for r in records if isinstance(r, PlaceRecord)),
    )


def log_market(path: Path) -> str:
    """The market of the parent whose child log is at ``path`` (to pick its units first)."""
    bound = _bound(path)
    if bound is None:
        raise InputError(f"{path}: not a child log (no 'bound' record first)")
    return bound.parent.market


def log_client_algo_id(path: Path) -> str:
    """The ``clientAlgoId`` of the parent whose child log is at ``path``."""
    bound = _bound(path)
    if bound is None:
        raise InputError(f"{path}: not a child log (no 'bound' record first)")
    return bound.parent.client_algo_id


def algo_children(data: Path, account: int, client_algo_id: str) -> list[Child]:
    """The account's orders whose client order id is a child id of ``client_algo_id``, oldest first."""
    prefix = algo_prefix(client_algo_id)
    head = f"{prefix}-c"
    with read_only(data / READMODEL_FILE) as db:
        rows = db.execute(
            "SELECT order_id, client_order_id, symbol, side, time_ms FROM orders"
            " WHERE account_id = ? AND substr(client_order_id, 1, ?) = ? ORDER BY order_id",
            (account, len(head), head),
        ).fetchall()
    children = []
    for order_id, cid, symbol, side, time_ms in rows:
        parsed = parse_child_id(str(cid))
        if parsed is None or parsed[0] != prefix:
            continue
        children.append(
            Child(
                int(order_id),
                str(cid),
                parsed[1],
                str(symbol),
                Side.BUY if side == "BUY" else Side.SELL,
                time_ms,
            )
        )
    return children
