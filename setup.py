"""Build script. Metadata lives in ``pyproject.toml``; this file only decides about mypyc.

By default perpx installs as pure Python (``pip install -e .`` works anywhere).
With ``PERPX_MYPYC=1`` the engine's hot modules are compiled with mypyc into C
extensions; their source stays plain typed Python and runs uncompiled too::

    PERPX_MYPYC=1 pip install -e .                          # isolated build: fetches mypy for the build
    PERPX_MYPYC=1 pip install --no-build-isolation -e .     # this venv's mypy, setuptools>=77, wheel
    PERPX_MYPYC=1 python setup.py build_ext --inplace       # rebuild the extensions in place

An editable build puts the ``.so`` files next to the sources in ``src/``;
Python then imports them instead of the ``.py`` files, so an edit to a compiled
module only takes effect after a rebuild. Any build without ``PERPX_MYPYC=1``
(``pip install -e .``) deletes those in-place extensions, so the sources run again.

Compiled (``MYPYC_MODULES``): the matching and margin hot path, plus the two
modules whose values it reads on every command: ``values`` (``Side``, whose
members become C constants) and ``config`` (``MarketSpec`` fields become native
attribute reads). Not compiled: ``commands`` and ``events`` (``msgspec.Struct``
subclasses cannot be native classes) and everything off the hot path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup

HERE = Path(__file__).resolve().parent
MYPY = "mypy==2.4.1"  # the same pin as the test extra
MYPYC_MODULES = [
    "src/perpx/engine/values.py",
    "src/perpx/engine/formulas.py",
    "src/perpx/engine/config.py",
    "src/perpx/engine/book.py",
    "src/perpx/engine/accounts.py",
    "src/perpx/engine/margin.py",
    "src/perpx/engine/core.py",
    "src/perpx/engine/placing.py",
    "src/perpx/engine/matching.py",
    "src/perpx/engine/amending.py",
    "src/perpx/engine/engine.py",
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


def _build_options() -> dict[str, Any]:
    if os.environ.get("PERPX_MYPYC", "") != "1":
        for stale in _in_place_extensions():
            stale.unlink()
        return {}
    try:
        from mypyc.build import mypycify
    except ImportError:
        if "egg_info" in sys.argv:
            # The requirements step of an isolated (PEP 517) build: ask for mypy,
            # which pip installs into the build environment before the real build.
            return {"setup_requires": [MYPY]}
        raise SystemExit(
            f"PERPX_MYPYC=1 needs mypyc: install {MYPY} (the test extra) and build with"
            " --no-build-isolation, or let pip build in isolation"
        ) from None
    os.chdir(HERE)  # mypyc reads [tool.mypy] from pyproject.toml here (mypy_path = "src")
    return {
        "setup_requires": [MYPY],
        "ext_modules": mypycify(MYPYC_MODULES, opt_level="3", group_name=GROUP_NAME),
    }


setup(**_build_options())
