"""The FIX session layer's rules, as QuickFIX's FIX 4.4 acceptance scenarios state them.

Each test drives a :class:`Session` with frames a client would send and reads what it answers;
time is an input, so heartbeats and timeouts are exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from perpx.fix.codec import Field, FixMessage, FrameReader, Garbled, encode
from perpx.fix.session import NS_PER_S, LogonVerdict, Session, SessionState, Step, sending_time
from perpx.fix.store import SessionStore

T0 = 1_796_300_000 * NS_PER_S
CLIENT = "CLIENT1"


def authenticate(message: FixMessage, now_ns: int) -> LogonVerdict:
    return LogonVerdict("key-1") if message.get(553) == "key-1" else LogonVerdict(None, "invalid API key")


class Client:
    """A FIX client's half: its own sequence numbers, the frames it sends, what it reads back."""

    def __init__(self, store: SessionStore, now_ns: int = T0) -> None:
        self.seq = 0
        self.now_ns = now_ns
        self.session = Session(store, authenticate, our_comp_id="PERPX", now_ns=now_ns)

    def frame(
        self, msg_type: str, body: Iterable[Field] = (), *, seq: int | None = None, **header: str
    ) -> FixMessage:
        if seq is None:
            self.seq += 1
            seq = self.seq
        fields: list[Field] = [
            (35, msg_type),
            (49, header.get("sender", CLIENT)),
            (56, header.get("target", "PERPX")),
            (34, str(seq)),
        ]
        if "possdup" in header:
            fields += [(43, "Y"), (122, sending_time(self.now_ns))]
        fields.append((52, sending_time(self.now_ns)))
        [message] = list(FrameReader().feed(encode([*fields, *body])))
        assert isinstance(message, FixMessage)
        return message

    def send(self, msg_type: str, body: Iterable[Field] = (), **header: object) -> Step:
        seq = header.pop("seq", None)
        assert seq is None or isinstance(seq, int)
        return self.session.receive(
            self.frame(msg_type, body, seq=seq, **{k: str(v) for k, v in header.items()}), self.now_ns
        )

    def logon(
        self, *, reset: bool = True, key: str = "key-1", heartbeat: str = "30", **header: object
    ) -> Step:
        body: list[Field] = [(98, "0"), (108, heartbeat), (553, key)]
        if reset:
            body.append((141, "Y"))
        return self.send("A", body, **header)


def read(step: Step) -> list[FixMessage]:
    out: list[FixMessage] = []
    for frame in step.frames:
        out += [m for m in FrameReader().feed(frame) if isinstance(m, FixMessage)]
    return out


def kinds(step: Step) -> list[str]:
    return [m.msg_type for m in read(step)]


@pytest.fixture
def store(tmp_path: Path) -> Iterable[SessionStore]:
    store = SessionStore(tmp_path / "fix.sqlite")
    yield store
    store.close()


def test_logon_with_reset_is_answered_with_a_logon_and_both_sequences_start_at_one(
    store: SessionStore,
) -> None:
    client = Client(store)
    step = client.logon()
    [answer] = read(step)
    assert step.logged_on and answer.msg_type == "A"
    assert (answer.get(34), answer.get(141), answer.get(108), answer.get(56)) == ("1", "Y", "30", CLIENT)
    assert client.session.state is SessionState.ACTIVE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"key": "nope"}, "invalid API key"),
        ({"heartbeat": "3"}, "HeartBtInt(108)"),
        ({"target": "OTHER"}, "TargetCompID(56) must be PERPX"),
    ],
)
def test_bad_logon_is_refused_with_a_logout_that_says_why(
    store: SessionStore, change: dict[str, str], reason: str
) -> None:
    client = Client(store)
    key, heartbeat = change.get("key", "key-1"), change.get("heartbeat", "30")
    step = client.logon(key=key, heartbeat=heartbeat, target=change.get("target", "PERPX"))
    [logout] = read(step)
    assert logout.msg_type == "5" and reason in (logout.get(58) or "")
    assert step.close is not None and not step.logged_on


