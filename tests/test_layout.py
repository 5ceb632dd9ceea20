"""The package dependency direction of DESIGN.md, checked on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["cmrsearch", "catalog", "cmrclip", "indexer", "search", "ui", "trainer", "phantom"]
# package -> project packages it must never import
FORBIDDEN = {
    "cmrclip": {"trainer", "indexer", "search", "ui", "catalog"},
    "catalog": {"trainer", "indexer", "search", "ui", "cmrclip", "phantom"},
    "phantom": {"trainer", "indexer", "search", "ui", "cmrclip"},
    "indexer": {"trainer", "ui", "search"},
    "search": {"trainer", "ui", "indexer"},
    "trainer": {"ui", "search", "indexer"},
}


def imported_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependency_direction(package: str) -> None:
    assert imported_packages(package) & FORBIDDEN[package] == set()


def test_nothing_outside_the_cli_imports_trainer_or_ui() -> None:
    for package in PACKAGES:
        if package in ("cmrsearch", "trainer", "ui"):
            continue
        assert not imported_packages(package) & {"trainer", "ui"}, package


def test_only_the_cli_and_ui_import_the_cli() -> None:
    for package in PACKAGES:
        if package in ("cmrsearch", "ui"):
            continue
        for path in (ROOT / package).rglob("*.py"):
            assert "cmrsearch.cli" not in path.read_text(), path


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "settings.py" and package == "cmrsearch":
                continue
            if "os.environ" in path.read_text() or "getenv(" in path.read_text():
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
