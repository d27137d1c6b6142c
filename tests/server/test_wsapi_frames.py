"""Reading WebSocket API frames and what their signature covers, without a server (:mod:`perpx.server.wsapi.frames`)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpx.engine.values import AccountId
from perpx.server.errors import ApiError
from perpx.server.keys import ApiKey
from perpx.server.wsapi.frames import FrameError, read_request, signature_payloads
from perpx.server.wsapi.session import verify

KEY = ApiKey("k" * 64, "s" * 64, AccountId(1), "t", ("read", "trade"), ())
NOW_MS = 1_700_000_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_any_text_is_read_or_refused_with_a_code(text: str) -> None:
    try:
        request = read_request(text)
    except FrameError as exc:
        assert exc.error.code in (-9600, -1101, -1102, -1104)
        assert exc.error.msg
    else:
        assert isinstance(request.method, str) and request.method
        assert all(isinstance(v, str) for v in request.params.values())


def test_numbers_keep_their_text_and_booleans_are_lowercase() -> None:
    request = read_request(
        '{"id": 12, "method": "order.place", "params": {"quantity": 0.010, "price": 1e3, "reduceOnly": true}}'
    )

    assert request.id == 12
    assert request.params == {"quantity": "0.010", "price": "1e3", "reduceOnly": "true"}


def _sign(params: dict[str, str], payload: str) -> dict[str, str]:
    return {
        **params,
        "signature": hmac.new(KEY.secret.encode(), payload.encode(), hashlib.sha256).hexdigest(),
    }


def test_a_signature_over_the_raw_or_the_percent_encoded_payload_is_accepted() -> None:
    # Arrange
    params = {"apiKey": KEY.api_key, "newClientOrderId": "a:b/c", "timestamp": str(NOW_MS)}
    raw = f"apiKey={KEY.api_key}&newClientOrderId=a:b/c&timestamp={NOW_MS}"
    encoded = f"apiKey={KEY.api_key}&newClientOrderId=a%3Ab%2Fc&timestamp={NOW_MS}"

    # Act
    payloads = signature_payloads(_sign(params, raw))

    # Assert
    assert payloads == (raw.encode(), encoded.encode())
    verify(KEY, _sign(params, raw), NOW_MS)
    verify(KEY, _sign(params, encoded), NOW_MS)


def test_a_signature_over_other_parameters_is_refused() -> None:
    params = {"apiKey": KEY.api_key, "quantity": "1", "timestamp": str(NOW_MS)}
    signed = _sign(params, f"apiKey={KEY.api_key}&quantity=2&timestamp={NOW_MS}")

    with pytest.raises(ApiError) as refused:
        verify(KEY, signed, NOW_MS)

    assert refused.value.code == -1022
