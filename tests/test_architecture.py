"""Import contracts: mappings stay pure, only tasks/ and the app module know Celery, stages import downwards.

Read from the source with `ast` (every import statement, at module level or inside a function), so a
late import cannot slip past the contract.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Stages from the top (may import anything below) to the bottom. Modules of one layer may import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pipeline.cli",),
    ("pipeline.migration",),
    ("pipeline.reconcile",),
    ("pipeline.recovery.sweep", "pipeline.operations.status"),
    ("pipeline.webhooks",),
    ("pipeline.mapping",),
    ("pipeline.writer",),
    ("pipeline.contacts",),
    ("pipeline.discovery",),
    ("pipeline.kinds",),
    ("pipeline.source.cin7core.webhooks", "pipeline.source.cin7core.events"),
    ("pipeline.recovery.deadletters", "pipeline.recovery.deliveries"),
    # Alerts, pauses and their texts (status, which reads every stage, is matched above first).
    ("pipeline.operations",),
)
# Shared infrastructure: any stage may import it, and it imports no stage.
SHARED = (
    "pipeline.app",
    "pipeline.context",
    "pipeline.db",
    "pipeline.errors",
    "pipeline.http",
    "pipeline.idempotency",
    "pipeline.ledger",
    "pipeline.logs",
    "pipeline.migrations",
    "pipeline.policy",
    "pipeline.ratelimit",
    "pipeline.runtime",
    "pipeline.workerpool",
    "pipeline.settings",
    "pipeline.source.base",
    "pipeline.source.cin7core.client",
    "pipeline.xero",
)
CELERY_MODULES = ("celery", "kombu")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        yield _module_name(path), path


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from pipeline import app` imports the module pipeline.app.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _has_code(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _layer(module: str) -> int | None:
    for index, members in enumerate(LAYERS):
        if _within(module, members):
            return index
    return None


def test_mappings_import_nothing_of_the_pipeline_or_the_tasks() -> None:
    offenders = [
        f"{module} imports {target}"
        for module, path in _modules("mappings")
        for target in _imports(path)
        if _within(target, ("pipeline", "tasks"))
    ]
    assert offenders == []


def test_only_tasks_and_the_app_module_import_celery() -> None:
    offenders = [
        f"{module} imports {target}"
        for package in ("pipeline", "mappings")
        for module, path in _modules(package)
        if module != "pipeline.app"
        for target in _imports(path)
        if _within(target, CELERY_MODULES)
    ]
    assert offenders == []


def test_every_pipeline_module_is_in_a_layer_or_shared() -> None:
    unplaced = [
        module
        for module, path in _modules("pipeline")
        if _has_code(path)  # package markers hold only a docstring
        and _layer(module) is None
        and not _within(module, (*SHARED, "pipeline.standins", "pipeline.source"))
    ]
    assert unplaced == []


@pytest.mark.parametrize("package", ["pipeline"])
def test_stages_import_downwards_only_and_shared_code_imports_no_stage(package: str) -> None:
    offenders: list[str] = []
    for module, path in _modules(package):
        own = _layer(module)
        shared = _within(module, SHARED)
        for target in _imports(path):
            theirs = _layer(target)
            if theirs is None:
                continue
            if shared:
                offenders.append(f"shared {module} imports the stage {target}")
            elif own is not None and theirs < own:
                offenders.append(f"{module} (layer {own}) imports {target} (layer {theirs}, above it)")
    assert offenders == []


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    # The checker itself: an upward import in a stage module is reported.
    probe = tmp_path / "probe.py"
    probe.write_text("from pipeline.cli.main import main\nfrom pipeline import app\n")
    targets = _imports(probe)
    assert "pipeline.cli.main" in targets and "pipeline.app" in targets
    assert _layer("pipeline.cli.main") == 0 < (_layer("pipeline.writer.drain") or 0)