def test_logon_with_a_sending_time_more_than_5_s_off_is_refused(store: SessionStore) -> None:
    client = Client(store)
    client.now_ns = T0 - 6 * NS_PER_S
    message = client.frame("A", [(98, "0"), (108, "30"), (553, "key-1"), (141, "Y")])
    step = client.session.receive(message, T0)
    assert kinds(step) == ["5"] and "5 s" in (read(step)[0].get(58) or "")


def test_first_message_that_is_not_a_logon_closes_without_an_answer(store: SessionStore) -> None:
    step = Client(store).send("D", [(11, "c-1")])
    assert step.frames == [] and step.close is not None


def test_application_message_in_sequence_is_handed_to_the_gateway(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    step = client.send("D", [(11, "c-1")])
    assert [m.get(11) for m in step.app] == ["c-1"] and step.frames == []


def test_sequence_gap_asks_for_a_resend_and_processes_the_queued_message_after_the_gap_fill(
    store: SessionStore,
) -> None:
    # Arrange: the client's message 2 is lost
    client = Client(store)
    client.logon()
    client.seq += 1
    # Act: message 3 arrives
    gap = client.send("D", [(11, "c-3")])
    filled = client.send("4", [(123, "Y"), (36, "3")], seq=2, possdup="Y")
    # Assert
    [resend] = read(gap)
    assert (resend.msg_type, resend.get(7), resend.get(16)) == ("2", "2", "0")
    assert gap.app == [] and [m.get(11) for m in filled.app] == ["c-3"]


def test_message_with_a_sequence_number_too_low_logs_out(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    client.send("D", [(11, "c-1")])
    step = client.send("D", [(11, "c-again")], seq=2)
    [logout] = read(step)
    assert logout.msg_type == "5" and logout.get(58) == "MsgSeqNum too low, expecting 3 but received 2"
    assert step.close is not None and step.app == []


def test_possdup_message_already_processed_is_ignored(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    client.send("D", [(11, "c-1")])
    step = client.send("D", [(11, "c-1")], seq=2, possdup="Y")
    assert step.frames == [] and step.app == [] and step.close is None


def test_garbled_message_is_dropped_without_an_answer_and_its_sequence_number_is_not_consumed(
    store: SessionStore,
) -> None:
    client = Client(store)
    client.logon()
    dropped = client.session.receive(Garbled("CheckSum(10) 000 is not 123", b""), T0)
    step = client.send("D", [(11, "c-2")])
    assert dropped.frames == [] and dropped.close is None
    assert [m.get(11) for m in step.app] == ["c-2"]


def test_resend_request_replays_application_messages_as_possdup_and_gap_fills_admin_ones(
    store: SessionStore,
) -> None:
    # Arrange: logon (our 1), two execution reports (our 2, 3), a heartbeat (our 4), a report (our 5)
    client = Client(store)
    client.logon()
    session = client.session
    session.send_app("8", ((17, "e-1"),), T0)
    session.send_app("8", ((17, "e-2"),), T0)
    session.tick(T0 + 30 * NS_PER_S)
    session.send_app("8", ((17, "e-3"),), T0 + 31 * NS_PER_S)
    client.now_ns = T0 + 32 * NS_PER_S
    # Act
    step = client.send("2", [(7, "1"), (16, "0")])
    # Assert
    out = read(step)
    assert [(m.msg_type, m.get(34)) for m in out] == [
        ("4", "1"),
        ("8", "2"),
        ("8", "3"),
        ("4", "4"),
        ("8", "5"),
    ]
    assert [m.get(36) for m in out if m.msg_type == "4"] == ["2", "5"]
    assert all(m.get(43) == "Y" for m in out)
    assert out[1].get(122) == sending_time(T0) and out[1].get(17) == "e-1"


def test_messages_made_while_disconnected_are_stored_and_resent_after_a_logon_without_reset(
    store: SessionStore,
) -> None:
    # Arrange: a session, then the client drops; a fill is reported while it is away
    first = Client(store)
    first.logon()
    first.send("D", [(11, "c-1")])
    first.session.disconnected()
    assert first.session.send_app("8", ((17, "fill-while-away"),), T0) is None
    # Act: the client comes back without 141=Y, continuing its sequence, and asks for what it missed
    second = Client(store, now_ns=T0 + NS_PER_S)
    second.seq = first.seq
    logon = second.logon(reset=False)
    resent = second.send("2", [(7, "2"), (16, "0")])
    # Assert: the logon answer carries our next number (3), the fill comes back as a PossDup
    assert [(m.msg_type, m.get(34)) for m in read(logon)] == [("A", "3")]
    fills = [m for m in read(resent) if m.msg_type == "8"]
    assert [(m.get(34), m.get(17), m.get(43)) for m in fills] == [("2", "fill-while-away", "Y")]


def test_logon_with_a_sequence_number_below_the_expected_one_is_logged_out(store: SessionStore) -> None:
    first = Client(store)
    first.logon()
    first.send("D", [(11, "c-1")])
    first.session.disconnected()
    second = Client(store)
    step = second.logon(reset=False)
    assert kinds(step) == ["5"] and "MsgSeqNum too low" in (read(step)[0].get(58) or "")


def test_sequence_reset_moves_the_expected_number_forward_never_back(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    forward = client.send("4", [(36, "10")], seq=99)
    accepted = client.send("D", [(11, "c-10")], seq=10)
    back = client.send("4", [(36, "5")], seq=11)
    assert forward.frames == [] and [m.get(11) for m in accepted.app] == ["c-10"]
    [reject] = read(back)
    assert (reject.msg_type, reject.get(373)) == ("3", "5")


def test_test_request_is_answered_with_its_id(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    [heartbeat] = read(client.send("1", [(112, "ping-7")]))
    assert (heartbeat.msg_type, heartbeat.get(112)) == ("0", "ping-7")


def test_silence_brings_a_heartbeat_then_a_test_request_then_a_logout(store: SessionStore) -> None:
    client = Client(store)
    client.logon(heartbeat="10")
    session = client.session
    assert kinds(session.tick(T0 + 9 * NS_PER_S)) == []
    assert kinds(session.tick(T0 + 10 * NS_PER_S)) == ["0"]
    assert kinds(session.tick(T0 + 12 * NS_PER_S)) == ["1"]
    final = session.tick(T0 + 22 * NS_PER_S)
    assert kinds(final) == ["5"] and final.close is not None


def test_reject_is_never_answered_with_a_reject(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    step = client.send("3", [(45, "1"), (58, "what")], sender="SOMEONE")
    assert kinds(step) == ["5"]


def test_logout_is_answered_and_closes(store: SessionStore) -> None:
    client = Client(store)
    client.logon()
    step = client.send("5")
    assert kinds(step) == ["5"] and step.close == "the client logged out"


def test_no_logon_within_10_s_closes_the_connection(store: SessionStore) -> None:
    session = Client(store).session
    assert session.tick(T0 + 9 * NS_PER_S).close is None
    assert session.tick(T0 + 10 * NS_PER_S).close is not None


def test_a_comp_id_stays_bound_to_the_key_it_first_logged_on_with(store: SessionStore) -> None:
    store.bind(CLIENT, "key-other")
    step = Client(store).logon()
    assert kinds(step) == ["5"] and "bound to another API key" in (read(step)[0].get(58) or "")


def test_a_session_flooding_more_than_the_message_limit_in_10_s_is_logged_out(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("perpx.fix.session.MAX_MESSAGES_PER_WINDOW", 5)
    client = Client(store)
    client.logon()
    steps = [client.send("0") for _ in range(5)]
    assert all(step.close is None for step in steps[:4])
    [logout] = read(steps[-1])
    assert logout.msg_type == "5" and "more than 5 messages" in (logout.get(58) or "")
    assert steps[-1].close is not None


def test_a_client_that_keeps_sending_past_an_unfilled_gap_is_logged_out_before_memory_grows(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: message 2 never comes; every later number is queued until the gap is filled
    monkeypatch.setattr("perpx.fix.session.MAX_QUEUED", 3)
    client = Client(store)
    client.logon()
    client.seq += 1
    # Act
    steps = [client.send("D", [(11, f"c-{n}")]) for n in range(4)]
    # Assert
    assert all(step.close is None for step in steps[:3])
    assert "ahead of a sequence gap" in (read(steps[-1])[-1].get(58) or "") and steps[-1].close is not None
