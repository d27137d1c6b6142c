"""The FIX 4.4 session layer, without I/O: logon, sequence numbers, resend, heartbeats, logout.

A :class:`Session` is one client connection's state machine. The gateway feeds it what the socket
read (:meth:`Session.receive`) and the time (:meth:`Session.tick`), and gets back a :class:`Step`:
frames to write, application messages to act on in order, and whether to close the connection. It
reads no clock (time is ``now_ns``), opens no socket, and keeps sequence numbers and sent
application messages in a :class:`~perpx.fix.store.SessionStore`, so its rules are tested as
plain function calls (``tests/fix/test_session.py``).

Rules (FIX 4.4 Vol. 2, as QuickFIX applies them)
-------------------------------------------------
=============================  ====================================================================
inbound                        the session
=============================  ====================================================================
garbled frame                  dropped silently; its sequence number is not consumed
first message not a Logon      closed without an answer
Logon                          checked (TargetCompID, HeartBtInt 5..60, EncryptMethod 0, SendingTime
                               within 5 s, then the credentials by ``authenticate``); refused with
                               a Logout that says why. ``141=Y`` resets both sequences to 1
MsgSeqNum as expected          processed; the expected number moves on
MsgSeqNum too high             a ResendRequest for the gap (once); the message is queued and
                               processed, in order, when the gap is filled
MsgSeqNum too low              with ``PossDupFlag=Y``: ignored (already processed); without it:
                               Logout "MsgSeqNum too low" and close
TestRequest                    a Heartbeat with its TestReqID
ResendRequest                  stored application messages again with ``PossDupFlag=Y`` and
                               ``OrigSendingTime``; admin or missing ranges as one
                               SequenceReset-GapFill each
SequenceReset                  GapFill: the expected number jumps to NewSeqNo (never back); Reset
                               mode: to NewSeqNo whatever the MsgSeqNum
Logout                         answered with a Logout (unless we sent one), then closed
wrong CompID                   Reject (373=9) and Logout
Reject or BusinessMessageReject  logged, never answered with another reject
=============================  ====================================================================

Timers: a Heartbeat after ``HeartBtInt`` without sending; a TestRequest after ``HeartBtInt`` plus
20% without receiving; close when that TestRequest gets no answer within another ``HeartBtInt``; a
connection that has not logged on within :data:`LOGON_TIMEOUT_NS` is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from perpx.fix.codec import BEGIN_STRING, Field, FixMessage, Garbled, encode
from perpx.fix.store import SessionStore

log = logging.getLogger("perpx.fix")

NS_PER_S = 1_000_000_000
LOGON_TIMEOUT_NS = 10 * NS_PER_S
MAX_QUEUED = 1_000
"""Messages held ahead of a sequence gap; a client that sends more is logged out (memory stays bounded)."""
MAX_MESSAGES_PER_WINDOW = 10_000
MESSAGE_WINDOW_NS = 10 * NS_PER_S
"""A session sending more than this many messages in a 10 s window is logged out (Binance's FIX limit)."""
SENDING_TIME_WINDOW_NS = 5 * NS_PER_S
ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})


class SessionState(StrEnum):
    AWAITING_LOGON = "awaiting_logon"
    ACTIVE = "active"
    LOGGING_OUT = "logging_out"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class LogonVerdict:
    """What ``authenticate`` says of a Logon: ``api_key`` when accepted, else the reason to refuse."""

    api_key: str | None
    reason: str = ""


Authenticate = Callable[[FixMessage, int], LogonVerdict]
"""Checks a Logon's credentials (key, signature, CompID binding) at ``now_ns``."""


@dataclass(slots=True)
class Step:
    """What the gateway must do after one input: write ``frames``, act on ``app``, maybe close."""

    frames: list[bytes] = field(default_factory=list)
    app: list[FixMessage] = field(default_factory=list)
    close: str | None = None
    logged_on: bool = False


