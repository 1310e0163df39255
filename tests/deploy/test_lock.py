"""The lock files: every dependency pyproject.toml names is pinned with hashes, and the builds use them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+)")


def _name(requirement: str) -> str:
    bare = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def _locked(lock: str) -> dict[str, str]:
    """Each pinned package of a lock file and its version; AssertionError for a pin without a hash."""
    lines = ROOT.joinpath(lock).read_text(encoding="utf-8").splitlines()
    pins: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = PIN.match(line)
        if match:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            assert "--hash=sha256:" in following, f"{lock}: {match.group(1)} is pinned without a hash"
            pins[_name(match.group(1))] = match.group(2)
    return pins


def _declared(*, dev: bool) -> set[str]:
    project = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {_name(r) for r in project["dependencies"]}
    if dev:
        names |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    return names


@pytest.mark.parametrize(("lock", "dev"), [("requirements.lock", False), ("requirements-dev.lock", True)])
def test_every_declared_dependency_is_pinned_with_hashes(lock: str, dev: bool) -> None:
    pins = _locked(lock)
    missing = _declared(dev=dev) - set(pins)
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock`"
    # Nothing machine-specific: the lock must install on any machine that reaches PyPI.
    text = ROOT.joinpath(lock).read_text(encoding="utf-8")
    assert "--extra-index-url" not in text and "--find-links" not in text and "file://" not in text


def test_the_runtime_lock_agrees_with_the_development_lock() -> None:
    runtime, development = _locked("requirements.lock"), _locked("requirements-dev.lock")
    differ = {
        name: (version, development.get(name)) for name, version in runtime.items() if development.get(name) != version
    }
    assert not differ, f"one version per package in both locks: {differ}"
    # The linters are pinned like everything else.
    assert {"ruff", "mypy"} <= set(development)


def test_make_ci_and_the_image_install_from_the_locks() -> None:
    makefile = ROOT.joinpath("Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "pip install --quiet -e '.[dev]'" not in makefile
    ci = ROOT.joinpath(".ci", "run").read_text(encoding="utf-8")
    assert "make test" in ci
    dockerfile = ROOT.joinpath("deploy", "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps --no-build-isolation ." in dockerfile
