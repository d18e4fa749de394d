"""Tests of :mod:`icsmdp_theory.results`: the repr, the status words and read-only fields.

Independent checks: the repr is parsed back (labels, order, the numbers shown
against the array itself); the status table is compared with a static scan of
the library source (an AST walk, not the ``__post_init__`` check) and with the
README; read-only-ness is tested by writing into the arrays.
"""
from __future__ import annotations

import ast
import collections
import dataclasses
import importlib
import json
import math
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from icsmdp_theory import InvalidArgumentError, load_example
from icsmdp_theory.results import (STATUS_WORDS, Result, SolveResult, status_table_markdown,
                                   to_jsonable)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("icsmdp_theory", "solvers", "estimators", "reports")


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class _Probe(Result):
    """A result with containers, for the read-only and repr tests."""

    tup: tuple = ()
    lst: list = dataclasses.field(default_factory=list)
    dct: dict = dataclasses.field(default_factory=dict)
    child: Result | None = None


_Pair = collections.namedtuple("_Pair", "left right")


def _solve_result(q, v=None, policy=None, **kw):
    q = np.asarray(q, dtype=float)
    v = np.nanmax(q, axis=1) if v is None else v
    policy = np.zeros(q.shape[0], dtype=np.int64) if policy is None else policy
    base = dict(success=True, status="converged", message="m.", q=q, v=v, policy=policy,
                bellman_residual=0.0, error_bound=0.0, method="vi")
    base.update(kw)
    return SolveResult(**base)


def _labels(lines, indent):
    """``(label, value)`` of the lines whose label starts at column ``indent``-ish."""
    out = []
    for line in lines:
        m = re.match(r"^( *)([A-Za-z_][\w:]*): (.*)$", line)
        if m and len(m.group(1)) + len(m.group(2)) == indent:
            out.append((m.group(2), m.group(3)))
    return out


def _tiny_smdp():
    from solvers import FiniteSMDP
    # two states, two actions; v* solves v0 = max(1 + 0.5 v1, 0.5 v0), v1 = 2 + 0.5 v0
    return FiniteSMDP(reward=[[1.0, 0.0], [2.0, 0.0]],
                      kernel=[[0.0, 0.5], [0.5, 0.0], [0.5, 0.0], [0.0, 0.0]])


# ====================================================================== repr
def test_every_result_subclass_uses_the_family_repr():
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            importlib.import_module(info.name)
    seen, todo = set(), [Result]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    library = {c for c in seen if c.__module__.split(".")[0] in PACKAGES}
    names = {c.__name__ for c in library}
    # the scan must have found the family (a vacuous walk would pass anything)
    assert {"SolveResult", "RunRecord", "GapReport", "MixingResult", "StationaryResult",
            "CheckResult", "MinimaxGaps", "TangentReport"} <= names
    wrong = sorted(f"{c.__module__}.{c.__qualname__}" for c in seen
                   if c.__repr__ is not Result.__repr__)
    assert not wrong, f"add repr=False to the @dataclass decorator of {wrong}"


def test_workflow_solve_result_reads_like_scipy():
    from solvers import ModifiedPolicyIteration, solve
    res = solve(ModifiedPolicyIteration(), load_example("workflow"))
    text = repr(res)
    lines = text.splitlines()
    names = [f.name for f in dataclasses.fields(res)]
    width = max(map(len, names))
    labelled = _labels(lines, 2 + width)
    assert lines[0] == "SolveResult"
    assert [k for k, _ in labelled] == ["message", "success", "status"] + [
        n for n in names if n not in ("message", "success", "status")]
    assert len(lines) == 1 + len(names)             # one line per field
    assert dict(labelled)["message"] == res.message  # unquoted, in full
    assert dict(labelled)["success"] == str(res.success)
    assert dict(labelled)["status"] == res.status
    assert dict(labelled)["q"].startswith(f"float64 array, shape {res.q.shape}: [")
    assert dict(labelled)["policy"].startswith(f"{res.policy.dtype} array, shape "
                                               f"{res.policy.shape}: [")
    assert len(text) < 1500                         # 13,569 characters before
    assert str(res) == text


_FLOAT = re.compile(r"^(-?inf|nan|-?\d+(\.\d*)?(e[-+]\d+)?)$")


_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40)


@given(st.one_of(hnp.arrays(np.float64, _SHAPES, elements=st.floats(width=64)),
                 hnp.arrays(np.int64, _SHAPES, elements=st.integers(-10**12, 10**12))))
