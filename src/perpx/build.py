"""Which build of the engine this process runs: compiled with mypyc, or pure Python.

``pip install`` compiles the engine where a C compiler exists (``setup.py``); the server's banner
and the benchmarks say which build ran, because the two differ in speed by about 3x.
"""

from __future__ import annotations

import sys

import perpx.engine.engine  # noqa: F401  (loads every engine module whose build is reported)


def engine_build() -> str:
    """``"compiled (mypyc, N modules)"`` or ``"pure Python"``, from where the modules were imported."""
    compiled = [
        name
        for name, module in sys.modules.items()
        if name.startswith("perpx.engine")
        and not (getattr(module, "__file__", None) or ".py").endswith(".py")
    ]
    return f"compiled (mypyc, {len(compiled)} modules)" if compiled else "pure Python"
