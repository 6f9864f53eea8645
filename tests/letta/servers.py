"""Servers on 127.0.0.1 for the HTTP client's tests: a scripted raw-socket server that
answers byte for byte what a test writes, and a small asyncio forward proxy.

Both bind a free port on 127.0.0.1, run on their own thread, and stop on ``__exit__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Script = Callable[[socket.socket, bytes, int], bool]  # (conn, request head, n) -> keep open?


def ok(body: bytes, extra: str = "") -> bytes:
    """A well-formed 200 with ``body`` (``extra``: more header lines, each ending CRLF)."""
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


def header(request: bytes, name: str) -> str | None:
    """A header's value in a raw request head (first of that name, case-insensitive)."""
    for line in request.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class ScriptedServer:
    """Serves each request with ``script``; counts connections and requests.

    A request that says ``Connection: close`` gets its connection closed after the
    script has answered it (as a forward proxy asks). With ``tls``, connections are
    wrapped in it; a client that refuses the certificate ends the handshake.
    """

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.open_now = 0
        self.most_open = 0  # the most connections open at once
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._handlers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            handler = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._handlers.append(handler)
            handler.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        # Small writes leave at once: a script's separate writes stay separate on the wire.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused our certificate
                return
        with self._lock:
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        buf = b""
        try:
            with conn:
                while not self._stop.is_set():
                    while b"\r\n\r\n" not in buf:
                        try:
                            data = conn.recv(65536)
                        except OSError:
                            return
                        if not data:
                            return
                        buf += data
                    request, _, buf = buf.partition(b"\r\n\r\n")
                    with self._lock:
                        self.requests.append(request)
                        n = len(self.requests)
                    if not self.script(conn, request, n):
                        return
                    if (header(request, "connection") or "").lower() == "close":
                        return
        finally:
            with self._lock:
                self.open_now -= 1

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for handler in self._handlers:
            handler.join(timeout=5)


@dataclass(frozen=True)
class Proxied:
    """One request the proxy received: ``CONNECT host:port`` or an absolute-URI one."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 that records what it is asked.

    ``GET http://host:port/path``: sent on to the origin with ``Connection: close``
    (and without the ``Proxy-*`` headers), the answer relayed until the origin closes,
    then the client's connection closed. ``CONNECT host:port``: a tunnel both ways.
    Only 127.0.0.1 is reached; anything else is answered 403.
    """

    def __init__(self) -> None:
        self.seen: list[Proxied] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ForwardProxy:
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = [line for line in head.split("\r\n") if line]
        method, target, _ = request_line.split(" ", 2)
        fields = [line.partition(":") for line in lines]
        self.seen.append(
            Proxied(method, target, {k.strip().lower(): v.strip() for k, _, v in fields})
        )
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
        else:
            parts = urlsplit(target)
            host, port = parts.hostname or "", str(parts.port or 80)
        if host != "127.0.0.1":
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        parts = urlsplit(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [
            f"{k}:{v}"
            for k, _, v in fields
            if not k.strip().lower().startswith("proxy-") and k.strip().lower() != "connection"
        ]
        up_writer.write(
            "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode(
                "latin-1"
            )
        )
        await up_writer.drain()
        await _pipe(up_reader, writer)
        up_writer.close()
