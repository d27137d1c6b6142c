"""Quotes left ``BOOKING`` by a crash: booked or released at restart, from the journal.

An accept writes ``BOOKING`` before it submits the block trade, so a quote is never booked twice;
if the venue stops between that write and the engine's answer, the quote stays ``BOOKING`` and
nobody knows from the desk's store whether the trade happened. The journal knows: the block trade
is a journaled command carrying the quote id. At restart (:func:`reconcile`):

* the quote's :class:`~perpx.engine.commands.BookBlockTrade` is in the journal **and** the
  client's trade history holds its trade (order id 0, the command's time, side, quantity and price):
  the quote is ``FILLED`` with that trade id, as if the answer had arrived;
* it is in the journal and no trade came of it (the engine refused it): ``REJECTED``, ``-9570``;
* it never reached the journal: ``REJECTED``, ``-9570``: the quote is released (it can never be
  booked later, and the client asks again).

``find_trade`` is how the caller reads the client's trades (the server's read model, rebuilt from
the journal before the desk starts), so this module does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from perpx.engine.commands import BookBlockTrade, BookSpotBlockTrade, Command
from perpx.otc.desk import AnyBlockTrade, Desk
from perpx.otc.store import BOOKING, QuoteRecord

FindTrade = Callable[[QuoteRecord, AnyBlockTrade], int | None]
"""The trade id of ``command``'s block trade in the client's history, or ``None``."""


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One ``BOOKING`` quote's outcome at restart."""

    quote_id: str
    state: str
    trade_id: int | None
    reason: str


def journaled_blocks(commands: Iterable[Command], quote_ids: set[str]) -> dict[str, AnyBlockTrade]:
    """The block-trade command of each of ``quote_ids`` found in ``commands`` (the first, if several)."""
    found: dict[str, AnyBlockTrade] = {}
    for command in commands:
        if isinstance(command, BookBlockTrade | BookSpotBlockTrade) and command.quote_id in quote_ids:
            found.setdefault(command.quote_id, command)
    return found


def reconcile(desk: Desk, commands: Iterable[Command], find_trade: FindTrade) -> list[Reconciled]:
    """Settle every ``BOOKING`` quote of ``desk``'s store from ``commands`` (module docstring)."""
    pending = [q for q in desk.store.quotes() if q.state == BOOKING]
    if not pending:
        return []
    blocks = journaled_blocks(commands, {q.quote_id for q in pending})
    results = []
    for quote in pending:
        command = blocks.get(quote.quote_id)
        trade_id = None if command is None else find_trade(quote, command)
        record = desk.resolve_booking(quote, command, trade_id)
        results.append(Reconciled(quote.quote_id, record.state, record.trade_id, record.reason or ""))
    return results
