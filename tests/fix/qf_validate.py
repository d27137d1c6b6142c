"""Validate FIX frames with QuickFIX's own validator (run in a subprocess: QuickFIX aborts on some errors).

    python qf_validate.py DICTIONARY.xml < frames   (one frame per line, SOH written as '|')

Prints ``ok`` or ``bad <exception>`` per line (QuickFIX aborts the process on some invalid messages).
"""

from __future__ import annotations

import sys

import quickfix as fix


def main() -> None:
    dictionary = fix.DataDictionary(sys.argv[1])
    for line in sys.stdin:
        raw = line.rstrip("\n").replace("|", "\x01")
        try:
            message = fix.Message(raw, dictionary, True)
            dictionary.validate(message)
        except Exception as exc:  # QuickFIX raises its own types
            print(f"bad {type(exc).__name__}: {exc}", flush=True)
        else:
            print("ok", flush=True)


if __name__ == "__main__":
    main()
