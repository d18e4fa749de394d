"""``icsmdp solve``: no stalls near ``gamma = 1``, one bound in message and fields (issue 11, sections 3, 6).

The reference values are closed forms: ``tiny-handoff``'s ``v0`` as a function
of ``gamma`` derived by hand below, and value iteration's sweep count on a
one-state problem counted by a plain loop.
"""
import json
import math
import re
import time

import pytest

from reports.cli import main
from solvers.oracle import AUTO_VI_SWEEPS, vi_sweep_estimate

NEAR_ONE = 0.9999999999


def tiny_handoff_v0(g: float) -> float:
    """``v0`` of tiny-handoff by hand.

    The planner starts at ``m0`` and hands to the checker. Its invocation
    moves ``m0 -> m1``, then ``m1 -> m1`` or ``m2`` with probability 1/2 each,
    and ends with probability 1/2 at ``m1`` and 1 at ``m2``. Discounted end
    masses from "acting at m1": ``a`` at ``m1`` and ``b`` at ``m2`` with
    ``a = g/4 + (g/4) a`` and ``b = g/2 + (g/4) b``; from ``m0``: ``g/2 + (g/2) a``
    at ``m1`` and ``(g/2) b`` at ``m2``. The checker at ``m1`` hands back to the
    planner (which stops at ``m2`` for reward 1): worth ``g``; at ``m2`` it stops
    for reward 1.
    """
    a = (g / 4) / (1 - g / 4)
    b = (g / 2) / (1 - g / 4)
    return (g / 2 + g / 2 * a) * g + (g / 2) * b


def _near_one_file(tmp_path, capsys):
    path = tmp_path / "near-one.json"
    assert main(["export", "tiny-handoff", "--out", str(path)]) == 0
    capsys.readouterr()
    doc = json.loads(path.read_text())
    doc["gamma"] = NEAR_ONE
    path.write_text(json.dumps(doc))
    return str(path)


def _solve_json(argv, capsys):
    code = main(["solve", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out)


def _message_bound(message: str) -> float:
    m = re.search(r"max \|v - v\*\| <= ([0-9.e+\-]+|inf)", message)
    assert m, message
    return float(m.group(1))


def test_closed_form_matches_the_bundled_value():
    assert tiny_handoff_v0(0.9) == pytest.approx(0.580645161 * 0.9 + 0.261290323, abs=1e-8)


def test_near_one_gamma_default_finishes_fast_and_honestly(tmp_path, capsys):
    """Issue 11 section 3: 172 s then "error bound 10.5" while the JSON said 20.0."""
    path = _near_one_file(tmp_path, capsys)
    t0 = time.perf_counter()
    code, doc = _solve_json([path], capsys)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, elapsed
    assert doc["method"] == "pi" and doc["requested_method"] == "auto"
    exact = tiny_handoff_v0(NEAR_ONE)
    assert abs(doc["v0"] - exact) <= doc["error_bound"]
    assert abs(doc["v0"] - exact) <= 1e-9  # the values are right; only the certificate is loose
    # tol 1e-8 is below the rounding floor delta/(1 - gamma) ~ 2e-5: said, not hidden
    assert doc["status"] == "stagnated" and doc["success"] is False and code == 1
    assert doc["error_bound"] > doc["tol"]
    assert f"{_message_bound(doc['message']):.3g}" == f"{doc['error_bound']:.3g}"


def test_near_one_gamma_reachable_tolerance_succeeds_in_well_under_a_second(tmp_path, capsys):
    path = _near_one_file(tmp_path, capsys)
    t0 = time.perf_counter()
    code, doc = _solve_json([path, "--tol", "1e-4"], capsys)
    assert time.perf_counter() - t0 < 1.0
    assert code == 0 and doc["success"] is True and doc["status"] == "converged"
    assert abs(doc["v0"] - tiny_handoff_v0(NEAR_ONE)) <= doc["error_bound"] <= 1e-4


def test_value_iteration_with_a_small_cap_reports_honestly(tmp_path, capsys):
    path = _near_one_file(tmp_path, capsys)
    code, doc = _solve_json([path, "--method", "vi", "--max-iter", "3"], capsys)
    assert code == 1 and doc["status"] == "max_iter" and doc["success"] is False
    assert doc["iterations"] == 3 and doc["method"] == "vi"
    assert abs(doc["v0"] - tiny_handoff_v0(NEAR_ONE)) <= doc["error_bound"]
    assert f"{_message_bound(doc['message']):.3g}" == f"{doc['error_bound']:.3g}"


@pytest.mark.parametrize("argv", [["tiny-handoff"], ["workflow", "--method", "pi"],
                                  ["workflow", "--method", "vi", "--max-iter", "5"],
                                  ["tiny-handoff", "--method", "mpi", "--tol", "1e-12"]])
def test_message_text_and_json_state_the_same_bound(argv, capsys):
    code_j, doc = _solve_json(argv, capsys)
    assert f"{_message_bound(doc['message']):.3g}" == f"{doc['error_bound']:.3g}"
    code = main(["solve", *argv])
    out = capsys.readouterr().out
    assert code == code_j
    printed = float(re.search(r"\(error bound ([0-9.e+\-]+|inf)\)", out).group(1))
    assert f"{printed:.3g}" == f"{doc['error_bound']:.3g}"
    assert f"{_message_bound(out):.3g}" == f"{doc['error_bound']:.3g}"


@pytest.mark.parametrize("method", ["auto", "vi", "pi", "mpi"])
def test_no_doubled_method_prefix(method, capsys):
    """``method mpi: mpi: converged...`` (issue 11, section 6)."""
    assert main(["solve", "tiny-handoff", "--method", method]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\b(vi|pi|mpi): \1:", out), out
    line = next(l for l in out.splitlines() if l.startswith("method"))
    assert line.count(":") == 0 or method == "auto", line


def test_default_method_is_auto_and_keeps_mpi_on_ordinary_instances(capsys):
    code, doc = _solve_json(["workflow"], capsys)
    assert code == 0 and doc["requested_method"] == "auto" and doc["method"] == "mpi"


@pytest.mark.parametrize("g,tol,scale", [(0.5, 1e-3, 1.0), (0.9, 1e-8, 1.0), (0.99, 1e-6, 3.0),
                                         (0.95, 1e-10, 0.25)])
def test_sweep_estimate_matches_value_iteration_counted_by_hand(g, tol, scale):
    """One state, reward ``scale``, discount ``g``: count the sweeps of the sup rule."""
    v, n = 0.0, 0
    while True:
        n += 1
        new = scale + g * v
        if g / (1 - g) * abs(new - v) <= tol:
            break
        v = new
    # the rule is met after the n-th sweep: increments g^(n-1) scale
    assert abs(vi_sweep_estimate(g, tol, scale) - (n - 1)) <= 1
    assert vi_sweep_estimate(1 - 1e-10, 1e-8, 1.0) > AUTO_VI_SWEEPS
    assert math.isinf(vi_sweep_estimate(1.0, 1e-8, 1.0))
