"""The package's shape (#18, #29): its folders are its layers, and each imports only from the layers below it
(imports inside functions included); no import cycle between modules; no module over 450 lines and no function
over 50; integrations that use only `hcti_build`'s public API; and the names users write keep working."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import hcti_build

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hcti_build"
MODULES = sorted(PACKAGE.rglob("*.py"))
# From the bottom up: a module imports from its own layer and those before it. The store knows the engine only by
# its shape (`hcti_build.renderer`): it is not the layer below it.
LAYERS = ("leaves", "engine", "store", "pipeline", "api", "integrations", "cli")
NOT_BELOW = {"store": {"engine"}}
# The names users and hosts write (`import hcti_build`, extensions = ["hcti_build.sphinx"], ...): doors that
# re-export from any layer.
DOORS = {"hcti_build", "hcti_build.sphinx", "hcti_build.jinja", "hcti_build.nbconvert"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


_NAMES = {_module_name(p) for p in MODULES}


def _imports(path: Path) -> set[str]:
    """The modules of the package ``path`` imports, anywhere in it (a function-level import counts)."""
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


def layer(module: str) -> str:
    parts = module.split(".")
    return "doors" if module in DOORS else parts[1] if parts[1] in LAYERS else "leaves"


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


def _upward(modules: dict[str, set[str]]) -> list[str]:
    """``importer -> imported`` for each import that does not go to the importer's layer or one below it."""
    bad = []
    for importer, imported in sorted(modules.items()):
        mine = layer(importer)
        if mine == "doors":
            continue
        for target in sorted(imported):
            theirs = layer(target)
            if theirs == "doors":  # the public API: for the integrations and the command line, above everything
                theirs = "integrations"
            if LAYERS.index(theirs) > LAYERS.index(mine) or theirs in NOT_BELOW.get(mine, ()):
                bad.append(f"{importer} -> {target}")
    return bad


def test_every_module_is_in_a_layer() -> None:
    assert {layer(m) for m in _NAMES} <= {*LAYERS, "doors"}, sorted({layer(m) for m in _NAMES})


def test_imports_go_down_the_layers() -> None:
    graph = {_module_name(p): _imports(p) for p in MODULES}
    assert _upward(graph) == []


def test_the_direction_check_sees_an_import_going_up() -> None:
    assert _upward({"hcti_build.store.store": {"hcti_build.pipeline.build"}}) == ["hcti_build.store.store -> hcti_build.pipeline.build"]
    assert _upward({"hcti_build.store.store": {"hcti_build.engine.browser"}}) == ["hcti_build.store.store -> hcti_build.engine.browser"]
    assert _upward({"hcti_build.files": {"hcti_build.sphinx"}}) == ["hcti_build.files -> hcti_build.sphinx"]
    assert _upward({"hcti_build.cli.main": {"hcti_build.api.server", "hcti_build.errors"}}) == []


def test_no_import_cycle_between_modules() -> None:
    # A package's __init__ re-exports its modules: edges into it are edges into those, not a cycle of its own.
    inits = {_module_name(p) for p in MODULES if p.name == "__init__.py"}
    graph = {_module_name(p): _imports(p) - inits for p in MODULES if p.name != "__init__.py"}
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
            assert length <= 50, f"{path.name}:{node.lineno} {node.name} is {length} lines"


def test_the_mkdocs_plugin_uses_only_the_public_api() -> None:
    for path in (PACKAGE / "integrations" / "mkdocs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hcti_build") or (
                isinstance(node, ast.ImportFrom) and node.level > 1
            ):
                assert node.module == "hcti_build", f"{path.name} imports {node.module}"
                assert {a.name for a in node.names} <= set(hcti_build.__all__), path.name


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("hcti_build.sphinx", "setup"),
        ("hcti_build.jinja", "HctiExtension"),
        ("hcti_build.nbconvert", "HctiMarkdownExporter"),
        ("hcti_build.nbconvert", "HctiHTMLExporter"),
        ("hcti_build.nbconvert", "HctiPreprocessor"),
        ("hcti_build", "load_ipython_extension"),
        ("hcti_build.cli", "main"),
    ],
)
def test_the_names_users_write_keep_working(module: str, name: str) -> None:
    assert callable(getattr(importlib.import_module(module), name))


def test_the_hosts_find_the_plugin_and_the_exporters() -> None:
    from importlib.metadata import entry_points

    for group, name in (("mkdocs.plugins", "hcti"), ("properdocs.plugins", "hcti"), ("nbconvert.exporters", "hcti-markdown"),
                        ("nbconvert.exporters", "hcti-html"), ("console_scripts", "hcti")):  # fmt: skip
        (found,) = [e for e in entry_points(group=group) if e.name == name]
        assert callable(found.load()), (group, name)


@pytest.mark.parametrize("module", ["hcti_build", "hcti_build.options"])
def test_all_names_every_public_name_a_module_has(module: str) -> None:
    """`__all__` lists what the module offers, its own names and what it re-exports (it listed only the latter)."""
    mod = importlib.import_module(module)
    tree = ast.parse(Path(mod.__file__ or "").read_text())
    own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")}
    own |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
            if isinstance(t, ast.Name) and not t.id.startswith("_")} - {"__all__"}  # fmt: skip
    assert own <= set(mod.__all__), sorted(own - set(mod.__all__))
    assert all(hasattr(mod, name) for name in mod.__all__)
