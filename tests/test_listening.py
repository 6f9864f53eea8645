"""tests/listening.py reads a process's listening sockets from /proc (instead of ``ss``)."""

from __future__ import annotations

import os
import socket

import pytest

from tests import listening

pytestmark = pytest.mark.skipif(not listening.supported(), reason="needs Linux /proc/<pid>/net")


def test_finds_this_process_listening_sockets_and_their_addresses() -> None:
    with socket.socket() as loop4, socket.socket() as any4, socket.socket() as idle:
        loop4.bind(("127.0.0.1", 0))
        loop4.listen()
        any4.bind(("0.0.0.0", 0))
        any4.listen()
        idle.bind(("127.0.0.1", 0))  # bound, not listening: not reported
        found = listening.listening_addresses(os.getpid())
        assert ("127.0.0.1", loop4.getsockname()[1]) in found
        assert ("0.0.0.0", any4.getsockname()[1]) in found
        assert idle.getsockname()[1] not in {port for _, port in found}


def test_ipv6_addresses_are_decoded() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
        sock.listen()
        assert ("::1", sock.getsockname()[1]) in listening.listening_addresses(os.getpid())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:7f00:1", True),  # 127.0.0.1 on a dual-stack socket (grpc binds so)
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("*", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert listening.is_loopback(host) is loopback
