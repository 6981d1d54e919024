"""Imports go one way: the declared layers of `resources/` and `pipelines/`, read from the source with `ast`.

Every import counts, the ones inside functions too (a function-level import hides a cycle from Python but
not from the reader). A package may import its own modules and packages of lower layers only, so there is
no cycle between packages; inside a package the modules form no cycle either. `resources/` knows nothing
of Dagster except `resources/dagster_resources.py`, and nothing of `pipelines/`.

The layers, lowest first. Data comes in through the sources, which hand it to the warehouse's load,
which validates it; derived data and maintenance read and write the warehouse; Dagster wires all of it:

- models: the schema as SQLAlchemy classes
- core: the top-level modules of `resources/` (settings, clock, database, backend, SQL files, ...)
- validation: `resources.quality` (split, rules, scores, quarantine rows)
- warehouse: `resources.warehouse` (upsert, load, reads, the API, releasing and restoring rows)
- derived / operations: `resources.analytics`, `resources.maintenance`, `resources.backup` (not importing
  each other)
- sources: `resources.exchanges`, `resources.files` (not importing each other)
- live capture: `resources.stream` (websocket streams, back-filled through the exchanges' REST client)
- the Dagster resources (`resources/dagster_resources.py`), then `pipelines`.

A new package under `resources/` must be placed here before it can be imported.

The folders are installed as one import namespace, `market_warehouse.pipelines` and
`market_warehouse.resources` (pyproject.toml `[tool.setuptools]`); the layers below name modules by their
folder path, and an import of the bare folder names (`import resources...`) is reported: it would load a
second copy of a module from the working directory.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOTS = ("resources", "pipelines")
NAMESPACE = "market_warehouse."
# Every folder whose Python files import the project's packages.
IMPORTERS = ("resources", "pipelines", "migrations", "tests", "benchmarks", "scripts")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("resources.indicators",),
    ("resources.models",),
    ("resources",),
    ("resources.quality",),
    ("resources.warehouse",),
    ("resources.analytics", "resources.maintenance", "resources.backup"),
    ("resources.exchanges", "resources.files"),
    ("resources.stream",),
    ("resources.dagster_resources",),
    ("pipelines",),
)
DAGSTER_ALLOWED = {"resources.dagster_resources"}


def module_files(root: Path, tops: tuple[str, ...] = ROOTS) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the `tops` folders of `root`."""
    out: dict[str, Path] = {}
    for top in tops:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every import in the file, at any depth, relative ones made absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.removeprefix(NAMESPACE), node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = (node.module or "").removeprefix(NAMESPACE)
            for alias in node.names:
                # `from pkg import mod` imports a module; `from mod import name` imports from `mod`.
                yield f"{source}.{alias.name}", node.lineno


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to (longest known prefix), or None outside the project."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path, tops: tuple[str, ...] = ROOTS) -> dict[str, dict[str, int]]:
    """module -> {imported project module: first line}, self-imports left out."""
    modules = module_files(root, tops)
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for name, line in imported_names(module, path):
            target = resolve(name, modules)
            if target is not None and target != module:
                edges.setdefault(target, line)
    return graph


def package_of(module: str) -> str:
    """The package a module belongs to for layering: the longest declared name that is a prefix of it."""
    declared = [name for layer in LAYERS for name in layer]
    matches = [name for name in declared if module == name or module.startswith(name + ".")]
    if not matches:
        raise LookupError(f"{module} is in no declared layer")
    return max(matches, key=len)


def undeclared_packages(modules: dict[str, Path]) -> list[str]:
    """Packages under `resources/` that LAYERS does not place (they would count as core otherwise)."""
    found = set()
    for module, path in modules.items():
        if package_of(module) != "resources" or module == "resources":
            continue
        if module.count(".") > 1 or path.name == "__init__.py":
            found.add(".".join(module.split(".")[:2]))
    return sorted(found)


