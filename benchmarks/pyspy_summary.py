"""Where the compiled engine's time goes: a ``py-spy record --native --format raw`` profile, summarised.

Reads collapsed stacks (one ``frame;frame;... count`` per line), keeps the samples whose stack
holds ``--within`` (by default the journal-off ``apply`` loop of ``benchmarks/matching.py``), and
prints two tables, each summing to 100% of those samples:

* **by stage**: each sample goes to the innermost frame of the stack that belongs to a stage of the
  engine's order path (``STAGES``: mypyc function names, ``CPyDef_<module>___<function>``);
* **by mechanism**: each sample goes to what its leaf frame is doing (``MECHANISMS``: reference
  counting and freeing, dict lookups, boxed-int arithmetic, msgspec structs, compiled engine code).

Run (the profile, then the summary)::

    py-spy record --native --format raw -r 500 -o /tmp/engine.txt -- python benchmarks/matching.py --runs 5
    python benchmarks/pyspy_summary.py /tmp/engine.txt
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence

WITHIN = "time_engine (matching.py:373)"
"""The frame of ``matching.time_engine``'s journal-off loop that calls ``engine.apply``."""

STAGES: list[tuple[str, tuple[str, ...]]] = [
    (
        "consequence stages after the command (liquidation watch)",
        ("_run_consequences", "Liquidation", "RiskWatch"),
    ),
    ("settlement: position, PnL, fee, volume, OrderFilled", ("matching___settle", "matching___trade")),
    ("fill guard: solvency of both sides per fill", ("matching___match_one", "solvent", "self_trade_lots")),
    (
        "book and orders: rest, unbook, indexes, order margin, Order objects",
        ("Core___book_order", "Core___unbook", "Core___forget_order", "Core___post_trade", "book___"),
    ),
    ("matching loop: head, limit, STP, expiry", ("matching___execute",)),
    (
        "margin check: order margin, open loss, available",
        ("margin_refusal", "margin_after", "cross_available", "open_interest_refusal"),
    ),
    ("bankruptcy check", ("bankruptcy_refusal",)),
    (
        "filters: lookup, price band, notional, open orders",
        ("order_filters", "price_filter", "Core___lookup", "mode_refusal", "position_record"),
    ),
    ("place: the rest (accept, Order, OrderAccepted)", ("placing___place",)),
    (
        "cancel: lookup, unbook, OrderCanceled",
        ("amending___cancel", "Core___cancel_order", "Core___find_order"),
    ),
    ("Engine.apply: dispatch, pricing due check, Outcome", ("engine___Engine___apply",)),
]

MECHANISMS: list[tuple[str, tuple[str, ...]]] = [
    (
        "reference counting and freeing objects",
        (
            "Py_DECREF",
            "Py_INCREF",
            "Py_XDECREF",
            "_dealloc",
            "CPyTagged_DECREF",
            "CPyTagged_INCREF",
            "_Py_Dealloc",
        ),
    ),
    ("dict lookups and updates", ("PyDict_", "CPyDict_", "dict_", "lookdict")),
    ("boxed int arithmetic and conversion", ("CPyTagged_", "CPyLong_", "PyLong_", "long_")),
    ("msgspec structs (events, commands)", ("Struct_", "msgspec")),
    ("compiled engine code (mypyc C)", ("CPyDef_", "CPyPy_")),
]


def frame_name(frame: str) -> str:
    return re.sub(r" \(.*\)$", "", frame)


def classify(frames: Sequence[str], groups: list[tuple[str, tuple[str, ...]]]) -> str:
    """The label of the first group that a frame matches, scanning from the leaf toward the root."""
    for frame in reversed(frames):
        name = frame_name(frame)
        for label, needles in groups:
            if any(needle in name for needle in needles):
                return label
    return "other"


def classify_leaf(frames: Sequence[str]) -> str:
    leaf = frames[-1]
    for label, needles in MECHANISMS:
        if any(needle in leaf for needle in needles):
            return label
    return "other (interpreter, libc, unresolved)"


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("profile", help="py-spy raw output (collapsed stacks)")
    parser.add_argument(
        "--within", default=WITHIN, help=f"keep samples whose stack holds this frame ({WITHIN!r})"
    )
    args = parser.parse_args(argv)

    stages: Counter[str] = Counter()
    mechanisms: Counter[str] = Counter()
    total = 0
    with open(args.profile, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = stack.split(";")
            if not any(args.within in frame for frame in frames):
                continue
            samples = int(count)
            total += samples
            stages[classify(frames, STAGES)] += samples
            mechanisms[classify_leaf(frames)] += samples
    if not total:
        raise SystemExit(f"no sample holds {args.within!r}")
    result: dict[str, dict[str, float]] = {}
    for title, counter in (("by stage (innermost)", stages), ("by mechanism (leaf frame)", mechanisms)):
        print(f"{title}, {total} samples:")
        result[title] = {}
        for label, samples in counter.most_common():
            share = 100 * samples / total
            result[title][label] = round(share, 1)
            print(f"  {share:5.1f}%  {label}")
    return result


if __name__ == "__main__":
    main()
