"""Build script. Metadata lives in ``pyproject.toml``; this file only decides about mypyc.

The engine is compiled by default: ``pip install -e .`` (or ``pip install .``) compiles every
module of ``MYPYC_MODULES`` with mypyc into C extensions, where a C compiler exists. Their source
stays plain typed Python and runs uncompiled too. If the build cannot compile (no compiler, no
Python headers, mypyc refuses) it says so in one line and installs pure Python; nothing half-built
is left behind. ``PERPX_MYPYC=0`` asks for pure Python outright::

    pip install -e .                                   # compiled where it can be (isolated build fetches mypy)
    PERPX_MYPYC=0 pip install -e .                     # pure Python (editing the engine needs no rebuild)
    python setup.py build_ext --inplace                # rebuild the extensions in place after an edit

An editable build puts the ``.so`` files next to the sources in ``src/``; Python then imports them
instead of the ``.py`` files, so an edit to a compiled module only takes effect after a rebuild
(``scripts/test`` refuses to run when an extension is older than its source, and says how to
rebuild). Any build with ``PERPX_MYPYC=0`` deletes those in-place extensions.

Compiled (``MYPYC_MODULES``): every module of the engine that runs per command (matching, margin,
the stages: pricing, conditional orders, liquidation) and the modules whose values they read:
``values`` (``Side``, whose members become C constants) and ``config`` (``MarketSpec`` fields
become native attribute reads). Not compiled: ``commands`` and ``events`` (``msgspec.Struct``
subclasses cannot be native classes), ``invariants`` and ``state`` (not on the command path).
``benchmarks/matching.py`` prints which modules it ran compiled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError as DistutilsError
from setuptools.errors import CCompilerError, CompileError

HERE = Path(__file__).resolve().parent
MYPY = "mypy==2.4.1"  # the same pin as the test extra
MYPYC_MODULES = [
    f"src/perpx/engine/{name}.py"
    for name in (
        "values",
        "formulas",
        "config",
        "book",
        "accounts",
        "margin",
        "stages",
        "core",
        "placing",
        "matching",
        "amending",
        "transfers",
        "settings",
        "markets",
        "engine",
        "pricing/index",
        "pricing/mark",
        "pricing/funding",
        "pricing/stage",
        "triggers/order",
        "triggers/index",
        "triggers/stage",
        "liquidation/figures",
        "liquidation/insurance",
        "liquidation/transfer",
        "liquidation/watch",
        "liquidation/adl",
        "liquidation/unwind",
        "liquidation/stage",
    )
]
GROUP_NAME = "perpx_engine"  # mypyc's shared library is the top-level module ``perpx_engine__mypyc``


def _in_place_extensions() -> list[Path]:
    """Extensions an in-place (editable) mypyc build leaves in the source tree."""
    found: list[Path] = []
    for source in MYPYC_MODULES:
        path = HERE / source
        for suffix in ("so", "pyd"):
            found.extend(path.parent.glob(f"{path.stem}.*.{suffix}"))
            found.extend((HERE / "src").glob(f"{GROUP_NAME}__mypyc.*.{suffix}"))
    return sorted(set(found))


class _BuildOrFallBack(build_ext):
    """``build_ext`` that, if the engine cannot be compiled, says so and leaves pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, DistutilsError, CompileError, OSError, SystemExit) as exc:
            for stale in _in_place_extensions():
                stale.unlink()
            self.extensions = []
            print(
                f"perpx: the engine could not be compiled ({exc}); it installs and runs as pure Python",
                file=sys.stderr,
            )


def _build_options() -> dict[str, Any]:
    if os.environ.get("PERPX_MYPYC", "1") == "0":
        for stale in _in_place_extensions():
            stale.unlink()
        return {}
    try:
        from mypyc.build import mypycify
    except ImportError:
        if "egg_info" in sys.argv or "dist_info" in sys.argv:
            # The requirements step of an isolated (PEP 517) build: pip installs the build
            # requirements of pyproject.toml (mypy among them) before the real build.
            return {}
        print(f"perpx: mypyc is not installed ({MYPY}); the engine installs as pure Python", file=sys.stderr)
        return {}
    os.chdir(HERE)  # mypyc reads [tool.mypy] from pyproject.toml here (mypy_path = "src")
    try:
        extensions = mypycify(MYPYC_MODULES, opt_level="3", group_name=GROUP_NAME)
    except (SystemExit, Exception) as exc:  # mypyc type-checks first: a failure there is a fallback too
        print(
            f"perpx: mypyc could not compile the engine ({exc}); it installs as pure Python", file=sys.stderr
        )
        return {}
    return {"ext_modules": extensions, "cmdclass": {"build_ext": _BuildOrFallBack}}


setup(**_build_options())
