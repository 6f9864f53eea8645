"""What a Letta request can end in besides a result: the errors, and an answer read whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class LettaError(Exception):
    """A Letta request failed for good (after retries where retrying made sense)."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class LettaAuthError(LettaError):
    """401/403: retrying will not help; the operator must fix the key or project."""


class LettaNotFound(LettaError):
    pass


class LettaUnavailable(LettaError):
    """Every attempt failed in a way a later one may fix (no connection, a timeout, a
    cut or malformed answer, HTTP 408/429/5xx): Letta is down, unreachable or busy, not
    refusing us. A daemon that is starting waits for it (:mod:`letta_otel.startup`)."""


class StepsRouteBroken(LettaError):
    """``GET /v1/steps/`` answers 400 as on self-hosted Letta 0.12-0.16.8."""


@dataclass(slots=True)
class RawResponse:
    """An HTTP answer, read whole: what the error messages and retry hints look at."""

    status: int
    headers: Mapping[str, str]  # case-insensitive from aiohttp; lower-case names in tests
    body: bytes


@dataclass
class InvalidRecord:
    """An item of a list response that failed validation."""

    kind: str
    record_id: str | None
    error: str
