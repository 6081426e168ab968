"""The package's layers point down: no import cycle between modules, no import from a lower
layer to a higher one, counting the imports inside functions and under ``TYPE_CHECKING`` too.

``LAYERS`` is the order, lowest first (DESIGN.md, "Architecture"). The package's own
``__init__`` re-exports the env, so it sits in the env's layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "rldispatch"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("domain", "rewards", "rewards_file", "text", "files", "database_url", "progress", "parallel"),
    ("scenarios",),
    ("sim",),
    ("env",),
    ("policies",),
    ("agents",),
    ("training",),
    ("service",),
    ("feedback",),
    ("reports",),
    ("cli",),
)
"""Top-level modules and packages of ``rldispatch``, lowest layer first."""
ROOT_LAYER = "env"
SERVICE_PARTS = ("http", "decisions", "models", "log", "config", "workers", "client")
"""The service layer's subpackages, and the modules of the whole service beside them."""


def module_files(src: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Every module of ``package`` under ``src``: dotted name -> (file, is a package)."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


def _known(name: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    """The module ``name`` lives in (a name imported from a module resolves to it)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, wherever in the file the import is (a
    name imported from a module counts as that module; a parent package run on the way is
    not counted)."""
    modules = module_files(src, package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        own_package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = own_package.split(".")[: len(own_package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                imported = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            for target in imported:
                if target == package or target.startswith(f"{package}."):
                    resolved = _known(target, modules)
                    if resolved is not None and resolved != name:
                        targets.add(resolved)
        graph[name] = targets
    return graph


def layer_of(module: str, package: str = PACKAGE) -> int:
    """The layer index of ``module``.

    :raises KeyError: a top-level module or package missing from ``LAYERS``.
    """
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ROOT_LAYER
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise KeyError(f"{package}.{top} is in no layer: add it to LAYERS in {Path(__file__).name}")


def service_part_of(module: str, package: str = PACKAGE) -> str:
    """The subpackage (or top-level module) of the service layer that ``module`` is in.

    :raises KeyError: a module of the service outside ``SERVICE_PARTS``.
    """
    part = module.split(".")[2]
    if part not in SERVICE_PARTS:
        raise KeyError(
            f"{package}.service.{part} is in no part of the service: add it to SERVICE_PARTS"
        )
    return part


def upward_imports(graph: dict[str, set[str]], package: str = PACKAGE) -> list[str]:
    """``a -> b`` for each import of ``b`` by ``a`` where ``b``'s layer is above ``a``'s."""
    return [
        f"{module} -> {target}"
        for module in sorted(graph)
        for target in sorted(graph[module])
        if layer_of(target, package) > layer_of(module, package)
    ]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, without recursion)."""
    edges = {module: sorted(targets) for module, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                target = edges[node][child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return cycles


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(SRC, PACKAGE)


def test_every_module_is_in_a_layer(graph):
    assert len(graph) > 100
    for module in graph:
        layer_of(module)


def test_every_module_of_the_service_is_in_one_of_its_parts(graph):
    service = [module for module in graph if module.startswith(f"{PACKAGE}.service.")]
    parts = [service_part_of(module) for module in service]
    assert set(parts) == set(SERVICE_PARTS)
    assert max(parts.count(part) for part in SERVICE_PARTS) <= 16  # with the package's __init__


def test_no_import_points_up_a_layer(graph):
    assert upward_imports(graph) == []


def test_no_import_cycle_between_modules(graph):
    assert import_cycles(graph) == []


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path):
    _write(tmp_path, "rldispatch/__init__.py", "")
    _write(tmp_path, "rldispatch/domain.py", "def f():\n    from rldispatch.env import X\n")
    _write(tmp_path, "rldispatch/env.py", "from rldispatch import domain\n")
    _write(tmp_path, "rldispatch/sim/__init__.py", "")
    _write(tmp_path, "rldispatch/sim/a.py", "from .b import Y\n")
    _write(tmp_path, "rldispatch/sim/b.py", "if True:\n    import rldispatch.sim.a\n")
    graph = import_graph(tmp_path, PACKAGE)
    assert graph["rldispatch.sim.a"] == {"rldispatch.sim.b"}
    assert upward_imports(graph) == ["rldispatch.domain -> rldispatch.env"]
    assert import_cycles(graph) == [
        ["rldispatch.domain", "rldispatch.env"],
        ["rldispatch.sim.a", "rldispatch.sim.b"],
    ]


def test_a_module_outside_every_layer_is_named(tmp_path):
    _write(tmp_path, "rldispatch/__init__.py", "")
    _write(tmp_path, "rldispatch/gadgets.py", "")
    with pytest.raises(KeyError, match="rldispatch.gadgets is in no layer"):
        for module in import_graph(tmp_path, PACKAGE):
            layer_of(module)
