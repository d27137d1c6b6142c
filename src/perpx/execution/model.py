"""The parent order: one canonical model for every algorithm, venue and front end.

A parent order is what an institution hands the execution engine: *buy 25 BTCUSDT over the next
hour, never above 101,000, no more than 2 per child*. Every front end (the ``perpx algo`` CLI,
strategy documents, a future server-side algo API) decodes into :class:`ParentOrder`, and every
algorithm reads only this struct. The field set is the union of the venue and broker parameter
sets in ``execution-tca-agents.md`` section 3.6.

Rules
-----
* Unknown fields are rejected (``forbid_unknown_fields``), as Pacifica does: a typo such as
  ``limit_prce`` must fail loudly, never silently trade without a limit.
* Prices and quantities are decimal strings on the wire and :class:`~decimal.Decimal` here; they
  become integer ticks and lots only against a market's filters (:mod:`perpx.execution.venue`),
  so one parent order can be worked on any venue.
* Times are integer nanoseconds since the Unix epoch (``_ns``), durations seconds (``_s``),
  rates and fractions are basis points (``_bps``, 10,000 = 100%).
* :func:`validate_parent` returns every problem at once, each naming its field, so a document
  or CLI can show them all; :func:`decode_parent` raises :class:`ParentOrderError` with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import msgspec

BPS = 10_000
"""Basis points in one: a ``_bps`` field of 10,000 is 100%."""

MAX_CLIENT_ALGO_ID_CHARS = 32
"""Binance's limit for ``clientAlgoId``; kept so one id works on the venue algo API too."""


class Algo(StrEnum):
    """Which algorithm works the parent."""

    TWAP = "twap"
    """Equal slices over the window (optionally randomised), with catch-up."""
    VWAP = "vwap"
    """Follows the venue's volume profile (hour of week; minute of hour under an hour), re-normalised each slice."""
    POV = "pov"
    """Participates at ``pov_target_bps`` of market volume, within ``pov_min_bps``..``pov_max_bps``."""
    IS = "is"
    """Implementation shortfall: Almgren-Chriss schedule, re-solved on the remaining quantity."""
    SCALED = "scaled"
    """A ladder of limit orders between ``ladder_start_price`` and ``ladder_end_price``."""
    ICEBERG = "iceberg"
    """One limit order showing ``display_qty`` at a time, refilled when it fills."""


class ParentSide(StrEnum):
    """Buy or sell (lower case on the wire, as ccxt writes it)."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the ``s`` of the TCA formulas."""
        return 1 if self is ParentSide.BUY else -1


class EndBehavior(StrEnum):
    """What happens to the unfilled remainder when the window ends."""

    CANCEL = "cancel"
    """Cancel working children; the remainder is left unfilled (opportunity cost)."""
    COMPLETE_AGGRESSIVE = "complete_aggressive"
    """Cross the spread for the remainder, still within ``limit_price``."""
    LEAVE_PASSIVE = "leave_passive"
    """Leave one passive child resting for the remainder; the parent stays open until it fills."""


class Urgency(StrEnum):
    """How hard to trade against risk; maps to IS risk aversion and to a default POV rate."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class PriceSpacing(StrEnum):
    """How a ladder's prices are spaced between its first and last level."""

    LINEAR = "linear"
    GEOMETRIC = "geometric"


class SizeDistribution(StrEnum):
    """How a ladder's quantity is spread over its levels (weights w_i, i = 1..n)."""

    FLAT = "flat"
    """w_i = 1."""
    INCREASING = "increasing"
    """w_i = i: more size at the levels further from the first price."""
    GEOMETRIC = "geometric"
    """w_i = r^(i-1) with ``ladder_size_ratio`` r."""


