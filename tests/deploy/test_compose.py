"""The Compose deployment and its image, checked as files.

`docker-compose.yml` must be valid against the Compose Specification's JSON Schema (vendored in
schemas/, see schemas/README.md) and keep the properties the operator guide (deploy/README.md) relies
on; `deploy/Dockerfile` must build a pinned, non-root, hash-locked image. No container is started.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from pipeline.app import TASK_QUEUES, WORK_QUEUES, QueueName, app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

#: Services that run once and exit; every other service is long-running.
ONE_SHOT = {"migrate"}
#: A worker's stop_grace_period must outlast the hard time limit of every task it can be running, by this
#: much: the time for Celery's shutdown and the process to exit.
GRACE_MARGIN_SECONDS = 30
REQUIRED_FORM = r"\$\{%s:\?[^}]+\}"  # ${NAME:?message}: Compose refuses to run while NAME is unset


def required(name: str) -> re.Pattern[str]:
    """The `${NAME:?message}` form, which has no default."""
    return re.compile(REQUIRED_FORM % re.escape(name))


# --- reading the files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def argv(command: Any) -> list[str]:
    """A command or healthcheck test as a list of words (Compose accepts a string or a list)."""
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, in map or list form, as a dict."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def option(words: list[str], short: str, long: str) -> str | None:
    """The value of `-X value`, `-Xvalue`, `--long value` or `--long=value`, or None."""
    for i, word in enumerate(words):
        if word in (short, long):
            return words[i + 1] if i + 1 < len(words) else ""
        if word.startswith(long + "="):
            return word.split("=", 1)[1]
        if word.startswith(short) and len(word) > len(short) and not word.startswith("--"):
            return word[len(short) :]
    return None


def is_celery(words: list[str], subcommand: str) -> bool:
    return bool(words) and Path(words[0]).name == "celery" and subcommand in words


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run this project's image (built from deploy/Dockerfile)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if is_celery(argv(svc.get("command")), "worker")}


def long_running(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if name not in ONE_SHOT}


def seconds(duration: str | int | float) -> float:
    """A Compose duration (`330s`, `1m30s`, `2h`, `1500ms`) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each entry of a service's `volumes`, short or long syntax."""
    found = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            found.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            parts = str(entry).split(":")
            found.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return found


def host_ip(port: Any) -> str | None:
    """The host address a `ports` entry binds, or None when it binds every interface."""
    if isinstance(port, dict):
        return port.get("host_ip")
    text = str(port)
    if text.startswith("["):  # [::1]:5555:5555
        return text[1 : text.index("]")]
    parts = text.split(":")
    return parts[0] if len(parts) == 3 else None


# --- the Compose file ---------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    errors = sorted(Draft7Validator(schema).iter_errors(compose), key=lambda e: [str(p) for p in e.absolute_path])
    report = "\n".join(f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in errors)
    assert not errors, f"docker-compose.yml does not match the Compose Specification:\n{report}"


def test_every_worker_names_its_queues_and_never_the_dead_letter_mirror(services: dict[str, dict[str, Any]]) -> None:
    found = workers(services)
    assert found, "no celery worker service"
    work = {q.value for q in WORK_QUEUES}
    consumed: set[str] = set()
    for name, svc in found.items():
        queues = option(argv(svc["command"]), "-Q", "--queues")
        assert queues, f"{name}: a worker must name its queues with -Q"
        names = set(queues.split(","))
        assert QueueName.DEAD_LETTER.value not in names, f"{name} consumes {QueueName.DEAD_LETTER.value}"
        assert names <= work, f"{name}: unknown queues {sorted(names - work)}"
        consumed |= names
    assert consumed == work, f"no worker consumes {sorted(work - consumed)}"


def hard_time_limit(queue: str) -> float:
    """The longest hard time limit (`task_time_limit`, or a task's annotation) of the tasks routed to `queue`."""
    annotations = app.conf.task_annotations or {}
    assert isinstance(annotations, dict), "task_annotations is expected as a dict by task name"
    limits = [
        (annotations.get(task.value) or {}).get("time_limit", app.conf.task_time_limit)
        for task, routed in TASK_QUEUES.items()
        if routed.value == queue
    ]
    assert limits and None not in limits, f"a task on {queue} has no hard time limit: no grace period outlasts it"
    return float(max(limits))


