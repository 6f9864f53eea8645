"""How answers are framed, over real sockets: whatever arrives in pieces is read whole,
and framing that RFC 9112 rejects is a clear, retryable error, never a body cut short
and taken as valid.

aiohttp parses with its C parser (llhttp) where its wheel has one, and with a
pure-Python parser elsewhere (PyPy, or ``AIOHTTP_NO_EXTENSIONS=1``);
:func:`test_the_pure_python_parser_refuses_the_same` runs the malformed cases again
under the second one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import http_parser

from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.retry import Backoff, RetryPolicy
from tests.letta.servers import ScriptedServer, ok

FAST = RetryPolicy(attempts=3, backoff=Backoff(initial=0.01, maximum=0.02, jitter=0.5))
ONCE = RetryPolicy(attempts=1)
PURE_PYTHON = os.environ.get("AIOHTTP_NO_EXTENSIONS", "") not in ("", "0")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def health(url: str, **options: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with LettaClient(url, timeout=2.0, **options) as client:
            return await client.health()

    return asyncio.run(go())


# Each sent as the whole answer to the first request, after which the server closes
# the connection (a malformed answer leaves a connection nobody can trust).
MALFORMED = {
    "negative Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n{}",
    "Content-Length not a number": b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n{}",
    "two different Content-Lengths": (
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{"a": 1}x'
    ),
    "Content-Length and chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    ),
    "chunk size 0x3": (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\n{"a\r\n0\r\n\r\n'
    ),
    "negative chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n"
    ),
    "body shorter than its Content-Length": (
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"half": '
    ),
    "closed in the middle of a chunked body": (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{"half": '
    ),
    "closed before the last chunk": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
    ),
    "not an HTTP answer": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
}
CLEAR = (
    r"failed after 1 attempt: (malformed HTTP answer \(.+\)"
    r"|the answer's body is incomplete or malformed \(.+\))"
)


def first_malformed(raw: bytes) -> ScriptedServer:
    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if n == 1:
            conn.sendall(raw)
            return False
        conn.sendall(ok(b'{"good": true}'))
        return True

    return ScriptedServer(script)


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_framing_is_retried_and_the_retry_gets_the_answer(case: str) -> None:
    errors: list[tuple[str, int | None]] = []
    with first_malformed(MALFORMED[case]) as server:
        result = health(server.url, retry=FAST, on_error=lambda k, s: errors.append((k, s)))
    assert result == {"good": True}
    assert errors == [("connection", None)]
    assert len(server.requests) == 2


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_framing_is_a_clear_error(case: str) -> None:
    with first_malformed(MALFORMED[case]) as server, pytest.raises(LettaError, match=CLEAR):
        health(server.url, retry=ONCE)


def test_bytes_after_an_answer_do_not_leak_into_the_next() -> None:
    """An answer followed, in the same read, by another nobody asked for: the
    connection is not used again, so that one is never taken for the next answer.

    (Bytes that arrive later, on an idle pooled connection, are another matter: aiohttp
    3.14 queues them for the connection's next request, aio-libs/aiohttp#13656.)
    """

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        conn.sendall(ok(b'{"n": %d}' % n) + ok(b'{"stray": %d}' % n))
        return True

    async def twice() -> list[dict[str, Any]]:
        async with LettaClient(server.url, retry=ONCE, timeout=2.0) as client:
            first = await client.health()
            await asyncio.sleep(0.05)  # the stray bytes have arrived
            return [first, await client.health()]

    with ScriptedServer(script) as server:
        assert asyncio.run(twice()) == [{"n": 1}, {"n": 2}]
    assert server.connections == 2


@pytest.mark.skipif(PURE_PYTHON, reason="this is the run under the pure-Python parser")
def test_the_pure_python_parser_refuses_the_same() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--no-live",
            str(Path(__file__).relative_to(root)),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" in result.stdout


def test_the_parser_is_the_one_this_run_means() -> None:
    pure = http_parser.HttpResponseParser is http_parser.HttpResponseParserPy
    assert pure == PURE_PYTHON, f"aiohttp {aiohttp.__version__}: pure-Python parser is {pure}"


# ---------------------------------------------------------------- well-formed, in pieces

CONTENT_LENGTH = b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX: y\r\n\r\n{"a": "bc"}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'5;x=1\r\n{"a":\r\n6\r\n "bc"}\r\n0\r\nT: 1\r\n\r\n'
)
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n" + CONTENT_LENGTH


@pytest.mark.parametrize(
    "raw", [CONTENT_LENGTH, CHUNKED, INTERIM], ids=["length", "chunked", "100"]
)
def test_an_answer_split_at_every_byte_offset_is_read_whole(raw: bytes) -> None:
    """One keep-alive connection; answer n arrives in two writes cut at byte n."""

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        cut = n - 1
        conn.sendall(raw[:cut])
        time.sleep(0.001)
        conn.sendall(raw[cut:])
        return True

    async def every_cut() -> list[dict[str, Any]]:
        async with LettaClient(server.url, retry=ONCE, timeout=2.0) as client:
            return [await client.health() for _ in range(len(raw) + 1)]

    with ScriptedServer(script) as server:
        assert asyncio.run(every_cut()) == [{"a": "bc"}] * (len(raw) + 1)
    assert server.connections == 1
