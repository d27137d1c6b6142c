"""The FIX Logon's credentials: perpx's signature, the key check and the per-CompID attempt limit.

Signature: ``RawData(96)`` is the base64 of HMAC-SHA256, keyed with the API secret's UTF-8 bytes,
over the values of MsgType(35), SenderCompID(49), TargetCompID(56), MsgSeqNum(34) and
SendingTime(52) of that Logon, joined by SOH in that order; ``RawDataLength(95)`` is its length;
``Username(553)`` is the API key. Worked example (``tests/fix/test_logon.py``)::

    secret "s3cr3t", 35=A, 49=CLIENT1, 56=PERPX, 34=1, 52=20261203-06:00:00.000
    -> payload "A\\x01CLIENT1\\x01PERPX\\x011\\x0120261203-06:00:00.000"
    -> RawData(96) = base64(HMAC-SHA256(b"s3cr3t", payload))

A client that keeps failing is refused without a check for a while (:class:`LogonLimiter`):
QuickFIX initiators retry every ``ReconnectInterval``, so a wrong secret would otherwise be tried
forever, and a guesser would get unlimited attempts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from perpx.fix.codec import FixMessage
from perpx.fix.session import NS_PER_S, Authenticate, LogonVerdict

MAX_FAILURES = 5
"""Failed logons of one CompID within :data:`FAILURE_WINDOW_NS` before it is refused unchecked."""
FAILURE_WINDOW_NS = 60 * NS_PER_S


def logon_signature(secret: str, msg_type: str, sender: str, target: str, seq: str, sending_time: str) -> str:
    """The base64 HMAC-SHA256 a Logon carries in RawData(96) (see the module docstring)."""
    payload = "\x01".join((msg_type, sender, target, seq, sending_time)).encode()
    return base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class KeyView:
    """What the logon needs of an API key: its secret, and whether it may trade."""

    api_key: str
    secret: str
    can_trade: bool


@dataclass(slots=True)
class LogonLimiter:
    """Failed logon times per CompID; a CompID with :data:`MAX_FAILURES` recent failures is refused."""

    failures: dict[str, list[int]] = field(default_factory=dict)

    def blocked(self, comp_id: str, now_ns: int) -> bool:
        recent = [t for t in self.failures.get(comp_id, []) if now_ns - t < FAILURE_WINDOW_NS]
        self.failures[comp_id] = recent
        return len(recent) >= MAX_FAILURES

    def failed(self, comp_id: str, now_ns: int) -> None:
        self.failures.setdefault(comp_id, []).append(now_ns)


def authenticator(lookup: Callable[[str], KeyView | None], limiter: LogonLimiter) -> Authenticate:
    """An ``authenticate`` for :class:`~perpx.fix.session.Session` over the venue's API keys."""

    def authenticate(message: FixMessage, now_ns: int) -> LogonVerdict:
        comp_id = message.get(49) or ""
        if limiter.blocked(comp_id, now_ns):
            return LogonVerdict(None, "too many failed logons for this SenderCompID; wait a minute")
        verdict = _check(message, lookup)
        if verdict.api_key is None:
            limiter.failed(comp_id, now_ns)
        return verdict

    return authenticate


def _check(message: FixMessage, lookup: Callable[[str], KeyView | None]) -> LogonVerdict:
    api_key = message.get(553)
    if not api_key:
        return LogonVerdict(None, "Username(553) must carry the API key")
    raw = message.get(96)
    length = message.get(95)
    if not raw or length != str(len(raw)):
        return LogonVerdict(None, "RawData(96) must carry the signature and RawDataLength(95) its length")
    key = lookup(api_key)
    if key is None:
        return LogonVerdict(None, "invalid API key or signature")
    expected = logon_signature(
        key.secret,
        message.msg_type,
        message.get(49) or "",
        message.get(56) or "",
        message.get(34) or "",
        message.get(52) or "",
    )
    if not hmac.compare_digest(expected.encode(), raw.encode()):
        return LogonVerdict(None, "invalid API key or signature")
    return LogonVerdict(key.api_key)
