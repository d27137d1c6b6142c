"""Suite-wide pytest options: long randomized stress runs are opt-in.

A test marked ``@pytest.mark.stress`` runs only when asked, in any of three ways:

* ``pytest --run-stress`` (``scripts/test --run-stress``);
* ``PERPX_STRESS=1`` in the environment;
* selecting the marker explicitly, ``pytest -m stress``.

Otherwise it is reported as skipped, with the way to run it.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-stress",
        action="store_true",
        default=False,
        help="also run the long randomized tests marked 'stress' (or set PERPX_STRESS=1)",
    )


def _stress_requested(config: pytest.Config) -> bool:
    if config.getoption("--run-stress") or os.environ.get("PERPX_STRESS") == "1":
        return True
    markexpr = str(config.getoption("markexpr", default="") or "")
    return "stress" in markexpr and "not stress" not in markexpr


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _stress_requested(config):
        return
    skip = pytest.mark.skip(reason="stress test: run with --run-stress, PERPX_STRESS=1 or -m stress")
    for item in items:
        if "stress" in item.keywords:
            item.add_marker(skip)
