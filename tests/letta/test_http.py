"""The keep-alive HTTP/1.1 client over real loopback sockets, against a scripted server.

Each test scripts what the server writes back per request, byte for byte, to reach
the framing and connection-reuse cases a well-behaved server rarely shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from letta_otel._loop import loop_factory
from letta_otel.letta.http import FastHttp, HttpError, RawResponse, proxy_configured
from tests.system_tools import requires_tool

Script = Callable[[socket.socket, bytes, int], bool]  # (conn, request, n) -> keep open?


class ScriptedServer:
    """Serves each request with ``script``; counts connections and requests."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.connections = 0
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.tls is not None:
                try:
                    conn.settimeout(5)
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()  # the client refused our certificate
                    continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buf = b""
        with conn:
            for _ in range(100):
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                request, _, buf = buf.partition(b"\r\n\r\n")
                self.requests.append(request)
                if not self.script(conn, request, len(self.requests)):
                    return

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


def client(url: str, timeout: float = 2.0) -> FastHttp:
    return FastHttp(
        url, headers={"X-Test": "1"}, timeout=timeout, connect_timeout=1, max_connections=2
    )


def fetch(url: str, *paths: str, timeout: float = 2.0) -> list[RawResponse]:
    async def go() -> list[RawResponse]:
        http = client(url, timeout)
        try:
            return [await http.get(p, [("a", "b c")]) for p in paths]
        finally:
            await http.aclose()

    with asyncio.Runner(loop_factory=_LOOP[0]) as runner:
        return runner.run(go())


# Every test runs on asyncio's own loop and on uvloop (what the commands use).
_LOOP: list[Callable[[], asyncio.AbstractEventLoop] | None] = [None]


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    _LOOP[0] = loop_factory() if request.param == "uvloop" else None
    if request.param == "uvloop":
        assert _LOOP[0] is not None, "uvloop is a dependency on this platform"
    yield request.param
    _LOOP[0] = None


@contextlib.contextmanager
def serving(script: Script, tls: ssl.SSLContext | None = None) -> Iterator[ScriptedServer]:
    with ScriptedServer(script, tls) as server:
        yield server


def test_keep_alive_reuses_one_connection_and_sends_headers() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(b'{"n": %d}' % n))
        return True

    with serving(script) as server:
        responses = fetch(server.url, "/v1/x", "/v1/y", "/v1/z")
    assert [r.body for r in responses] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("GET /v1/x?a=b+c HTTP/1.1\r\n")
    assert "\r\nX-Test: 1" in first and "\r\nHost: 127.0.0.1:" in first


def test_chunked_body_in_pieces() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"')
        conn.sendall(b"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n")
        return True

    with serving(script) as server:
        (response,) = fetch(server.url, "/c")
    assert response.status == 200 and response.body == b'{"a": 1}'


def test_body_delimited_by_close_and_a_new_connection_after_it() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"closed": true}')
        return False

    with serving(script) as server:
        responses = fetch(server.url, "/a", "/b")
    assert [r.body for r in responses] == [b'{"closed": true}'] * 2
    assert server.connections == 2


def test_the_sweep_sees_open_connections_only() -> None:
    """The deadline sweep walks ``_conns``: connections leave it when they close."""

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if b"/close" in request:
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
            return False
        conn.sendall(ok(b"{}"))
        return True

    async def go() -> tuple[int, int]:
        http = client(server.url)
        try:
            await http.get("/keep", [])
            kept = len(http._conns)
            await http.get("/close", [])
            await asyncio.sleep(0.05)  # connection_lost runs on a later loop turn
            return kept, len(http._conns)
        finally:
            await http.aclose()

    with serving(script) as server, asyncio.Runner(loop_factory=_LOOP[0]) as runner:
        assert runner.run(go()) == (1, 0)


