"""The negative matrix of auth and input: each bad request gets its Binance code and changes nothing.

Every case runs against a real ``perpx serve`` and checks the HTTP status, the code, and that
``GET /admin/v1/state`` reports the same state hash before and after. The last tests grep the
server log and every response for the traders' secrets, and check the error classes unmodified
ccxt raises. :func:`verify_signed` and friends are also checked directly at their boundaries.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from perpx.engine.values import AccountId
from perpx.server.auth import check_window, lookup_key, split_signature, verify_signed
from perpx.server.errors import ApiError
from perpx.server.keys import ApiKey

from .harness import ServerProcess, Trader

ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
    "price": "29000",
}
ORDER_PATH = "/fapi/v1/order"


@dataclass
class Matrix:
    server: ServerProcess
    full: Trader
    read_only: Trader
    fenced: Trader
    responses: list[str]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    server = ServerProcess(tmp_path_factory.mktemp("auth") / "data").start()
    try:
        full = server.trader("full")
        read_only = server.trader("reader", permissions=("read",))
        fenced = server.trader("fenced", ips=("10.0.0.1/32",))
        assert server.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"}).status_code == 200
        yield Matrix(server, full, read_only, fenced, [])
    finally:
        server.stop()


def now_ms() -> int:
    return int(time.time() * 1000)


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def send(
    m: Matrix,
    payload: str,
    *,
    method: str = "POST",
    path: str = ORDER_PATH,
    api_key: str | None = None,
    content_type: str | None = "application/x-www-form-urlencoded",
) -> httpx.Response:
    """``payload`` as the body (POST) or query string (GET/DELETE), exactly as given."""
    headers = {} if api_key is None else {"X-MBX-APIKEY": api_key}
    url = f"{m.server.base}{path}"
    if method in ("GET", "DELETE"):
        answer = httpx.request(method, f"{url}?{payload}", headers=headers, timeout=10)
    else:
        if content_type is not None:
            headers["Content-Type"] = content_type
        answer = httpx.request(method, url, content=payload.encode(), headers=headers, timeout=10)
    m.responses.append(answer.text + str(answer.headers))
    return answer


def signed_payload(
    params: Mapping[str, str], secret: str, *, timestamp: int | None = None, extra: str = ""
) -> str:
    body = urlencode({"timestamp": str(now_ms() if timestamp is None else timestamp), **params}) + extra
    return f"{body}&signature={sign(secret, body)}"


def state_hash(m: Matrix) -> str:
    text: str = m.server.admin("GET", "/state").json()["stateHash"]
    return text


def check(m: Matrix, answer: httpx.Response, status: int, code: int, before: str) -> None:
    assert (answer.status_code, answer.json().get("code")) == (status, code), answer.text
    assert state_hash(m) == before


# ---------------------------------------------------------------------- auth


def test_valid_signed_order_is_accepted(matrix: Matrix) -> None:
    # Act
    answer = send(matrix, signed_payload(ORDER, matrix.full.secret), api_key=matrix.full.api_key)
    # Assert
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "NEW"


def test_bad_signature_is_1022(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    body = urlencode({"timestamp": str(now_ms()), **ORDER})
    # Act
    wrong_secret = send(
        matrix, f"{body}&signature={sign('not-the-secret', body)}", api_key=matrix.full.api_key
    )
    not_hex = send(matrix, f"{body}&signature={'zz' * 32}", api_key=matrix.full.api_key)
    tampered = send(
        matrix,
        f"{body.replace('0.01', '0.02')}&signature={sign(matrix.full.secret, body)}",
        api_key=matrix.full.api_key,
    )
    # Assert
    for answer in (wrong_secret, not_hex, tampered):
        check(matrix, answer, 400, -1022, before)


@pytest.mark.parametrize(
    ("offset_ms", "recv_window", "status", "code"),
    [
        (-10_000, None, 400, -1021),  # stale against the default 5,000 ms window
        (-70_000, 60_000, 400, -1021),  # stale even against the largest window
        (2_000, None, 400, -1021),  # from the future (more than 1 s ahead)
        (0, 60_001, 400, -1131),  # recvWindow over 60,000
        (0, 0, 400, -1131),
    ],
)
def test_timestamp_outside_the_window_is_refused(
    matrix: Matrix, offset_ms: int, recv_window: int | None, status: int, code: int
) -> None:
    # Arrange
    before = state_hash(matrix)
    params = dict(ORDER) if recv_window is None else {**ORDER, "recvWindow": str(recv_window)}
    # Act
    answer = send(
        matrix,
        signed_payload(params, matrix.full.secret, timestamp=now_ms() + offset_ms),
        api_key=matrix.full.api_key,
    )
    # Assert
    check(matrix, answer, status, code, before)


def test_recv_window_lets_an_older_timestamp_in(matrix: Matrix) -> None:
    # Act
    answer = send(
        matrix,
        signed_payload({**ORDER, "recvWindow": "60000"}, matrix.full.secret, timestamp=now_ms() - 30_000),
        api_key=matrix.full.api_key,
    )
    # Assert
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "payload",
    [
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01&price=29000&signature=" + "0" * 64,
        "timestamp={ts}&symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01&price=29000",
        "timestamp={ts}&symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01&price=29000&signature=",
        "timestamp=soon&symbol=BTCUSDT&signature=" + "0" * 64,
        "timestamp={ts}&recvWindow=5s&symbol=BTCUSDT&signature=" + "0" * 64,
        "timestamp=%C2%B2&symbol=BTCUSDT&signature=" + "0" * 64,
    ],
    ids=["no-timestamp", "no-signature", "empty-signature", "bad-timestamp", "bad-window", "unicode-digit"],
)
def test_missing_or_malformed_timestamp_or_signature_is_1102(matrix: Matrix, payload: str) -> None:
    # Arrange
    before = state_hash(matrix)
    # Act
    answer = send(matrix, payload.format(ts=now_ms()), api_key=matrix.full.api_key)
    # Assert
    check(matrix, answer, 400, -1102, before)


def test_unknown_missing_or_malformed_key_is_refused(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    payload = signed_payload(ORDER, matrix.full.secret)
    # Act
    unknown = send(matrix, payload, api_key="A" * 64)
    missing = send(matrix, payload, api_key=None)
    malformed = send(matrix, payload, api_key="not a key!")
    # Assert
    check(matrix, unknown, 401, -2015, before)
    check(matrix, missing, 401, -2014, before)
    check(matrix, malformed, 401, -2014, before)


def test_read_only_key_cannot_place_an_order_but_can_read(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    reader = matrix.read_only
    # Act
    order = send(matrix, signed_payload(ORDER, reader.secret), api_key=reader.api_key)
    read = send(
        matrix,
        signed_payload({}, reader.secret),
        method="GET",
        path="/fapi/v1/openOrders",
        api_key=reader.api_key,
    )
    # Assert
    check(matrix, order, 401, -2015, before)
    assert "'trade' permission" in order.json()["msg"]
    assert read.status_code == 200, read.text


def test_key_fenced_to_another_ip_is_refused(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    fenced = matrix.fenced
    # Act
    answer = send(matrix, signed_payload(ORDER, fenced.secret), api_key=fenced.api_key)
    # Assert
    check(matrix, answer, 401, -2015, before)
    assert "127.0.0.1" in answer.json()["msg"]


# ---------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("quantity", "1e3", -1102),
        ("quantity", "abc", -1102),
        ("quantity", "1,5", -1102),
        ("quantity", "NaN", -1102),
        ("price", "Infinity", -1102),
        ("price", "-Infinity", -1102),
        ("quantity", "-1", -1102),
        ("quantity", "0", -4003),
        ("quantity", "0.0001", -1111),
        ("price", "29000.05", -4014),
        ("quantity", "9" * 60, -1102),
        ("symbol", "FOOUSDT", -1121),
    ],
)
def test_malformed_order_values_get_their_code_and_change_nothing(
    matrix: Matrix, name: str, value: str, code: int
) -> None:
    # Arrange
    before = state_hash(matrix)
    # Act
    answer = send(
        matrix, signed_payload({**ORDER, name: value}, matrix.full.secret), api_key=matrix.full.api_key
    )
    # Assert
    check(matrix, answer, 400, code, before)


def test_oversized_body_and_query_are_refused(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    # Act
    body = send(
        matrix,
        signed_payload({**ORDER, "junk": "x" * (65 * 1024)}, matrix.full.secret),
        api_key=matrix.full.api_key,
    )
    query = send(
        matrix,
        signed_payload({"junk": "x" * (17 * 1024)}, matrix.full.secret),
        method="GET",
        path="/fapi/v1/openOrders",
        api_key=matrix.full.api_key,
    )
    # Assert
    check(matrix, body, 413, -1104, before)
    check(matrix, query, 400, -1104, before)


def test_wrong_content_type_is_refused(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    payload = signed_payload(ORDER, matrix.full.secret)
    # Act
    answer = send(matrix, payload, api_key=matrix.full.api_key, content_type="application/json")
    # Assert
    check(matrix, answer, 400, -1102, before)
    assert "x-www-form-urlencoded" in answer.json()["msg"]


def test_duplicate_parameters_are_refused_even_when_signed(matrix: Matrix) -> None:
    # Arrange
    before = state_hash(matrix)
    payload = signed_payload(ORDER, matrix.full.secret, extra="&quantity=5")
    # Act
    answer = send(matrix, payload, api_key=matrix.full.api_key)
    # Assert
    check(matrix, answer, 400, -1101, before)


def test_no_secret_appears_in_the_log_or_any_response(matrix: Matrix) -> None:
    # Arrange: a run of bad requests from every trader, with their own and with wrong secrets
    for trader in (matrix.full, matrix.read_only, matrix.fenced):
        send(matrix, signed_payload(ORDER, trader.secret, timestamp=1), api_key=trader.api_key)
        send(matrix, signed_payload(ORDER, trader.secret[::-1]), api_key=trader.api_key)
        send(matrix, signed_payload({**ORDER, "quantity": "x"}, trader.secret), api_key=trader.api_key)
    # Act
    log = matrix.server.log()
    seen = "\n".join(matrix.responses)
    # Assert
    for trader in (matrix.full, matrix.read_only, matrix.fenced):
        assert trader.secret not in log
        assert trader.secret not in seen
    assert len(matrix.responses) > 9


# ---------------------------------------------------------------------- what ccxt makes of it


def test_ccxt_raises_invalid_nonce_and_authentication_error(matrix: Matrix) -> None:
    import ccxt

    # Arrange
    late = matrix.server.ccxt(matrix.full)
    late.options["timeDifference"] = 120_000  # ccxt signs with its clock minus this: two minutes stale
    wrong_secret = matrix.server.ccxt(Trader(matrix.full.account_id, matrix.full.api_key, "0" * 64))
    unknown_key = matrix.server.ccxt(Trader(0, "B" * 64, matrix.full.secret))
    reader = matrix.server.ccxt(matrix.read_only)
    for exchange in (late, wrong_secret, unknown_key, reader):
        exchange.load_markets()
    # Act, Assert
    with pytest.raises(ccxt.InvalidNonce):
        late.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        wrong_secret.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        unknown_key.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        reader.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 29000)


# ---------------------------------------------------------------------- the functions, at their boundaries

KEY = ApiKey("k" * 64, "s" * 64, AccountId(1), "unit", ("read",), ("10.0.0.0/8", "::1"))
NOW = 1_700_000_000_000


def signed_parts(payload: bytes, secret: str = KEY.secret) -> bytes:
    return payload + b"&signature=" + sign(secret, payload.decode()).encode()


@pytest.mark.parametrize(
    ("timestamp", "window", "ok"),
    [
        (NOW + 999, None, True),
        (NOW + 1000, None, False),
        (NOW - 5000, None, True),
        (NOW - 5001, None, False),
        (NOW - 60_000, "60000", True),
        (NOW - 60_001, "60000", False),
    ],
)
def test_window_edges_follow_binance(timestamp: int, window: str | None, ok: bool) -> None:
    # Arrange
    params = {"timestamp": str(timestamp)} | ({} if window is None else {"recvWindow": window})
    # Act
    if ok:
        check_window(params, NOW)
        return
    with pytest.raises(ApiError) as caught:
        check_window(params, NOW)
    # Assert
    assert caught.value.code == -1021


def test_signature_covers_query_then_body_and_accepts_upper_case_hex() -> None:
    # Arrange
    query, body = b"symbol=BTCUSDT&timestamp=" + str(NOW).encode(), b"side=BUY"
    signature = sign(KEY.secret, (query + body).decode())
    # Act, Assert
    verify_signed(
        KEY, query, body + b"&signature=" + signature.upper().encode(), {"timestamp": str(NOW)}, NOW
    )
    verify_signed(KEY, query + b"&signature=" + signature.encode(), body, {"timestamp": str(NOW)}, NOW)
    with pytest.raises(ApiError, match="Signature"):
        verify_signed(KEY, body, query + b"&signature=" + signature.encode(), {"timestamp": str(NOW)}, NOW)


def test_split_signature_cuts_only_the_signature_parameter() -> None:
    # Act, Assert
    assert split_signature(b"a=1&signature=ab&b=2") == (b"a=1&b=2", "ab")
    assert split_signature(b"signature=ab&b=2") == (b"b=2", "ab")
    assert split_signature(b"xsignature=1&b=2") == (b"xsignature=1&b=2", None)


@pytest.mark.parametrize(
    ("ip", "scope", "code"),
    [
        ("10.1.2.3", "read", None),
        ("::ffff:10.1.2.3", "read", None),  # an IPv4 client of a dual-stack listener
        ("::ffff:11.0.0.1", "read", -2015),
        ("::1", "read", None),
        ("11.0.0.1", "read", -2015),
        (None, "read", -2015),
        ("10.0.0.1", "trade", -2015),
    ],
)
def test_lookup_key_checks_scope_and_allow_list(ip: str | None, scope: str, code: int | None) -> None:
    # Arrange
    class Keys:
        def get(self, api_key: str) -> ApiKey | None:
            return KEY if api_key == KEY.api_key else None

    headers = {"x-mbx-apikey": KEY.api_key}
    # Act
    if code is None:
        assert lookup_key(Keys(), headers, ip, scope) is KEY  # type: ignore[arg-type]
        return
    with pytest.raises(ApiError) as caught:
        lookup_key(Keys(), headers, ip, scope)  # type: ignore[arg-type]
    # Assert
    assert (caught.value.status, caught.value.code) == (401, code)


def test_api_key_repr_hides_the_secret() -> None:
    # Act, Assert
    assert KEY.secret not in repr(KEY)