def test_array_fields_are_abbreviated_to_dtype_shape_and_end_values(a):
    res = _solve_result(np.zeros((1, 1)), v=a)
    line = dict(_labels(repr(res).splitlines(), 2 + len("bellman_residual")))["v"]
    m = re.match(r"^(\w+) array, shape (\(.*\)): \[(.*)\]$", line)
    assert m and m.group(1) == str(a.dtype) and m.group(2) == str(a.shape)
    shown = m.group(3).split(", ")
    flat = a.reshape(-1)
    if flat.size <= 6:
        expected = list(flat)
    else:
        assert shown[3] == "..." and len(shown) == 6
        expected = list(flat[:3]) + list(flat[-2:])
        shown = shown[:3] + shown[4:]
    assert len(shown) == len(expected)
    for text, x in zip(shown, expected):
        assert _FLOAT.match(text), text
        y = float(text)
        assert (math.isnan(y) and math.isnan(x)) or y == pytest.approx(float(x), rel=1e-5)
    assert len(line) < 200


def test_long_dicts_lists_and_tuples_are_abbreviated():
    settings = {f"key{j}": j for j in range(100)}
    res = _Probe(success=True, status="ok", message="m.", settings=settings,
                 lst=list(range(1000)), tup=tuple(np.arange(5.0)),
                 dct={"a": {"deep": list(range(50)), "text": "x" * 500}})
    text = repr(res)
    lines = text.splitlines()
    assert len(lines) < 40 and len(text) < 3000
    labelled = dict(_labels(lines, 2 + len("iterations")))
    assert labelled["settings"] == "dict of 100"
    assert "100 in all" in text
    assert labelled["lst"].endswith("(1000 items)") and "999" in labelled["lst"]
    assert labelled["tup"] == "(0.0, 1.0, 2.0, 3.0, 4.0)"
    assert max(map(len, lines)) < 160               # the 500-character string is cut


def test_nested_results_are_indented():
    inner = _solve_result(np.ones((3, 2)), message="inner message.")
    res = _Probe(success=False, status="inaccurate", message="outer.", child=inner,
                 tup=(_Pair(np.arange(3), 2.5),))
    lines = repr(res).splitlines()
    top = dict(_labels(lines, 2 + len("iterations")))
    assert top["message"] == "outer." and top["status"] == "inaccurate"
    assert top["child"] == "SolveResult"
    j = next(i for i, line in enumerate(lines) if line.lstrip().startswith("child: "))
    value_column = lines[j].index("SolveResult")
    nested = lines[j + 1:j + 1 + len(dataclasses.fields(inner))]
    assert all(len(line) - len(line.lstrip()) >= value_column for line in nested)
    assert nested[0].split(": ", 1) == [nested[0].split(": ", 1)[0], "inner message."]
    assert nested[0].strip().startswith("message:")
    assert nested[1].strip() == "success: True"
    assert nested[2].strip() == "status: converged"


def test_results_from_public_functions_print_message_success_status_first():
    for res in _public_results().values():
        lines = repr(res).splitlines()
        assert lines[0] == type(res).__name__
        assert [line.split(":")[0].strip() for line in lines[1:4]] == [
            "message", "success", "status"]
        assert len(repr(res)) < 6000


# ====================================================================== status words
_PUBLIC = {}


def _public_results() -> dict:
    """Representative results through the public functions (computed once)."""
    if _PUBLIC:
        return _PUBLIC
    from estimators import gap_report, mixing_report, stationary_law
    from estimators.mixing_time import mixing_time
    from solvers import ICQ, ModifiedPolicyIteration, PolicyIteration, ValueIteration, solve
    model = load_example("tiny-handoff")
    smdp = _tiny_smdp()
    out = {
        "vi": solve(ValueIteration(), smdp),
        "pi": solve(PolicyIteration(), smdp),
        "mpi": solve(ModifiedPolicyIteration(), smdp),
        "vi_max_iter": solve(ValueIteration(max_iter=1), smdp),
        "oracle": solve(PolicyIteration(), model),
        "gap": gap_report(model),
        "mixing": mixing_report(model),
        "periodic": mixing_time(np.array([[0.0, 1.0], [1.0, 0.0]]), [0.5, 0.5]),
        "stationary": stationary_law(model),
        "run": solve(ICQ(updates=200, seeds=2, checkpoints=(200,), progress=False), model),
    }
    _PUBLIC.update(out)
    return _PUBLIC


