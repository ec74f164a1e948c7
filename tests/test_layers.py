"""The package's imports point one way (``../shared/DESIGN.md``, "Layers"): ground → datasets →
models → metrics → train → interpret → evaluate → studies → compare → report → CLI.

Every module is parsed with :mod:`ast`, imports inside functions and under ``TYPE_CHECKING``
included, so a lazy import cannot hide an arrow against the order or an import circle. Modules of
one layer may import each other, but never in a circle. A package's ``__init__`` re-exports its
submodules, so a submodule imports its siblings directly (shared base classes and registries live
in a ``base`` submodule), never its own package: that would be a circle too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ganreport"

#: layer of each top-level name under ``ganreport`` (a sub-package's modules share its layer)
LAYERS: dict[str, int] = {
    "": 0, "errors": 0, "config": 0, "settings": 0, "io": 0, "registry": 0, "results": 0, "distributed": 0,
    "viz": 0, "fit": 0, "stats": 0, "stages": 0,
    "data": 1,
    "models": 2, "losses": 2,
    "metrics": 3,
    "train": 4,
    "interpret": 5,
    "evaluate": 6,
    "studies": 7, "experiments": 7, "ddm_study": 7, "modnet": 7,
    "compare": 8,
    "report": 9,
    "__main__": 10,
}
LAYER_NAMES = ["ground", "datasets", "models", "metrics", "train", "interpret", "evaluate",
               "studies", "compare", "report", "CLI"]


def _modules(root: Path = PKG) -> dict[str, Path]:
    mods = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def import_edges(mods: dict[str, Path]) -> dict[str, dict[str, list[str]]]:
    """``module -> {imported ganreport module -> ["name (line N)", ...]}``, resolving relative imports
    and ``from . import x`` to submodule ``x``."""
    edges: dict[str, dict[str, list[str]]] = {}
    for mod, path in mods.items():
        pkg = mod if _is_package(path) else mod.rsplit(".", 1)[0]
        deps: dict[str, list[str]] = {}

        def add(target: str, what: str, line: int) -> None:
            owner = _owner(target, mods)
            if owner != mod:
                deps.setdefault(owner, []).append(f"{what} (line {line})")

        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "ganreport":
                        add(a.name, a.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "ganreport":
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    add(sub if sub in mods else target, a.name, node.lineno)
        edges[mod] = deps
    return edges


def _owner(name: str, mods: dict[str, Path]) -> str:
    while name not in mods and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(mod: str) -> int:
    top = _top(mod)
    if top not in LAYERS:
        raise AssertionError(f"module {mod} is not in tests/test_layers.py LAYERS: give its layer")
    return LAYERS[top]


def layer_violations(edges: dict[str, dict[str, list[str]]]) -> list[str]:
    """One line per arrow against the order: ``a (layer) imports b (layer): names (lines)``."""
    bad = []
    for a, deps in sorted(edges.items()):
        for b in sorted(deps):
            if layer(b) > layer(a):
                bad.append(f"{a} ({LAYER_NAMES[layer(a)]}) imports {b} ({LAYER_NAMES[layer(b)]}): "
                           + ", ".join(deps[b]))
    return bad


def cycles(edges: dict[str, dict[str, list[str]]], mods: dict[str, Path]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    g = edges
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    assert len(mods) > 20, f"no package found under {PKG}"
    return mods, import_edges(mods)


def test_every_module_has_a_layer(graph):
    mods, _ = graph
    for m in mods:
        layer(m)


def test_imports_point_down_the_layers(graph):
    _, edges = graph
    bad = layer_violations(edges)
    assert not bad, "imports against the layer order:\n  " + "\n  ".join(bad)


def test_no_import_circles(graph):
    mods, edges = graph
    found = cycles(edges, mods)
    assert not found, "import circles:\n  " + "\n  ".join(" <-> ".join(c) for c in found)


def test_nothing_imports_the_cli(graph):
    _, edges = graph
    assert not [a for a, deps in edges.items() if "ganreport.__main__" in deps]


def test_no_module_over_600_lines(graph):
    mods, _ = graph
    long = {m: n for m, p in mods.items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines (split them by concept): {long}"


def test_the_checker_sees_lazy_and_wrong_way_imports(tmp_path):
    """The parser catches an import inside a function, a relative ``from . import`` and a circle."""
    root = tmp_path / "ganreport"
    (root / "models").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "models" / "__init__.py").write_text("from . import dcgan\n")
    (root / "models" / "dcgan.py").write_text("def f():\n    from ..train import Trainer\n")
    (root / "train.py").write_text("from .models import dcgan\nfrom . import metrics\n")
    (root / "metrics.py").write_text("def g():\n    from . import train\n")
    (root / "data.py").write_text("import ganreport.models.dcgan as d\n")
    mods = _modules(root)
    edges = import_edges(mods)
    assert edges["ganreport.models.dcgan"] == {"ganreport.train": ["Trainer (line 2)"]}
    assert set(edges["ganreport.train"]) == {"ganreport.models.dcgan", "ganreport.metrics"}
    bad = layer_violations(edges)
    assert "ganreport.models.dcgan (models) imports ganreport.train (train): Trainer (line 2)" in bad
    assert "ganreport.metrics (metrics) imports ganreport.train (train): train (line 2)" in bad
    assert "ganreport.data (datasets) imports ganreport.models.dcgan (models): ganreport.models.dcgan (line 1)" in bad
    assert not any(b.startswith("ganreport.train ") for b in bad)  # train may use metrics
    assert cycles(edges, mods) == [["ganreport.metrics", "ganreport.models.dcgan", "ganreport.train"]]
    (root / "models" / "dcgan.py").write_text("from . import Generator\n")  # a submodule using its __init__
    (root / "train.py").write_text("")
    assert cycles(import_edges(mods), mods) == [["ganreport.models", "ganreport.models.dcgan"]]
