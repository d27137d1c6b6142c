"""Refuse to test a compiled engine older than its sources (an editable mypyc build's trap).

An editable install compiles the engine into ``.so`` files beside the sources; Python imports
those, so an edit to a compiled module does nothing until a rebuild. Prints which build the tests
will run (compiled or pure Python) and exits 1 naming the stale modules and how to rebuild.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "src" / "perpx" / "engine"


def main() -> int:
    built = sorted(ENGINE.rglob("*.so")) + sorted(ENGINE.rglob("*.pyd"))
    if not built:
        print("engine: pure Python (no compiled modules in src/)")
        return 0
    stale = []
    for extension in built:
        source = extension.with_name(extension.name.split(".")[0] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(str(source.relative_to(ROOT)))
    if stale:
        print(
            "engine: the compiled modules are older than their sources: "
            + ", ".join(stale)
            + "\n  rebuild with `python setup.py build_ext --inplace --force` (or `pip install -e .`),"
            " or go pure Python with `PERPX_MYPYC=0 pip install -e .`",
            file=sys.stderr,
        )
        return 1
    print(f"engine: compiled (mypyc), {len(built)} modules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