def test_public_results_carry_status_words_with_their_meaning():
    res = _public_results()
    # closed form: v1 = 2 + 0.5 v0 and v0 = 1 + 0.5 v1 give v0 = 8/3, v1 = 10/3
    for k in ("vi", "pi", "mpi"):
        assert res[k].status == "converged" and res[k].success
        np.testing.assert_allclose(res[k].v, [8 / 3, 10 / 3], atol=1e-7)
    assert res["vi_max_iter"].status == "max_iter" and not res["vi_max_iter"].success
    assert res["periodic"].status == "periodic" and res["periodic"].t_mix == np.inf
    assert res["run"].status == "completed"
    for r in res.values():
        assert r.status in STATUS_WORDS


def test_unknown_status_is_refused_with_the_allowed_words():
    with pytest.raises(InvalidArgumentError, match=r"`status` of a SolveResult must be a word"
                                                   r".*converged.*got 'done'"):
        _solve_result(np.ones((1, 1)), status="done")
    with pytest.raises(ValueError):
        _Probe(success=True, status=None, message="")


def _library_files():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path.name != "results.py":
                yield path


class _StatusScan(ast.NodeVisitor):
    """String literals that reach a result's ``status`` (or a verdict) in the library source.

    Sinks: ``status=...`` keywords; assignments to ``status``/``.status`` (also
    in tuple assignments); comparisons with ``status``/``.status``; the second
    argument of ``.finish(...)`` (mixing quantities); ``{"verdict": ...}``
    values and the ``return`` literals of ``verdict_*`` functions (the checker's
    status is its overall verdict); dicts indexed by ``[status]``. A name
    reaching a sink is resolved through the literals assigned to it in the
    same function.
    """

    def __init__(self):
        self.found: dict[str, set[str]] = collections.defaultdict(set)
        self.where = ""
        self.assigned: dict[str, list] = {}

    def scan(self, path):
        self.where = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        self.assigned = self._assignments(tree)
        self.visit(tree)

    @staticmethod
    def _assignments(scope):
        out = collections.defaultdict(list)
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        out[t.id].append(node.value)
                    elif isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for e, v in zip(t.elts, node.value.elts):
                            if isinstance(e, ast.Name):
                                out[e.id].append(v)
        return out

    def visit_FunctionDef(self, node):
        outer = self.assigned
        self.assigned = self._assignments(node)
        if node.name.startswith("verdict_"):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and sub.value is not None:
                    self._add(sub.value)
        self.generic_visit(node)
        self.assigned = outer

    def _literals(self, expr, depth=0):
        if depth > 3 or expr is None:
            return set()
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.IfExp):
            return self._literals(expr.body, depth) | self._literals(expr.orelse, depth)
        if isinstance(expr, ast.BoolOp):
            return set().union(*(self._literals(v, depth) for v in expr.values))
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            return set().union(set(), *(self._literals(v, depth) for v in expr.elts))
        if isinstance(expr, ast.Call):
            f = expr.func
            if isinstance(f, ast.Name) and f.id == "str" and expr.args:
                return self._literals(expr.args[0], depth)
            if isinstance(f, ast.Attribute) and f.attr == "get" and len(expr.args) == 2:
                return self._literals(expr.args[1], depth)
            return set()
        if isinstance(expr, ast.Name):
            return set().union(set(), *(self._literals(v, depth + 1)
                                        for v in self.assigned.get(expr.id, [])))
        return set()

    def _add(self, expr):
        for word in self._literals(expr):
            self.found[word].add(self.where)

    @staticmethod
    def _is_status(expr):
        return (isinstance(expr, ast.Name) and expr.id == "status") or (
            isinstance(expr, ast.Attribute) and expr.attr == "status")

    def visit_keyword(self, node):
        if node.arg == "status":
            self._add(node.value)
        self.generic_visit(node)

    def visit_Assign(self, node):
        for t in node.targets:
            if self._is_status(t):
                self._add(node.value)
            elif isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for e, v in zip(t.elts, node.value.elts):
                    if self._is_status(e):
                        self._add(v)
        self.generic_visit(node)

    def visit_Compare(self, node):
        sides = [node.left, *node.comparators]
        if any(self._is_status(s) for s in sides):
            for s in sides:
                if not self._is_status(s):
                    self._add(s)
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "finish" and len(node.args) >= 2:
            self._add(node.args[1])
        self.generic_visit(node)

    def visit_Dict(self, node):
        for k, v in zip(node.keys, node.values):
            if isinstance(k, ast.Constant) and k.value == "verdict":
                self._add(v)
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if isinstance(node.value, ast.Dict) and self._is_status(node.slice):
            for k in node.value.keys:
                self._add(k)
        self.generic_visit(node)