def rank(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """Imports of a package of the same or a higher layer than the importer's."""
    found = []
    for module, edges in sorted(graph.items()):
        source = package_of(module)
        for target, line in sorted(edges.items()):
            dest = package_of(target)
            if dest != source and rank(dest) >= rank(source):
                found.append(f"{module}:{line} imports {target} ({source} may not import {dest})")
    return found


def module_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def dagster_imports(root: Path) -> list[str]:
    """Imports of dagster (or a dagster_* library) in `resources/` outside the allowed module."""
    found = []
    for module, path in module_files(root, ("resources",)).items():
        if module in DAGSTER_ALLOWED:
            continue
        for name, line in imported_names(module, path):
            top = name.split(".")[0]
            if top == "dagster" or top.startswith("dagster_"):
                found.append(f"{module}:{line} imports {name}")
    return found


@pytest.fixture(scope="module")
def project_graph() -> dict[str, dict[str, int]]:
    return import_graph(ROOT)


def test_every_package_is_in_a_declared_layer():
    assert undeclared_packages(module_files(ROOT)) == []


def test_imports_follow_the_layers(project_graph):
    assert layer_violations(project_graph) == []


def test_no_import_cycle_between_modules(project_graph):
    assert module_cycles(project_graph) == []


def test_resources_know_nothing_of_dagster_but_its_resources():
    assert dagster_imports(ROOT) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_see_function_level_and_relative_imports(tmp_path):
    """The checks on a small tree with the faults this test exists for: they must be reported."""
    _write(
        tmp_path,
        {
            "resources/__init__.py": "",
            "resources/settings.py": "",
            "resources/quality/__init__.py": "",
            "resources/quality/quarantine.py": (
                "def release():\n    from resources.warehouse.load import load_batch\n"
            ),
            "resources/warehouse/__init__.py": "from .load import load_batch\n",
            "resources/warehouse/load.py": (
                "from resources.quality import quarantine\n\ndef load_batch():\n    pass\n"
            ),
            "resources/maintenance/__init__.py": "",
            "resources/maintenance/policy.py": (
                "def load():\n    import dagster\n    from ..exchanges.universe import load_universe\n"
            ),
            "resources/exchanges/__init__.py": "",
            "resources/exchanges/universe.py": "from resources import settings\n",
            "pipelines/__init__.py": "",
        },
    )
    graph = import_graph(tmp_path)
    assert graph["resources.warehouse"] == {"resources.warehouse.load": 1}
    assert module_cycles(graph) == [["resources.quality.quarantine", "resources.warehouse.load"]]
    assert layer_violations(graph) == [
        "resources.maintenance.policy:3 imports resources.exchanges.universe "
        "(resources.maintenance may not import resources.exchanges)",
        "resources.quality.quarantine:2 imports resources.warehouse.load "
        "(resources.quality may not import resources.warehouse)",
    ]
    assert dagster_imports(tmp_path) == ["resources.maintenance.policy:2 imports dagster"]


def test_a_package_without_a_layer_is_reported(tmp_path):
    files = {"resources/__init__.py": "", "resources/clock.py": "", "resources/live/__init__.py": ""}
    _write(tmp_path, {**files, "resources/live/feed.py": "", "resources/tape/__init__.py": ""})
    assert undeclared_packages(module_files(tmp_path)) == ["resources.live", "resources.tape"]


def test_modules_import_shared_test_code_from_helpers_not_from_test_modules():
    """Shared test data lives in helper modules (`tests/*_data.py`, `tests/databases.py`, ...), not in a
    test module or conftest that another test imports."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for name, line in imported_names(path.stem, path):
            parts = name.removeprefix("tests.").split(".")
            if parts[0].startswith("test_") or parts[0] == "conftest":
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert offenders == []


def bare_imports(root: Path) -> list[str]:
    """Imports of `pipelines`/`resources` without the `market_warehouse.` namespace, anywhere in the project."""
    found = []
    for top in IMPORTERS:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                found += [
                    f"{path.relative_to(root)}:{node.lineno} imports {name}"
                    for name in names
                    if name.split(".")[0] in ROOTS
                ]
    return found


def test_the_project_is_imported_through_its_namespace():
    assert bare_imports(ROOT) == []


def test_the_namespace_packages_name_every_package_folder():
    """pyproject.toml lists the packages of the namespace one by one (a mapped folder cannot be found
    automatically): a new package folder missing from the list would be missing from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        NAMESPACE + init.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for top in ROOTS
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(config["packages"]) == folders
    assert config["package-dir"] == {NAMESPACE + top: top for top in ROOTS}


def test_a_bare_import_is_reported(tmp_path):
    _write(
        tmp_path,
        {"tests/test_x.py": "import resources.clock\nfrom market_warehouse.resources import clock\n"},
    )
    assert bare_imports(tmp_path) == ["tests/test_x.py:1 imports resources.clock"]
