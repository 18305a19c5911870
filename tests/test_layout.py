"""The package's shape, as the issue that set it asks (#18): no import cycle between modules (imports inside
functions included), no module over 450 lines, no function over 70 lines without a comment saying why, and
integrations that use only `hcti_build`'s public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hcti_build

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hcti_build", "mkdocs_plugin")
MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).glob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _imports(path: Path) -> set[str]:
    """The modules of our packages ``path`` imports, anywhere in it (a function-level import counts)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in _NAMES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in _NAMES and m != name}


_NAMES = {_module_name(p) for p in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules() -> None:
    # A package's __init__ re-exports its modules: edges into it are edges into those, not a cycle of its own.
    graph = {_module_name(p): _imports(p) - set(PACKAGES) for p in MODULES if p.name != "__init__.py"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_short(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert len(lines) <= 450, f"{path.name} has {len(lines)} lines"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
            length = node.end_lineno - node.lineno + 1
            said_why = lines[node.lineno - 2].strip().startswith("#")
            assert length <= 70 or said_why, f"{path.name}:{node.lineno} {node.name} is {length} lines"


def test_the_plugin_uses_only_the_public_api() -> None:
    for path in (ROOT / "mkdocs_plugin").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hcti_build"):
                assert node.module == "hcti_build", f"{path.name} imports {node.module}"
                assert {a.name for a in node.names} <= set(hcti_build.__all__), path.name