def test_a_stale_keep_alive_connection_is_replaced_silently() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if n == 2:
            return False  # the server dropped the idle connection: no answer at all
        conn.sendall(ok(b"[]"))
        return True

    with serving(script) as server:
        responses = fetch(server.url, "/a", "/b")
    assert [r.body for r in responses] == [b"[]", b"[]"]
    assert server.connections == 2 and len(server.requests) == 3


def test_a_fresh_connection_closed_without_answer_is_an_error() -> None:
    with serving(lambda conn, request, n: False) as server, pytest.raises(HttpError):
        fetch(server.url, "/a")


def test_truncated_body_is_an_error() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"half"')
        return False

    with serving(script) as server, pytest.raises(HttpError, match="middle"):
        fetch(server.url, "/a")


def test_same_origin_redirect_followed_other_origin_refused() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if request.startswith(b"GET /v1/steps?"):
            conn.sendall(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v1/steps/?x=1\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        elif request.startswith(b"GET /evil"):
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        else:
            conn.sendall(ok(b"[1]"))
        return True

    with serving(script) as server:
        (response,) = fetch(server.url, "/v1/steps")
        assert response.body == b"[1]"
        assert server.requests[-1].startswith(b"GET /v1/steps/?x=1 ")
        with pytest.raises(HttpError, match="another origin"):
            fetch(server.url, "/evil")


def test_timeout_closes_the_connection() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if n == 1:
            threading.Event().wait(1.0)
            return False
        conn.sendall(ok(b"{}"))
        return True

    with serving(script) as server:
        with pytest.raises(TimeoutError):
            fetch(server.url, "/slow", timeout=0.3)
        (response,) = fetch(server.url, "/fast")
    assert response.body == b"{}"


def test_timeout_fires_within_an_eighth_of_it_and_leaves_no_timer() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if b"/slow" in request:
            threading.Event().wait(2.0)
            return False
        conn.sendall(ok(b"{}"))
        return True

    async def go() -> tuple[float, bool]:
        http = client(server.url, timeout=0.4)
        try:
            await http.get("/fast", [])
            await asyncio.sleep(0.4 / 8 + 0.05)  # the sweep after the answer finds none out
            idle = http._sweeper is None
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await http.get("/slow", [])
            return time.monotonic() - started, idle
        finally:
            await http.aclose()

    with serving(script) as server, asyncio.Runner(loop_factory=_LOOP[0]) as runner:
        waited, idle = runner.run(go())
    assert 0.4 <= waited < 0.4 + 0.4 / 8 + 0.15
    assert idle  # no request out: no timer runs while the daemon is idle


def test_interim_100_answer_is_skipped() -> None:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'"x"'))
        return True

    with serving(script) as server:
        (response,) = fetch(server.url, "/a")
    assert response.body == b'"x"'


def test_proxy_variables_select_the_httpx_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert not proxy_configured("https://api.letta.com")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxy_configured("https://api.letta.com")
    assert not proxy_configured("http://letta.internal:8283")
    monkeypatch.setenv("NO_PROXY", "api.letta.com")
    assert not proxy_configured("https://api.letta.com")


@requires_tool("openssl")
def test_https_verifies_the_server_certificate(tmp_path: Path) -> None:
    """TLS over loopback with a throw-away CA: trusted when given, refused otherwise."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(b'{"tls": true}'))
        return True

    with serving(script, tls=server_ctx) as server:
        url = server.url.replace("http://", "https://")

        async def go(trust: ssl.SSLContext | None) -> RawResponse:
            http = FastHttp(
                url,
                headers={},
                timeout=5,
                connect_timeout=5,
                max_connections=1,
                ssl_context=trust,
            )
            try:
                return await http.get("/v1/health/", [])
            finally:
                await http.aclose()

        trusted = ssl.create_default_context(cafile=str(cert))
        with asyncio.Runner(loop_factory=_LOOP[0]) as runner:
            assert runner.run(go(trusted)).body == b'{"tls": true}'
            with pytest.raises(HttpError, match="cannot connect"):
                runner.run(go(None))  # certifi's CAs do not know this certificate
