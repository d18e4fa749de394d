"""Tests of the iteration engine (:mod:`solvers.iteration`), including issue 10's defects 2 and 4.

Independent references:

- ``_reference_mdp``: dense policy iteration with ``numpy.linalg.solve`` and
  iterative refinement of the residual in ``numpy.longdouble``; its own error
  is certified by its Bellman residual computed in ``longdouble``;
- IC-SMDPs: the dense epoch-level solve of ``test_committed_chain._Dense``
  (explicit ``D_i = inv(I - G_i) E_i``, plain value iteration to 1e-13).

Defect 2 (false failures): on ``/work/orig`` the pymdptoolbox ``example.small``
test fails (``status="stagnated"``, ``error_bound`` 1.0012e-8 > tol 1e-8), and
the random-MDP sweep fails at gamma = 0.99 for most instances.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from property_tests.solvers.test_committed_chain import _Dense, _adm_mask, _general
from reports.bench import random_sparse_mdp
from solvers import ModifiedPolicyIteration, PolicyIteration, ValueIteration, solve
from solvers.common import increment_bounds
from solvers.iteration import (KRYLOV_TRIAL_ITER, solve_policy_system, stagnation_window,
                               stopping_bound)
from solvers.smdp import FiniteSMDP


# --------------------------------------------------------------------------- reference
def _reference_mdp(P, R, gamma):
    """``(v*, certified error of v*)`` by dense PI with longdouble iterative refinement.

    ``P[a, s, s']``, ``R[s, a]``. Each policy's system ``(I - gamma P_sigma) v = r_sigma``
    is solved in double, then refined three times with residuals formed in
    ``longdouble``. The returned error is ``rho / (1 - gamma)`` with ``rho`` the
    Bellman residual of ``v*`` evaluated in ``longdouble``.
    """
    A, S, _ = P.shape
    Pl = P.astype(np.longdouble)
    Rl = R.astype(np.longdouble)
    gl = np.longdouble(gamma)
    idx = np.arange(S)
    sigma = np.argmax(R, axis=1)
    for _ in range(500):
        M = np.eye(S) - gamma * P[sigma, idx]
        Ml = np.eye(S, dtype=np.longdouble) - gl * Pl[sigma, idx]
        r = Rl[idx, sigma]
        v = np.linalg.solve(M, r.astype(float)).astype(np.longdouble)
        for _ in range(3):
            res = r - Ml @ v
            v = v + np.linalg.solve(M, res.astype(float)).astype(np.longdouble)
        q = Rl + gl * np.einsum("ast,t->sa", Pl, v)
        best = q.max(axis=1)
        keep = q[idx, sigma] >= best - 1e-14 * (1 + abs(best))
        if keep.all():
            break
        sigma = np.where(keep, sigma, np.argmax(q, axis=1))
    rho = float(np.max(np.abs(best - v)))
    return v.astype(float), rho / (1.0 - gamma) + 4e-16 * float(np.max(np.abs(v)))


def test_reference_on_a_closed_form():
    # one state, two actions: stay with reward 1 (worth 1/(1-g)) or 0.5 forever: v* = 1/(1-g)
    P = np.array([[[1.0]], [[1.0]]])
    v, err = _reference_mdp(P, np.array([[1.0, 0.5]]), 0.99)
    assert abs(v[0] - 100.0) <= 1e-12 and err <= 1e-12


def _random_mdp(seed):
    """A random MDP: ``S <= 30``, dense or sparse rows, rewards uniform on [0, 1] or [-1, 1]."""
    rng = np.random.default_rng(seed)
    S = int(rng.integers(1, 31))
    A = int(rng.integers(1, 6))
    gamma = float(rng.choice([0.9, 0.95, 0.99]))
    if rng.random() < 0.5:  # dense rows
        P = rng.random((A, S, S))
    else:  # sparse rows: 1..min(S, 4) successors
        P = np.zeros((A, S, S))
        k = int(rng.integers(1, min(S, 4) + 1))
        for a in range(A):
            for s in range(S):
                P[a, s, rng.choice(S, k, replace=False)] = rng.random(k) + 0.05
    P /= P.sum(axis=2, keepdims=True)
    R = rng.random((S, A)) if rng.random() < 0.7 else rng.uniform(-1.0, 1.0, size=(S, A))
    return P, R, gamma


def _sweep_solvers(tol):
    return {"vi-sup": ValueIteration(tol=tol, rule="sup"),
            "vi-span": ValueIteration(tol=tol, rule="span"),
            "mpi": ModifiedPolicyIteration(tol=tol)}


def _check_sweep(seed):
    P, R, gamma = _random_mdp(seed)
    v_star, ref_err = _reference_mdp(P, R, gamma)
    model = FiniteSMDP.from_mdp(P, R, gamma)
    for tol in (1e-8, 1e-10):
        for name, solver in _sweep_solvers(tol).items():
            res = solve(solver, model)
            assert res.success and res.status == "converged", (seed, name, tol, res.message)
            assert res.error_bound <= tol, (seed, name, tol)
            err = float(np.abs(res.v - v_star).max())
            assert err <= res.error_bound + ref_err, (seed, name, tol, err, res.error_bound)


# --------------------------------------------------------------------------- defect 2
def test_pymdptoolbox_example_small_is_a_success():
    """Issue 10, defect 2: ``example.small`` at gamma 0.99 and tol 1e-8 (fails on the original).

    The original returned ``status="stagnated"``, ``error_bound`` 1.0012e-8 > tol
    with a true error of 9.97e-9.
    """
    P = np.array([[[0.5, 0.5], [0.8, 0.2]], [[0.0, 1.0], [0.1, 0.9]]])
    R = np.array([[5.0, 10.0], [-1.0, 2.0]])
    model = FiniteSMDP.from_mdp(P, R, 0.99)
    v_star, ref_err = _reference_mdp(P, R, 0.99)
    for tol in (1e-8, 1e-10):
        for name, solver in {**_sweep_solvers(tol), "pi": PolicyIteration(tol=tol)}.items():
            res = solve(solver, model)
            assert (res.success, res.status) == (True, "converged"), (name, tol, res.message)
            assert res.error_bound <= tol
            assert np.abs(res.v - v_star).max() <= res.error_bound + ref_err, (name, tol)


SWEEP_FAST = list(range(40))


@pytest.mark.parametrize("seed", SWEEP_FAST)
def test_random_mdps_succeed_with_an_honest_bound(seed):
    _check_sweep(seed)


@pytest.mark.slow
def test_random_mdps_succeed_with_an_honest_bound_300():
    """Issue 10's acceptance sweep: 300 random MDPs, VI (sup, span) and MPI at 1e-8 and 1e-10."""
    for seed in range(300):
        _check_sweep(seed)


def test_sweep_covers_the_required_cases():
    gammas, sizes, dense = set(), [], set()
    for seed in SWEEP_FAST:
        P, R, gamma = _random_mdp(seed)
        gammas.add(gamma)
        sizes.append(P.shape[1])
        dense.add(bool((P > 0).all()))
    assert gammas == {0.9, 0.95, 0.99} and max(sizes) > 20 and dense == {True, False}


@pytest.mark.parametrize("seed", [0, 3, 7, 11, 19, 26])
def test_committed_chain_succeeds_at_tight_tolerances(seed):
    """The ICSMDP path: success at 1e-8 and 1e-10, bound holding against the dense epoch solve."""
    model = _general(seed)
    q_exact = _Dense(model).solve()
    mask = _adm_mask(model)
    for tol in (1e-8, 1e-10):
        solvers = {**_sweep_solvers(tol), "pi": PolicyIteration(tol=tol),
                   "mpi-sup": ModifiedPolicyIteration(k=5, tol=tol, rule="sup")}
        for name, solver in solvers.items():
            res = solve(solver, model)
            assert (res.success, res.status) == (True, "converged"), (seed, name, tol, res.message)
            assert res.error_bound <= tol
            err = np.abs(res.q[mask] - q_exact[mask]).max()
            assert err <= res.error_bound + 1e-12, (seed, name, tol, err, res.error_bound)


def test_stagnation_is_reported_only_when_the_bound_stops_improving():
    # v* = 2e20: tol 1e-8 is far below the resolution of doubles there (ulp ~ 3e4)
    res = solve(ValueIteration(tol=1e-8), FiniteSMDP(reward=[[1e20]], kernel=[[0.5]]))
    assert (res.success, res.status) == (False, "stagnated")
    assert abs(res.v[0] - 2e20) <= res.error_bound < 1e7
    # the same problem at a resolvable tolerance converges
    ok = solve(ValueIteration(tol=1e6), FiniteSMDP(reward=[[1e20]], kernel=[[0.5]]))
    assert ok.success and abs(ok.v[0] - 2e20) <= ok.error_bound <= 1e6


def test_one_message_form_and_status_vocabulary():
    model = FiniteSMDP(reward=[[1.0]], kernel=[[0.5]])
    chain = _general(0)
    for problem in (model, chain):
        for solver in (ValueIteration(), ModifiedPolicyIteration(), PolicyIteration()):
            res = solve(solver, problem)
            assert res.status == "converged"
            assert " converged after " in res.message and "; max |v - v*| <= " in res.message
            unit = "sweep" if isinstance(solver, ValueIteration) else "improvement step"
            assert f" {unit}" in res.message
        res = solve(ValueIteration(max_iter=1), problem)
        assert res.status == "max_iter" and "reached max_iter = 1 sweep;" in res.message


# --------------------------------------------------------------------------- pieces
def test_stopping_bound_without_rounding_is_macqueen():
    # sup: g/(1-g) ||d||; span: the midpoint of MacQueen's interval, half its width
    b, s = stopping_bound("sup", -0.25, 0.5, 0.0, 0.0, 0.9, 0.9)
    assert s == 0.0 and b == pytest.approx(0.9 / 0.1 * 0.5, rel=1e-14)
    lo, hi = increment_bounds(0.1, 0.3, 0.5, 0.9)
    b, s = stopping_bound("span", 0.1, 0.3, 0.0, 0.0, 0.5, 0.9)
    assert s == pytest.approx((lo + hi) / 2, rel=1e-14) and b == pytest.approx((hi - lo) / 2, rel=1e-14)
    # the allowance widens the interval by delta/(1 - g) on each side (constant discount)
    b2, _ = stopping_bound("span", 0.1, 0.3, 1e-6, 0.0, 0.9, 0.9)
    assert b2 == pytest.approx((0.3 - 0.1) / 2 * 9 + 1e-6 / 0.1, rel=1e-9)


def test_stagnation_window_scales_with_the_contraction_rate():
    assert stagnation_window(0.0) == 12 and stagnation_window(0.9) == 30
    assert stagnation_window(0.999) == 2010


def _chain_system(n, p_stay, g):
    """``I - g P`` for a lazy walk on a path (banded, slowly mixing)."""
    main = np.full(n, p_stay)
    off = np.full(n - 1, (1 - p_stay) / 2)
    P = sp.diags_array([off, main, off], offsets=[-1, 0, 1]).tolil()
    P[0, 0] += (1 - p_stay) / 2
    P[n - 1, n - 1] += (1 - p_stay) / 2
    return (sp.eye_array(n) - g * sp.csr_array(P)).tocsr()


def test_evaluation_method_is_chosen_by_a_deterministic_trial():
    rng = np.random.default_rng(0)
    n = 2000
    # mixing kernel: the BiCGSTAB trial converges, no LU is built
    rows = np.repeat(np.arange(n), 8)
    cols = rng.integers(0, n, size=8 * n)
    P = sp.csr_array((rng.random(8 * n), (rows, cols)), shape=(n, n))
    P = sp.diags_array(1.0 / P.sum(axis=1)) @ P
    A = (sp.eye_array(n) - 0.95 * P).tocsr()
    b = rng.random(n)
    x, how = solve_policy_system(A, b, None, exact_limit=5000, rtol=1e-12)
    assert how == "BiCGSTAB"
    x_ref = np.linalg.solve(A.toarray(), b)
    assert np.abs(x - x_ref).max() <= 1e-9
    # slowly mixing banded kernel at g near 1: the trial fails, LU (sparse here) is used
    B = _chain_system(n, 0.5, 0.9999)
    x, how = solve_policy_system(B, b, None, exact_limit=5000, rtol=1e-12)
    assert how == "sparse LU"
    assert np.abs(B @ x - b).max() <= 1e-10
    # above exact_limit it continues with GMRES instead
    x2, how2 = solve_policy_system(B, b, None, exact_limit=n - 1, rtol=1e-12)
    assert how2.startswith("GMRES")
    # deterministic: same inputs, same path, same bits
    x3, how3 = solve_policy_system(B, b, None, exact_limit=n - 1, rtol=1e-12)
    assert how3 == how2 and np.array_equal(x3, x2)
    assert KRYLOV_TRIAL_ITER >= 50


def test_pi_default_on_random_sparse_mdp_matches_forced_lu():
    """Defect 4: the default evaluation agrees with forced LU (a small version of ``pi-eval``)."""
    P, R = random_sparse_mdp(600, 4, 8, rng=1)
    model = FiniteSMDP(reward=R, kernel=0.95 * P)
    lu = solve(PolicyIteration(evaluation="lu"), model)
    auto = solve(PolicyIteration(), model)
    assert "sparse LU" in lu.message and "sparse LU" not in auto.message
    assert lu.success and auto.success
    assert np.array_equal(lu.policy, auto.policy)
    assert np.abs(lu.v - auto.v).max() <= lu.error_bound + auto.error_bound
