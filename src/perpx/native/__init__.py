"""Native prototype of the hot path (issue 11): compiled on demand, never part of the installed engine.

``venue.pyx`` holds the order book and the pre-trade margin check of one market as Cython
``cdef class``\\ es over C integers (its docstring lists the subset of the engine's rules it
covers). Nothing imports it by default: ``perpx.engine`` stays pure typed Python (compiled by
mypyc or not), the package installs and every test passes without Cython or a C compiler.
:func:`load` compiles ``venue.pyx`` once per source version into a cache directory under the
temporary directory and imports it; the differential test and ``benchmarks/native.py`` call it,
and skip with its reason when it cannot.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from array import array
    from collections.abc import Iterable

    from perpx.engine.commands import Command
    from perpx.engine.config import VenueConfig
    from perpx.engine.values import MarketId

SOURCE = Path(__file__).with_name("venue.pyx")
CYTHON_PIN = "Cython==3.1.2"  # the pin of the test extra in pyproject.toml


class NativeUnavailable(RuntimeError):
    """The prototype cannot be built here (no Cython, no C compiler or Python headers); says which."""


_failures: list[NativeUnavailable] = []
"""The build failure of this process, if any (a second attempt would fail the same way, slowly)."""


class NativeRangeError(ValueError):
    """A value outside the integer range the native prototype computes in; nothing was changed."""


class NativeUnsupported(ValueError):
    """A command or an option outside the subset the native prototype covers; nothing was changed."""


class NativeBook(Protocol):
    """The book of ``venue.NativeBook`` as Python sees it (read-outs only)."""

    def resting(self) -> list[tuple[int, int, int, int, int]]:
        """``(order_id, account_id, side, price_ticks, leaves_lots)``: bids then asks, best first, queue order."""
        ...

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Bids and asks as ``(price_ticks, total_leaves_lots)`` from the best price outward."""
        ...


class NativeEngine(Protocol):
    """``venue.NativeEngine``: ``apply(command) -> int`` for the covered subset, plus read-outs."""

    @property
    def book(self) -> NativeBook: ...
    @property
    def now_ns(self) -> int: ...
    @property
    def next_order_id(self) -> int: ...
    @property
    def next_trade_id(self) -> int: ...
    @property
    def fees_atoms(self) -> int: ...
    @property
    def open_interest_lots(self) -> int: ...
    @property
    def accounts_count(self) -> int: ...

    def apply(self, command: Command) -> int:
        """The new order or account id, 0 for other success, or the negative ``RejectCode``."""
        ...

    def place(
        self,
        ts_ns: int,
        account_id: int,
        side: int,
        is_market: bool,
        is_gtc: bool,
        has_price: bool,
        price_ticks: int,
        qty_lots: int,
        stp: int,
    ) -> int:
        """The typed entry point ``apply`` uses for ``PlaceOrder`` (no command object)."""
        ...

    def cancel(self, ts_ns: int, account_id: int, order_id: int) -> int: ...

    def pack(self, commands: Iterable[Command]) -> array[int]:
        """Places and cancels by id as eight int64 each, range-checked once, for :meth:`run_batch`."""
        ...

    def run_batch(self, packed: array[int], answers: array[int]) -> int:
        """Apply packed commands in one C loop; ``answers[i]`` gets what ``apply`` would return."""
        ...

    def events(self) -> list[tuple[object, ...]]:
        """Fills, expiries and cancels since the last call (see ``venue.pyx``), and clear them."""
        ...

    def clear_events(self) -> None: ...

    def account(self, account_id: int) -> dict[str, int]: ...


def native_engine(config: VenueConfig, market: MarketId) -> NativeEngine:
    """A new native engine of ``market`` (compiling the prototype first if needed; see :func:`load`)."""
    return cast(NativeEngine, load().NativeEngine(config, market))


def cache_dir() -> Path:
    """Where the compiled module goes: one directory per source text, Python version and platform."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    tag = sysconfig.get_config_var("SOABI") or f"py{sys.version_info[0]}{sys.version_info[1]}"
    return (
        Path(tempfile.gettempdir())
        / f"perpx-native-{os.getuid() if hasattr(os, 'getuid') else 0}"
        / f"{tag}-{digest}"
    )


def load() -> ModuleType:
    """Import the compiled prototype, compiling it first if this source version was not built yet.

    Raises
    ------
    NativeUnavailable
        Cython is not installed, or the C compiler (or the Python headers) failed; the message
        says which and how to get it.
    """
    name = "perpx_native_venue"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    if _failures:
        raise _failures[0]  # a build that failed once in this process fails again: do not retry it
    out = cache_dir()
    built = sorted(out.glob(f"{name}.*.so")) + sorted(out.glob(f"{name}.*.pyd"))
    if not built:
        try:
            _compile(name, out)
        except NativeUnavailable as exc:
            _failures.append(exc)
            raise
        built = sorted(out.glob(f"{name}.*.so")) + sorted(out.glob(f"{name}.*.pyd"))
        if not built:
            raise NativeUnavailable(f"the build of {SOURCE.name} left no extension module in {out}")
    spec = importlib.util.spec_from_file_location(name, built[0])
    if spec is None or spec.loader is None:
        raise NativeUnavailable(f"cannot import {built[0]}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def _compile(name: str, out: Path) -> None:
    """``cythonize`` the source to C, then build it with setuptools' ``build_ext`` into ``out``."""
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise NativeUnavailable(f"Cython is not installed ({exc}); pip install '{CYTHON_PIN}'") from exc
    from setuptools import Distribution, Extension
    from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

    work = out.parent / f"{out.name}.build-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    pyx = work / f"{name}.pyx"
    pyx.write_bytes(SOURCE.read_bytes())
    extension = Extension(name, [str(pyx)], extra_compile_args=["-O2"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # setuptools and Cython warn about their own deprecations
            modules = cythonize([extension], quiet=True, language_level=3)  # type: ignore[no-untyped-call]
            distribution = Distribution({"name": name, "ext_modules": modules})
            command = distribution.get_command_obj("build_ext")
            command.build_lib = str(work / "lib")
            command.build_temp = str(work / "tmp")
            command.ensure_finalized()
            command.run()
    except (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError, SystemExit) as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise NativeUnavailable(f"the C build of {SOURCE.name} failed: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    for built in (work / "lib").glob(f"{name}.*"):
        os.replace(built, out / built.name)  # atomic: a concurrent loader sees a whole module or none
    shutil.rmtree(work, ignore_errors=True)
