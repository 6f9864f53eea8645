"""An OpenAI-compatible fake LLM that the kit's Letta server talks to (stdlib only).

Routes: ``GET /v1/models`` (one model, ``fake-model``), ``POST /v1/embeddings``
(deterministic unit vectors), ``POST /v1/chat/completions`` (JSON, or SSE with
``"stream": true``) and ``GET /healthz``.

Words in the LAST user message steer the completion, so a scenario can choose how the
step it causes ends:

=========== ==================================================================
``TOOL``    until a tool result follows the user message, call a tool
            (``conversation_search`` when offered, else the first tool that is
            not ``send_message``); afterwards answer: a run of two steps
``SLOW``    wait ``--slow-seconds`` (1.5) before answering
``FAILBAD`` HTTP 200 whose body is not JSON (a malformed provider response)
``FAIL``    HTTP 500 with an OpenAI-style error body (``FAIL500`` too); the
            OpenAI SDK retries twice, so Letta makes three requests
(none)      a plain text answer; or, when ``send_message`` is offered (memgpt
            agents), a ``send_message`` call carrying that text
=========== ==================================================================

Each request is appended to ``--log`` as one JSON line (what was asked, what was
planned), which is what to read when a scenario misbehaves.

    python fake_llm.py --port 8399 [--log requests.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class Plan:
    """What one chat completion answers."""

    kind: str  # "text" | "tool" | "http500" | "malformed"
    slow: bool = False
    text: str = ""
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


def text_of(content: Any) -> str:
    """A message's text, whether ``content`` is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text") or "") if isinstance(part, dict) else str(part) for part in content
        )
    return "" if content is None else str(content)


def offered_tools(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name"):
            names.append(str(function["name"]))
    return names


def plan(body: dict[str, Any]) -> Plan:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    said = text_of(messages[last_user].get("content")) if last_user >= 0 else ""
    tool_results = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "tool")
    slow = "SLOW" in said
    # FAILBAD first: "FAIL" is a prefix of it.
    if "FAILBAD" in said:
        return Plan("malformed", slow)
    if "FAIL" in said:
        return Plan("http500", slow)
    tools = offered_tools(body)
    reply = f"[fake-llm] answer after {tool_results} tool result(s): {' '.join(said.split())[:80]}"
    if "TOOL" in said and tool_results == 0:
        usable = [t for t in tools if t != "send_message"]
        if usable:
            name = "conversation_search" if "conversation_search" in usable else usable[0]
            arguments = {"query": "hello"} if name == "conversation_search" else {}
            return Plan("tool", slow, tool=name, arguments=arguments)
    if "send_message" in tools:
        return Plan("tool", slow, tool="send_message", arguments={"message": reply})
    return Plan("text", slow, text=reply)


def rough_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, default=str)) // 4)


def embedding(text: Any, dimensions: int) -> list[float]:
    seed = hashlib.sha256(json.dumps(text, default=str).encode()).digest()
    vector = [((seed[(i * 7) % 32] + i) % 251) / 251.0 - 0.5 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class FakeLlm(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "letta-otel-fake-llm/1"
    # Set by main().
    log_path: str | None = None
    slow_seconds: float = 1.5
    log_lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"fake_llm {format % args}\n")

    # ------------------------------------------------------------------ plumbing

    def send_json(self, status: int, value: Any) -> None:
        self.send_bytes(status, json.dumps(value).encode(), "application/json")

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, entry: dict[str, Any]) -> None:
        if self.log_path:
            line = json.dumps({"ts": time.time(), "path": self.path, **entry}, default=str)
            with self.log_lock, open(self.log_path, "a") as handle:
                handle.write(line + "\n")

    # -------------------------------------------------------------------- routes

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/healthz", "/health"):
            self.send_bytes(200, b"ok", "text/plain")
        elif path.endswith("/models"):
            model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "fake-llm"}
            self.send_json(200, {"object": "list", "data": [{**model, "context_length": 32000}]})
        else:
            self.send_json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if path.endswith("/embeddings"):
            self.embeddings(body)
        elif path.endswith("/chat/completions"):
            self.chat(body)
        else:
            self.record({"unhandled": True})
            self.send_json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def embeddings(self, body: dict[str, Any]) -> None:
        texts = body.get("input")
        if isinstance(texts, str) or (
            isinstance(texts, list) and texts and isinstance(texts[0], int)
        ):
            texts = [texts]  # one string, or one list of token ids
        texts = texts or []
        dimensions = int(body.get("dimensions") or 1536)
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(text, dimensions)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(rough_tokens(t) for t in texts)
        self.record({"embeddings": len(texts), "dimensions": dimensions})
        self.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def chat(self, body: dict[str, Any]) -> None:
        chosen = plan(body)
        stream = bool(body.get("stream"))
        self.record(
            {
                "stream": stream,
                "model": body.get("model"),
                "messages": len(body.get("messages") or []),
                "tools": offered_tools(body),
                "plan": {"kind": chosen.kind, "slow": chosen.slow, "tool": chosen.tool},
            }
        )
        if chosen.slow:
            time.sleep(self.slow_seconds)
        if chosen.kind == "http500":
            error = {
                "message": "fake-llm: injected upstream failure (FAIL)",
                "type": "server_error",
                "code": "fake_failure",
            }
            self.send_json(500, {"error": error})
            return
        if chosen.kind == "malformed":
            self.send_bytes(200, b"{this is not json", "application/json")
            return
        message: dict[str, Any]
        if chosen.kind == "tool":
            call = {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": chosen.tool, "arguments": json.dumps(chosen.arguments)},
            }
            message, finish = (
                {"role": "assistant", "content": None, "tool_calls": [call]},
                "tool_calls",
            )
        else:
            message, finish = {"role": "assistant", "content": chosen.text}, "stop"
        prompt = rough_tokens(body.get("messages")) + rough_tokens(body.get("tools") or [])
        completion = rough_tokens(message)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": body.get("model") or MODEL,
            "system_fingerprint": "fp_fake",
        }
        if not stream:
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            self.send_json(
                200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.stream(head, message, finish, usage if include_usage else None)

    def stream(
        self,
        head: dict[str, Any],
        message: dict[str, Any],
        finish: str,
        usage: dict[str, Any] | None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(delta: dict[str, Any] | None, reason: str | None = None, **extra: Any) -> None:
            choices = (
                []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]
            )
            chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()

        calls = message.get("tool_calls")
        event({"role": "assistant", "content": None if calls else ""})
        if calls:
            call = calls[0]
            arguments = call["function"]["arguments"]
            opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            event({"tool_calls": [{"index": 0, **opening}]})
            for i in range(0, len(arguments), 10):
                event(
                    {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 10]}}]}
                )
        else:
            text = message["content"]
            for i in range(0, len(text), 12):
                event({"content": text[i : i + 12]})
        event({}, finish)
        if usage is not None:
            event(None, usage=usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", default=None, help="append one JSON line per request")
    parser.add_argument("--slow-seconds", type=float, default=1.5)
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        parser.error("the fake LLM binds to loopback only")
    FakeLlm.log_path = args.log
    FakeLlm.slow_seconds = args.slow_seconds
    server = ThreadingHTTPServer((args.host, args.port), FakeLlm)
    server.daemon_threads = True
    print(f"fake LLM on http://{args.host}:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
