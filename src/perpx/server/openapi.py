"""The public API's OpenAPI document: every parameter of every Binance route, and offline ``/docs``.

The Binance routes read their parameters as Binance sends them (query string and form body alike,
signed over the raw bytes: :func:`perpx.server.rest.params_of`), so FastAPI sees none of them. This
module declares them once, in :data:`ROUTES` (``name*`` is required; the type follows the colon:
``str``, ``int``, ``decimal`` (a decimal string), ``bool`` (``true``/``false``), ``ms`` (epoch
milliseconds) or an enum ``A|B|C``), and :func:`install` adds them to the generated document: as
query parameters for ``GET``/``DELETE`` and as an ``application/x-www-form-urlencoded`` body for
``POST``/``PUT``. Signed routes get ``timestamp``, ``recvWindow`` and ``signature`` and the
``X-MBX-APIKEY`` header; listenKey routes the header only.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts from files vendored in the package
(:data:`STATIC_DIR`, see its ``README.txt``), never from a CDN, so they work offline.

Invariant (tested): every operation of the public app has an entry here, and every entry names an
operation the app serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
"""The vendored Swagger UI and ReDoc bundles."""
STATIC_URL = "/static/perpx"

SIGNED = "signed"
KEYED = "keyed"
PUBLIC = "public"

_SYMBOL = "symbol*:str"
_WINDOW = "startTime:ms endTime:ms"
_INTERVAL = "interval*:1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M"
_KLINES = f"{_INTERVAL} {_WINDOW} limit:int"
_ORDER_REF = "orderId:int origClientOrderId:str"
_NEW_ORDER = (
    f"{_SYMBOL} side*:BUY|SELL type*:LIMIT|MARKET positionSide:BOTH timeInForce:GTC|IOC|FOK|GTX"
    " quantity*:decimal price:decimal reduceOnly:bool newClientOrderId:str newOrderRespType:ACK|RESULT"
    " selfTradePreventionMode:NONE|EXPIRE_TAKER|EXPIRE_MAKER|EXPIRE_BOTH priceMatch:NONE"
)
_ALGO_ORDER = (
    f"{_SYMBOL} algoType:CONDITIONAL side*:BUY|SELL"
    " type*:STOP|STOP_MARKET|TAKE_PROFIT|TAKE_PROFIT_MARKET|TRAILING_STOP_MARKET positionSide:BOTH"
    " timeInForce:GTC|IOC|FOK|GTX quantity:decimal price:decimal triggerPrice:decimal"
    " workingType:MARK_PRICE|CONTRACT_PRICE priceProtect:bool reduceOnly:bool closePosition:bool"
    " activatePrice:decimal callbackRate:decimal clientAlgoId:str"
    " selfTradePreventionMode:NONE|EXPIRE_TAKER|EXPIRE_MAKER|EXPIRE_BOTH"
)

ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    # market data
    ("GET", "/fapi/v1/ping"): (PUBLIC, ""),
    ("GET", "/fapi/v1/time"): (PUBLIC, ""),
    ("GET", "/fapi/v1/exchangeInfo"): (PUBLIC, ""),
    ("GET", "/fapi/v1/depth"): (PUBLIC, f"{_SYMBOL} limit:5|10|20|50|100|500|1000"),
    ("GET", "/fapi/v1/trades"): (PUBLIC, f"{_SYMBOL} limit:int"),
    ("GET", "/fapi/v1/historicalTrades"): (PUBLIC, f"{_SYMBOL} limit:int fromId:int"),
    ("GET", "/fapi/v1/aggTrades"): (PUBLIC, f"{_SYMBOL} fromId:int {_WINDOW} limit:int"),
    ("GET", "/fapi/v1/klines"): (PUBLIC, f"{_SYMBOL} {_KLINES}"),
    ("GET", "/fapi/v1/continuousKlines"): (PUBLIC, f"pair*:str contractType*:PERPETUAL {_KLINES}"),
    ("GET", "/fapi/v1/markPriceKlines"): (PUBLIC, f"{_SYMBOL} {_KLINES}"),
    ("GET", "/fapi/v1/indexPriceKlines"): (PUBLIC, f"pair*:str {_KLINES}"),
    ("GET", "/fapi/v1/premiumIndexKlines"): (PUBLIC, f"{_SYMBOL} {_KLINES}"),
    ("GET", "/fapi/v1/ticker/24hr"): (PUBLIC, "symbol:str"),
    ("GET", "/fapi/v1/ticker/price"): (PUBLIC, "symbol:str"),
    ("GET", "/fapi/v2/ticker/price"): (PUBLIC, "symbol:str"),
    ("GET", "/fapi/v1/ticker/bookTicker"): (PUBLIC, "symbol:str"),
    ("GET", "/fapi/v1/premiumIndex"): (PUBLIC, "symbol:str"),
    ("GET", "/fapi/v1/fundingRate"): (PUBLIC, f"symbol:str {_WINDOW} limit:int"),
    ("GET", "/fapi/v1/fundingInfo"): (PUBLIC, ""),
    ("GET", "/fapi/v1/openInterest"): (PUBLIC, _SYMBOL),
    # orders
    ("POST", "/fapi/v1/order"): (SIGNED, _NEW_ORDER),
    ("POST", "/fapi/v1/order/test"): (SIGNED, _NEW_ORDER),
    ("PUT", "/fapi/v1/order"): (
        SIGNED,
        f"{_SYMBOL} {_ORDER_REF} side*:BUY|SELL quantity*:decimal price*:decimal",
    ),
    ("DELETE", "/fapi/v1/order"): (SIGNED, f"{_SYMBOL} {_ORDER_REF}"),
    ("GET", "/fapi/v1/order"): (SIGNED, f"{_SYMBOL} {_ORDER_REF}"),
    ("GET", "/fapi/v1/openOrder"): (SIGNED, f"{_SYMBOL} {_ORDER_REF}"),
    ("POST", "/fapi/v1/batchOrders"): (SIGNED, "batchOrders*:str"),
    ("PUT", "/fapi/v1/batchOrders"): (SIGNED, "batchOrders*:str"),
    ("DELETE", "/fapi/v1/batchOrders"): (SIGNED, f"{_SYMBOL} orderIdList:str origClientOrderIdList:str"),
    ("DELETE", "/fapi/v1/allOpenOrders"): (SIGNED, _SYMBOL),
    ("GET", "/fapi/v1/openOrders"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v1/allOrders"): (SIGNED, f"{_SYMBOL} orderId:int {_WINDOW} limit:int"),
    ("GET", "/fapi/v1/userTrades"): (SIGNED, f"{_SYMBOL} orderId:int fromId:int {_WINDOW} limit:int"),
    ("POST", "/fapi/v1/countdownCancelAll"): (SIGNED, f"{_SYMBOL} countdownTime*:int"),
    ("GET", "/fapi/v1/forceOrders"): (
        SIGNED,
        f"symbol:str autoCloseType:LIQUIDATION|ADL {_WINDOW} limit:int",
    ),
    # conditional (algo) orders
    ("POST", "/fapi/v1/algoOrder"): (SIGNED, _ALGO_ORDER),
    ("GET", "/fapi/v1/algoOrder"): (SIGNED, "algoId:int clientAlgoId:str"),
    ("DELETE", "/fapi/v1/algoOrder"): (SIGNED, "algoId:int clientAlgoId:str"),
    ("DELETE", "/fapi/v1/algoOpenOrders"): (SIGNED, _SYMBOL),
    ("GET", "/fapi/v1/openAlgoOrders"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v1/allAlgoOrders"): (SIGNED, f"{_SYMBOL} algoId:int {_WINDOW} limit:int"),
    # account
    ("GET", "/fapi/v2/account"): (SIGNED, ""),
    ("GET", "/fapi/v3/account"): (SIGNED, ""),
    ("GET", "/fapi/v2/balance"): (SIGNED, ""),
    ("GET", "/fapi/v3/balance"): (SIGNED, ""),
    ("GET", "/fapi/v2/positionRisk"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v3/positionRisk"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v1/adlQuantile"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v1/leverageBracket"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v1/commissionRate"): (SIGNED, _SYMBOL),
    ("GET", "/fapi/v1/income"): (
        SIGNED,
        "symbol:str incomeType:TRANSFER|REALIZED_PNL|FUNDING_FEE|COMMISSION|INSURANCE_CLEAR"
        "|COIN_SWAP_DEPOSIT|COIN_SWAP_WITHDRAW"
        f" {_WINDOW} page:int limit:int",
    ),
    ("GET", "/fapi/v1/apiTradingStatus"): (SIGNED, "symbol:str"),
    ("GET", "/fapi/v1/rateLimit/order"): (SIGNED, ""),
    # settings
    ("POST", "/fapi/v1/leverage"): (SIGNED, f"{_SYMBOL} leverage*:int"),
    ("POST", "/fapi/v1/marginType"): (SIGNED, f"{_SYMBOL} marginType*:ISOLATED|CROSSED"),
    ("POST", "/fapi/v1/positionMargin"): (SIGNED, f"{_SYMBOL} positionSide:BOTH amount*:decimal type*:1|2"),
    ("GET", "/fapi/v1/positionMargin/history"): (SIGNED, f"{_SYMBOL} type:1|2 {_WINDOW} limit:int"),
    ("GET", "/fapi/v1/positionSide/dual"): (SIGNED, ""),
    ("POST", "/fapi/v1/positionSide/dual"): (SIGNED, "dualSidePosition*:bool"),
    ("GET", "/fapi/v1/multiAssetsMargin"): (SIGNED, ""),
    ("POST", "/fapi/v1/multiAssetsMargin"): (SIGNED, "multiAssetsMargin*:bool"),
    # secured loans, Binance's flexible crypto-loan routes, and the asset indexes (perpx.server.lending)
    ("GET", "/fapi/v1/assetIndex"): (PUBLIC, "symbol:str"),
    ("POST", "/sapi/v2/loan/flexible/borrow"): (
        SIGNED,
        "loanCoin*:str loanAmount:decimal collateralCoin*:str collateralAmount:decimal",
    ),
    ("POST", "/sapi/v2/loan/flexible/repay"): (
        SIGNED,
        "loanCoin*:str collateralCoin*:str repayAmount:decimal collateralReturn:bool fullRepayment:bool",
    ),
    ("POST", "/sapi/v2/loan/flexible/adjust/ltv"): (
        SIGNED,
        "loanCoin*:str collateralCoin*:str adjustmentAmount*:decimal direction*:ADDITIONAL|REDUCED",
    ),
    ("GET", "/sapi/v2/loan/flexible/ongoing/orders"): (
        SIGNED,
        "loanCoin:str collateralCoin:str current:int limit:int",
    ),
    ("GET", "/sapi/v2/loan/flexible/loanable/data"): (SIGNED, "loanCoin:str"),
    ("GET", "/sapi/v2/loan/flexible/collateral/data"): (SIGNED, "collateralCoin:str"),
    ("GET", "/sapi/v2/loan/flexible/borrow/history"): (
        SIGNED,
        f"loanCoin:str collateralCoin:str {_WINDOW} current:int limit:int",
    ),
    ("GET", "/sapi/v2/loan/flexible/repay/history"): (
        SIGNED,
        f"loanCoin:str collateralCoin:str {_WINDOW} current:int limit:int",
    ),
    ("GET", "/sapi/v2/loan/flexible/ltv/adjustment/history"): (
        SIGNED,
        f"loanCoin:str collateralCoin:str {_WINDOW} current:int limit:int",
    ),
    ("GET", "/sapi/v2/loan/flexible/liquidation/history"): (
        SIGNED,
        f"loanCoin:str collateralCoin:str {_WINDOW} current:int limit:int",
    ),
    # perpx's own
    ("GET", "/perpx/v1/tca"): (
        SIGNED,
        "symbol:str side:BUY|SELL quantity:decimal decisionPrice:decimal arrivalPrice:decimal algoId:int"
        f" {_WINDOW}",
    ),
    # the insurance fund's policy (perpx.server.trading.fund_policy)
    ("GET", "/perpx/v1/insuranceFund"): (PUBLIC, ""),
    # OTC desk (perpx.server.otc_routes)
    ("POST", "/perpx/v1/rfq"): (SIGNED, f"{_SYMBOL} side:BUY|SELL quantity:decimal quoteQty:decimal"),
    ("POST", "/perpx/v1/rfq/{quoteId}/accept"): (SIGNED, "side:BUY|SELL"),
    ("GET", "/perpx/v1/rfq/{quoteId}"): (SIGNED, ""),
    # agent keys (perpx.server.agents)
    ("POST", "/perpx/v1/agent/preview"): (
        SIGNED,
        f"{_SYMBOL} side*:BUY|SELL type*:LIMIT|MARKET quantity*:decimal price:decimal"
        " timeInForce:GTC|IOC|FOK|GTX reduceOnly:bool",
    ),
    ("POST", "/perpx/v1/agent/approve"): (SIGNED, "previewToken*:str"),
    ("GET", "/perpx/v1/agent"): (SIGNED, ""),
    ("GET", "/perpx/v1/leaderboard"): (PUBLIC, ""),
    # the algo service (perpx.server.algos): Binance's /sapi/v1/algo/futures and perpx's parent orders
    ("POST", "/sapi/v1/algo/futures/newOrderTwap"): (
        SIGNED,
        f"{_SYMBOL} side*:BUY|SELL positionSide:BOTH quantity*:decimal duration*:int clientAlgoId:str"
        " reduceOnly:bool limitPrice:decimal",
    ),
    ("POST", "/sapi/v1/algo/futures/newOrderVp"): (
        SIGNED,
        f"{_SYMBOL} side*:BUY|SELL positionSide:BOTH quantity*:decimal urgency*:LOW|MEDIUM|HIGH"
        " clientAlgoId:str reduceOnly:bool limitPrice:decimal",
    ),
    ("DELETE", "/sapi/v1/algo/futures/order"): (SIGNED, "algoId*:int"),
    ("GET", "/sapi/v1/algo/futures/openOrders"): (SIGNED, ""),
    ("GET", "/sapi/v1/algo/futures/historicalOrders"): (
        SIGNED,
        f"symbol:str side:BUY|SELL {_WINDOW} page:int pageSize:int",
    ),
    ("GET", "/sapi/v1/algo/futures/subOrders"): (SIGNED, "algoId*:int page:int pageSize:int"),
    ("POST", "/perpx/v1/algo"): (SIGNED, "parent*:str"),
    ("POST", "/perpx/v1/flow"): (SIGNED, "document*:str clientFlowId:str"),
    ("GET", "/perpx/v1/flow"): (SIGNED, "flowId:int"),
    ("DELETE", "/perpx/v1/flow"): (SIGNED, "flowId*:int"),
    # health
    ("GET", "/health"): (PUBLIC, ""),
    ("GET", "/ready"): (PUBLIC, ""),
    # user data stream
    ("POST", "/fapi/v1/listenKey"): (KEYED, ""),
    ("PUT", "/fapi/v1/listenKey"): (KEYED, ""),
    ("DELETE", "/fapi/v1/listenKey"): (KEYED, ""),
}
"""Each Binance operation of the public app: how it is authenticated and its parameters."""

_SIGNING = "timestamp*:ms recvWindow:int signature*:str"
_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "ms": {"type": "integer", "format": "int64", "description": "epoch milliseconds"},
    "decimal": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "a decimal number"},
    "bool": {"type": "string", "enum": ["true", "false"]},
}


def parameters(spec: str) -> list[tuple[str, bool, dict[str, Any]]]:
    """``(name, required, JSON schema)`` of each parameter of a spec string (see the module doc)."""
    found: list[tuple[str, bool, dict[str, Any]]] = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        required = name.endswith("*")
        schema = dict(_TYPES[kind]) if kind in _TYPES else {"type": "string", "enum": kind.split("|")}
        found.append((name.rstrip("*"), required, schema))
    return found


def _operation_parameters(
    method: str, auth: str, spec: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The operation's ``parameters`` and (for POST/PUT) its form ``requestBody``."""
    listed = parameters(spec + (" " + _SIGNING if auth == SIGNED else ""))
    headers: list[dict[str, Any]] = []
    if auth in (SIGNED, KEYED):
        headers.append(
            {"name": "X-MBX-APIKEY", "in": "header", "required": True, "schema": {"type": "string"}}
        )
    if method in ("GET", "DELETE"):
        query = [{"name": n, "in": "query", "required": r, "schema": s} for n, r, s in listed]
        return headers + query, None
    if not listed:
        return headers, None
    body = {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {n: s for n, _, s in listed},
                    "required": [n for n, r, _ in listed if r],
                }
            }
        },
        "required": any(r for _, r, _ in listed),
    }
    return headers, body


def document(app: FastAPI) -> dict[str, Any]:
    """The app's generated OpenAPI document with every Binance operation's parameters added."""
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    for (method, path), (auth, spec) in ROUTES.items():
        operation = schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            continue
        params, body = _operation_parameters(method, auth, spec)
        operation["parameters"] = params
        if body is not None:
            operation["requestBody"] = body
        if auth == SIGNED:
            operation.setdefault("description", "")
            operation["description"] += (
                "\n\nSigned: HMAC-SHA256 of the query string and body (Binance's rules)."
            )
    return schema


def install(app: FastAPI) -> None:
    """Serve the full document at ``/openapi.json`` and the docs pages from the package's files."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(document(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="perpx-static")

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger, include_in_schema=False)
    app.add_api_route("/redoc", redoc, include_in_schema=False)