def test_worker_grace_periods_outlast_their_longest_task(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in workers(services).items():
        queues = (option(argv(svc["command"]), "-Q", "--queues") or "").split(",")
        minimum = max(hard_time_limit(queue) for queue in queues) + GRACE_MARGIN_SECONDS
        assert "stop_grace_period" in svc, f"{name}: no stop_grace_period (Compose's default is 10 s)"
        grace = seconds(svc["stop_grace_period"])
        assert grace >= minimum, f"{name}: stop_grace_period {grace:g} s, under its longest task + margin {minimum:g} s"
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM", f"{name}: SIGTERM is Celery's warm shutdown"


def test_worker_healthchecks_ping_their_own_node(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in workers(services).items():
        node = option(argv(svc["command"]), "-n", "--hostname")
        assert node and node.endswith("@%h"), f"{name}: -n must be <group>@%h, unique per container"
        test = argv(svc.get("healthcheck", {}).get("test"))
        assert test[:1] == ["CMD-SHELL"], f"{name}: $HOSTNAME in the healthcheck needs CMD-SHELL"
        expected = f"cin7xero health worker --name {node.removesuffix('%h')}$$HOSTNAME"
        assert expected in " ".join(test[1:]), f"{name}: healthcheck should run `{expected}`"


def test_published_ports_bind_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert host_ip(port) in ("127.0.0.1", "::1"), f"{name} publishes {port!r} beyond loopback"
    assert "127.0.0.1:5555:5555" in services["flower"]["ports"]


def test_flower_basic_auth_is_required_without_default(services: dict[str, dict[str, Any]]) -> None:
    flower = [svc for svc in services.values() if is_celery(argv(svc.get("command")), "flower")]
    assert len(flower) == 1, "one Flower service expected"
    env = environment(flower[0])
    assert required("FLOWER_BASIC_AUTH").fullmatch(env.get("FLOWER_BASIC_AUTH", "")), (
        "FLOWER_BASIC_AUTH must be ${FLOWER_BASIC_AUTH:?...}: no default, no Flower without auth"
    )
    basic_auth = option(argv(flower[0]["command"]), "--basic-auth", "--basic_auth")
    assert basic_auth is None or required("FLOWER_BASIC_AUTH").fullmatch(basic_auth)


def test_redis_persists_and_requires_a_password(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    words = argv(redis["command"])
    assert option(words, "--appendonly", "--appendonly") == "yes"
    assert option(words, "--appendfsync", "--appendfsync") == "everysec"
    assert required("REDIS_PASSWORD").fullmatch(option(words, "--requirepass", "--requirepass") or "")
    assert any(target == "/data" and source for source, target in mounts(redis)), "redis /data is not a volume"
    check = " ".join(argv(redis["healthcheck"]["test"]))
    assert "REDISCLI_AUTH" in environment(redis) or "-a " in check, "redis healthcheck must authenticate"
    assert "PONG" in check, "redis-cli exits 0 on NOAUTH: the healthcheck must look for PONG"


def test_app_urls_carry_the_passwords(services: dict[str, dict[str, Any]]) -> None:
    assert required("POSTGRES_PASSWORD").fullmatch(environment(services["postgres"])["POSTGRES_PASSWORD"])
    for name, svc in app_services(services).items():
        env = environment(svc)
        for key in ("CELERY_BROKER_URL", "REDIS_URL"):
            assert env.get(key, "").startswith("redis://:${REDIS_PASSWORD}@redis:6379/"), f"{name}: {key}"
        assert env.get("DATABASE_URL", "").startswith(
            "postgresql+psycopg://cin7xero:${POSTGRES_PASSWORD}@postgres:5432/"
        ), f"{name}: DATABASE_URL"
        assert svc.get("env_file") in (".env", [".env"]), f"{name}: secrets come from .env"


def test_long_running_services_restart_and_report_health(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in long_running(services).items():
        assert svc.get("restart") in ("unless-stopped", "always"), f"{name}: restart policy"
        check = svc.get("healthcheck") or {}
        assert argv(check.get("test")) and not check.get("disable"), f"{name}: no healthcheck"
        if name in app_services(services):
            assert seconds(check["interval"]) == 60 and seconds(check["timeout"]) == 15, f"{name}: 60s/15s"
    for name, svc in app_services(services).items():
        if name in ONE_SHOT or name in workers(services) or name == "webhooks":
            continue
        assert argv(svc["healthcheck"]["test"]) == ["CMD", "cin7xero", "health", "ready"], name
    webhooks = " ".join(argv(services["webhooks"]["healthcheck"]["test"]))
    assert "http://127.0.0.1:8780/readyz" in webhooks


def test_migrations_run_once_before_everything_else(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert argv(migrate["command"])[-2:] == ["db", "upgrade"]
    assert migrate.get("restart") == "no", "a one-shot must not restart"
    for name, svc in app_services(services).items():
        if name in ONE_SHOT:
            continue
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        condition = depends.get("migrate", {}).get("condition")
        assert condition == "service_completed_successfully", f"{name} does not wait for the migration"


def test_reports_volume_is_mounted_where_report_dir_points(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    named = set(compose.get("volumes") or {})
    for name, svc in app_services(services).items():
        report_dir = environment(svc).get("REPORT_DIR", "")
        assert report_dir.startswith("/"), f"{name}: REPORT_DIR must be absolute"
        sources = [source for source, target in mounts(svc) if target.rstrip("/") == report_dir.rstrip("/")]
        assert sources and sources[0] in named, f"{name}: no named volume at REPORT_DIR {report_dir}"
    assert dockerfile_env()["REPORT_DIR"] == environment(services["worker-cin7"])["REPORT_DIR"]


def test_app_containers_are_read_only_and_not_root(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in app_services(services).items():
        assert svc.get("read_only") is True, f"{name}: read_only root filesystem"
        assert "/tmp" in argv(svc.get("tmpfs")), f"{name}: /tmp tmpfs"
        user = str(svc.get("user", "")).split(":")[0]
        assert user and user not in ("root", "0"), f"{name}: runs as root"


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], check=False, capture_output=True).returncode != 0
    ):
        pytest.skip("the docker compose plugin is not installed (`docker compose version` fails)")
    # A project directory of its own: env_file .env must exist, and a developer's real .env stays unread.
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("", encoding="utf-8")
    dummy = {"REDIS_PASSWORD": "r" * 16, "POSTGRES_PASSWORD": "p" * 16, "FLOWER_BASIC_AUTH": "ops:secret"}
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    cmd = [docker, "compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"]
    ok = subprocess.run(cmd, check=False, env=base | dummy, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        cmd, check=False, env=base | dummy | {"REDIS_PASSWORD": ""}, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "REDIS_PASSWORD" in missing.stderr


# --- the Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def dockerfile(keyword: str) -> list[str]:
    return [rest for instruction, rest in dockerfile_instructions() if instruction == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in dockerfile("ENV"):
        words = shlex.split(rest)
        if words and "=" not in words[0]:  # legacy `ENV KEY value`
            env[words[0]] = " ".join(words[1:])
        else:
            env.update(word.split("=", 1) for word in words)
    return env


def test_dockerfile_base_image_is_pinned() -> None:
    images = [rest.split()[0] for rest in dockerfile("FROM")]
    assert images, "no FROM"
    for image in images:
        tag = image.partition("@")[0].rpartition(":")[2] if ":" in image else ""
        assert "@sha256:" in image or re.search(r"\d+\.\d+\.\d+", tag), f"{image}: pin a patch version"
        assert tag != "latest", f"{image}: latest is not a pin"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = dockerfile("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"


def test_dockerfile_has_a_healthcheck() -> None:
    checks = dockerfile("HEALTHCHECK")
    assert checks and not checks[-1].upper().startswith("NONE"), "no HEALTHCHECK"
    assert '["cin7xero", "health", "ready"]' in checks[-1]


def test_dockerfile_installs_only_from_the_hashed_lock() -> None:
    runs = [rest for rest in dockerfile("RUN") if "pip install" in rest]
    assert any("--require-hashes -r requirements.lock" in run for run in runs), "dependencies not from the lock"
    for run in runs:
        assert "--require-hashes" in run or "--no-deps" in run, f"unlocked install: {run}"
    copies = [rest.split()[0] for rest in dockerfile("COPY")]
    assert "requirements.lock" in copies


def test_dockerfile_report_dir_is_an_absolute_volume() -> None:
    report_dir = dockerfile_env().get("REPORT_DIR", "")
    assert report_dir.startswith("/"), f"REPORT_DIR={report_dir!r} must be absolute"
    volumes = [path for rest in dockerfile("VOLUME") for path in json.loads(rest)]
    assert report_dir in volumes, "REPORT_DIR is not declared a VOLUME"


def test_dockerfile_default_command_is_a_worker_with_named_queues() -> None:
    words = json.loads(dockerfile("CMD")[-1])
    assert is_celery(words, "worker")
    queues = option(words, "-Q", "--queues")
    assert queues and QueueName.DEAD_LETTER.value not in queues.split(",")
