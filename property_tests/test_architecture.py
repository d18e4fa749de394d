"""The structure of the code base, checked (STYLE 16; issue: layers that point down).

- the import-linter layers contract of ``pyproject.toml``: ``icsmdp_theory`` (model)
  -> ``solvers`` -> ``estimators`` -> ``reports``, every import pointing down,
  imports inside functions included (grimp reads every import statement);
- no cycle among the project's modules;
- no import statement inside a function, except of an optional third-party
  dependency (a function-level import that dodges a cycle means a file sits on
  the wrong floor);
- no private name (``_x``) imported from another project module: what two
  modules share is a public name of the lower one.

Each check names the file and line it objects to.
"""
from __future__ import annotations

import ast
from pathlib import Path

import grimp
import networkx as nx
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("icsmdp_theory", "solvers", "estimators", "reports")
#: Third-party packages that are optional extras: importing them inside a function is allowed.
OPTIONAL_DEPENDENCIES = {"hypothesis", "quantecon", "dask", "distributed", "numba"}


def _library_files():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "out" in path.relative_to(ROOT).parts[1:2]:
                continue
            yield path


def _parents(tree):
    parent = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parent[child] = node
    return parent


def _imported_roots(node):
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if node.level:
        return ["<relative>"]
    return [(node.module or "").split(".")[0]]


def test_layers_contract_is_kept(capsys):
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out


def test_no_import_cycle():
    graph = grimp.build_graph(*PACKAGES)
    g = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            g.add_edge(module, imported)
    cycles = list(nx.simple_cycles(g, length_bound=6))
    assert not cycles, f"import cycles, e.g. {' -> '.join(cycles[0] + [cycles[0][0]])}"


@pytest.mark.parametrize("path", list(_library_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_inside_a_function(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parent = _parents(tree)
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        p = parent.get(node)
        inside_function = False
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inside_function = True
                break
            p = parent.get(p)
        if inside_function and not set(_imported_roots(node)) <= OPTIONAL_DEPENDENCIES:
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "imports inside functions:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", list(_library_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_imported_across_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            for alias in node.names:
                if alias.name.startswith("_"):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


def test_hypothesis_strategies_live_in_the_library():
    from icsmdp_theory.testing import strategies
    assert callable(strategies.icsmdps)
    assert not (ROOT / "property_tests" / "strategies.py").exists()
