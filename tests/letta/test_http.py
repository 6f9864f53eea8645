"""The Letta client's HTTP over real loopback sockets: connections, proxies, TLS,
redirects, paths and timeouts, on asyncio's loop and on uvloop (what the commands use).

The servers (tests/letta/servers.py) are scripted byte for byte, a forward proxy that
records what it is asked, and a TLS server with a throw-away CA (trustme).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from letta_otel.eventloop import loop_factory
from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.retry import Backoff, RetryPolicy
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.letta.servers import ForwardProxy, Script, ScriptedServer, header, ok

T = TypeVar("T")
FAST = RetryPolicy(attempts=3, backoff=Backoff(initial=0.01, maximum=0.02, jitter=0.5))
STEP = "step-7703d0ed-f6b9-4fc8-add2-e7497cd9b052"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")

# Every test runs on asyncio's own loop and on uvloop.
_LOOP: list[Callable[[], asyncio.AbstractEventLoop] | None] = [None]


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    _LOOP[0] = loop_factory() if request.param == "uvloop" else None
    if request.param == "uvloop":
        assert _LOOP[0] is not None, "uvloop is a dependency on this platform"
    yield request.param
    _LOOP[0] = None


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none come from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=_LOOP[0]) as runner:
        return runner.run(main)


def with_client(
    url: str, call: Callable[[LettaClient], Coroutine[Any, Any, T]], **options: Any
) -> T:
    async def go() -> T:
        options.setdefault("retry", FAST)
        options.setdefault("timeout", 2.0)
        async with LettaClient(url, **options) as client:
            return await call(client)

    return run(go())


def health(url: str, **options: Any) -> dict[str, Any]:
    return with_client(url, lambda c: c.health(), **options)


def answer(body: bytes) -> Script:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(body))
        return True

    return script


# --------------------------------------------------------------------------- connections


def test_keep_alive_reuses_one_connection_and_sends_the_headers() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(b"[]" if b"/runs/" in request else b'{"n": %d}' % n))
        return True

    async def calls(client: LettaClient) -> list[object]:
        return [
            await client.health(),
            await client.list_runs({"q": "b c", "flag": True}),
            await client.health(),
        ]

    with ScriptedServer(script) as server:
        results = with_client(server.url, calls, api_key="sk-1", project="proj-9")
    assert results[0] == {"n": 1} and results[2] == {"n": 3}
    assert server.connections == 1
    first, second = (r.decode("latin-1") for r in server.requests[:2])
    assert first.startswith("GET /v1/health/ HTTP/1.1\r\n")
    assert second.startswith("GET /v1/runs/?q=b+c&flag=true HTTP/1.1\r\n")
    assert header(server.requests[0], "authorization") == "Bearer sk-1"
    assert header(server.requests[0], "x-project") == "proj-9"
    assert header(server.requests[0], "host") == f"127.0.0.1:{server.port}"
    assert (header(server.requests[0], "user-agent") or "").startswith("letta-otel/")


def test_a_base_url_with_a_path_prefix_keeps_it() -> None:
    with ScriptedServer(answer(b"{}")) as server:
        health(server.url + "/letta/")
    assert server.requests[0].startswith(b"GET /letta/v1/health/ HTTP/1.1")


def test_the_pool_holds_at_most_max_connections() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        time.sleep(0.05)  # so requests overlap
        conn.sendall(ok(b"{}"))
        return True

    async def many(client: LettaClient) -> None:
        await asyncio.gather(*(client.health() for _ in range(12)))

    with ScriptedServer(script) as server:
        with_client(server.url, many, max_connections=3)
    assert len(server.requests) == 12
    assert server.most_open <= 3 and server.connections <= 3


def test_a_body_delimited_by_close_and_a_new_connection_after_it() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"closed": true}')
        return False

    async def twice(client: LettaClient) -> list[dict[str, Any]]:
        return [await client.health(), await client.health()]

    with ScriptedServer(script) as server:
        assert with_client(server.url, twice) == [{"closed": True}] * 2
    assert server.connections == 2


def test_a_stale_keep_alive_connection_is_replaced_silently() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if n == 2:
            return False  # the server dropped the idle connection: no answer at all
        conn.sendall(ok(b"[]"))
        return True

    errors: list[tuple[str, int | None]] = []

    async def twice(client: LettaClient) -> list[object]:
        return [await client.list_runs({}), await client.list_runs({})]

    with ScriptedServer(script) as server:
        with_client(server.url, twice, on_error=lambda k, s: errors.append((k, s)))
    assert server.connections == 2 and len(server.requests) == 3
    assert errors == []  # re-sent by aiohttp on a fresh connection (RFC 9112 9.3.1)


def test_a_connection_closed_without_an_answer_is_retried_then_reported() -> None:
    errors: list[tuple[str, int | None]] = []
    closed = "failed after 3 attempts: the connection was closed"
    with (
        ScriptedServer(lambda conn, request, n: False) as server,
        pytest.raises(LettaError, match=closed),
    ):
        health(server.url, on_error=lambda k, s: errors.append((k, s)))
    assert errors == [("connection", None)] * 3


def test_nothing_listening_is_cannot_connect() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(LettaError, match=f"cannot connect to 127.0.0.1:{port}"):
        health(f"http://127.0.0.1:{port}")


def test_an_interim_100_answer_is_skipped() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'{"x": 1}'))
        return True

    with ScriptedServer(script) as server:
        assert health(server.url) == {"x": 1}


# --------------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("step_id", "sent"),
    [
        ("a/b", "a%2Fb"),
        ("a?b=1", "a%3Fb%3D1"),
        ("a#b", "a%23b"),
        ("100%", "100%25"),
        ("a%2Fb", "a%252Fb"),
        ("two words", "two%20words"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("ünï", "%C3%BCn%C3%AF"),
        (STEP, STEP),
    ],
)
def test_ids_are_one_percent_encoded_path_segment(step_id: str, sent: str) -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(b"[]" if b"/steps?" in request else b"null"))
        return True

    with ScriptedServer(script) as server:
        assert with_client(server.url, lambda c: c.get_trace(step_id)) is None
        with_client(server.url, lambda c: c.list_run_steps(step_id, after="x/y"))
    trace, run_steps = (r.decode("latin-1").split("\r\n")[0] for r in server.requests)
    assert trace == f"GET /v1/steps/{sent}/trace HTTP/1.1"
    assert run_steps == f"GET /v1/runs/{sent}/steps?order=asc&limit=100&after=x%2Fy HTTP/1.1"


# ----------------------------------------------------------------------------- redirects


def redirect(location: str, status: int = 307) -> bytes:
    return (
        f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_same_origin_redirect_is_followed() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if request.startswith(b"GET /v1/health/ "):
            conn.sendall(redirect("/v1/health/?x=1"))
        else:
            conn.sendall(ok(b'{"ok": 1}'))
        return True

    with ScriptedServer(script) as server:
        assert health(server.url) == {"ok": 1}
    assert server.requests[-1].startswith(b"GET /v1/health/?x=1 ")


def test_a_redirect_to_another_origin_is_refused_before_anything_is_sent() -> None:
    errors: list[tuple[str, int | None]] = []
    with ScriptedServer(answer(b"{}")) as elsewhere:

        def script(conn: socket.socket, request: bytes, n: int) -> bool:
            conn.sendall(redirect(f"{elsewhere.url}/v1/health/", 302))
            return True

        with (
            ScriptedServer(script) as server,
            pytest.raises(LettaError, match="another origin") as info,
        ):
            health(server.url, api_key="sk-secret", on_error=lambda k, s: errors.append((k, s)))
        assert elsewhere.requests == [] and elsewhere.connections == 0
    assert len(server.requests) == 1  # refused at once: not retried
    assert "LETTA_BASE_URL" in str(info.value) and "sk-secret" not in str(info.value)
    assert errors == [("connection", None)]


def test_a_redirect_to_https_on_the_same_host_is_another_origin() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(redirect(f"https://127.0.0.1:{server.port}/v1/health/", 301))
        return True

    with ScriptedServer(script) as server, pytest.raises(LettaError, match="another origin"):
        health(server.url)


def test_at_most_a_few_redirects_are_followed() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(redirect(f"/v1/health/{n}"))
        return True

    with ScriptedServer(script) as server, pytest.raises(LettaError, match="redirects"):
        health(server.url)
    assert len(server.requests) == 5  # not retried either


# ------------------------------------------------------------------------------ timeouts


def test_a_timeout_closes_the_connection_and_the_retry_gets_the_answer() -> None:
    release = threading.Event()

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if n == 1:
            release.wait(2)
            return False
        conn.sendall(ok(b'{"second": true}'))
        return True

    errors: list[tuple[str, int | None]] = []
    with ScriptedServer(script) as server:
        result = health(server.url, timeout=0.3, on_error=lambda k, s: errors.append((k, s)))
        release.set()
    assert result == {"second": True} and errors == [("timeout", None)]
    assert server.connections == 2


def test_the_deadline_ends_a_call_against_a_hanging_server_at_the_deadline() -> None:
    """Each attempt gets what is left of the deadline, however long the request timeout."""
    release = threading.Event()

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        release.wait(5)
        return False

    with ScriptedServer(script) as server:
        started = time.monotonic()
        with pytest.raises(LettaError, match=r"0\.6s deadline") as info:
            health(server.url, timeout=30.0, deadline=0.6)
        took = time.monotonic() - started
        release.set()
    assert 0.6 <= took < 1.5
    assert "timed out" in str(info.value)


# ------------------------------------------------------------------------------- proxies


def test_requests_go_through_the_http_proxy_named_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeLettaServer(FakeLettaData.from_samples()) as letta, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)

        async def calls(client: LettaClient) -> tuple[object, object]:
            return await client.health(), await client.get_step(STEP)

        _, step = with_client(letta.base_url, calls, api_key="sk-abc")
        assert getattr(step, "id", None) == STEP
        seen = [(p.method, p.target) for p in proxy.seen]
        assert seen == [
            ("GET", f"{letta.base_url}/v1/health/"),
            ("GET", f"{letta.base_url}/v1/steps/{STEP}"),
        ]
        assert [r.path for r in letta.requests] == ["/v1/health/", f"/v1/steps/{STEP}"]
        assert letta.requests[0].headers["authorization"] == "Bearer sk-abc"


def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLettaServer(FakeLettaData.from_samples()) as letta, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        health(letta.base_url)
        assert proxy.seen == [] and len(letta.requests) == 1


def test_all_proxy_is_used_when_no_scheme_proxy_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLettaServer(FakeLettaData.from_samples()) as letta, ForwardProxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # for https:// only
        health(letta.base_url)
        assert [p.target for p in proxy.seen] == [f"{letta.base_url}/v1/health/"]


def test_proxy_credentials_go_to_the_proxy_and_stay_out_of_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeLettaServer(FakeLettaData.from_samples()) as letta, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://user:pw-secret@127.0.0.1:{proxy.port}")
        with caplog.at_level(logging.DEBUG, logger="letta_otel"):
            health(letta.base_url)
        (seen,) = proxy.seen
        assert seen.headers["proxy-authorization"] == "Basic dXNlcjpwdy1zZWNyZXQ="
        assert "proxy-authorization" not in letta.requests[0].headers
    assert f"through the proxy http://127.0.0.1:{proxy.port}" in caplog.text
    assert "pw-secret" not in caplog.text


def test_a_proxy_that_refuses_the_tunnel_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with ForwardProxy() as proxy:  # it tunnels to 127.0.0.1 only
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(LettaError, match=r"the proxy refused the tunnel \(HTTP 403"):
            health("https://localhost:9")
        assert (proxy.seen[0].method, proxy.seen[0].target) == ("CONNECT", "localhost:9")


def test_a_socks_proxy_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(LettaError, match=r"socks5 proxy .* is not supported.*NO_PROXY"):
        health("http://127.0.0.1:9")


# ----------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[ScriptedServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with ScriptedServer(answer(b'{"tls": true}'), tls=context) as server:
        yield server


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.mark.usefixtures("no_ca_variables")
def test_https_is_verified_against_ssl_cert_file(
    tls_server: ScriptedServer, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert health(tls_server.url) == {"tls": True}


@pytest.mark.usefixtures("no_ca_variables")
def test_https_with_an_unknown_ca_is_refused_and_not_retried(tls_server: ScriptedServer) -> None:
    errors: list[tuple[str, int | None]] = []
    with pytest.raises(LettaError, match=r"not trusted.*SSL_CERT_FILE"):
        # certifi's CAs do not know the throw-away CA
        health(tls_server.url, on_error=lambda k, s: errors.append((k, s)))
    assert tls_server.requests == [] and tls_server.connections == 1
    assert errors == [("connection", None)]


@pytest.mark.usefixtures("no_ca_variables")
def test_https_is_verified_against_ssl_cert_dir(
    tls_server: ScriptedServer, ca_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to name a CA directory's files by hash")
    directory = tmp_path / "certs"
    directory.mkdir()
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(ca_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shutil.copy(ca_file, directory / f"{subject_hash}.0")
    monkeypatch.setenv("SSL_CERT_DIR", str(directory))
    assert health(tls_server.url) == {"tls": True}


@pytest.mark.usefixtures("no_ca_variables")
def test_an_unreadable_ssl_cert_file_is_named(
    tls_server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    with pytest.raises(LettaError, match=f"SSL_CERT_FILE={missing}"):
        health(tls_server.url)


@pytest.mark.usefixtures("no_ca_variables")
def test_https_through_a_proxy_tunnel(
    tls_server: ScriptedServer, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert health(tls_server.url) == {"tls": True}
        assert [(p.method, p.target) for p in proxy.seen] == [
            ("CONNECT", f"127.0.0.1:{tls_server.port}")
        ]
    assert tls_server.requests[0].startswith(b"GET /v1/health/ HTTP/1.1")


def test_the_environment_is_read_when_the_session_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client made before the proxy variables are set (not before its first request)
    still uses them: nothing is read at construction."""
    with FakeLettaServer(FakeLettaData.from_samples()) as letta, ForwardProxy() as proxy:
        client = LettaClient(letta.base_url, retry=FAST)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)

        async def go() -> None:
            async with client:
                await client.health()

        run(go())
        assert len(proxy.seen) == 1