class ParentOrder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One parent order, as every algorithm reads it.

    Exactly one of ``qty`` and ``notional`` is set. Exactly one of ``end_ns`` and ``duration_s``
    is set for the timed algorithms (TWAP, VWAP, IS); POV may run open-ended (it stops when the
    quantity is done), scaled and iceberg orders need neither. ``start_ns`` ``None`` means "now"
    (the first tick the scheduler sees). Defaults are the behaviour a desk expects when a field
    is left out: no randomisation, cancel at the end, medium urgency.
    """

    algo: Algo
    market: str
    side: ParentSide
    client_algo_id: str
    """Idempotency key: the same id is the same parent, and child ids derive from it."""
    qty: Decimal | None = None
    """Base quantity (e.g. BTC); rounded down to the lot size of the market."""
    notional: Decimal | None = None
    """Quote quantity (e.g. USDT), converted to base at the arrival price."""
    limit_price: Decimal | None = None
    """No child ever buys above / sells below this price."""
    would_price: Decimal | None = None
    """"I would" price: when the far touch is at or better than this, take liquidity regardless of schedule."""
    start_ns: int | None = None
    end_ns: int | None = None
    duration_s: int | None = None
    end_behavior: EndBehavior = EndBehavior.CANCEL
    urgency: Urgency = Urgency.MEDIUM
    risk_aversion: float | None = None
    """Almgren-Chriss lambda (per quote unit); overrides ``urgency`` for IS when set."""
    pov_target_bps: int | None = None
    pov_min_bps: int | None = None
    pov_max_bps: int | None = None
    take_through_bps: int = 0
    """How far past the touch a catch-up child may cross, in bps of the touch price."""
    max_clip: Decimal | None = None
    """Largest child quantity (base); no child is larger."""
    min_clip: Decimal | None = None
    """Smallest child quantity (base) worth sending, except the last remainder."""
    slice_interval_s: int | None = None
    """TWAP/VWAP/IS decision period; defaults to an algorithm-chosen period."""
    passiveness_bps: int = 5_000
    """0 = cross the spread (take), 10,000 = join the near touch; in between, inside the spread."""
    post_only: bool = False
    """Children never take liquidity (sent as GTX; a would-cross is rejected by the venue)."""
    randomize_size_bps: int = 0
    """Each slice's size varies by up to +/- this share, from the seeded RNG the runner passes in."""
    randomize_time_bps: int = 0
    """Each slice's time varies by up to +/- this share of the slice interval."""
    max_slippage_bps: int | None = None
    """No child is priced further than this from the arrival price against the parent."""
    reduce_only: bool = False
    display_qty: Decimal | None = None
    """Iceberg: the visible size of the working child."""
    display_jitter_bps: int = 0
    """Iceberg: each refill's display varies by up to +/- this share."""
    repeg_ticks: int | None = None
    """Iceberg: re-price the working child when the near touch moves this many ticks away."""
    ladder_levels: int | None = None
    ladder_start_price: Decimal | None = None
    ladder_end_price: Decimal | None = None
    ladder_spacing: PriceSpacing = PriceSpacing.LINEAR
    ladder_sizes: SizeDistribution = SizeDistribution.FLAT
    ladder_size_ratio: Decimal = Decimal(2)
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    """Free labels, carried into the child log and TCA report."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with a parent order: which field, and what to do about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ParentOrderError(ValueError):
    """A parent order that cannot be worked; ``errors`` names every offending field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


TIMED_ALGOS = frozenset({Algo.TWAP, Algo.VWAP, Algo.IS})


MAX_DECIMAL_EXPONENT = 15
"""No price or quantity is 10^16 or more: larger values are typos, and they would cost memory as lots."""

DECIMAL_FIELDS = (
    "qty",
    "notional",
    "limit_price",
    "would_price",
    "max_clip",
    "min_clip",
    "display_qty",
    "ladder_start_price",
    "ladder_end_price",
    "ladder_size_ratio",
)


def _finite(errors: list[FieldError], parent: ParentOrder) -> bool:
    # NaN and Infinity parse as Decimals, and comparing a NaN raises: refuse them before any rule
    sound = True
    for name in DECIMAL_FIELDS:
        value = getattr(parent, name)
        if value is None:
            continue
        if not value.is_finite():
            errors.append(FieldError(name, f"must be a finite number, was {value}"))
            sound = False
        elif value and value.adjusted() > MAX_DECIMAL_EXPONENT:
            errors.append(
                FieldError(name, f"is too large ({value}); the limit is below 1e{MAX_DECIMAL_EXPONENT + 1}")
            )
            sound = False
    return sound


def _positive(errors: list[FieldError], name: str, value: Decimal | int | None) -> None:
    if value is not None and not value > 0:
        errors.append(FieldError(name, f"must be positive, was {value}"))


def _bps(errors: list[FieldError], name: str, value: int | None, low: int = 0, high: int = BPS) -> None:
    if value is not None and not low <= value <= high:
        errors.append(FieldError(name, f"must be between {low} and {high} bps, was {value}"))


