"""The live-test kit: a real Letta 0.16.8 server on loopback, offline, with seeded traffic.

See README.md here. ``Kit`` (server.py) installs and runs it, ``seed`` (seed.py) sends
scenarios that succeed, call tools, stream, run in the background and fail; ``Http``
(``tests/plain_http.py``) reads its API. ``python -m tests.live.kit --help`` drives it by hand.
"""

from tests.live.kit.seed import SCENARIOS, Scenario, SeedError, seed
from tests.live.kit.server import LETTA_VERSION, Kit, KitError
from tests.plain_http import Http, HttpStatusError, Response

__all__ = [
    "LETTA_VERSION",
    "SCENARIOS",
    "Http",
    "HttpStatusError",
    "Kit",
    "KitError",
    "Response",
    "Scenario",
    "SeedError",
    "seed",
]
