"""The house (docs/architecture.md): data flows one way, each folder keeps its role."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(folder: str) -> dict[str, set[str]]:
    """Module path -> every module it imports (absolute names, including lazy imports inside functions)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{module} imports {name}" for module, names in imports(folder).items() for name in sorted(names)
            if name.split(".")[0] in forbidden or name.startswith(tuple(f for f in forbidden if "." in f))]


def test_the_core_never_imports_web_or_harvesters() -> None:
    assert not offending("registry", ("web", "harvesters"))


def test_validation_does_no_network_io() -> None:
    assert not offending("registry/validation", ("urllib", "http", "socket", "requests", "ckanapi"))


@pytest.mark.parametrize("folder", ["web", "harvesters"])
def test_web_and_harvesters_go_through_the_actions(folder: str) -> None:
    """No write path, table or SQL below the action layer is reached from the outside."""
    assert not offending(folder, ("sqlalchemy", "registry.service", "registry.db", "registry.search"))


def test_schemas_hold_no_code() -> None:
    assert not list((ROOT / "schemas").rglob("*.py"))


def test_the_layout_is_documented() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for part in ("registry/actions", "registry/serialize", "registry/cli", "web/pages", "web/api",
                 "registry.commands", "scripts/setup.sh"):
        assert part in doc, part
