"""The Kubernetes manifests in deploy/k8s: valid against the published API schemas, and production-shaped.

Every YAML document there is validated strictly (unknown fields fail) with `kubernetes_validate`, against
the oldest Kubernetes the manifests claim and the newest the validator knows. The rest checks what the
operator relies on: non-root read-only containers, pinned images, sized resources, probes, one beat, the
maintenance queue apart, Flower internal, TLS on the Ingress, PDBs, grace periods longer than the
longest task, default-deny NetworkPolicies, and secrets referenced rather than written down.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from celery import Celery
from pydantic import SecretStr
from redbeat.schedulers import RedBeatConfig

from pipeline.app import RECONCILE_TIME_LIMIT, TASK_TIME_LIMIT, WORK_QUEUES, QueueName, celery_config
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
KUSTOMIZATION = "kustomization.yaml"
NAMESPACE = "cin7xero"
APP_NAME = "cin7xero"
SECRET_NAME = "cin7xero-secrets"
SERVICE_ACCOUNT = "cin7xero"
IMAGE_REPOSITORY = "ghcr.io/cin7xero/cin7xero"
RUN_AS_USER = 10001
REPORT_DIR = "/var/lib/cin7xero/reports"

# The oldest Kubernetes the manifests are meant for, and the newest schema the installed validator has.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

# SIGTERM starts Celery's warm shutdown, which waits for running tasks: a worker's grace period must outlast
# the hard time limit (pipeline/app.py) of the longest task it may be running, plus a margin. The worker of
# the maintenance queue also runs the reconcile, the longest.
GRACE_MARGIN = 30
LONG_QUEUES = {QueueName.MAINTENANCE.value, QueueName.RECONCILE.value}

# benchmarks/FINDINGS.md: peak RSS per worker process (VmHWM of any worker main process, pool child or beat).
PEAK_WORKER_RSS_MIB = 140
FINDINGS = ROOT / "benchmarks" / "FINDINGS.md"

# Exec probes start a Python process that imports the app and asks the broker: give them time.
EXEC_PROBE_MIN_TIMEOUT = 15
EXEC_PROBE_MIN_PERIOD = 60

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
CLUSTER_SCOPED_KINDS = {"Namespace"}

# Identifiers that travel with their credential and so live in the Secret, although not typed SecretStr.
CREDENTIAL_IDENTIFIERS = {"CIN7_ACCOUNT_ID", "XERO_CLIENT_ID"}
# Keys of the Secret that are not pipeline settings.
NON_SETTING_SECRET_KEYS = {"FLOWER_BASIC_AUTH"}
# What the Secret must hold for the pipeline to run (README.md documents them, the pods read them).
REQUIRED_SECRET_KEYS = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "CIN7_ACCOUNT_ID",
    "CIN7_APPLICATION_KEY",
    "XERO_CLIENT_ID",
    "XERO_CLIENT_SECRET",
    "TOKEN_ENCRYPTION_KEY",
    "CIN7_WEBHOOK_TOKEN",
    "FLOWER_BASIC_AUTH",
}


# --- loading -----------------------------------------------------------------------------------------------
def _manifest_paths() -> list[Path]:
    return sorted(p for p in K8S_DIR.rglob("*") if p.suffix in {".yaml", ".yml"} and p.name != KUSTOMIZATION)


def _load_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in _manifest_paths():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                documents.append((path.relative_to(K8S_DIR).as_posix(), doc))
    return documents


DOCUMENTS = _load_documents()


def _ident(file: str, doc: dict[str, Any]) -> str:
    return f"{file}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _of_kind(*kinds: str) -> list[tuple[str, dict[str, Any]]]:
    return [(file, doc) for file, doc in DOCUMENTS if doc.get("kind") in kinds]


def _pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return _pod_template(doc)["spec"]


def _containers(doc: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = _pod_spec(doc)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def _workload_containers(
    kinds: set[str] = WORKLOAD_KINDS, *, init: bool = True
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(file, doc, c) for file, doc in _of_kind(*kinds) for c in _containers(doc, init=init)]


def _container_ids(items: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[str]:
    return [f"{_ident(file, doc)}:{c['name']}" for file, doc, c in items]


WORKLOAD_CONTAINERS = _workload_containers()
# Init containers run to completion, so only the main containers of long-running workloads need probes.
LONG_RUNNING_CONTAINERS = _workload_containers(LONG_RUNNING_KINDS, init=False)


def _component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def _one(kind: str, component: str) -> dict[str, Any]:
    found = [doc for _, doc in _of_kind(kind) if _component(doc) == component]
    assert len(found) == 1, f"expected one {kind} of component {component}, found {len(found)}"
    return found[0]


def _option(command: list[str], *names: str) -> str | None:
    """The value of a command-line option given as `-Q x`, `--queues x` or `--queues=x`."""
    for i, arg in enumerate(command):
        for name in names:
            if arg == name and i + 1 < len(command):
                return command[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _is_celery(command: list[str], role: str) -> bool:
    return bool(command) and command[0] == "celery" and role in command


def _celery_workers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(f, d, c) for f, d, c in LONG_RUNNING_CONTAINERS if _is_celery(c.get("command", []), "worker")]


def _queues(container: dict[str, Any]) -> set[str]:
    value = _option(container["command"], "-Q", "--queues")
    return set() if value is None else {q.strip() for q in value.split(",") if q.strip()}


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels", {})
    assert not selector.get("matchExpressions"), "these tests only read matchLabels"
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


_QUANTITY_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "m": 10**-3,
    "": 1,
}


def _quantity(value: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|k|M|G|m|)", str(value))
    assert match, f"unreadable quantity {value!r}"
    return float(match.group(1)) * _QUANTITY_UNITS[match.group(2)]


def _secret_settings() -> set[str]:
    """Aliases of settings that are secret: typed SecretStr, or kept out of reprs (URLs with passwords)."""
    return {
        str(field.alias)
        for field in Settings.model_fields.values()
        if field.annotation is SecretStr or field.repr is False
    } | CREDENTIAL_IDENTIFIERS


def _setting_aliases() -> set[str]:
    return {str(field.alias) for field in Settings.model_fields.values()}


def _configmap_data() -> dict[str, str]:
    maps = _of_kind("ConfigMap")
    assert len(maps) == 1, "one ConfigMap for the non-secret settings"
    return {str(k): str(v) for k, v in maps[0][1].get("data", {}).items()}


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# --- 1. schema validation ------------------------------------------------------------------------------------
def test_the_manifests_are_there() -> None:
    kinds = {doc.get("kind") for _, doc in DOCUMENTS}
    expected = {"Namespace", "ServiceAccount", "ConfigMap", "Job", "Deployment", "Service", "Ingress"}
    assert expected | {"PodDisruptionBudget", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("file", "doc"), DOCUMENTS, ids=[_ident(f, d) for f, d in DOCUMENTS])
def test_document_validates_against_the_kubernetes_schema(file: str, doc: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{_ident(file, doc)} is not valid Kubernetes {exc.version}: {path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{_ident(file, doc)}: {exc.message}")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / KUSTOMIZATION).read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert kustomization.get("namespace") == NAMESPACE
    listed = kustomization.get("resources", [])
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    on_disk = {p.relative_to(K8S_DIR).as_posix() for p in _manifest_paths()}
    assert set(listed) == on_disk, f"missing: {sorted(on_disk - set(listed))}, unknown: {sorted(set(listed) - on_disk)}"


def test_kustomize_builds_every_object() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR)], check=False, capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d is not None]
    assert sorted(_ident("", d) for d in objects) == sorted(_ident("", d) for _, d in DOCUMENTS)


# --- names, labels, namespace ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("file", "doc"), DOCUMENTS, ids=[_ident(f, d) for f, d in DOCUMENTS])
def test_document_is_namespaced_and_labelled(file: str, doc: dict[str, Any]) -> None:
    metadata = doc["metadata"]
    labels = metadata.get("labels", {})
    assert labels.get("app.kubernetes.io/name") == APP_NAME, _ident(file, doc)
    if doc["kind"] in CLUSTER_SCOPED_KINDS:
        assert metadata["name"] == NAMESPACE
        return
    assert metadata.get("namespace") == NAMESPACE, _ident(file, doc)
    if doc["kind"] in WORKLOAD_KINDS | {"Service", "PodDisruptionBudget", "Ingress"}:
        assert _component(doc), f"{_ident(file, doc)} has no app.kubernetes.io/component"
    if doc["kind"] in WORKLOAD_KINDS:
        template_labels = _pod_template(doc)["metadata"]["labels"]
        assert template_labels.get("app.kubernetes.io/name") == APP_NAME
        assert template_labels.get("app.kubernetes.io/component") == _component(doc)
        if "selector" in doc["spec"]:
            assert _selector_matches(doc["spec"]["selector"], template_labels)


# --- 2. containers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("file", "doc", "container"), WORKLOAD_CONTAINERS, ids=_container_ids(WORKLOAD_CONTAINERS))
def test_container_runs_non_root_on_a_read_only_filesystem(
    file: str, doc: dict[str, Any], container: dict[str, Any]
) -> None:
    pod = _pod_spec(doc).get("securityContext", {})
    own = container.get("securityContext", {})

    def effective(key: str) -> Any:
        return own.get(key, pod.get(key))

    assert effective("runAsNonRoot") is True
    assert effective("runAsUser") == RUN_AS_USER
    assert own.get("readOnlyRootFilesystem") is True
    assert own.get("allowPrivilegeEscalation") is False
    assert "ALL" in own.get("capabilities", {}).get("drop", [])
    assert not own.get("capabilities", {}).get("add")
    assert own.get("privileged") is not True
    assert (effective("seccompProfile") or {}).get("type") == "RuntimeDefault"


@pytest.mark.parametrize(("file", "doc", "container"), WORKLOAD_CONTAINERS, ids=_container_ids(WORKLOAD_CONTAINERS))
def test_container_writes_only_to_empty_dirs_for_tmp_and_reports(
    file: str, doc: dict[str, Any], container: dict[str, Any]
) -> None:
    volumes = {v["name"]: v for v in _pod_spec(doc).get("volumes", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for path in ("/tmp", REPORT_DIR):
        assert path in mounts, f"{container['name']} does not mount {path}"
        volume = volumes[mounts[path]["name"]]
        assert "emptyDir" in volume, f"{path} is not an emptyDir"
        assert not mounts[path].get("readOnly")


@pytest.mark.parametrize(("file", "doc", "container"), WORKLOAD_CONTAINERS, ids=_container_ids(WORKLOAD_CONTAINERS))
def test_container_has_resource_requests_and_limits(file: str, doc: dict[str, Any], container: dict[str, Any]) -> None:
    resources = container.get("resources", {})
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        assert request is not None, f"no {resource} request"
        assert limit is not None, f"no {resource} limit"
        assert _quantity(limit) >= _quantity(request), f"{resource} limit below its request"


@pytest.mark.parametrize(("file", "doc", "container"), WORKLOAD_CONTAINERS, ids=_container_ids(WORKLOAD_CONTAINERS))
def test_container_image_is_pinned(file: str, doc: dict[str, Any], container: dict[str, Any]) -> None:
    image = container["image"]
    repository, _, tag = image.rpartition(":")
    assert "/" not in tag and repository, f"{image} has no tag"
    assert tag and tag != "latest", f"{image} is not pinned"
    assert repository == IMAGE_REPOSITORY, "one image for every role"
    assert container.get("imagePullPolicy") == "IfNotPresent"


def test_every_role_runs_the_same_image_tag() -> None:
    images = {c["image"] for _, _, c in WORKLOAD_CONTAINERS}
    assert len(images) == 1, f"roles run different images: {sorted(images)}"


@pytest.mark.parametrize(
    ("file", "doc", "container"), LONG_RUNNING_CONTAINERS, ids=_container_ids(LONG_RUNNING_CONTAINERS)
)
def test_long_running_container_has_liveness_and_readiness_probes(
    file: str, doc: dict[str, Any], container: dict[str, Any]
) -> None:
    for name in ("livenessProbe", "readinessProbe"):
        probe = container.get(name)
        assert probe, f"{container['name']} has no {name}"
        if "exec" in probe:
            assert probe.get("timeoutSeconds", 1) >= EXEC_PROBE_MIN_TIMEOUT, f"{name}: exec probe timeout too short"
            assert probe.get("periodSeconds", 10) >= EXEC_PROBE_MIN_PERIOD, f"{name}: exec probe runs too often"


# --- secrets and configuration ------------------------------------------------------------------------------------
def test_no_secret_is_written_into_the_manifests() -> None:
    for file, doc in _of_kind("Secret"):
        assert not doc.get("data") and not doc.get("stringData"), f"{_ident(file, doc)} inlines secret values"
    secret = _secret_settings() | NON_SETTING_SECRET_KEYS
    for file, _, container in WORKLOAD_CONTAINERS:
        for env in container.get("env", []):
            assert not (env["name"] in secret and "value" in env), f"{file}: {env['name']} is given inline"


def test_configmap_holds_only_known_non_secret_settings() -> None:
    data = _configmap_data()
    unknown = set(data) - _setting_aliases()
    assert not unknown, f"not settings (pipeline/settings.py ignores unknown names): {sorted(unknown)}"
    leaked = set(data) & _secret_settings()
    assert not leaked, f"secret settings in the ConfigMap: {sorted(leaked)}"
    assert data.get("REPORT_DIR") == REPORT_DIR


def test_secrets_are_referenced_from_the_one_secret() -> None:
    referenced: set[str] = set()
    for file, _, container in WORKLOAD_CONTAINERS:
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"]["name"] == SECRET_NAME, file
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == SECRET_NAME, file
                referenced.add(ref["key"])
    readme_keys = _readme_secret_keys()
    assert referenced <= readme_keys, f"referenced but not documented: {sorted(referenced - readme_keys)}"


def _readme_secret_keys() -> set[str]:
    text = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    match = re.search(r"kubectl[^\n]*create secret generic " + SECRET_NAME + r"(?:[^\n]*\\\n)*[^\n]*", text)
    assert match, "README.md shows no `kubectl create secret generic` for the Secret"
    command = shlex.split(match.group(0).replace("\\\n", " "))
    return {arg.split("=", 2)[1] for arg in command if arg.startswith("--from-literal=")}


def test_readme_documents_every_secret_key() -> None:
    keys = _readme_secret_keys()
    assert keys >= REQUIRED_SECRET_KEYS, f"missing: {sorted(REQUIRED_SECRET_KEYS - keys)}"
    unknown = keys - _setting_aliases() - NON_SETTING_SECRET_KEYS
    assert not unknown, f"not settings: {sorted(unknown)}"
    not_secret = keys - _secret_settings() - NON_SETTING_SECRET_KEYS
    assert not not_secret, f"belong in the ConfigMap: {sorted(not_secret)}"


def test_pods_run_as_the_service_account_without_a_token() -> None:
    accounts = _of_kind("ServiceAccount")
    assert [doc["metadata"]["name"] for _, doc in accounts] == [SERVICE_ACCOUNT]
    assert accounts[0][1].get("automountServiceAccountToken") is False
    for file, doc in _of_kind(*WORKLOAD_KINDS):
        spec = _pod_spec(doc)
        assert spec.get("serviceAccountName") == SERVICE_ACCOUNT, _ident(file, doc)
        assert spec.get("automountServiceAccountToken") is False, _ident(file, doc)


# --- roles ----------------------------------------------------------------------------------------------------------
def test_migrations_job_upgrades_the_ledger() -> None:
    job = _one("Job", "migrations")
    assert [c["command"] for c in _containers(job)] == [["cin7xero", "db", "upgrade"]]
    assert _pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}


def test_beat_is_exactly_one_replica_replaced_not_rolled() -> None:
    beats = [d for _, d in _of_kind("Deployment") if any(_is_celery(c["command"], "beat") for c in _containers(d))]
    assert len(beats) == 1, "exactly one beat Deployment"
    assert beats[0]["spec"].get("replicas") == 1
    assert beats[0]["spec"].get("strategy", {}).get("type") == "Recreate"


def _beat_lock_key() -> str:
    """The Redis key of the lock the app's beat holds (RedBeat's, under the app's prefix)."""
    app = Celery(set_as_current=False)
    app.conf.update(celery_config(Settings(_env_file=None, REDIS_URL="redis://redis:6379/0")))
    assert app.conf.get("beat_scheduler") == "pipeline.app:SteadyRedBeatScheduler", (
        "the beat probe reads RedBeat's lock"
    )
    return str(RedBeatConfig(app).lock_key)