def validate_parent(parent: ParentOrder) -> list[FieldError]:
    """Every reason ``parent`` cannot be worked, each naming its field; empty when it is sound.

    Checks only what needs no market: market filters (lot size, min notional) are checked when
    the scheduler binds the parent to a venue (:func:`perpx.execution.scheduler.bind_parent`).
    """
    errors: list[FieldError] = []
    if not _finite(errors, parent):
        return errors
    if not parent.client_algo_id or len(parent.client_algo_id) > MAX_CLIENT_ALGO_ID_CHARS:
        errors.append(FieldError("client_algo_id", f"must be 1 to {MAX_CLIENT_ALGO_ID_CHARS} characters"))
    elif not all(c.isalnum() or c in "-_" for c in parent.client_algo_id):
        errors.append(FieldError("client_algo_id", "may hold only letters, digits, '-' and '_'"))
    if not parent.market:
        errors.append(FieldError("market", "must name a market, e.g. BTCUSDT"))
    if (parent.qty is None) == (parent.notional is None):
        errors.append(FieldError("qty", "give exactly one of qty and notional"))
    for name in ("qty", "notional", "limit_price", "would_price", "max_clip", "min_clip", "display_qty"):
        _positive(errors, name, getattr(parent, name))
    for name in ("duration_s", "slice_interval_s", "ladder_levels", "repeg_ticks"):
        _positive(errors, name, getattr(parent, name))
    if parent.end_ns is not None and parent.duration_s is not None:
        errors.append(FieldError("duration_s", "give end_ns or duration_s, not both"))
    if parent.algo in TIMED_ALGOS and parent.end_ns is None and parent.duration_s is None:
        errors.append(FieldError("duration_s", f"{parent.algo.value} needs end_ns or duration_s"))
    if parent.start_ns is not None and parent.end_ns is not None and parent.end_ns <= parent.start_ns:
        errors.append(FieldError("end_ns", "must be after start_ns"))
    if parent.min_clip is not None and parent.max_clip is not None and parent.min_clip > parent.max_clip:
        errors.append(FieldError("min_clip", "must not exceed max_clip"))
    for name in ("pov_target_bps", "pov_min_bps", "pov_max_bps"):
        _bps(errors, name, getattr(parent, name), low=1, high=BPS - 1)
    for name in ("passiveness_bps", "randomize_size_bps", "randomize_time_bps", "display_jitter_bps"):
        _bps(errors, name, getattr(parent, name))
    _bps(errors, "take_through_bps", parent.take_through_bps, high=BPS)
    _bps(errors, "max_slippage_bps", parent.max_slippage_bps, high=BPS)
    if parent.randomize_size_bps >= BPS:
        errors.append(FieldError("randomize_size_bps", "must be below 10000 (a slice cannot vary to zero)"))
    if parent.algo is Algo.POV and parent.pov_target_bps is None:
        errors.append(FieldError("pov_target_bps", "pov needs a participation target"))
    low, target, high = parent.pov_min_bps, parent.pov_target_bps, parent.pov_max_bps
    if target is not None and low is not None and low > target:
        errors.append(FieldError("pov_min_bps", "must not exceed pov_target_bps"))
    if target is not None and high is not None and high < target:
        errors.append(FieldError("pov_max_bps", "must not be below pov_target_bps"))
    if parent.risk_aversion is not None and not parent.risk_aversion >= 0:
        errors.append(FieldError("risk_aversion", "must be zero or positive"))
    if parent.algo is Algo.ICEBERG and parent.display_qty is None:
        errors.append(FieldError("display_qty", "iceberg needs a display quantity"))
    if parent.algo is Algo.SCALED:
        for name in ("ladder_levels", "ladder_start_price", "ladder_end_price"):
            if getattr(parent, name) is None:
                errors.append(FieldError(name, "scaled orders need it"))
        if parent.ladder_size_ratio <= 0:
            errors.append(FieldError("ladder_size_ratio", "must be positive"))
    if parent.post_only and parent.end_behavior is EndBehavior.COMPLETE_AGGRESSIVE:
        errors.append(
            FieldError("end_behavior", "complete_aggressive crosses the spread; post_only forbids it")
        )
    return errors


def decode_parent(data: bytes | str | dict[str, object]) -> ParentOrder:
    """Decode and validate a parent order from JSON (bytes/str) or an already-parsed mapping.

    Raises
    ------
    ParentOrderError
        On an unknown field, a wrong type, or any rule of :func:`validate_parent`; every error
        names its field (``$.field`` paths from msgspec are shortened to ``field``).
    """
    try:
        if isinstance(data, dict):
            parent = msgspec.convert(data, ParentOrder, strict=False)
        else:
            parent = msgspec.json.decode(data, type=ParentOrder, strict=False)
    except msgspec.ValidationError as exc:
        raise ParentOrderError([_field_error(str(exc))]) from exc
    except msgspec.DecodeError as exc:
        raise ParentOrderError([FieldError("$", f"not valid JSON: {exc}")]) from exc
    errors = validate_parent(parent)
    if errors:
        raise ParentOrderError(errors)
    return parent


def _field_error(text: str) -> FieldError:
    # msgspec says "Object contains unknown field `x`" or "Expected `int`, got `str` - at `$.y`"
    if "unknown field `" in text:
        name = text.split("unknown field `", 1)[1].split("`", 1)[0]
        return FieldError(name, "unknown field (check the spelling; see docs/execution.md)")
    if " - at `$." in text:
        message, path = text.rsplit(" - at `$.", 1)
        return FieldError(path.rstrip("`"), message)
    if "missing required field `" in text:
        name = text.split("missing required field `", 1)[1].split("`", 1)[0]
        return FieldError(name, "is required")
    return FieldError("$", text)
