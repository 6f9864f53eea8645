"""The kit's fake LLM: how words steer it, and its OpenAI wire format (no Letta needed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.kit import fake_llm
from tests.plain_http import Http

TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {}}}
    for name in ("send_message", "archival_memory_search", "conversation_search")
]


def body(*messages: tuple[str, Any], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "messages": [{"role": role, "content": content} for role, content in messages],
        "tools": tools or [],
    }


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("hello", "text"),
        ("please FAIL now", "http500"),
        ("FAIL500", "http500"),
        ("FAILBAD on purpose", "malformed"),
        ("TOOL but no tool is offered", "text"),
    ],
)
def test_words_in_the_last_user_message_choose_the_answer(said: str, kind: str) -> None:
    assert fake_llm.plan(body(("system", "FAIL TOOL"), ("user", said))).kind == kind


def test_only_the_last_user_message_counts() -> None:
    history = body(("user", "FAIL earlier"), ("assistant", "sorry"), ("user", "fine now"))
    assert fake_llm.plan(history).kind == "text"


def test_tool_is_called_once_then_answered() -> None:
    first = fake_llm.plan(body(("user", "TOOL look it up"), tools=TOOLS))
    assert (first.kind, first.tool, first.arguments) == (
        "tool",
        "conversation_search",
        {"query": "hello"},
    )
    after = body(("user", "TOOL look it up"), ("assistant", None), ("tool", "{}"), tools=TOOLS)
    answer = fake_llm.plan(after)
    assert (answer.kind, answer.tool) == ("tool", "send_message")  # memgpt: via send_message
    plain = fake_llm.plan(body(("user", "TOOL look it up"), ("tool", "{}"), tools=TOOLS[1:2]))
    assert plain.kind == "text"


def test_memgpt_agents_answer_through_send_message() -> None:
    chosen = fake_llm.plan(body(("user", [{"type": "text", "text": "hi"}]), tools=TOOLS))
    assert (chosen.kind, chosen.tool) == ("tool", "send_message")
    assert "hi" in chosen.arguments["message"]


def test_slow_is_independent_of_the_outcome() -> None:
    assert fake_llm.plan(body(("user", "SLOW TOOL"), tools=TOOLS)).slow
    assert fake_llm.plan(body(("user", "SLOW FAIL"))).kind == "http500"
    assert not fake_llm.plan(body(("user", "slow, lower case"))).slow


# ------------------------------------------------------------------------ over the wire


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Http, Path]]:
    log = tmp_path_factory.mktemp("fake-llm") / "requests.jsonl"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, fake_llm.__file__, "--port", str(port), "--log", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    http = Http(f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 20
        while not http.healthy("/healthz"):
            assert proc.poll() is None, "fake_llm.py exited"
            assert time.monotonic() < deadline, "fake_llm.py did not start"
            time.sleep(0.05)
        yield http, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_models_and_embeddings(server: tuple[Http, Path]) -> None:
    http, _ = server
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["fake-model"]
    answer = http.post("/v1/embeddings", {"input": ["a", "b"], "dimensions": 8}).json()
    assert [len(d["embedding"]) for d in answer["data"]] == [8, 8]
    again = http.post("/v1/embeddings", {"input": "a", "dimensions": 8}).json()
    assert again["data"][0]["embedding"] == answer["data"][0]["embedding"]  # deterministic


def test_chat_completion_json(server: tuple[Http, Path]) -> None:
    http, log = server
    answer = http.post("/v1/chat/completions", body(("user", "TOOL"), tools=TOOLS))
    assert answer.status_code == 200
    completion = answer.json()
    (choice,) = completion["choices"]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "conversation_search"
    assert json.loads(call["function"]["arguments"]) == {"query": "hello"}
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["plan"] == {"kind": "tool", "slow": False, "tool": "conversation_search"}


def test_failures(server: tuple[Http, Path]) -> None:
    http, _ = server
    failed = http.post("/v1/chat/completions", body(("user", "FAIL")))
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "server_error"
    malformed = http.post("/v1/chat/completions", body(("user", "FAILBAD")))
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()


@pytest.mark.parametrize("said", ["hello there, a long enough answer", "TOOL"])
def test_chat_completion_stream(server: tuple[Http, Path], said: str) -> None:
    http, _ = server
    request = {**body(("user", said), tools=TOOLS[1:]), "stream": True}
    request["stream_options"] = {"include_usage": True}
    answer = http.post("/v1/chat/completions", request)
    lines = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    if said == "TOOL":
        assert finishes[-1] == "tool_calls"
        arguments = "".join(
            d["tool_calls"][0]["function"]["arguments"] for d in deltas if d.get("tool_calls")
        )
        assert json.loads(arguments) == {"query": "hello"}
    else:
        assert finishes[-1] == "stop"
        assert said in "".join(d.get("content") or "" for d in deltas)
