"""A live runner in its own process, for the kill -9 test: ``python live_child.py BASE KEY SECRET LOG PARENT_JSON``."""

from __future__ import annotations

import sys
from pathlib import Path

import ccxt

from perpx.execution.ccxt_venue import CcxtVenue
from perpx.execution.childlog import ChildLog
from perpx.execution.live import run_live
from perpx.execution.model import decode_parent
from perpx.execution.runner import ParentRunner


def perpx_ccxt(base: str, key: str, secret: str) -> ccxt.binanceusdm:
    """ccxt's unmodified ``binanceusdm`` with its URLs pointed at a perpx server."""
    exchange = ccxt.binanceusdm(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "options": {"fetchCurrencies": False, "fetchOpenOrders": {"warnWithoutSymbol": False}},
        }
    )
    exchange.urls["api"] = {
        name: base + path
        for name, path in (
            ("fapiPublic", "/fapi/v1"),
            ("fapiPublicV2", "/fapi/v2"),
            ("fapiPublicV3", "/fapi/v3"),
            ("fapiPrivate", "/fapi/v1"),
            ("fapiPrivateV2", "/fapi/v2"),
            ("fapiPrivateV3", "/fapi/v3"),
            ("fapiData", "/futures/data"),
        )
    }
    return exchange


def main(base: str, key: str, secret: str, log: str, parent_json: str) -> None:
    venue = CcxtVenue(perpx_ccxt(base, key, secret))
    runner = ParentRunner.start(venue, decode_parent(parent_json), ChildLog(Path(log)), period_s=1)
    run_live(runner, on_step=lambda record: print(record, flush=True))
    runner.log.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
