"""The two listeners of ``perpx serve``: what each serves, whom they believe, how they start and stop.

End to end against real processes: the admin API only on its own port, ``/health`` and
``/ready`` on both, ``X-Forwarded-For`` believed only from a named proxy, wrong admin tokens
locked out per address, a port in use refused before anything is created, and a stop that
reports the journal record, the snapshot and the state hash a replay reproduces.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perpx.journal.store import SNAPSHOT_DIR, read_config, recover
from perpx.server.listeners import (
    NOTSENT_LOWAT_BYTES,
    USER_TIMEOUT_MS,
    ListenError,
    bind_listeners,
    trusted_proxies,
)
from perpx.server.serve import ServeError, ServeOptions, admin_port_of

from .harness import ADMIN_TOKEN, MANUAL_CONFIG, ServerProcess, Trader, free_port

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("listeners") / "data").start()
    try:
        assert process.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"}).status_code == 200
        yield process
    finally:
        process.stop()


def place(
    server: ServerProcess, trader: Trader, forwarded_for: str | None = None, source: str = "127.0.0.1"
) -> httpx.Response:
    """A resting buy at 29,000, sent from ``source``, claiming ``forwarded_for`` if given."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    params = {**ORDER, "price": "29000"}
    return server.signed("POST", "/fapi/v1/order", trader, params, headers=headers, source=source)


# ---------------------------------------------------------------------- what each listener serves


@pytest.mark.parametrize(("method", "path"), [("GET", "/state"), ("POST", "/deposits"), ("GET", "/audit")])
def test_admin_route_on_public_port_is_not_found(server: ServerProcess, method: str, path: str) -> None:
    # Act
    answer = httpx.request(
        method, f"{server.base}/admin/v1{path}", headers={"X-PERPX-ADMIN": ADMIN_TOKEN}, json={}, timeout=10
    )
    # Assert
    assert (answer.status_code, answer.json()["code"]) == (404, -5000), answer.text


def test_binance_routes_on_the_admin_port_are_not_found(server: ServerProcess) -> None:
    # Act
    ping = httpx.get(f"{server.admin_base}/fapi/v1/ping", timeout=10)
    depth = httpx.get(f"{server.admin_base}/fapi/v1/depth?symbol=BTCUSDT", timeout=10)
    # Assert
    assert [ping.status_code, depth.status_code] == [404, 404]


def test_health_and_ready_answer_on_both_listeners(server: ServerProcess) -> None:
    # Arrange
    last_seq = server.admin("GET", "/state").json()["lastSeq"]
    # Act
    answers = {
        (base, route): httpx.get(f"{base}{route}", timeout=10)
        for base in (server.base, server.admin_base)
        for route in ("/health", "/ready")
    }
    # Assert
    for (base, route), answer in answers.items():
        assert answer.status_code == 200, (base, route, answer.text)
        expected = {"status": "alive"} if route == "/health" else {"status": "ready", "lastSeq": last_seq}
        assert answer.json() == expected


def test_ping_keeps_binance_meaning(server: ServerProcess) -> None:
    # Act
    answer = server.public("/fapi/v1/ping")
    # Assert
    assert (answer.status_code, answer.json()) == (200, {})


# ---------------------------------------------------------------------- wrong admin tokens


def test_wrong_tokens_lock_the_address_out_and_the_right_token_does_not_lift_it(
    server: ServerProcess,
) -> None:
    # Arrange
    guesser = "127.0.0.7"
    # Act
    guesses = [server.admin("GET", "/state", token=f"guess-{n}", source=guesser) for n in range(6)]
    right_from_guesser = server.admin("GET", "/state", source=guesser)
    right_elsewhere = server.admin("GET", "/state", source="127.0.0.8")
    public = server.public("/fapi/v1/time")
    # Assert
    assert [a.status_code for a in guesses] == [401, 401, 401, 401, 429, 429]
    assert [a.json()["code"] for a in guesses] == [-9202] * 4 + [-9204] * 2
    assert guesses[4].headers["Retry-After"] == "60"
    assert 0 < int(guesses[5].headers["Retry-After"]) <= 60
    assert "127.0.0.7" in guesses[4].json()["msg"]
    assert (right_from_guesser.status_code, right_from_guesser.json()["code"]) == (429, -9204)
    assert right_elsewhere.status_code == 200, right_elsewhere.text
    assert public.status_code == 200


