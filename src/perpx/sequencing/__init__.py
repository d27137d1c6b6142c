"""The one way commands reach the engine: :class:`Sequencer` and the errors its callers map.

See :mod:`perpx.sequencing.sequencer` for the invariants and :mod:`perpx.sequencing.errors` for
what each refusal means.
"""

from perpx.sequencing.errors import (
    JournalUnavailable,
    NotJournalable,
    OutcomeUnknown,
    Overloaded,
    SequencerError,
    VenueStopped,
)
from perpx.sequencing.sequencer import (
    Applied,
    Checked,
    Clock,
    Listener,
    Sequencer,
    SequencerState,
    SequencerStatus,
)

__all__ = [
    "Applied",
    "Checked",
    "Clock",
    "JournalUnavailable",
    "Listener",
    "NotJournalable",
    "OutcomeUnknown",
    "Overloaded",
    "Sequencer",
    "SequencerError",
    "SequencerState",
    "SequencerStatus",
    "VenueStopped",
]
