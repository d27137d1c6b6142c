"""Every money formula of the venue, in integers, each with its rounding direction.

This module is the only place where prices, quantities and rates are multiplied
into money. ``docs/mechanics.md`` states each formula with a worked example;
the names here match the headings there.

Rounding policy
---------------
Integer division has to round one way. The venue never rounds silently in its
own favour; each formula states the direction and the reason:

=============================  ===========  ========================================================
formula                        rounds       why
=============================  ===========  ========================================================
``notional_atoms``             exact        ``contract_atoms`` makes price x qty a whole atom count
``fee_atoms`` (charge)         up           a fee is never understated; at most 1 atom per fill
``fee_atoms`` (rebate)         toward 0     the fee account never pays out an atom it did not earn
``initial_margin_atoms``       up           margin requirements err toward solvency
``open_loss_atoms``            exact        integers in, integers out
``maintenance_margin_atoms``   up           liquidation never triggers late because of rounding
``cost_removed_atoms``         toward 0     the sub-atom remainder stays in the position and is
                                            realised, exactly, when the position closes
``isolated_margin_released``   toward 0     same: the remainder returns on full close
``bracket_cum_atoms``          down         a smaller ``cum`` means a larger maintenance margin
``funding_payment_atoms``      payer up,    the payers' side is never understated, the receivers'
                               receiver     never overstated; the residue (< 1 atom a position)
                               toward 0     goes to the insurance fund, reported per settlement
``bankruptcy_value_atoms``     exact        integers in, integers out
``bankruptcy_limit_ticks``     toward the   a long's sell limit up, a short's buy limit down: a fill
                               account      at the limit never goes past bankruptcy
``pro_rata_atoms``             stated       takeover and ADL shares of the bankruptcy value: the
                                            liquidated account's share rounds in its favour, the
                                            ADL counterparties' in theirs, the fund takes the atom
``clearance_fee_atoms``        up, capped   a fee is never understated, but never takes more than
                                            what is left above bankruptcy
``liquidation_price_ticks``    toward the   for display: the position is liquidated at or before
                               mark         the price shown
``maintenance_bound_e8`` and   against the  the safety band may recheck an account early, never late
``band_ticks``                 account
``mul_rate_floor/ceil``        stated       helpers; callers pick the direction
=============================  ===========  ========================================================

Conventions: a position is ``qty_lots`` signed (+long, -short) and a signed
``cost_atoms`` (the entry notional: positive for a long, negative for a
short). Entry price is ``cost / (qty * contract_atoms)`` ticks, so the weighted
average entry never has to be rounded and unrealised PnL is exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from perpx.engine.values import RATE_SCALE

if TYPE_CHECKING:
    from mypy_extensions import i64

_NARROW: Final = 2**31
"""Factors within ``+/- 2**31``: their product is within ``+/- 2**62``, far inside 64 bits."""
_SHORT: Final = 2**61
"""Factors within ``+/- 2**61`` are machine words (compiled: no integer object to unpack)."""
_PRODUCT: Final = 9.0e18
"""Products estimated within ``+/- 9.0e18`` fit 64 bits (``2**63`` is about ``9.22e18``)."""


def _compiled() -> bool:
    """Whether this module runs compiled (mypyc): its functions are then built-in, without code objects."""
    return not hasattr(_compiled, "__code__")


COMPILED: Final = _compiled()


def mul(a: int, b: int) -> int:
    """``a x b``, exact, in 64-bit machine arithmetic when the product provably fits.

    Compiled, a plain ``a * b`` of Python integers takes the big-integer path (two integer objects
    made and freed) as soon as a factor is negative or above ``2**30``, which most money products
    are. The guard: both factors within ``2**31`` (product below ``2**62``), or both within
    ``2**61`` and the product, estimated in floating point, within ``9.0e18``; the estimate's
    relative error is below ``2**-51``, so the true product is below ``9.0e18 x (1 + 2**-51) <
    2**63``. Anything else is multiplied as Python integers. Uncompiled, ``i64`` is only an
    annotation, so the guard would only cost time: the product is Python's at once.
    """
    if not COMPILED:
        return a * b
    if -_NARROW < a < _NARROW and -_NARROW < b < _NARROW:
        x: i64 = a
        y: i64 = b
        return x * y
    if -_SHORT < a < _SHORT and -_SHORT < b < _SHORT and -_PRODUCT < float(a) * float(b) < _PRODUCT:
        wide_x: i64 = a
        wide_y: i64 = b
        return wide_x * wide_y
    return a * b


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounded toward +infinity (``denominator > 0``)."""
    return -((-numerator) // denominator)


def trunc_div(numerator: int, denominator: int) -> int:
    """Integer division rounded toward zero (``denominator > 0``)."""
    if numerator >= 0:
        return numerator // denominator
    return -((-numerator) // denominator)


def mul_rate_floor(amount: int, rate_e8: int) -> int:
    """``amount x rate``, rounded toward -infinity."""
    return mul(amount, rate_e8) // RATE_SCALE


def mul_rate_ceil(amount: int, rate_e8: int) -> int:
    """``amount x rate``, rounded toward +infinity."""
    return ceil_div(mul(amount, rate_e8), RATE_SCALE)


def notional_atoms(price_ticks: int, qty_lots: int, contract_atoms: int) -> int:
    """Notional of ``qty_lots`` at ``price_ticks``: exact, ``price x qty x contract_atoms``."""
    return mul(price_ticks * qty_lots, contract_atoms)


def fee_atoms(notional: int, rate_e8: int) -> int:
    """Trading fee on a fill of ``notional`` atoms (positive = charged, negative = rebate).

    A charge rounds up, a rebate rounds toward zero: the rounding is never more
    than one atom, and the fee account never pays a rebate it did not collect.
    """
    if rate_e8 >= 0:
        return ceil_div(mul(notional, rate_e8), RATE_SCALE)
    return -(mul(notional, -rate_e8) // RATE_SCALE)


def open_loss_atoms(
    side_sign: int, opening_lots: int, price_ticks: int, mark_ticks: int, contract_atoms: int
) -> int:
    """Open loss of an order's opening part (Binance): what buying above, or selling below, the mark loses at once.

    Buy: ``lots x max(0, price - mark)``; sell: ``lots x max(0, mark - price)``; exact. It is part of
    the order's cost: with initial margin alone a 125x buy at 1.05 x mark would be bankrupt on its fill.
    """
    gap = (price_ticks - mark_ticks) * side_sign
    return mul(opening_lots * gap, contract_atoms) if gap > 0 else 0


def initial_margin_atoms(notional: int, leverage: int) -> int:
    """Initial margin ``notional / leverage``, rounded up."""
    return ceil_div(notional, leverage)


def maintenance_margin_atoms(notional: int, mmr_e8: int, cum_atoms: int) -> int:
    """Maintenance margin ``notional x mmr - cum`` of the notional's bracket, rounded up, at least 0."""
    return max(0, ceil_div(notional * mmr_e8, RATE_SCALE) - cum_atoms)


def bracket_cum_atoms(floor_atoms: int, mmr_e8: int, previous_mmr_e8: int, previous_cum_atoms: int) -> int:
    """Maintenance amount of a tier: ``floor x (mmr - previous_mmr) + previous_cum``, rounded down.

    The derivation keeps maintenance margin continuous at every tier boundary
    (Binance's ``cum``). Rounding down makes the maintenance margin larger.
    """
    return (floor_atoms * (mmr_e8 - previous_mmr_e8)) // RATE_SCALE + previous_cum_atoms


def unrealized_pnl_atoms(qty_lots: int, cost_atoms: int, mark_ticks: int, contract_atoms: int) -> int:
    """Unrealised PnL at the mark: ``qty x mark x contract - cost``; exact."""
    return mul(mul(qty_lots, mark_ticks), contract_atoms) - cost_atoms


def cost_removed_atoms(cost_atoms: int, closed_lots: int, qty_lots: int) -> int:
    """Entry cost leaving the position when ``closed_lots`` of ``|qty_lots|`` close; toward zero.

    The sub-atom remainder stays in the position's cost and is realised with
    the last lot, so realised PnL over a position's life is exact.
    """
    size = qty_lots if qty_lots >= 0 else -qty_lots
    if closed_lots == size:
        return cost_atoms
    return trunc_div(mul(cost_atoms, closed_lots), size)


def realized_pnl_atoms(
    side_sign: int, closed_lots: int, fill_ticks: int, contract_atoms: int, cost_removed: int
) -> int:
    """Realised PnL of closing ``closed_lots`` of a position of sign ``side_sign`` at ``fill_ticks``.

    A long's exit proceeds are ``closed x price``; a short's are the negative.
    PnL is proceeds minus the (signed) cost removed; exact.
    """
    proceeds = mul(closed_lots * fill_ticks, contract_atoms)
    return (proceeds if side_sign > 0 else -proceeds) - cost_removed


def isolated_margin_released_atoms(isolated_margin_atoms: int, closed_lots: int, qty_lots: int) -> int:
    """Share of an isolated position's margin freed when ``closed_lots`` close; toward zero."""
    size = qty_lots if qty_lots >= 0 else -qty_lots
    if closed_lots == size:
        return isolated_margin_atoms
    return trunc_div(mul(isolated_margin_atoms, closed_lots), size)


def price_band_ticks(mark_ticks: int, multiplier_e8: int, round_up: bool) -> int:
    """``mark x multiplier`` in ticks; the band edge is rounded inward (toward the mark).

    A BUY ceiling is rounded down and a SELL floor is rounded up, so an order at
    the band edge never lies outside the published multiplier.
    """
    if round_up:
        return ceil_div(mul(mark_ticks, multiplier_e8), RATE_SCALE)
    return mul(mark_ticks, multiplier_e8) // RATE_SCALE


def margin_ratio_e8(maintenance_atoms: int, margin_balance_atoms: int) -> int:
    """Margin ratio ``maintenance / margin balance`` in ``_e8`` (1e8 = 100%, liquidation).

    A zero or negative margin balance with any maintenance margin is reported
    as an infinite ratio, returned as ``2**62``; no position at all is 0.
    """
    if maintenance_atoms == 0:
        return 0
    if margin_balance_atoms <= 0:
        return 2**62
    return ceil_div(maintenance_atoms * RATE_SCALE, margin_balance_atoms)


def funding_payment_atoms(qty_lots: int, mark_ticks: int, contract_atoms: int, rate_e8: int) -> int:
    """Funding a position pays at a settlement: ``signed qty x mark x rate``; positive = it pays.

    With a positive rate longs pay and shorts receive; with a negative rate the
    reverse. A payment rounds up (away from zero), a receipt toward zero, so
    across a market the payers' total is at least the receivers' and the
    difference, the rounding residue, is below one atom per position.
    """
    exact = qty_lots * mark_ticks * contract_atoms * rate_e8
    if exact >= 0:
        return ceil_div(exact, RATE_SCALE)
    return -((-exact) // RATE_SCALE)


# ---------------------------------------------------------------------------- liquidation
#
# A liquidation *scope* is a cross account (its wallet and all its cross positions) or one
# isolated position (its isolated margin). For the position being liquidated, ``other_equity``
# (``W'``) is the scope's margin balance without that position's unrealised PnL: the wallet (or
# isolated margin) plus the unrealised PnL of the scope's other positions at their marks.


def bankruptcy_value_atoms(side_sign: int, cost_atoms: int, other_equity_atoms: int) -> int:
    """Notional at which closing the whole position leaves its scope with a margin balance of zero; exact.

    Closing a long of cost ``C`` for ``V`` leaves ``W' + V - C``; a short, ``W' - V - C`` (``C`` is
    negative). Zero at ``V = side x (C - W')``: a long's ``C - W'``, a short's ``W' + |C|``. Divided by
    the position's ``|qty| x contract_atoms`` it is the bankruptcy price in ticks.
    """
    return side_sign * (cost_atoms - other_equity_atoms)


def bankruptcy_limit_ticks(value_atoms: int, qty_lots: int, contract_atoms: int, side_sign: int) -> int:
    """The bankruptcy price of ``qty_lots`` (absolute) worth ``value_atoms``, in whole ticks.

    Rounded toward the liquidated account: a long is sold, its limit rounds up; a short is bought
    back, its limit rounds down. Every fill at or better than the limit leaves the scope at or
    above zero. A short's limit can be zero or negative (no price saves it): nothing fills then.
    """
    per_tick = qty_lots * contract_atoms
    if side_sign > 0:
        return ceil_div(value_atoms, per_tick)
    return value_atoms // per_tick


def pro_rata_atoms(value_atoms: int, part_lots: int, whole_lots: int, round_up: bool) -> int:
    """``value x part / whole``: the share of a bankruptcy value for ``part_lots`` of ``whole_lots``.

    The caller picks the direction (see the table above); the whole is exact.
    """
    if part_lots == whole_lots:
        return value_atoms
    if round_up:
        return ceil_div(value_atoms * part_lots, whole_lots)
    return (value_atoms * part_lots) // whole_lots


def realized_value_pnl_atoms(side_sign: int, value_atoms: int, cost_removed: int) -> int:
    """Realised PnL of closing a position of sign ``side_sign`` for ``value_atoms``; exact.

    As :func:`realized_pnl_atoms`, for a close at an exact value rather than a tick price
    (insurance takeover and ADL at the bankruptcy price, which is rarely a whole tick).
    """
    return (value_atoms if side_sign > 0 else -value_atoms) - cost_removed


def clearance_fee_atoms(notional_atoms: int, rate_e8: int, surplus_atoms: int) -> int:
    """Liquidation clearance fee: ``notional x liquidation_fee`` rounded up, at most the surplus.

    ``surplus_atoms`` is what the liquidation left above bankruptcy (the scope's margin balance
    after the close); the fee never takes the account below zero, and is 0 when nothing is left.
    """
    due = ceil_div(notional_atoms * rate_e8, RATE_SCALE)
    return min(due, max(0, surplus_atoms))


def liquidation_price_ticks(
    side_sign: int,
    qty_lots: int,
    cost_atoms: int,
    other_equity_atoms: int,
    contract_atoms: int,
    tiers: tuple[tuple[int, int, int, int], ...],
) -> tuple[int | None, int]:
    """Binance's liquidation price (one-way mode) with the bracket loop: ``(ticks or None, tier index)``.

    ``tiers`` are ``(floor_atoms, cap_atoms, mmr_e8, cum_atoms)``; ``other_equity_atoms`` is
    ``W' = WB - TMM1 + UPNL1`` (cross: wallet, minus the maintenance margin and plus the
    unrealised PnL of the other cross positions; isolated: the isolated margin). Per tier::

        long   LP = (C - W' - cum) / (|Q| x (1 - mmr))        short  LP = (W' + cum - |C|) / (|Q| x (1 + mmr))

    (``C`` the signed entry notional, ``|Q|`` in lots x contract). The tier kept is the one whose
    ``[floor, cap)`` contains the notional *at* LP. ``cum`` is rounded down, so near a tier boundary
    zero or two tiers can match: two keep the one nearer the mark (earlier), none the nearest range.
    Rounded toward the mark (a long's price up, a short's down); ``None`` when LP <= 0 ("--").
    """
    size = qty_lots * contract_atoms  # atoms per tick of price
    best: tuple[int, int] | None = None  # (numerator, denominator) of the kept tier, in ticks
    best_tier = 0
    nearest = -1
    nearest_miss = 0
    nearest_fraction: tuple[int, int] = (0, 1)
    last = len(tiers) - 1
    for index, (floor_atoms, cap_atoms, mmr_e8, cum_atoms) in enumerate(tiers):
        numerator = side_sign * (cost_atoms - other_equity_atoms - cum_atoms) * RATE_SCALE
        denominator = size * (RATE_SCALE - side_sign * mmr_e8)
        # notional at LP = numerator * qty_lots * contract / denominator = numerator * size / denominator
        scaled = numerator * size
        low = floor_atoms * denominator
        high = cap_atoms * denominator
        if low <= scaled and (index == last or scaled < high):
            if best is None or (numerator * best[1] - best[0] * denominator) * side_sign > 0:
                best, best_tier = (numerator, denominator), index
            continue
        miss = (low - scaled) if scaled < low else (scaled - high)
        # compare miss / denominator across tiers exactly
        if nearest < 0 or miss * nearest_fraction[1] < nearest_miss * denominator:
            nearest, nearest_miss, nearest_fraction = index, miss, (numerator, denominator)
    if best is None:
        best, best_tier = nearest_fraction, nearest
    numerator, denominator = best
    if numerator <= 0:
        return None, best_tier
    ticks = ceil_div(numerator, denominator) if side_sign > 0 else numerator // denominator
    return ticks, best_tier


def maintenance_bound_e8(notional_atoms: int, tiers: tuple[tuple[int, int], ...]) -> int:
    """An upper bound of ``10**8 x maintenance margin`` for the safety band; ``tiers`` are ``(mmr_e8, cum_atoms)``.

    ``max over tiers of (notional x mmr - cum x 10**8) + 10**8``: maintenance margin is convex in
    the notional (``cum`` makes it continuous), so the largest tier line bounds it everywhere, and
    the ``+ 10**8`` covers the rounding up of one tier's product (and the rounding down of ``cum``).
    The bound grows by at most ``max mmr`` per atom of notional and never falls with it.
    """
    bound = 0
    for mmr_e8, cum_atoms in tiers:
        line = notional_atoms * mmr_e8 - cum_atoms * RATE_SCALE
        bound = max(bound, line)
    return bound + RATE_SCALE


def safety_slack_e8(margin_balance_atoms: int, maintenance_bound_e8_total: int) -> int:
    """How far a scope is from liquidation, in the units of :func:`maintenance_bound_e8`.

    ``(10**8 - 1) x margin balance - bound``. While it is >= 0 the margin ratio
    ``ceil(MM x 10**8 / margin balance)`` is below ``10**8``: ``MM x 10**8 < bound``.
    """
    return (RATE_SCALE - 1) * margin_balance_atoms - maintenance_bound_e8_total


def band_ticks(slack_share_e8: int, qty_lots: int, contract_atoms: int, bound_slope_e8: int) -> int:
    """Ticks the mark may move against a position of ``qty_lots`` (absolute) before it spends ``slack_share_e8``.

    One tick against the position lowers the margin balance by ``qty x contract`` and raises the
    maintenance bound by at most ``bound_slope_e8 x qty x contract``: 0 for a long (its notional
    falls with the price, and the bound with it), the largest tier ``mmr`` for a short (its notional
    rises). Rounded down, so the band is never wider than the slack it stands for.
    """
    return slack_share_e8 // ((RATE_SCALE - 1 + bound_slope_e8) * qty_lots * contract_atoms)


# ---------------------------------------------------------------------- Multi-Assets Mode
# ``collateral_value_atoms``  down   a collateral asset never counts for more than it is worth
# ``conversion_proceeds``     down   the account receives no atom the sale did not earn
# ``conversion_needed``       up     enough collateral is sold to cover the debt it is sold for


def _pow10(decimals: int) -> int:
    return int(10**decimals)


def collateral_value_atoms(
    amount_atoms: int, index_atoms: int, decimals: int, tiers: tuple[tuple[int, int], ...]
) -> int:
    """Margin value of holding ``amount_atoms`` of a collateral asset: index x (1 - haircut), tiered.

    ``index_atoms`` is the settlement atoms one whole unit is worth; ``tiers`` are
    ``(from_atoms, haircut_e8)`` (the first from 0): the part of the holding inside each tier
    counts at that tier's haircut. One division for the whole sum, rounded down (against the
    account). Zero or negative holdings are worth nothing.
    """
    if amount_atoms <= 0 or index_atoms <= 0:
        return 0
    weighted = 0  # sum of part_atoms x (1 - haircut) in e8
    for number, (start, haircut_e8) in enumerate(tiers):
        if amount_atoms <= start:
            break
        end = tiers[number + 1][0] if number + 1 < len(tiers) else amount_atoms
        part = (amount_atoms if amount_atoms < end else end) - start
        weighted += part * (RATE_SCALE - haircut_e8)
    return weighted * index_atoms // (_pow10(decimals) * RATE_SCALE)


def conversion_price_atoms(index_atoms: int, discount_e8: int) -> int:
    """The price (settlement atoms per whole unit) a liquidation converts collateral at, rounded down."""
    return index_atoms * (RATE_SCALE - discount_e8) // RATE_SCALE


def conversion_needed_atoms(debt_atoms: int, price_atoms: int, decimals: int) -> int:
    """Collateral atoms whose sale at ``price_atoms`` covers ``debt_atoms``, rounded up."""
    return ceil_div(debt_atoms * _pow10(decimals), price_atoms)


def conversion_proceeds_atoms(sold_atoms: int, price_atoms: int, decimals: int) -> int:
    """Settlement atoms ``sold_atoms`` of collateral fetch at ``price_atoms``, rounded down."""
    return sold_atoms * price_atoms // _pow10(decimals)
