"""The FIX logon's signature, key check and attempt limit."""

from __future__ import annotations

import base64
import hashlib
import hmac

from perpx.fix.codec import FixMessage
from perpx.fix.logon import MAX_FAILURES, KeyView, LogonLimiter, authenticator, logon_signature
from perpx.fix.session import NS_PER_S

STAMP = "20261203-06:00:00.000"
KEYS = {"key-1": KeyView("key-1", "s3cr3t", can_trade=True)}


def logon(signature: str, key: str = "key-1", sender: str = "CLIENT1") -> FixMessage:
    return FixMessage(
        (
            (35, "A"),
            (49, sender),
            (56, "PERPX"),
            (34, "1"),
            (52, STAMP),
            (95, str(len(signature))),
            (96, signature),
            (553, key),
        )
    )


def test_signature_is_hmac_sha256_of_the_five_header_values_joined_by_soh() -> None:
    payload = b"A\x01CLIENT1\x01PERPX\x011\x01" + STAMP.encode()
    expected = base64.b64encode(hmac.new(b"s3cr3t", payload, hashlib.sha256).digest()).decode()
    assert logon_signature("s3cr3t", "A", "CLIENT1", "PERPX", "1", STAMP) == expected


def test_logon_signed_with_the_key_secret_is_accepted() -> None:
    authenticate = authenticator(KEYS.get, LogonLimiter())
    verdict = authenticate(logon(logon_signature("s3cr3t", "A", "CLIENT1", "PERPX", "1", STAMP)), 0)
    assert verdict.api_key == "key-1"


def test_logon_with_a_wrong_signature_or_unknown_key_is_refused_alike() -> None:
    authenticate = authenticator(KEYS.get, LogonLimiter())
    good = logon_signature("s3cr3t", "A", "CLIENT1", "PERPX", "1", STAMP)
    wrong = authenticate(logon(logon_signature("guess", "A", "CLIENT1", "PERPX", "1", STAMP)), 0)
    unknown = authenticate(logon(good, key="key-9"), 0)
    assert wrong.api_key is None and unknown.api_key is None
    assert wrong.reason == unknown.reason == "invalid API key or signature"


def test_a_comp_id_that_keeps_failing_is_refused_unchecked_for_a_minute() -> None:
    authenticate = authenticator(KEYS.get, LogonLimiter())
    good = logon(logon_signature("s3cr3t", "A", "CLIENT1", "PERPX", "1", STAMP))
    for attempt in range(MAX_FAILURES):
        assert authenticate(logon("bad"), attempt * NS_PER_S).api_key is None
    blocked = authenticate(good, MAX_FAILURES * NS_PER_S)
    later = authenticate(good, 61 * NS_PER_S + MAX_FAILURES * NS_PER_S)
    assert blocked.api_key is None and "too many failed logons" in blocked.reason
    assert later.api_key == "key-1"