@pytest.mark.parametrize("held", [True, False])
def test_beat_liveness_probe_passes_while_the_app_holds_its_lock(held: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    (container,) = _containers(_one("Deployment", "beat"))
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    lock_key = _beat_lock_key()
    asked: list[tuple[str, str]] = []

    class FakeRedis:
        def __init__(self, url: str) -> None:
            self.url = url

        @classmethod
        def from_url(cls, url: str, **_: Any) -> FakeRedis:
            return cls(url)

        def exists(self, key: str) -> int:
            asked.append((self.url, key))
            return int(held and key == lock_key)

    monkeypatch.setitem(sys.modules, "redis", types.SimpleNamespace(Redis=FakeRedis))
    monkeypatch.setenv("REDIS_URL", "redis://redis.example:6379/0")
    with pytest.raises(SystemExit) as exited:
        exec(compile(command[2], "beat liveness probe", "exec"), {})
    assert exited.value.code == (0 if held else 1)
    assert asked == [("redis://redis.example:6379/0", lock_key)]


def test_every_worker_names_its_queues_and_the_maintenance_queue_is_kept_apart() -> None:
    workers = _celery_workers()
    assert workers
    consumed: set[str] = set()
    for file, doc, container in workers:
        queues = _queues(container)
        assert queues, f"{_ident(file, doc)}: a worker without -Q consumes every queue"
        consumed |= queues
    assert consumed == {q.value for q in WORK_QUEUES}, "every work queue has workers, and no other queue"
    maintenance = [(doc, _queues(c)) for _, doc, c in workers if QueueName.MAINTENANCE.value in _queues(c)]
    assert len(maintenance) == 1, "the maintenance queue is consumed by one Deployment only"
    doc, queues = maintenance[0]
    assert queues <= LONG_QUEUES, f"{doc['metadata']['name']} mixes maintenance with {sorted(queues - LONG_QUEUES)}"


def test_worker_liveness_probe_pings_its_own_node_name() -> None:
    for file, doc, container in _celery_workers():
        node = _option(container["command"], "-n", "--hostname")
        assert node and node.endswith("@%h"), f"{_ident(file, doc)}: name the worker <group>@%h"
        probe = container["livenessProbe"]["exec"]["command"]
        assert probe[:2] == ["sh", "-c"], "the shell expands $HOSTNAME, the pod name that %h stands for"
        assert shlex.split(probe[2]) == ["cin7xero", "health", "worker", "--name", node.replace("%h", "$HOSTNAME")]
        assert container["readinessProbe"]["exec"]["command"] == ["cin7xero", "health", "ready"]


def test_worker_memory_request_covers_the_measured_peak() -> None:
    findings = FINDINGS.read_text(encoding="utf-8")
    assert f"| peak RSS per worker process (MB) | {PEAK_WORKER_RSS_MIB} |" in findings
    for file, doc, container in _celery_workers():
        processes = 1 + int(_option(container["command"], "-c", "--concurrency") or 0)
        assert processes > 1, f"{_ident(file, doc)}: say -c, so that its memory can be sized"
        request = _quantity(container["resources"]["requests"]["memory"])
        assert request >= processes * PEAK_WORKER_RSS_MIB * 2**20, f"{_ident(file, doc)}: below {processes} x peak"
        text = (K8S_DIR / file).read_text(encoding="utf-8")
        assert "benchmarks/FINDINGS.md" in text and f"{PEAK_WORKER_RSS_MIB} MB" in text, "cite the source figure"


def test_worker_grace_period_outlasts_its_longest_task() -> None:
    for file, doc, container in _celery_workers():
        longest = RECONCILE_TIME_LIMIT if _queues(container) & LONG_QUEUES else TASK_TIME_LIMIT
        grace = _pod_spec(doc).get("terminationGracePeriodSeconds", 30)
        assert grace >= longest + GRACE_MARGIN, f"{_ident(file, doc)}: {grace} s < {longest} s + {GRACE_MARGIN} s"


def test_broker_visibility_timeout_outlasts_the_longest_task() -> None:
    default = Settings.model_fields["broker_visibility_timeout_seconds"].default
    timeout = int(_configmap_data().get("BROKER_VISIBILITY_TIMEOUT_SECONDS", default))
    assert timeout > max(TASK_TIME_LIMIT, RECONCILE_TIME_LIMIT), "Redis would deliver a running task again"


def test_flower_is_internal_and_always_asks_for_a_login() -> None:
    flower = _one("Deployment", "flower")
    (container,) = _containers(flower)
    assert "--address=0.0.0.0" in container["command"]
    assert not any(arg.startswith("--basic-auth") for arg in container["command"]), "no password on argv"
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": SECRET_NAME, "key": "FLOWER_BASIC_AUTH"}, "required (not optional), from the Secret"
    labels = _pod_template(flower)["metadata"]["labels"]
    services = [d for _, d in _of_kind("Service") if _selector_matches({"matchLabels": d["spec"]["selector"]}, labels)]
    assert services, "Flower has a Service"
    for service in services:
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
        for _, ingress in _of_kind("Ingress"):
            backends = [n["service"]["name"] for n in _walk(ingress) if isinstance(n, dict) and "service" in n]
            assert service["metadata"]["name"] not in backends, "no Ingress routes to Flower"


def test_receiver_is_scraped_and_probed_over_http() -> None:
    receiver = _one("Deployment", "receiver")
    annotations = _pod_template(receiver)["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == "8780"
    assert annotations.get("prometheus.io/path") == "/metrics"
    (container,) = _containers(receiver)
    assert container["command"] == ["cin7xero", "webhooks", "serve", "--host", "0.0.0.0", "--port", "8780"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


# --- Services, Ingress, PDBs ----------------------------------------------------------------------------------------
def test_services_select_pods_and_name_their_ports() -> None:
    templates = [(_pod_template(d)["metadata"]["labels"], _containers(d)) for _, d in _of_kind(*LONG_RUNNING_KINDS)]
    for file, service in _of_kind("Service"):
        matched = [
            cs for labels, cs in templates if _selector_matches({"matchLabels": service["spec"]["selector"]}, labels)
        ]
        assert len(matched) == 1, f"{_ident(file, service)} selects {len(matched)} workloads"
        port_names = {p.get("name") for c in matched[0] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{_ident(file, service)}: no container port {port['targetPort']}"


def test_ingress_has_tls_for_every_host_and_routes_to_a_service() -> None:
    ingresses = _of_kind("Ingress")
    assert ingresses
    services = {d["metadata"]["name"]: d for _, d in _of_kind("Service")}
    for file, ingress in ingresses:
        tls = ingress["spec"].get("tls")
        assert tls, f"{_ident(file, ingress)} has no tls"
        assert all(entry.get("secretName") for entry in tls)
        tls_hosts = {h for entry in tls for h in entry.get("hosts", [])}
        for rule in ingress["spec"]["rules"]:
            assert rule.get("host") in tls_hosts, f"{rule.get('host')} is served without TLS"
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services[backend["name"]]
                assert backend["port"].get("name") in {p.get("name") for p in service["spec"]["ports"]}


def test_every_multi_replica_deployment_has_a_disruption_budget() -> None:
    budgets = [d for _, d in _of_kind("PodDisruptionBudget")]
    for file, deployment in _of_kind("Deployment"):
        replicas = deployment["spec"].get("replicas", 1)
        labels = _pod_template(deployment)["metadata"]["labels"]
        covering = [b for b in budgets if _selector_matches(b["spec"]["selector"], labels)]
        if replicas <= 1:
            continue
        assert len(covering) == 1, f"{_ident(file, deployment)} ({replicas} replicas): {len(covering)} PDBs"
        spec = covering[0]["spec"]
        if "minAvailable" in spec:
            assert int(spec["minAvailable"]) < replicas, "a PDB that allows no disruption blocks every drain"
        else:
            assert int(spec["maxUnavailable"]) >= 1


# --- NetworkPolicies ------------------------------------------------------------------------------------------------
def _policies() -> list[dict[str, Any]]:
    return [d["spec"] for _, d in _of_kind("NetworkPolicy")]


def test_network_policy_denies_all_ingress_by_default() -> None:
    deny = [p for p in _policies() if p["podSelector"] == {} and "Ingress" in p.get("policyTypes", [])]
    assert any(not p.get("ingress") for p in deny), "no default-deny ingress policy (empty podSelector, no rules)"


def test_network_policy_allows_only_the_egress_the_pipeline_needs() -> None:
    egress = [p for p in _policies() if "Egress" in p.get("policyTypes", [])]
    assert egress, "egress is not restricted"
    assert all(p["podSelector"] == {} for p in egress), "one egress rule set for every pod"
    allowed = {
        (port.get("protocol", "TCP"), port["port"])
        for p in egress
        for r in p.get("egress", [])
        for port in r.get("ports", [])
    }
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379), ("TCP", 443)}
    for p in egress:
        assert all(r.get("ports") for r in p.get("egress", [])), "an egress rule without ports allows every port"


def _ingress_rules_for(component: str) -> list[dict[str, Any]]:
    rules = []
    for policy in _policies():
        labels = policy["podSelector"].get("matchLabels", {})
        if labels.get("app.kubernetes.io/component") == component:
            assert "Ingress" in policy.get("policyTypes", [])
            rules.extend(policy.get("ingress", []))
    assert rules, f"no ingress rule admits traffic to {component}"
    return rules


def test_network_policy_admits_the_ingress_controller_to_the_receiver_only_on_its_port() -> None:
    rules = _ingress_rules_for("receiver")
    for rule in rules:
        assert [p["port"] for p in rule["ports"]] == [8780]
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"}, "from named namespaces only"
    namespaces = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for r in rules for p in r["from"]
    }
    assert "ingress-nginx" in namespaces


def test_network_policy_admits_only_labelled_pods_to_flower() -> None:
    for rule in _ingress_rules_for("flower"):
        assert [p["port"] for p in rule["ports"]] == [5555]
        assert rule["from"], "an empty from admits everyone"
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, "pods of this namespace only"
            assert peer["podSelector"].get("matchLabels"), "pods labelled for Flower only"
