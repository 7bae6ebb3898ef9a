"""The package's layers, read from every module's imports (any import, also inside a function):
generic layers never import a domain, training or a command; training never imports a command; a
command imports no other command (only ``commands.common``); no two modules import each other, directly
or around a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Package prefix -> the prefixes its modules must not import.
GENERIC = ("gentwin.data", "gentwin.nets", "gentwin.metrics", "gentwin.models", "gentwin.losses", "gentwin.plots",
           "gentwin.report", "gentwin.errors", "gentwin.atomic", "gentwin.schedules")
COMMANDS = ("gentwin.commands", "gentwin.cli", "gentwin.evaluate_command")
FORBIDDEN = {
    **{g: ("gentwin.domains", "gentwin.training", *COMMANDS) for g in GENERIC},
    "gentwin.domains": ("gentwin.training", *COMMANDS),
    "gentwin.training": COMMANDS,
}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """``module -> the gentwin modules it imports``; ``from pkg import sub`` counts as ``pkg.sub`` when
    ``sub`` is a module."""
    files = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
             for p in src.joinpath("gentwin").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[name] = {m for m in found if _within(m, "gentwin") and m != name}
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a layer rule, as ``importer -> imported``."""
    out = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            for layer, banned in FORBIDDEN.items():
                if _within(module, layer) and any(_within(target, b) for b in banned):
                    out.append(f"{module} -> {target}")
            if (_within(module, "gentwin.commands") and _within(target, "gentwin.commands")
                    and target not in ("gentwin.commands", "gentwin.commands.common")):
                out.append(f"{module} -> {target} (a command imports another command)")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checks_see_a_forbidden_import_and_a_cycle():
    graph = {"gentwin.metrics.a": {"gentwin.domains.tpc.b"}, "gentwin.domains.tpc.b": {"gentwin.metrics.a"},
             "gentwin.training.fit": {"gentwin.commands.run"}, "gentwin.commands.sample": {"gentwin.commands.run"},
             "gentwin.commands.run": {"gentwin.commands.common", "gentwin.training.fit"}}
    assert violations(graph) == ["gentwin.commands.sample -> gentwin.commands.run (a command imports another "
                                 "command)", "gentwin.metrics.a -> gentwin.domains.tpc.b",
                                 "gentwin.training.fit -> gentwin.commands.run"]
    assert sorted(cycles(graph)) == [["gentwin.commands.run", "gentwin.training.fit"],
                                     ["gentwin.domains.tpc.b", "gentwin.metrics.a"]]


def test_the_graph_is_read_from_the_sources():
    graph = import_graph()
    assert "gentwin.training.launch" in graph["gentwin.commands.run"]  # from gentwin.training import launch
    assert "gentwin.data.image_progress" in graph["gentwin.data.images"]  # an import inside a method
    assert len(graph) > 80


def test_no_import_breaks_a_layer():
    assert violations(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []
