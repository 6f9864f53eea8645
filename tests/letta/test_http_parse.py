"""The HTTP client's response parser without sockets: framing, reuse, lazy headers.

``reference_head`` is the parse the client used before the framing headers were read
with a regular expression and the rest lazily; every head must read the same both ways.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from letta_otel.letta.http import HttpError, RawResponse, _Head, _Parser


def reference_head(block: bytes) -> tuple[int, dict[str, str]]:
    lines = block.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def check_head(block: bytes) -> None:
    try:
        status, headers = reference_head(block)
    except (IndexError, ValueError):
        with pytest.raises(HttpError, match="not an HTTP response"):
            _Head(block)
        return
    head = _Head(block)
    assert head.status == status
    assert dict(head.headers) == headers
    assert head.length == headers.get("content-length")
    assert head.chunked == ("chunked" in headers.get("transfer-encoding", ""))
    assert head.close == (headers.get("connection", "").lower() == "close")


ODD_HEADS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5",
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 404",
    b"HTTP/1.1 200 OK\r\ncontent-length:5\r\nCONTENT-LENGTH :  7 \r\nX: y",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n content-length: 9",  # a folded line
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: Close",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection: keep-alive, close",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive",
    b"HTTP/1.1 200 OK\r\nX-Content-Length: 3\r\nContent-Lengthy: 4\r\nLocation: /a:b",
    b"HTTP/1.1 200 OK\r\nContent-Length:\xa012\x85\r\n\x0bConnection\x1c: close\rx",
    b"HTTP/1.1 200 OK\r\n\r content-length: 3\r\n\ncontent-length: 4",
    b"HTTP/1.1  200 OK\r\nContent-Length: 1",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 1",
    b"HTTP/2 301 Moved\r\nLocation: /x",
    b"HTTP/1.1 200\r\nContent-Length: 1",
]


@pytest.mark.parametrize("block", ODD_HEADS)
def test_head_reads_like_the_reference(block: bytes) -> None:
    check_head(block)


_NAMES = st.sampled_from(
    ["Content-Length", "content-length", "Transfer-Encoding", "Connection", "Location", "X-A"]
)
_SPACE = st.sampled_from(["", " ", "\t", "  ", "\xa0", "\x0b"])
_VALUES = st.sampled_from(["5", " 12 ", "chunked", "Close", "close", "gzip, chunked", "", "a:b"])


@given(
    st.lists(st.tuples(_SPACE, _NAMES, _SPACE, _VALUES), max_size=6),
    st.sampled_from([200, 204, 301, 404]),
)
def test_generated_heads_read_like_the_reference(
    fields: list[tuple[str, str, str, str]], status: int
) -> None:
    lines = [f"HTTP/1.1 {status} X"] + [f"{a}{n}{b}:{v}" for a, n, b, v in fields]
    check_head("\r\n".join(lines).encode("latin-1"))


def test_not_an_http_response() -> None:
    with pytest.raises(HttpError, match="not an HTTP response"):
        _Head(b"SSH-2.0-OpenSSH\r\nX: y")


def test_headers_are_a_mapping_parsed_on_first_use() -> None:
    head = _Head(b"HTTP/1.1 307 X\r\nLocation: /v1/a?b=1\r\nRetry-After: 3\r\nX-Empty:")
    headers = head.headers
    assert headers.get("location") == "/v1/a?b=1"
    assert headers["retry-after"] == "3" and "x-empty" in headers and headers["x-empty"] == ""
    assert headers.get("content-type") is None and headers.get("content-type", "-") == "-"
    assert len(headers) == 3 and list(headers) == ["location", "retry-after", "x-empty"]
    assert headers == {"location": "/v1/a?b=1", "retry-after": "3", "x-empty": ""}
    with pytest.raises(KeyError):
        headers["nope"]
    assert "location" in repr(headers)


CONTENT_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX: y\r\n\r\nhello world"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"
)
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n" + CONTENT_LENGTH
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n"
UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world"


def feed_all(parser: _Parser, pieces: list[bytes]) -> RawResponse | None:
    response = None
    for i, piece in enumerate(pieces):
        response = parser.feed(piece)
        if response is not None:
            assert i == len(pieces) - 1, "answered before the last byte"
    return response


@pytest.mark.parametrize(
    ("raw", "body"),
    [(CONTENT_LENGTH, b"hello world"), (CHUNKED, b"hello world"), (INTERIM, b"hello world")],
)
def test_a_response_split_at_every_byte_offset(raw: bytes, body: bytes) -> None:
    for cut in range(len(raw) + 1):
        for pieces in ([raw[:cut], raw[cut:]], [raw[:cut], raw[cut : cut + 1], raw[cut + 1 :]]):
            parser = _Parser()
            response = feed_all(parser, [p for p in pieces if p])
            assert response is not None, cut
            assert (response.status, response.body) == (200, body)
            assert not parser.leftover and not parser.close


def test_until_close_body_at_every_byte_offset() -> None:
    for cut in range(len(UNTIL_CLOSE) + 1):
        parser = _Parser()
        assert feed_all(parser, [p for p in (UNTIL_CLOSE[:cut], UNTIL_CLOSE[cut:]) if p]) is None
        response = parser.close_body()
        assert response is not None and response.body == b"hello world" and parser.close


def test_one_parser_reads_response_after_response() -> None:
    parser = _Parser()
    for raw, status, body in [
        (CHUNKED, 200, b"hello world"),
        (CONTENT_LENGTH, 200, b"hello world"),
        (NO_CONTENT, 204, b""),
        (INTERIM, 200, b"hello world"),
        (CHUNKED, 200, b"hello world"),
    ]:
        for cut in (len(raw), 20):  # whole, and in two reads
            assert not parser.started
            response = feed_all(parser, [p for p in (raw[:cut], raw[cut:]) if p])
            assert response is not None
            assert (response.status, response.body) == (status, body)
            assert not parser.leftover
    assert not parser.started and not parser.until_close


def test_bytes_after_a_response_are_left_over() -> None:
    parser = _Parser()
    response = parser.feed(CONTENT_LENGTH + b"HTTP/1.1")
    assert response is not None and response.body == b"hello world" and parser.leftover


def test_bad_content_length() -> None:
    with pytest.raises(HttpError, match="bad Content-Length"):
        _Parser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n")
