"""The package's shape: no import cycle among its modules — module-level imports and function-level ones alike
(a deferred import still ties the two modules' designs together) — and per-method knowledge only in
theory_sim/sae/."""

import ast
import re
from pathlib import Path

import theory_sim
from theory_sim.sae import REGISTRY

PKG = Path(theory_sim.__file__).parent


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(function_level: bool = True) -> dict[str, set[str]]:
    """module → the theory_sim modules it imports (at module level, and inside functions unless
    ``function_level`` is False)."""
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree) if function_level else tree.body:
            if isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                submodules = {f"{target}.{a.name}" for a in node.names} & set(mods)  # `from . import theory`
                deps |= submodules
                if target in mods and not submodules:
                    deps.add(target)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in mods}
        graph[name] = deps - {name}
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            c = visit(m)
            if c:
                return c
    return None


def test_no_import_cycle():
    g = import_graph()
    assert "theory_sim.sweep.runner" in g and "theory_sim.store" in g["theory_sim.sweep.runner"]  # the graph is real
    assert find_cycle(g) is None, " → ".join(find_cycle(g))


def test_a_function_level_import_counts():
    """refine.py once imported spec inside a function while spec imported refine at module level: the graph
    sees such an edge (the module-level-only graph did not)."""
    full, top = import_graph(), import_graph(function_level=False)
    assert "theory_sim.sweep.spec" in full["theory_sim.results"]
    assert "theory_sim.store" in full["theory_sim.outputs"] and "theory_sim.store" not in top["theory_sim.outputs"]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_method_name_outside_sae():
    """Outside sae/ no infrastructure branches on a method's name (`method == "mba"`): what a method needs
    from the loop, the CLI, sweeps, plots and bench it declares in its class. The report's rules are about
    named methods (report/'s rules: the paper's claims are about BA at p = f, TopK's K), and bench compares TopK with a
    SAELens reference measured on TopK: those two name methods by design."""
    names = "|".join(sorted(REGISTRY))
    pattern = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=|in\b)""")
    hits = []
    for p in PKG.rglob("*.py"):
        if "sae" in p.relative_to(PKG).parts or "report" in p.relative_to(PKG).parts or p.name == "bench.py":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{p.relative_to(PKG)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_register_refuses_a_taken_name():
    import pytest

    from theory_sim.sae.base import register

    topk = REGISTRY["topk"]
    Impostor = type("Impostor", (topk,), {"name": "topk"})
    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert REGISTRY["topk"] is topk and register(topk) is topk  # registering the same class again is harmless


def test_curve_kinds_the_parser_allows_are_the_ones_the_figures_draw():
    """sweep.spec.CURVE_KINDS (torch-free, what a sweep file is checked against) and plots.curves.CURVES (the
    drawers) name the same kinds: a kind added to one only fails here, not in a user's run."""
    from theory_sim.plots.curves import CURVES
    from theory_sim.sweep.spec import CURVE_KINDS

    assert set(CURVES) == set(CURVE_KINDS)


def test_every_metric_a_run_records_is_registered():
    """Each scalar the training loop writes that a figure or boundary may read has a registry entry
    (measures.METRICS): range, label, direction."""
    import theory_sim
    from theory_sim.measures import METRICS

    res = theory_sim.train(
        "topk",
        theory_sim.GeneratorSpec(n=16, d=8, s=2),
        steps=20,
        batch=64,
        eval_samples=256,
        k=2,
        width=32,
        progress=False,
    )[0]
    recorded = {k for k, v in res.items() if isinstance(v, float) and k in METRICS}
    assert {"frr_0.9", "mcc", "l0", "explained_variance", "fvu", "dead_fraction"} <= recorded
    for name, m in METRICS.items():
        assert m.lo < m.hi and m.label, name
