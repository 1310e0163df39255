"""Every setting the code reads is documented in the README's table and in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_READ = re.compile(r"""(?:os\.environ(?:\.get)?\(|os\.environ\[|os\.getenv\()\s*["']([A-Z][A-Z0-9_]+)["']""")


def _setting_names() -> list[str]:
    return sorted(field.alias for field in Settings.model_fields.values() if field.alias)


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = ROOT.joinpath("README.md").read_text()
    table = readme[readme.index("### Configuration") :]
    table = table[: table.index("\n### ", 5)]
    missing = [name for name in _setting_names() if f"`{name}`" not in table]
    assert missing == []


def test_every_setting_is_in_env_example() -> None:
    lines = ROOT.joinpath(".env.example").read_text().splitlines()
    listed = {match.group(1) for line in lines if (match := re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line))}
    missing = [name for name in _setting_names() if name not in listed]
    assert missing == []


def test_the_code_reads_no_environment_variable_that_is_not_a_setting() -> None:
    known = set(_setting_names())
    stray = sorted(
        f"{path.relative_to(ROOT)} reads {name}"
        for package in ("pipeline", "tasks", "mappings")
        for path in ROOT.joinpath(package).rglob("*.py")
        if "standins" not in path.parts
        for name in ENV_READ.findall(path.read_text())
        if name not in known
    )
    assert stray == []


def test_the_check_sees_an_undocumented_name() -> None:
    # The checks above would pass vacuously if they matched nothing.
    assert len(_setting_names()) > 50
    assert ENV_READ.findall('os.environ.get("SOME_NAME")') == ["SOME_NAME"]
