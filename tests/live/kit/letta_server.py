"""Run ``letta server`` 0.16.8 from the kit's venv, optionally with ``GET /v1/steps/`` fixed.

In every Letta release from 0.12.0 to 0.16.8 ``GET /v1/steps/`` answers HTTP 400 to any
request: the router passes ``order=(order == "asc")``, a bool, to
``StepManager.list_steps_async(order: Optional[str])``, which ``@enforce_types`` guards.
letta-otel falls back to ``/v1/runs/`` on such a server, and the live tests check that
against the stock server; they check the ``/v1/steps/`` cursor against a second instance
started with ``--fix-list-steps``. That flag serves the router module from its own source
with that one argument changed to ``order=order`` (the intended semantics), through an
import hook installed before Letta is imported: the installed venv is never modified, so
both instances run from it side by side.

    python letta_server.py --port 8283 [--fix-list-steps] [--label TEXT]
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROUTER = "letta.server.rest_api.routers.v1.steps"
BUGGY = 'order=(order == "asc"),'
FIXED = "order=order,  # fixed by tests/live/kit/letta_server.py"


class FixedStepsRouter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``ROUTER`` from its installed source with the one-line fix applied."""

    def __init__(self) -> None:
        # find_spec of the top-level package alone imports nothing of Letta.
        letta = importlib.util.find_spec("letta")
        if letta is None or letta.origin is None:
            raise SystemExit("letta is not installed in this interpreter")
        self.origin = Path(letta.origin).parent.joinpath(*ROUTER.split(".")[1:]).with_suffix(".py")
        source = self.origin.read_text()
        if source.count(BUGGY) != 1:
            raise SystemExit(f"{self.origin}: expected {BUGGY!r} once; is this letta 0.16.8?")
        self.source = source.replace(BUGGY, FIXED)

    def find_spec(
        self,
        fullname: str,
        path: object = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != ROUTER:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.origin))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = str(self.origin)
        exec(compile(self.source, str(self.origin), "exec"), module.__dict__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fix-list-steps", action="store_true")
    # Only so that the kit can recognise its own processes by their command line.
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the kit's Letta binds to loopback only")
    if args.fix_list_steps:
        sys.meta_path.insert(0, FixedStepsRouter())
    # Imported only now: the router must not be imported before the hook is in place.
    app = importlib.import_module("letta.main").app
    app(["server", "--host", args.host, "--port", str(args.port)], prog_name="letta")


if __name__ == "__main__":
    main()
