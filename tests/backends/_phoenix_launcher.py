"""Start ``phoenix serve`` with its gRPC server on loopback only (run by the Phoenix venv).

Phoenix binds its OTLP gRPC server to ``[::]:PHOENIX_GRPC_PORT`` with no setting to
change the host (phoenix/server/grpc_server.py, arize-phoenix 20.26.1); ``PHOENIX_HOST``
only moves the HTTP server. Tests must listen on 127.0.0.1 only, so this shim rewrites
the wildcard address of ``grpc.aio`` servers to ``PHOENIX_HOST`` before Phoenix starts.
It runs inside Phoenix's own interpreter, never imported by the test suite.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

import grpc.aio._server as aio_server

_HOST = os.environ.get("PHOENIX_HOST", "127.0.0.1")
_WILDCARDS = ("[::]:", "0.0.0.0:", "::")


def _loopback(address: str) -> str:
    for wildcard in _WILDCARDS:
        if address.startswith(wildcard):
            return f"{_HOST}:{address.rsplit(':', 1)[1]}"
    return address


_insecure = aio_server.Server.add_insecure_port
_secure = aio_server.Server.add_secure_port


def _add_insecure_port(self: Any, address: str) -> int:
    return int(_insecure(self, _loopback(address)))


def _add_secure_port(self: Any, address: str, credentials: Any) -> int:
    return int(_secure(self, _loopback(address), credentials))


aio_server.Server.add_insecure_port = _add_insecure_port  # type: ignore[method-assign]
aio_server.Server.add_secure_port = _add_secure_port  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["phoenix", "serve"]
    runpy.run_module("phoenix.server.main", run_name="__main__", alter_sys=True)
