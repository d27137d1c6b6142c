"""perpx: an open-source perpetual-futures venue and execution stack.

The deterministic engine lives in :mod:`perpx.engine`; the journal and
recovery in :mod:`perpx.journal`; the command line in :mod:`perpx.cli`.
"""

__version__ = "0.1.0"
