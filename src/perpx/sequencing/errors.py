"""Why the sequencer did not apply a command: domain errors every adapter maps to its own protocol.

Each says whether the command may have taken effect, because that is what a caller must act on:

======================  ===========================================================  ==========
error                   what happened                                                applied?
======================  ===========================================================  ==========
``NotJournalable``      no journal record can hold the command (a number outside     no
                        64 bits, text that is not UTF-8, an oversized record)
``JournalUnavailable``  the journal could not be written; the write was undone and   no
                        the next command tries again
``VenueStopped``        the sequencer had stopped before the command                 no
``Overloaded``          the queue in front of the sequencer is full                  no
``OutcomeUnknown``      the command may be in the journal (a write that could not    maybe
                        be undone, an engine failure after journaling, no answer in
                        time); a restart replays the journal and tells
======================  ===========================================================  ==========

The REST server maps them to Binance codes (400 -1130, 503 -1001, 503 -1008, 503 -1007); the
simulator and the test kit let them propagate.
"""

from __future__ import annotations


class SequencerError(Exception):
    """A command the sequencer did not (or may not have) applied; ``reason`` says why in words."""

    applied_maybe = False
    """``True`` only when the command may have taken effect (:class:`OutcomeUnknown`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotJournalable(SequencerError):
    """No journal record can hold the command; nothing of it was written or applied."""


class JournalUnavailable(SequencerError):
    """The journal could not be written and was restored; nothing of the batch was applied."""


class VenueStopped(SequencerError):
    """The sequencer stopped earlier (a broken journal or engine); nothing is applied until a restart."""


class Overloaded(SequencerError):
    """The queue in front of the sequencer is full; the command was not queued."""


class OutcomeUnknown(SequencerError):
    """The command may or may not be in the journal: only a restart (which replays it) tells."""

    applied_maybe = True
