"""tests/cached_venv.py: which inputs key a venv, when one is reused (nothing installed here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.cached_venv import MARKER, VenvSpec, ensure, file_lock, inputs, prune_siblings, venv_dir


def spec(tmp_path: Path, **changes: object) -> VenvSpec:
    constraints = tmp_path / "constraints.txt"
    if not constraints.exists():
        constraints.write_text("a==1\n")
    fields: dict[str, object] = {
        "name": "tool-1.0",
        "requirements": ("tool==1.0",),
        "constraints": constraints,
        "version": "1",
        "python": sys.executable,
        "root": tmp_path / "root",
        **changes,
    }
    return VenvSpec(**fields)  # type: ignore[arg-type]


def fake_install(path: Path, described: dict[str, object]) -> None:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / MARKER).write_text(json.dumps(described))


def test_the_key_follows_every_input(tmp_path: Path) -> None:
    base = spec(tmp_path)
    same = venv_dir(base)
    assert same == venv_dir(spec(tmp_path))
    assert same.parent == tmp_path / "root"
    assert same.name.startswith("letta-otel-venv-tool-1.0-")
    others = {
        venv_dir(spec(tmp_path, requirements=("tool==1.1",))),
        venv_dir(spec(tmp_path, version="2")),
        venv_dir(spec(tmp_path, constraints=None)),
    }
    assert same not in others and len(others) == 3
    (tmp_path / "constraints.txt").write_text("a==2\n")
    assert venv_dir(base) != same
    assert inputs(base)["python"] == inputs(spec(tmp_path))["python"]
    assert str(sys.version_info.major) in str(inputs(base)["python"])


def test_a_complete_venv_is_reused_without_installing(tmp_path: Path) -> None:
    wanted = spec(tmp_path)
    path = venv_dir(wanted)
    fake_install(path, inputs(wanted))
    venv = ensure(wanted)
    assert (venv.path, venv.install_seconds) == (path, 0.0)
    assert venv.python == path / "bin" / "python"


def test_prune_removes_stale_siblings_but_not_a_locked_one(tmp_path: Path) -> None:
    wanted = spec(tmp_path)
    keep = venv_dir(wanted)
    stale = [venv_dir(spec(tmp_path, version=v)) for v in ("0", "00")]
    for path in [keep, *stale]:
        fake_install(path, {})
    unrelated = tmp_path / "root" / "letta-otel-venv-other-1-abc"
    fake_install(unrelated, {})
    busy = stale[1]
    with file_lock(busy.with_name(busy.name + ".lock"), 1):
        removed = prune_siblings(wanted, keep)
    assert removed == [stale[0]]
    assert keep.exists() and busy.exists() and unrelated.exists()
    assert not stale[0].exists()
