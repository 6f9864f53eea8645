"""Deployment files, checked by parsing them (no Docker engine or cluster here).

Dockerfile, ``deploy/docker-compose.yml``, ``deploy/kubernetes/letta-otel-sidecar.yaml`` and
``deploy/systemd/letta-otel.{service,env}``: every ``LETTA_*``/``OTEL_*``/``HONEYCOMB_*``
variable they set is a real setting, their values load, the health port is the default one,
state sits on a volume, the command is ``letta-otel run`` and secrets come from the
environment or a Secret. The systemd unit also goes through ``systemd-analyze verify``
(skipped where systemd is not installed).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from letta_otel.config import ENV_VARS, Settings, load_settings
from tests.system_tools import requires_tool

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "deploy" / "docker-compose.yml"
K8S = REPO / "deploy" / "kubernetes" / "letta-otel-sidecar.yaml"
UNIT = REPO / "deploy" / "systemd" / "letta-otel.service"
UNIT_ENV = REPO / "deploy" / "systemd" / "letta-otel.env"

STATE_DIR = "/var/lib/letta-otel"
OUR_VARS = re.compile(r"^(LETTA_|OTEL_|HONEYCOMB_)")
SECRETS = {"LETTA_API_KEY", "HONEYCOMB_API_KEY"}


def health_port() -> int:
    """The default port of LETTA_OTEL_HEALTH_ADDR."""
    default = str(Settings.model_fields["health_addr"].default)
    return int(default.rsplit(":", 1)[1])


def known(name: str) -> bool:
    return name in ENV_VARS


def check_env(env: dict[str, str], tmp_path: Path) -> None:
    """Every variable is a setting, and the values (secrets aside) load."""
    ours = {k: v for k, v in env.items() if OUR_VARS.match(k)}
    assert ours, "no settings found"
    unknown = sorted(name for name in ours if not known(name))
    assert not unknown, f"not letta-otel settings: {unknown}"
    values = {k: v for k, v in ours.items() if k in ENV_VARS and k not in SECRETS}
    if "LETTA_OTEL_STATE_PATH" in values:  # its directory exists only in the deployment
        assert values["LETTA_OTEL_STATE_PATH"].startswith(STATE_DIR + "/")
        values["LETTA_OTEL_STATE_PATH"] = str(tmp_path / "state.db")
    load_settings(env=values)  # raises ConfigError naming what is wrong


# ------------------------------------------------------------------------------ Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text()
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    out = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def docker_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for token in shlex.split(rest):
                key, sep, value = token.partition("=")
                assert sep, f"use ENV KEY=value, got {token!r}"
                env[key] = value
    return env


def exec_form(rest: str) -> list[str]:
    value = yaml.safe_load(rest)  # a JSON array is valid YAML
    assert isinstance(value, list), f"use the exec (JSON array) form: {rest}"
    return [str(v) for v in value]


def test_dockerfile_is_slim_non_root_with_state_volume(tmp_path: Path) -> None:
    stage = final_stage()
    keywords = dict(stage)
    assert keywords["FROM"] == "python:3.11-slim"
    user = keywords["USER"].split(":")[0]
    assert user not in {"root", "0", ""}
    assert STATE_DIR in exec_form(keywords["VOLUME"])
    env = docker_env(stage)
    assert env["LETTA_OTEL_STATE_PATH"] == f"{STATE_DIR}/letta-otel.db"
    check_env(env, tmp_path)
    entrypoint, cmd = exec_form(keywords["ENTRYPOINT"]), exec_form(keywords["CMD"])
    assert entrypoint + cmd == ["letta-otel", "run"]
    assert keywords["STOPSIGNAL"] == "SIGTERM"
    assert str(health_port()) in keywords["EXPOSE"].split()


def test_dockerfile_healthcheck_hits_healthz_with_python() -> None:
    healthcheck = dict(final_stage())["HEALTHCHECK"]
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]  # no curl in the slim image
    assert f"http://127.0.0.1:{health_port()}/healthz" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    copied = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    build_copies = [
        rest for k, rest in dockerfile_instructions() if k == "COPY" and "--from" not in rest
    ]
    for rest in build_copies:
        for source in rest.split()[:-1]:
            assert source.rstrip("/") in copied, source


# ------------------------------------------------------------------------- docker compose


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    # ${VAR:-default} -> default (what runs when the shell does not set VAR)
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def test_compose_runs_letta_otel_with_jaeger(tmp_path: Path) -> None:
    services = compose()["services"]
    jaeger, bridge = services["jaeger"], services["letta-otel"]
    assert "jaeger" in jaeger["image"] and ":" in jaeger["image"]  # pinned tag
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    for mapping in jaeger.get("ports", []):
        assert str(mapping).startswith("127.0.0.1:"), "publish the UI on loopback only"
    assert bridge["build"]["dockerfile"] == "Dockerfile"
    assert (COMPOSE.parent / bridge["build"]["context"] / "Dockerfile").resolve() == DOCKERFILE
    entrypoint = exec_form(dict(final_stage())["ENTRYPOINT"])
    assert entrypoint + bridge["command"] == ["letta-otel", "run"]
    env = compose_env(bridge)
    assert env["LETTA_OTEL_BACKEND"] == "jaeger"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert "jaeger" in bridge["depends_on"]
    # Secrets are passed through from the shell, never written in the file.
    assert compose_env(bridge)["LETTA_API_KEY"] == ""
    check_env(env, tmp_path)
    volume, target = bridge["volumes"][0].split(":")[:2]
    assert target == STATE_DIR and volume in compose()["volumes"]


# ------------------------------------------------------------------------------ Kubernetes


def k8s_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(K8S.read_text()) if d]


def k8s(kind: str) -> dict[str, Any]:
    (document,) = [d for d in k8s_documents() if d["kind"] == kind]
    return document


def sidecar() -> dict[str, Any]:
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "letta-otel"]
    return container


def test_k8s_sidecar_env_and_api_key_from_a_secret(tmp_path: Path) -> None:
    container = sidecar()
    secret = k8s("Secret")
    plain: dict[str, str] = {}
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            assert item["name"] in SECRETS
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"]
        else:
            assert item["name"] not in SECRETS, "secrets must come from a Secret"
            plain[item["name"]] = str(item["value"])
    assert "LETTA_API_KEY" in {i["name"] for i in container["env"] if "valueFrom" in i}
    check_env(plain, tmp_path)
    assert container["args"] == ["run"]
    # The kubelet probes the pod IP: the health server must not stay on loopback.
    host, port = plain["LETTA_OTEL_HEALTH_ADDR"].rsplit(":", 1)
    assert host == "0.0.0.0" and int(port) == health_port()


def test_k8s_probes_hit_healthz_and_readyz_on_the_health_port() -> None:
    container = sidecar()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def target(probe: str) -> tuple[str, int]:
        get = container[probe]["httpGet"]
        port = get["port"]
        return get["path"], ports[port] if isinstance(port, str) else port

    assert target("livenessProbe") == ("/healthz", health_port())
    assert target("readinessProbe") == ("/readyz", health_port())


def test_k8s_state_on_a_volume_and_hardened() -> None:
    deployment = k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = sidecar()
    env = {i["name"]: i.get("value") for i in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert STATE_DIR in mounts
    assert env["LETTA_OTEL_STATE_PATH"].startswith(STATE_DIR + "/")
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[STATE_DIR])
    assert "emptyDir" in volume or "persistentVolumeClaim" in volume
    assert deployment["spec"]["replicas"] == 1  # one letta-otel per Letta server
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    header = K8S.read_text().split("---", 1)[0]  # the emptyDir/PVC trade-off, in prose
    assert "emptyDir" in header and "PersistentVolumeClaim" in header


# --------------------------------------------------------------------------------- systemd


def unit_entries() -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; systemd allows repeated keys."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        entries.append((section, key.strip(), value.strip()))
    return entries


def env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in UNIT_ENV.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and "#" not in value, f"systemd would keep a trailing comment: {line!r}"
        values[key] = value
    return values


def commented_env_names() -> set[str]:
    return set(re.findall(r"^# ?([A-Z][A-Z0-9_]+)=", UNIT_ENV.read_text(), flags=re.M))


def test_systemd_unit_runs_letta_otel_with_env_file_and_hardening(tmp_path: Path) -> None:
    entries = unit_entries()
    service = {k: v for s, k, v in entries if s == "Service"}
    program, *args = service["ExecStart"].split()
    assert (Path(program).name, args) == ("letta-otel", ["run"])
    assert Path(program).is_absolute()
    assert service["EnvironmentFile"] == "/etc/letta-otel/letta-otel.env"
    assert service["StateDirectory"] == "letta-otel"
    assert service["RestartPreventExitStatus"] == "2"
    for key, expected in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DynamicUser": "yes",
    }.items():
        assert service[key] == expected, key
    env = dict(
        value.split("=", 1) for s, key, value in entries if s == "Service" and key == "Environment"
    )
    assert env["LETTA_OTEL_STATE_PATH"].startswith(STATE_DIR + "/")
    check_env({**env, **env_file()}, tmp_path)
    unknown = sorted(name for name in commented_env_names() if not known(name))
    assert not unknown, f"the env file suggests unknown settings: {unknown}"


@requires_tool("systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    stub = tmp_path / "letta-otel"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = tmp_path / "letta-otel.service"
    unit.write_text(UNIT.read_text().replace("/opt/letta-otel/bin/letta-otel", str(stub)))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == proc.stderr.strip() == "", proc.stderr


@pytest.mark.parametrize("path", [DOCKERFILE, COMPOSE, K8S, UNIT, UNIT_ENV])
def test_no_real_looking_secrets(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"sk-let-[A-Za-z0-9]{8,}", text)
    assert not re.search(r"(?i)(api_key|apikey)\s*[:=]\s*['\"]?[A-Za-z0-9]{16,}", text)


# ------------------------------------------------------------- Collector gateway (fan-in)

GATEWAY = REPO / "deploy" / "otel-collector-gateway.yaml"


def _gateway() -> dict[str, Any]:
    config = yaml.safe_load(GATEWAY.read_text())
    assert isinstance(config, dict)
    return config


def test_gateway_pipeline_wiring() -> None:
    config = _gateway()
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"] == ["memory_limiter", "redaction", "tail_sampling", "batch"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in config[kind], f"{kind} {name} is used but not defined"
    for name in config["service"]["extensions"]:
        assert name in config["extensions"]


def test_gateway_retry_queue_on_the_exporter() -> None:
    (exporter,) = _gateway()["exporters"].values()
    assert exporter["sending_queue"]["enabled"] is True
    assert exporter["retry_on_failure"]["enabled"] is True


def test_gateway_tail_sampling_keeps_every_failure_and_samples_the_rest() -> None:
    policies = _gateway()["processors"]["tail_sampling"]["policies"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for policy in policies:
        by_type.setdefault(policy["type"], []).append(policy)
    assert by_type["status_code"][0]["status_code"]["status_codes"] == ["ERROR"]
    kept = {
        (p["string_attribute"]["key"], tuple(p["string_attribute"]["values"]))
        for p in by_type["string_attribute"]
    }
    assert ("letta.step.status", ("failed",)) in kept
    assert 0 < by_type["probabilistic"][0]["probabilistic"]["sampling_percentage"] < 100
    # A policy list is OR-ed: an error trace is kept whatever the probabilistic draw.
    assert not any(p["type"] == "and" for p in policies)


def test_gateway_redaction_backstop_masks_keys_and_keeps_the_rest() -> None:
    """The Collector-side backstop SECURITY.md recommends: every blocked pattern compiles
    and masks the key formats letta-otel's own redaction knows, not ordinary values."""
    redaction = _gateway()["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True
    patterns = [re.compile(p) for p in redaction["blocked_values"]]
    secrets = [
        "sk-proj-" + "a" * 40,
        "sk-ant-" + "b" * 40,
        "sk-let-" + "c" * 40,
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "ghp_" + "d" * 36,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_part-1",
    ]
    for secret in secrets:
        assert any(p.search(f"key: {secret}") for p in patterns), secret
    ordinary = ["step-7703d0ed-f6b9-4fc8-add2-e7497cd9b052", "fake-model", "gpt-4o-mini"]
    for value in ordinary:
        assert not any(p.search(value) for p in patterns), value