# ---------------------------------------------------------------------- X-Forwarded-For


def test_key_fenced_to_an_address_is_refused_when_only_a_header_claims_it(server: ServerProcess) -> None:
    # Arrange
    fenced = server.trader("fenced-xff", ips=("10.9.9.9",))
    # Act
    answer = place(server, fenced, forwarded_for="10.9.9.9")
    # Assert
    assert (answer.status_code, answer.json()["code"]) == (401, -2015), answer.text
    assert "127.0.0.1" in answer.json()["msg"]


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that believes X-Forwarded-For from 127.0.0.1 (its proxy) and from nobody else."""
    process = ServerProcess(
        tmp_path_factory.mktemp("proxy") / "data", extra_args=("--forwarded-allow-ips", "127.0.0.1")
    ).start()
    try:
        assert process.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"}).status_code == 200
        yield process
    finally:
        process.stop()


def test_forwarded_for_from_a_named_proxy_is_the_client_address(behind_proxy: ServerProcess) -> None:
    # Arrange
    fenced = behind_proxy.trader("fenced", ips=("10.9.9.9",))
    # Act
    through_proxy = place(behind_proxy, fenced, forwarded_for="10.9.9.9")
    not_the_proxy = place(behind_proxy, fenced, forwarded_for="10.9.9.9", source="127.0.0.2")
    # the proxy appends its client: a client-written prefix is not the client
    spoofed_chain = place(behind_proxy, fenced, forwarded_for="10.9.9.9, 192.0.2.1")
    # Assert
    assert through_proxy.status_code == 200, through_proxy.text
    assert (not_the_proxy.status_code, not_the_proxy.json()["code"]) == (401, -2015)
    assert "127.0.0.2" in not_the_proxy.json()["msg"]
    assert (spoofed_chain.status_code, spoofed_chain.json()["code"]) == (401, -2015)
    assert "192.0.2.1" in spoofed_chain.json()["msg"]


# ---------------------------------------------------------------------- start-up


def serve_command(data_dir: Path, port: int, admin_port: int) -> list[str]:
    config = data_dir.parent / "venue.toml"
    config.write_text(MANUAL_CONFIG)
    return [
        sys.executable,
        "-m",
        "perpx",
        "serve",
        "--config",
        str(config),
        "--data",
        str(data_dir),
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
    ]


@pytest.mark.parametrize(
    ("busy", "flag"), [("public", "--port"), ("admin", "--admin-port"), ("fix", "--fix-port")]
)
def test_port_in_use_is_a_one_line_error_and_creates_nothing(tmp_path: Path, busy: str, flag: str) -> None:
    # Arrange
    port, admin_port, fix_port = free_port(), free_port(), free_port()
    taken = {"public": port, "admin": admin_port, "fix": fix_port}[busy]
    data_dir = tmp_path / "data"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        # Act
        done = subprocess.run(
            [*serve_command(data_dir, port, admin_port), "--fix-port", str(fix_port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    # Assert
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert f"127.0.0.1:{taken}" in line and "in use" in line and flag in line
    assert not data_dir.exists()


def test_bad_rate_limit_variable_is_a_one_line_error_and_creates_nothing(tmp_path: Path) -> None:
    # Arrange
    data_dir = tmp_path / "data"
    env = {**os.environ, "PERPX_RATE_LIMIT_WEIGHT_1M": "abc"}
    # Act
    done = subprocess.run(
        serve_command(data_dir, free_port(), free_port()),
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    # Assert
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "PERPX_RATE_LIMIT_WEIGHT_1M was 'abc'" in line
    assert not data_dir.exists()


@pytest.mark.parametrize(("sig", "admin_port"), [(signal.SIGINT, None), (signal.SIGTERM, 0)])
def test_stop_prints_the_last_record_the_snapshot_and_the_hash_a_replay_gives(
    tmp_path: Path, sig: signal.Signals, admin_port: int | None
) -> None:
    # Arrange
    data_dir = tmp_path / "data"
    process = ServerProcess(data_dir)
    if admin_port is not None:
        process.admin_port = admin_port
    process.start()
    try:
        if admin_port is None:
            trader = process.trader("stopper")
            assert (
                process.admin("POST", "/marks", {"symbol": "BTCUSDT", "markPrice": "30000"}).status_code
                == 200
            )
            assert place(process, trader).status_code == 200
        # Act
        code = process.stop(sig)
    finally:
        process.stop(signal.SIGKILL)
    # Assert
    log = process.log()
    _, report = recover(data_dir, read_config(data_dir), use_snapshots=False)
    assert code == 0, log
    assert f"stopped ({sig.name}) at journal record {report.last_seq}" in log
    assert f"snapshot written at record {report.last_seq}" in log
    assert f"state hash {report.state_hash}" in log
    assert (data_dir / SNAPSHOT_DIR / f"snap-{report.last_seq:012d}.bin").exists()
    assert ("admin API off" in log) == (admin_port == 0)


# ---------------------------------------------------------------------- the options, at their boundaries


@pytest.mark.parametrize(
    ("text", "trusted"),
    [
        ("", None),
        (" , ", None),
        ("127.0.0.1", ["127.0.0.1"]),
        ("10.0.0.1, 192.168.0.0/16,::1", ["10.0.0.1", "192.168.0.0/16", "::1"]),
        ("*", ["*"]),
    ],
)
def test_forwarded_allow_ips_lists_addresses_and_networks(text: str, trusted: list[str] | None) -> None:
    # Act, Assert
    assert trusted_proxies(text) == trusted


@pytest.mark.parametrize("text", ["proxy.local", "10.0.0.1,*", "10.0.0.0/33", "127.0.0.1:8080"])
def test_forwarded_allow_ips_refuses_what_is_not_an_address(text: str) -> None:
    # Act, Assert
    with pytest.raises(ValueError, match="--forwarded-allow-ips"):
        trusted_proxies(text)


@pytest.mark.parametrize(
    ("port", "admin_port", "expected"),
    [(8080, None, 8081), (8080, 0, None), (8080, 9000, 9000), (0, None, 0), (65534, None, 65535)],
)
def test_admin_port_defaults_to_the_next_port_and_zero_turns_it_off(
    port: int, admin_port: int | None, expected: int | None
) -> None:
    # Arrange
    options = ServeOptions(None, "127.0.0.1", port, Path("unused"), False, admin_port=admin_port)
    # Act, Assert
    assert admin_port_of(options) == expected


@pytest.mark.parametrize(("port", "admin_port"), [(65535, None), (8080, 8080)])
def test_admin_port_that_cannot_be_its_own_is_refused(port: int, admin_port: int | None) -> None:
    # Arrange
    options = ServeOptions(None, "127.0.0.1", port, Path("unused"), False, admin_port=admin_port)
    # Act, Assert
    with pytest.raises(ServeError, match="--admin-port"):
        admin_port_of(options)


def test_host_that_is_not_this_machine_is_a_one_line_error() -> None:
    # Act
    with pytest.raises(ListenError) as caught:
        bind_listeners("192.0.2.55", 0, "127.0.0.1", 0)
    # Assert
    assert "192.0.2.55" in str(caught.value) and "not an address of this machine" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_listener_sockets_bound_unsent_bytes_and_stalled_connections() -> None:
    # Act
    listeners = bind_listeners("127.0.0.1", 0, "127.0.0.1", 0)
    try:
        sockets = [listeners.public, listeners.admin]
        # Assert
        assert listeners.admin_address is not None
        assert listeners.public_address.port != listeners.admin_address.port
        if sys.platform != "linux":
            return
        for sock in sockets:
            assert sock is not None
            assert sock.getsockopt(socket.IPPROTO_TCP, 25) == NOTSENT_LOWAT_BYTES  # TCP_NOTSENT_LOWAT
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == USER_TIMEOUT_MS
    finally:
        listeners.close()


def test_connections_accepted_by_a_listener_have_nagle_off() -> None:
    # Arrange: without it, a response written in two parts waits 40 ms for the client's delayed ACK
    listeners = bind_listeners("127.0.0.1", 0, "127.0.0.1", None)
    nodelay: list[int] = []

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            nodelay.append(
                transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Accept, sock=listeners.public)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", listeners.public_address.port)
            while not nodelay:
                await asyncio.sleep(0.01)
            writer.close()

    # Act
    asyncio.run(asyncio.wait_for(accept_one(), 10))
    # Assert
    assert nodelay == [1]
