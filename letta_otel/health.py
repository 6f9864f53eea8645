"""The HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text).

A stdlib ``ThreadingHTTPServer`` on a daemon thread, bound to ``LETTA_OTEL_HEALTH_ADDR``
(loopback by default). It reads only in-memory state, never Letta, the OTLP backend
or the state file, so it answers even while a cycle is stuck.

* ``/healthz``: 200 while the process runs (liveness).
* ``/readyz``: 200 when the last successful poll and export are recent, else 503 with
  the reasons (see :mod:`letta_otel.telemetry`); while the daemon waits at start for
  its OTLP endpoint or Letta, 503 ``not ready: starting: waiting for ...`` with what it
  waits for, the error and when it tries again.
* ``/metrics``: the same instruments as the OTLP push, in the Prometheus text format
  (or OpenMetrics when the scraper asks for it).
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.exposition import choose_encoder

from letta_otel.config.network import ENV_HEALTH_ADDR, split_health_addr
from letta_otel.telemetry import Telemetry

log = logging.getLogger(__name__)


class HealthServerError(Exception):
    """The endpoint cannot listen where it was told to; the message names the setting."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], telemetry: Telemetry) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.telemetry = telemetry
        # One scrape at a time: the Prometheus reader hands each collection to one caller.
        self.scrape_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path == "/healthz":
            self._reply(200, "text/plain; charset=utf-8", b"ok\n", body)
        elif path == "/readyz":
            readiness = self.server.telemetry.readiness()
            if readiness.ready:
                self._reply(200, "text/plain; charset=utf-8", b"ready\n", body)
            else:
                text = "not ready: " + "; ".join(readiness.reasons) + "\n"
                self._reply(503, "text/plain; charset=utf-8", text.encode(), body)
        elif path == "/metrics":
            self._metrics(body)
        else:
            self._reply(
                404, "text/plain; charset=utf-8", b"try /healthz, /readyz or /metrics\n", body
            )

    def _metrics(self, body: bool) -> None:
        registry = self.server.telemetry.registry
        if registry is None:
            self._reply(404, "text/plain; charset=utf-8", b"metrics are not served\n", body)
            return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        with self.server.scrape_lock:
            payload = encoder(registry)
        self._reply(200, content_type, payload, body)

    def _reply(self, status: int, content_type: str, payload: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health endpoint: " + format, *args)


class HealthServer:
    def __init__(self, addr: str, telemetry: Telemetry) -> None:
        self._addr = addr
        self._telemetry = telemetry
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> HealthServer:
        host, port = split_health_addr(self._addr)
        try:
            self._server = _Server((host, port), self._telemetry)
        except OSError as exc:
            raise HealthServerError(
                f"{ENV_HEALTH_ADDR}={self._addr}: cannot listen there "
                f"({exc.strerror or exc}); pick another host:port, or set it to off"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},  # how long stop() may wait
            name="letta-otel-health",
            daemon=True,
        )
        self._thread.start()
        shown_host, shown_port = self.address
        log.info(
            "serving /healthz, /readyz and /metrics on http://%s:%d",
            f"[{shown_host}]" if ":" in shown_host else shown_host,
            shown_port,
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
