"""Virtualenvs for heavy test-only servers (Letta, Phoenix), installed on first use into /tmp.

A venv lives in ``<tmp>/letta-otel-venv-<name>-<key>``, where ``key`` hashes everything
that decides its content: the requirements, the constraints file's text, the interpreter
(version, implementation, platform) and a version string of the code that uses it. An
unchanged venv is reused; when any input changes the key changes, so a fresh one is
installed beside it (``prune_siblings`` removes the stale ones nobody is using). A marker
file written after a successful install tells a complete venv from one interrupted half
way; an ``flock`` serialises installs across processes.

Stdlib only: the live kit's command line runs it with any Python >= 3.11.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MARKER = ".letta-otel-installed.json"
PREFIX = "letta-otel-venv-"


class InstallError(RuntimeError):
    """The venv could not be created; the message ends with the tail of pip's log."""


@dataclass(frozen=True)
class VenvSpec:
    name: str  # e.g. "letta-0.16.8"
    requirements: tuple[str, ...]
    constraints: Path | None = None
    # Bump when the code using the venv needs a different content than the inputs say.
    version: str = "1"
    python: str = field(default_factory=lambda: sys.executable)
    root: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


@dataclass(frozen=True)
class Venv:
    path: Path
    install_seconds: float  # 0.0 when an existing venv was reused

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name


def interpreter_id(python: str) -> str:
    """What of the interpreter decides which wheels pip picks."""
    probe = (
        "import platform, sys, sysconfig; "
        "print(sys.version.split()[0], sys.implementation.cache_tag, "
        "sysconfig.get_platform(), platform.libc_ver()[0] + platform.libc_ver()[1])"
    )
    return subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def inputs(spec: VenvSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "requirements": list(spec.requirements),
        "constraints": spec.constraints.read_text() if spec.constraints else None,
        "python": interpreter_id(spec.python),
        "version": spec.version,
    }


def venv_dir(spec: VenvSpec, described: dict[str, object] | None = None) -> Path:
    described = described if described is not None else inputs(spec)
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:12]
    return spec.root / f"{PREFIX}{spec.name}-{digest}"


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """``flock`` on ``path`` for at most ``timeout`` s of waiting (TimeoutError after)."""
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked for {timeout:.0f}s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_complete(path: Path, described: dict[str, object]) -> bool:
    try:
        recorded = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == described and (path / "bin" / "python").exists())


def ensure(spec: VenvSpec, *, timeout: float = 1800, log: Path | None = None) -> Venv:
    """The venv for ``spec``, installing it first unless an identical one exists."""
    described = inputs(spec)
    path = venv_dir(spec, described)
    if is_complete(path, described):
        return Venv(path, 0.0)
    spec.root.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock"), timeout):
        if is_complete(path, described):  # installed by whoever held the lock
            return Venv(path, 0.0)
        started = time.monotonic()
        shutil.rmtree(path, ignore_errors=True)
        log = log or path.with_name(path.name + ".install.log")
        python = path / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        if spec.constraints is not None:
            pip += ["-c", str(spec.constraints)]
        # pip's cache goes under the temp dir too: nothing outside it is written.
        env = {**os.environ}
        env.setdefault("PIP_CACHE_DIR", str(spec.root / "letta-otel-pip-cache"))
        with log.open("w") as out:
            for argv in ([spec.python, "-m", "venv", str(path)], [*pip, *spec.requirements]):
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                remaining = max(60.0, timeout - (time.monotonic() - started))
                try:
                    proc = subprocess.run(
                        argv,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        # Readable by all: the kit runs postgres from it as another user.
                        umask=0o022,
                        timeout=remaining,
                        check=False,
                    )
                    failed = proc.returncode != 0
                except subprocess.TimeoutExpired:
                    failed = True
                if failed:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    shutil.rmtree(path, ignore_errors=True)
                    raise InstallError(f"{' '.join(argv)} failed (log {log}):\n{tail}")
        (path / MARKER).write_text(json.dumps(described, sort_keys=True, indent=1) + "\n")
        return Venv(path, time.monotonic() - started)


def prune_siblings(spec: VenvSpec, keep: Path) -> list[Path]:
    """Remove other venvs of ``spec.name`` whose install lock is free; returns them.

    A venv another session is installing holds its lock; one a server still runs from is
    not protected, so only call this when no such server can be running (the live kit
    calls it after stopping its own).
    """
    removed: list[Path] = []
    for other in spec.root.glob(f"{PREFIX}{spec.name}-*"):
        if other == keep or not other.is_dir():
            continue
        lock = other.with_name(other.name + ".lock")
        try:
            with file_lock(lock, 0):
                shutil.rmtree(other, ignore_errors=True)
                for leftover in (lock, other.with_name(other.name + ".install.log")):
                    leftover.unlink(missing_ok=True)
        except TimeoutError:
            continue
        removed.append(other)
    return removed