def test_static_scan_finds_only_status_words_of_the_table():
    scan = _StatusScan()
    for path in _library_files():
        scan.scan(path)
    found = dict(scan.found)
    found.pop("", None)  # "" is the "not decided yet" sentinel of internal loops, never a result's
    # the scan is not vacuous: it sees the statuses of every stage
    assert {"converged", "stagnated", "max_iter", "inaccurate", "exact", "periodic",
            "multiple_closed_classes", "limit_above_eps", "cap", "memory", "undetermined",
            "bounds", "ok", "completed", "stalled", "interrupted", "diverged", "holds",
            "violated", "inconclusive"} <= set(found)
    missing = {w: sorted(p) for w, p in found.items() if w not in STATUS_WORDS}
    assert not missing, f"status words missing from STATUS_WORDS: {missing}"


def test_every_word_of_the_table_is_used_by_the_library():
    source = "\n".join(p.read_text() for p in _library_files())
    unused = [w for w in STATUS_WORDS if f'"{w}"' not in source and f"'{w}'" not in source]
    assert not unused


def test_status_table_markdown_lists_every_word_sorted_and_the_readme_shows_it():
    text = status_table_markdown()
    rows = text.splitlines()
    assert rows[:2] == ["| status | meaning |", "|---|---|"]
    words = [re.match(r"^\| `(\w+)` \| (.+) \|$", r).group(1) for r in rows[2:]]
    assert words == sorted(STATUS_WORDS) and len(words) == len(STATUS_WORDS)
    for r, w in zip(rows[2:], words):
        assert r.endswith(f" {STATUS_WORDS[w]} |") and STATUS_WORDS[w].endswith(".")
    readme = ROOT / "README.md"
    if readme.exists():
        body = readme.read_text()
        assert "## Result status words" in body
        assert text in body


# ====================================================================== read-only
def test_solve_gap_and_run_results_are_read_only():
    res = _public_results()
    cases = [(res["vi"], "q"), (res["oracle"], "q"), (res["gap"], "q_hat"), (res["run"], "q")]
    for r, name in cases:
        arr = getattr(r, name)
        before = arr.copy()
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0] = 1
        np.testing.assert_array_equal(arr, before)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(r, name, np.zeros(3))
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.status = "converged"
    for r in res.values():
        for f in dataclasses.fields(r):
            value = getattr(r, f.name)
            if isinstance(value, np.ndarray):
                assert not value.flags.writeable, (type(r).__name__, f.name)


def test_read_only_views_neither_copy_nor_touch_the_producers_arrays():
    q = np.arange(6.0).reshape(3, 2)
    res = _solve_result(q)
    assert q.flags.writeable and not res.q.flags.writeable
    assert np.shares_memory(res.q, q)               # a view, not a copy
    q[0, 0] = 7.0                                   # the producer still owns its array
    assert res.q[0, 0] == 7.0
    frozen = np.ones(3)
    frozen.flags.writeable = False
    assert _solve_result(q, v=frozen).v is frozen   # already read-only: kept as is


def test_arrays_one_level_inside_containers_are_read_only():
    a, b, c, d = (np.arange(3.0) for _ in range(4))
    res = _Probe(success=True, status="ok", message="m.", tup=(a, 1, _Pair(b, 2)),
                 lst=[c, "x"], dct={"d": d, "n": 5}, settings={"grid": a})
    assert all(x.flags.writeable for x in (a, b, c, d))
    for arr in (res.tup[0], res.lst[0], res.dct["d"], res.settings["grid"]):
        with pytest.raises(ValueError):
            arr[0] = 1.0
    assert type(res.tup) is tuple and type(res.lst) is list and type(res.dct) is dict
    assert res.tup[1:2] == (1,) and res.lst[1] == "x" and res.dct["n"] == 5
    plain = {"k": 1}
    assert _Probe(success=True, status="ok", message="", dct=plain).dct is plain


def test_to_jsonable_is_unchanged_on_read_only_results():
    q = np.array([[1.0, np.nan], [np.inf, 2.0]])
    res = _solve_result(q, v=np.array([1.0, 2.0]))
    doc = to_jsonable(res)
    assert doc["q"] == [[1.0, None], ["inf", 2.0]]
    assert [f.name for f in dataclasses.fields(res)] == list(doc)
    json.dumps(doc)
