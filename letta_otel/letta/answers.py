"""Reading a failed HTTP answer: what went wrong, in one line, and how long to wait.

The client (:mod:`.client`) asks these for each failed attempt: the error a status
means (:func:`error_for`), the server's retry hint (``Retry-After`` or
``timeToQuotaResetMs``), a body's detail, and what failed below HTTP. No message ever
holds a URL's credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from letta_otel.letta.errors import LettaAuthError, LettaError, LettaNotFound, RawResponse


def json_or_none(response: RawResponse) -> Any:
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None


def _retry_hint(response: RawResponse) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` or ``timeToQuotaResetMs``."""
    return retry_hint_and_source(response)[0]


def retry_hint_and_source(response: RawResponse) -> tuple[float | None, str]:
    """:func:`_retry_hint`, and where it came from (for the error when it is too long)."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return float(header), "Retry-After"
        except ValueError:
            try:
                when = parsedate_to_datetime(header)
                return max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0), "Retry-After"
            except (TypeError, ValueError):
                pass
    body = json_or_none(response)
    if isinstance(body, dict):
        reset = body.get("timeToQuotaResetMs")
        if isinstance(reset, int | float) and not isinstance(reset, bool):
            return float(reset) / 1000, "timeToQuotaResetMs"
    return None, ""


def framing_conflict(lengths: Sequence[str]) -> str:
    """Why an answer with two different ``Content-Length`` values is refused (RFC 9112
    6.3), or "" for one that has at most one.

    aiohttp's C parser rejects them itself; its pure-Python one (PyPy, or
    ``AIOHTTP_NO_EXTENSIONS``) reads the first and would take a cut body as whole.
    """
    if len(lengths) > 1 and len(set(lengths)) > 1:
        return f"conflicting Content-Length headers {lengths}"
    return ""


def describe_failure(exc: aiohttp.ClientError) -> str:
    """What went wrong below HTTP, in one line (never a URL's credentials)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed before an answer"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"the proxy refused the tunnel (HTTP {exc.status} {exc.message})"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the answer's body is incomplete or malformed ({_first_line(str(exc))})"
    if isinstance(exc, aiohttp.ClientResponseError):  # the parser refused the answer
        return f"malformed HTTP answer ({_first_line(exc.message)})"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection failed ({exc.strerror or type(exc).__name__})"
    return f"request failed ({type(exc).__name__})"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].rstrip(":")[:200]


def describe_body(response: RawResponse) -> str:
    ctype = response.headers.get("content-type", "")
    if "html" in ctype:
        return " (an HTML error page, probably from a proxy)"
    return ""


def error_detail(response: RawResponse) -> str:
    body = json_or_none(response)
    if body is None and response.body.strip() != b"null":
        return response.body[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:200]


def error_for(status: int, path: str, response: RawResponse) -> LettaError:
    detail = error_detail(response)
    if status in (401, 403):
        return LettaAuthError(
            f"GET {path}: HTTP {status} — Letta rejected the credentials; check LETTA_API_KEY "
            f"and LETTA_PROJECT ({detail[:120]})",
            status=status,
            path=path,
        )
    if status == 404:
        return LettaNotFound(f"GET {path}: HTTP 404: {detail}", status=404, path=path)
    return LettaError(f"GET {path}: HTTP {status}: {detail}", status=status, path=path)