def sending_time(now_ns: int) -> str:
    """``SendingTime(52)`` as FIX writes UTC timestamps: ``YYYYMMDD-HH:MM:SS.sss``."""
    moment = datetime.fromtimestamp(now_ns // NS_PER_S, UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{now_ns // 1_000_000 % 1000:03d}"


def parse_sending_time(text: str) -> int | None:
    """Nanoseconds since the epoch of a UTC timestamp, or ``None`` if it is not one."""
    for layout in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            moment = datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000
    return None


class Session:
    """One client connection's FIX session; see the module docstring for its rules.

    ``our_comp_id`` is the venue's CompID (``PERPX``). ``authenticate`` decides on credentials;
    a CompID is bound to the API key it first logged on with.
    """

    def __init__(
        self, store: SessionStore, authenticate: Authenticate, *, our_comp_id: str, now_ns: int
    ) -> None:
        self.store = store
        self.authenticate = authenticate
        self.our_comp_id = our_comp_id
        self.state = SessionState.AWAITING_LOGON
        self.peer_comp_id = ""
        self.api_key = ""
        self.heartbeat_ns = 30 * NS_PER_S
        self.connected_ns = now_ns
        self.last_sent_ns = now_ns
        self.last_received_ns = now_ns
        self.logon: FixMessage | None = None
        self._test_request: tuple[str, int] | None = None
        self._test_requests = 0
        self._resend_asked_to = 0
        self._queued: dict[int, FixMessage] = {}
        self._window: tuple[int, int] = (now_ns // MESSAGE_WINDOW_NS, 0)

    # ------------------------------------------------------------------ inputs

    def receive(self, item: FixMessage | Garbled, now_ns: int) -> Step:
        """Handle one frame from the socket."""
        step = Step()
        if self.state is SessionState.CLOSED:
            return step
        if isinstance(item, Garbled):
            log.warning("fix %s: garbled frame dropped: %s", self.peer_comp_id or "?", item.reason)
            return step
        self.last_received_ns = now_ns
        window, count = self._window
        if now_ns // MESSAGE_WINDOW_NS != window:
            window, count = now_ns // MESSAGE_WINDOW_NS, 0
        self._window = (window, count + 1)
        if count + 1 > MAX_MESSAGES_PER_WINDOW and self.state is SessionState.ACTIVE:
            self._logout(step, now_ns, f"more than {MAX_MESSAGES_PER_WINDOW} messages in 10 s", close=True)
            return step
        if self.state is SessionState.AWAITING_LOGON:
            self._on_logon(item, now_ns, step)
            return step
        self._sequenced(item, now_ns, step)
        return step

    def tick(self, now_ns: int) -> Step:
        """Handle the passing of time: logon timeout, heartbeats, test requests."""
        step = Step()
        if self.state is SessionState.AWAITING_LOGON:
            if now_ns - self.connected_ns >= LOGON_TIMEOUT_NS:
                self._close(step, "no Logon within 10 s")
            return step
        if self.state is not SessionState.ACTIVE:
            return step
        if self._test_request is not None and now_ns - self._test_request[1] >= self.heartbeat_ns:
            self._logout(step, now_ns, "no answer to TestRequest within HeartBtInt", close=True)
            return step
        if self._test_request is None and now_ns - self.last_received_ns >= self.heartbeat_ns * 6 // 5:
            self._test_requests += 1
            test_id = f"TEST-{self._test_requests}"
            self._test_request = (test_id, now_ns)
            self._send_admin(step, now_ns, "1", ((112, test_id),))
        elif now_ns - self.last_sent_ns >= self.heartbeat_ns:
            self._send_admin(step, now_ns, "0", ())
        return step

    def send_app(self, msg_type: str, body: tuple[Field, ...], now_ns: int) -> bytes | None:
        """Store an application message under the next sequence number, then frame it to send.

        ``None`` when the session is not active: the message is stored all the same and reaches the
        client by resend when it reconnects.
        """
        stamp = sending_time(now_ns)
        seq = self.store.append(self.peer_comp_id, msg_type, stamp, body)
        if self.state is not SessionState.ACTIVE:
            return None
        self.last_sent_ns = now_ns
        return self._frame(msg_type, seq, stamp, body)

    def disconnected(self) -> None:
        """The socket closed (by either side); nothing more is sent on this session."""
        self.state = SessionState.CLOSED

    # ------------------------------------------------------------------ logon

    def _on_logon(self, message: FixMessage, now_ns: int, step: Step) -> None:
        if message.msg_type != "A":
            self._close(step, f"the first message was {message.msg_type!r}, not a Logon")
            return
        peer = message.get(49) or ""
        self.peer_comp_id = peer
        problem = self._logon_problem(message, now_ns)
        if problem is None:
            verdict = self.authenticate(message, now_ns)
            problem = None if verdict.api_key is not None else verdict.reason or "logon refused"
            self.api_key = verdict.api_key or ""
        if problem is not None:
            self._refuse_logon(step, now_ns, message, problem)
            return
        self.heartbeat_ns = int(message.get(108) or "30") * NS_PER_S
        reset = message.get(141) == "Y"
        seqs = self.store.bind(peer, self.api_key)
        if seqs.api_key != self.api_key:
            self._refuse_logon(step, now_ns, message, f"SenderCompID {peer} is bound to another API key")
            return
        if reset:
            self.store.reset(peer)
            seqs = self.store.bind(peer, self.api_key)
        seq = int(message.get(34) or "0")
        if seq < seqs.next_in:
            self.state = SessionState.ACTIVE
            self._logout(
                step, now_ns, f"MsgSeqNum too low, expecting {seqs.next_in} but received {seq}", close=True
            )
            return
        self.logon = message
        self.state = SessionState.ACTIVE
        step.logged_on = True
        body: list[Field] = [(98, "0"), (108, message.get(108) or "30")]
        if reset:
            body.append((141, "Y"))
        self._send_admin(step, now_ns, "A", tuple(body))
        if seq > seqs.next_in:
            self._ask_resend(step, now_ns, seqs.next_in, seq)
            return
        self.store.set_next_in(peer, seq + 1)

    def _logon_problem(self, message: FixMessage, now_ns: int) -> str | None:
        if not message.get(49):
            return "SenderCompID(49) is missing"
        if message.get(56) != self.our_comp_id:
            return f"TargetCompID(56) must be {self.our_comp_id}"
        seq = message.get(34)
        if seq is None or not seq.isdigit() or int(seq) < 1:
            return "MsgSeqNum(34) is missing or not a positive integer"
        if message.get(98) != "0":
            return "EncryptMethod(98) must be 0"
        heartbeat = message.get(108) or ""
        if not heartbeat.isdigit() or not 5 <= int(heartbeat) <= 60:
            return "HeartBtInt(108) must be an integer from 5 to 60"
        sent = parse_sending_time(message.get(52) or "")
        if sent is None:
            return "SendingTime(52) is missing or not a UTC timestamp"
        if abs(sent - now_ns) > SENDING_TIME_WINDOW_NS:
            return "SendingTime(52) is more than 5 s from the venue's clock"
        return None

    def _refuse_logon(self, step: Step, now_ns: int, message: FixMessage, reason: str) -> None:
        """A Logout with the reason, outside any stored sequence (the CompID may be unknown or not its own)."""
        seq = 1
        body = ((58, reason),)
        step.frames.append(
            self._frame("5", seq, sending_time(now_ns), body, peer=message.get(49) or "UNKNOWN")
        )
        self._close(step, f"logon refused: {reason}")

    # ------------------------------------------------------------------ sequenced messages

    def _sequenced(self, message: FixMessage, now_ns: int, step: Step) -> None:
        if message.get(49) != self.peer_comp_id or message.get(56) != self.our_comp_id:
            self._reject(step, now_ns, message, 9, "CompID problem")
            self._logout(step, now_ns, "SenderCompID or TargetCompID does not match the session", close=True)
            return
        seq_text = message.get(34) or ""
        if not seq_text.isdigit():
            self._logout(step, now_ns, "MsgSeqNum(34) is missing or not an integer", close=True)
            return
        seq = int(seq_text)
        if message.msg_type == "4" and message.get(123) != "Y":
            self._sequence_reset(message, now_ns, step)
            return
        expected = self._next_in()
        if seq > expected:
            if len(self._queued) >= MAX_QUEUED:
                self._logout(
                    step, now_ns, f"more than {MAX_QUEUED} messages ahead of a sequence gap", close=True
                )
                return
            self._queued[seq] = message
            if self._resend_asked_to < seq:
                self._ask_resend(step, now_ns, expected, seq)
            return
        if seq < expected:
            if message.get(43) == "Y":
                return
            self._logout(
                step, now_ns, f"MsgSeqNum too low, expecting {expected} but received {seq}", close=True
            )
            return
        self._process(message, seq, now_ns, step)
        while self.state is SessionState.ACTIVE or self.state is SessionState.LOGGING_OUT:
            following = self._queued.pop(self._next_in(), None)
            if following is None:
                break
            self._process(following, self._next_in(), now_ns, step)
        if not self._queued:
            self._resend_asked_to = 0

    def _process(self, message: FixMessage, seq: int, now_ns: int, step: Step) -> None:
        kind = message.msg_type
        if kind == "4":  # gap fill
            new_seq = int(message.get(36) or "0")
            if new_seq <= seq:
                self._set_next_in(seq + 1)
                self._reject(step, now_ns, message, 5, "NewSeqNo(36) must be above MsgSeqNum(34)")
                return
            self._set_next_in(new_seq)
            return
        self._set_next_in(seq + 1)
        if kind == "0":
            if self._test_request is not None and message.get(112) == self._test_request[0]:
                self._test_request = None
        elif kind == "1":
            self._send_admin(step, now_ns, "0", ((112, message.get(112) or ""),))
        elif kind == "2":
            self._resend(message, now_ns, step)
        elif kind == "3":
            log.warning("fix %s: session Reject received: %s", self.peer_comp_id, message.text())
        elif kind == "5":
            if self.state is not SessionState.LOGGING_OUT:
                self._send_admin(step, now_ns, "5", ())
            self._close(step, "the client logged out")
        elif kind == "A":
            self._logout(step, now_ns, "already logged on", close=True)
        else:
            step.app.append(message)

    def _sequence_reset(self, message: FixMessage, now_ns: int, step: Step) -> None:
        """Reset mode (no GapFillFlag): NewSeqNo applies whatever the MsgSeqNum; never backwards."""
        new_seq = int(message.get(36) or "0")
        if new_seq < self._next_in():
            self._reject(step, now_ns, message, 5, "NewSeqNo(36) is below the expected MsgSeqNum")
            return
        self._set_next_in(new_seq)
        self._queued = {seq: queued for seq, queued in self._queued.items() if seq >= new_seq}

    def _resend(self, message: FixMessage, now_ns: int, step: Step) -> None:
        begin = int(message.get(7) or "1")
        end_text = int(message.get(16) or "0")
        last = self._next_out() - 1
        end = last if end_text == 0 or end_text > last else end_text
        gap_from: int | None = None
        stored = {m.seq: m for m in self.store.sent(self.peer_comp_id, begin, end)}
        for seq in range(begin, end + 1):
            sent = stored.get(seq)
            if sent is None:
                if gap_from is None:
                    gap_from = seq
                continue
            if gap_from is not None:
                step.frames.append(self._gap_fill(gap_from, seq, now_ns))
                gap_from = None
            header = ((43, "Y"), (122, sent.sending_time))
            step.frames.append(
                self._frame(sent.msg_type, seq, sending_time(now_ns), sent.body, extra_header=header)
            )
        if gap_from is not None:
            step.frames.append(self._gap_fill(gap_from, end + 1, now_ns))
        self.last_sent_ns = now_ns

    def _gap_fill(self, seq: int, new_seq: int, now_ns: int) -> bytes:
        body = ((123, "Y"), (36, str(new_seq)))
        return self._frame("4", seq, sending_time(now_ns), body, extra_header=((43, "Y"),))

    def _ask_resend(self, step: Step, now_ns: int, begin: int, seen: int) -> None:
        self._resend_asked_to = seen
        self._send_admin(step, now_ns, "2", ((7, str(begin)), (16, "0")))

    # ------------------------------------------------------------------ sending

    def _reject(self, step: Step, now_ns: int, message: FixMessage, reason: int, text: str) -> None:
        if message.msg_type in ("3", "j"):
            return  # never answer a reject with a reject
        body: list[Field] = [
            (45, message.get(34) or "0"),
            (372, message.msg_type or "?"),
            (373, str(reason)),
            (58, text),
        ]
        self._send_admin(step, now_ns, "3", tuple(body))

    def _logout(self, step: Step, now_ns: int, reason: str, *, close: bool) -> None:
        self._send_admin(step, now_ns, "5", ((58, reason),))
        self.state = SessionState.LOGGING_OUT
        if close:
            self._close(step, reason)

    def _send_admin(self, step: Step, now_ns: int, msg_type: str, body: tuple[Field, ...]) -> None:
        seq = self.store.take_out_seq(self.peer_comp_id)
        step.frames.append(self._frame(msg_type, seq, sending_time(now_ns), body))
        self.last_sent_ns = now_ns

    def _frame(
        self,
        msg_type: str,
        seq: int,
        stamp: str,
        body: tuple[Field, ...],
        *,
        peer: str | None = None,
        extra_header: tuple[Field, ...] = (),
    ) -> bytes:
        header: list[Field] = [
            (35, msg_type),
            (49, self.our_comp_id),
            (56, peer or self.peer_comp_id),
            (34, str(seq)),
            *extra_header,
            (52, stamp),
        ]
        return encode([*header, *body])

    def _close(self, step: Step, reason: str) -> None:
        self.state = SessionState.CLOSED
        step.close = reason

    # ------------------------------------------------------------------ sequence numbers

    def _next_in(self) -> int:
        seqs = self.store.seqs(self.peer_comp_id)
        return 1 if seqs is None else seqs.next_in

    def _next_out(self) -> int:
        seqs = self.store.seqs(self.peer_comp_id)
        return 1 if seqs is None else seqs.next_out

    def _set_next_in(self, next_in: int) -> None:
        self.store.set_next_in(self.peer_comp_id, next_in)


__all__ = [
    "BEGIN_STRING",
    "LogonVerdict",
    "Session",
    "SessionState",
    "Step",
    "parse_sending_time",
    "sending_time",
]
