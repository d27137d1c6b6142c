"""The desk's refusals: a code in perpx's OTC range and a message a client can act on.

The engine's own block-trade refusals are -9560 and -9561 (``perpx.engine.codes``); the desk's
adapter-level refusals take the rest of the range.
"""

from __future__ import annotations

UNKNOWN_QUOTE = -9562
"""No quote of the caller's has this id."""
QUOTE_NOT_OPEN = -9563
"""The quote was already accepted, rejected or expired."""
QUOTE_EXPIRED = -9564
"""The quote's validity (venue time) ended before the accept arrived."""
LAST_LOOK = -9565
"""The index moved more than the last-look threshold since the quote."""
NOT_QUOTED = -9566
"""The desk gives no price for this request (size, depth, spread cap, limits or price band)."""
SIDE_NOT_QUOTED = -9567
"""The accept names a side the quote has no price for."""
DESK_UNAVAILABLE = -9568
"""The venue has no ``[otc]`` section, or the desk's account does not exist."""
RELEASED_AT_RESTART = -9570
"""A quote left ``BOOKING`` by a crash whose block trade was not booked: released at restart."""


class OtcError(Exception):
    """A refusal of the desk: ``code`` from this module, ``message`` for a person."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
