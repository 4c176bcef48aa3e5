"""The package's layering, read from its own ``import`` statements (those inside functions too).

A module may import from its own unit (``partdiscovery.<unit>``) and from units of *lower* layers only,
so there is no import cycle between units and nothing imports upward; within a unit, the module import
graph has no cycle either. ``from partdiscovery import __version__`` is allowed anywhere: the package
face defines it before importing anything and loads the rest lazily.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "partdiscovery"

LAYERS: list[set[str]] = [
    {"errors", "presets"},
    {"utils"},
    {"config"},
    {"losses", "models", "data"},
    {"runs", "foreground"},
    {"segmenter", "training", "export", "viz"},
    {"evaluation"},
    {"baselines"},
    {"workflows"},
    {"cli"},
    {"__main__"},
]
"""Lowest first. Peers in one layer may not import each other."""


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports() -> dict[str, set[str]]:
    """module -> the partdiscovery modules it imports, anywhere in its body."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        module = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "partdiscovery":
                    if {a.name for a in node.names} != {"__version__"}:
                        graph[module].add("partdiscovery")
                elif node.module.startswith("partdiscovery."):
                    graph[module].add(node.module)
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name.startswith("partdiscovery."))
    return graph


def layer_of(unit: str) -> int:
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"partdiscovery.{unit} is in no layer of tests/test_architecture.py: add it")


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every import of ``graph`` that runs upward or sideways."""
    wrong = []
    for module, targets in graph.items():
        source = unit_of(module)
        for target in targets:
            if target == "partdiscovery":  # the package face re-exports the API; nothing inside uses it
                wrong += [f"{module} -> {target}"] if source else []
                continue
            other = unit_of(target)
            if source and other != source and layer_of(other) >= layer_of(source):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph ``edges`` (a depth-first search), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def module_edges() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from partdiscovery.x import name`` counts as x)."""
    modules = {module_name(p) for p in SRC.rglob("*.py")}
    graph = imports()  # once: parsing every file again for each module took half a minute
    return {m: {t for t in graph.get(m, ()) if t in modules and t != m} for m in modules}


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in SRC.rglob("*.py")} - {""}
    for unit in units:
        layer_of(unit)


def test_no_upward_or_sideways_imports():
    wrong = layering_violations(imports())
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules():
    cycle = find_cycle(module_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_see_planted_faults():
    graph = {"partdiscovery.utils.io": {"partdiscovery.workflows.train"}, "partdiscovery.cli.main": set()}
    assert layering_violations(graph) == ["partdiscovery.utils.io -> partdiscovery.workflows.train"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
