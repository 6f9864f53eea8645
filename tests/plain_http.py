"""A small JSON-over-HTTP client on the standard library, for the live kit and its tests.

The live tests read the Letta API (and the Phoenix test Phoenix's) with a client
independent of the bridge's own, so a bug shared by both cannot hide; urllib keeps the kit
free of dependencies (it runs with any Python, before any venv exists).
Every status is returned as a :class:`Response` (urllib raises on 4xx/5xx; this does not).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Params = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str | int]]


class HttpStatusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Response:
    method: str
    url: str
    status_code: int
    content: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if not 200 <= self.status_code < 300:
            raise HttpStatusError(
                f"{self.method} {self.url} -> HTTP {self.status_code}: {self.text[:2000]}"
            )


class Http:
    """Requests against one base URL; no proxies (loopback only), no redirects followed."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        timeout: float | None = None,
    ) -> Response:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = None if json_body is None else json.dumps(json_body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=timeout or self.timeout) as answer:
                status, content = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, content = error.code, error.read()
        return Response(method, url, status, content, time.monotonic() - started)

    def get(
        self, path: str, *, params: Params | None = None, timeout: float | None = None
    ) -> Response:
        return self.request("GET", path, params=params, timeout=timeout)

    def post(self, path: str, body: Any, *, timeout: float | None = None) -> Response:
        return self.request("POST", path, json_body=body, timeout=timeout)

    def healthy(self, path: str = "/v1/health/") -> bool:
        try:
            return self.get(path, timeout=5).status_code == 200
        except OSError:
            return False


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to assert on, not something to follow silently."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
