"""Read facts out of raw provider payloads as Letta stores them.

``response_json`` comes in several shapes: the OpenAI chat completion, the OpenAI
Responses object, Letta's own object for streamed calls (``type: "message"`` with a
``content`` *dict*), Anthropic messages (``content`` *list*), Google
``generateContent``, and ``{"error", "error_type"}`` for failed calls. Each reader
returns ``None``/empty when a payload does not have what it looks for: unknown
shapes are normal, never an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class ProviderToolCall:
    call_id: str
    name: str | None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float range
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def response_kind(response: dict[str, Any] | None) -> str:
    """One of openai_chat, openai_responses, letta_stream, anthropic, google, error, unknown."""
    r = _dict(response)
    if not r:
        return "unknown"
    if "error" in r and "choices" not in r:
        return "error"
    if "choices" in r:
        return "openai_chat"
    if r.get("object") == "response" or "output" in r:
        return "openai_responses"
    if r.get("type") == "message" and isinstance(r.get("content"), dict):
        return "letta_stream"
    if r.get("type") == "message" and isinstance(r.get("content"), list):
        return "anthropic"
    if "candidates" in r:
        return "google"
    return "unknown"


def response_id(response: dict[str, Any] | None) -> str | None:
    r = _dict(response)
    return _str(r.get("id")) or _str(r.get("responseId"))


def response_model(response: dict[str, Any] | None) -> str | None:
    r = _dict(response)
    return _str(r.get("model")) or _str(r.get("modelVersion"))


def finish_reasons(response: dict[str, Any] | None) -> tuple[str, ...]:
    r = _dict(response)
    kind = response_kind(r)
    reasons: list[str | None] = []
    if kind == "openai_chat":
        reasons = [_str(_dict(c).get("finish_reason")) for c in _list(r.get("choices"))]
    elif kind == "anthropic":
        reasons = [_str(r.get("stop_reason"))]
    elif kind == "google":
        reasons = [_str(_dict(c).get("finishReason")) for c in _list(r.get("candidates"))]
    elif kind == "openai_responses":
        reasons = [_str(r.get("status"))]
    return tuple(x for x in reasons if x)


def error_type(response: dict[str, Any] | None) -> str | None:
    r = _dict(response)
    if response_kind(r) != "error":
        return None
    return _str(r.get("error_type")) or _str(_dict(r.get("error")).get("type"))


def tool_calls(response: dict[str, Any] | None) -> tuple[ProviderToolCall, ...]:
    """The tool calls the model asked for, in order."""
    r = _dict(response)
    kind = response_kind(r)
    found: list[ProviderToolCall] = []
    if kind == "openai_chat":
        for choice in _list(r.get("choices")):
            for call in _list(_dict(_dict(choice).get("message")).get("tool_calls")):
                _add(found, _dict(call).get("id"), _dict(_dict(call).get("function")).get("name"))
    elif kind == "openai_responses":
        for item in map(_dict, _list(r.get("output"))):
            if item.get("type") == "function_call":
                _add(found, item.get("call_id") or item.get("id"), item.get("name"))
    elif kind == "letta_stream":
        raw = _dict(r.get("content")).get("tool_call")
        call = _loads(raw) if isinstance(raw, str) else _dict(raw)
        _add(found, call.get("id"), _dict(call.get("function")).get("name") or call.get("name"))
    elif kind == "anthropic":
        for block in map(_dict, _list(r.get("content"))):
            if block.get("type") == "tool_use":
                _add(found, block.get("id"), block.get("name"))
    elif kind == "google":
        for index, candidate in enumerate(_list(r.get("candidates"))):
            for part in _list(_dict(_dict(candidate).get("content")).get("parts")):
                fn = _dict(_dict(part).get("functionCall"))
                if fn:
                    _add(found, fn.get("id") or f"gemini-{index}-{len(found)}", fn.get("name"))
    return tuple(found)


def _add(found: list[ProviderToolCall], call_id: Any, name: Any) -> None:
    if isinstance(call_id, str) and call_id:
        found.append(ProviderToolCall(call_id, _str(name)))


def _loads(text: str) -> dict[str, Any]:
    try:
        return _dict(json.loads(text))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return {}


# NamedTuples, not frozen dataclasses: as immutable, and built several times faster
# (a frozen dataclass sets each field through object.__setattr__); one per chat span.
class RequestParams(NamedTuple):
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None
    choice_count: int | None = None
    stream: bool | None = None


def request_params(
    request: dict[str, Any] | None, llm_config: dict[str, Any] | None
) -> RequestParams:
    """Sampling parameters as sent; ``llm_config`` fills what the request omits."""
    req, cfg = _dict(request), _dict(llm_config)
    gen = _dict(req.get("generationConfig")) or _dict(req.get("generation_config"))
    stop = req.get("stop", req.get("stop_sequences", gen.get("stopSequences")))
    stops = (
        (stop,) if isinstance(stop, str) else tuple(s for s in _list(stop) if isinstance(s, str))
    )
    max_tokens = _first_int(
        req.get("max_completion_tokens"),
        req.get("max_tokens"),
        req.get("max_output_tokens"),
        gen.get("maxOutputTokens"),
        cfg.get("max_tokens"),
    )
    n = _int(req.get("n"))
    stream = req.get("stream")
    return RequestParams(
        temperature=_first_num(
            req.get("temperature"), gen.get("temperature"), cfg.get("temperature")
        ),
        max_tokens=max_tokens,
        top_p=_first_num(req.get("top_p"), gen.get("topP")),
        top_k=_first_num(req.get("top_k"), gen.get("topK")),
        frequency_penalty=_first_num(req.get("frequency_penalty"), cfg.get("frequency_penalty")),
        presence_penalty=_first_num(req.get("presence_penalty")),
        stop_sequences=stops,
        seed=_int(req.get("seed")),
        choice_count=n if n is not None and n != 1 else None,
        stream=stream if isinstance(stream, bool) else None,
    )


def _first_num(*values: Any) -> float | None:
    for value in values:
        if value is not None:  # most are missing keys: no call for them
            number = _num(value)
            if number is not None:
                return number
    return None


def _first_int(*values: Any) -> int | None:
    for value in values:
        if value is not None and type(value) is not bool and isinstance(value, int):
            return value  # as _int, inline
    return None


class Usage(NamedTuple):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None


def response_usage(response: dict[str, Any] | None) -> Usage:
    """Token counts from the payload, for when the step itself has none."""
    r = _dict(response)
    u = _dict(r.get("usage")) or _dict(r.get("usageMetadata"))
    if not u:
        return Usage()
    prompt_details = _dict(u.get("prompt_tokens_details")) or _dict(u.get("input_tokens_details"))
    completion_details = _dict(u.get("completion_tokens_details")) or _dict(
        u.get("output_tokens_details")
    )
    return Usage(
        input_tokens=_first_int(
            u.get("prompt_tokens"), u.get("input_tokens"), u.get("promptTokenCount")
        ),
        output_tokens=_first_int(
            u.get("completion_tokens"), u.get("output_tokens"), u.get("candidatesTokenCount")
        ),
        cache_read=_first_int(
            prompt_details.get("cached_tokens"),
            u.get("cache_read_input_tokens"),
            u.get("cachedContentTokenCount"),
        ),
        cache_creation=_first_int(u.get("cache_creation_input_tokens")),
        reasoning=_first_int(
            completion_details.get("reasoning_tokens"), u.get("thoughtsTokenCount")
        ),
    )
