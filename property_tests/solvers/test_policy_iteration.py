"""Policy iteration and modified policy iteration on :class:`FiniteSMDP`.

Expected values come from closed forms or from enumerating every
deterministic policy with dense ``numpy.linalg.solve`` (``test_smdp._brute_force``).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import solvers.policy_iteration  # noqa: F401  (registers the solvers)
from property_tests.solvers.test_smdp import _brute_force, _dense_parts, _policy_value, _tiny_instances
from property_tests.solvers.test_value_iteration import _check_against_reference
from solvers.api import ModifiedPolicyIteration, PolicyIteration, solve
from solvers.smdp import FiniteSMDP

TOL = 1e-8

SOLVERS = {
    "pi": PolicyIteration(tol=TOL),
    "pi-lu": PolicyIteration(tol=TOL, evaluation="lu"),
    "pi-krylov": PolicyIteration(tol=TOL, evaluation="krylov"),
    "mpi-span": ModifiedPolicyIteration(k=5, tol=TOL, rule="span"),
    "mpi-sup": ModifiedPolicyIteration(k=5, tol=TOL, rule="sup"),
    "mpi-k1": ModifiedPolicyIteration(k=1, tol=TOL),
    "mpi-k20": ModifiedPolicyIteration(k=20, tol=TOL),
}


def _chain():
    # State 0: stay (reward 1, worth 10) or move to state 1 (reward 0, worth
    # 0.9 * 20 = 18); state 1: reward 2 forever at discount 0.9 (worth 20).
    # The one-step-greedy policy (stay) is not optimal.
    return FiniteSMDP(reward=[[1.0, 0.0], [2.0, 0.0]],
                      kernel=[[0.9, 0.0], [0.0, 0.9], [0.0, 0.9], [0.0, 0.0]],
                      admissible=[[True, True], [True, False]])


@pytest.mark.parametrize("name", SOLVERS)
@pytest.mark.parametrize("r, g", [(1.0, 0.5), (-3.0, 0.9), (2.5, 0.0), (0.7, 0.99)])
def test_one_state_one_action(name, r, g):
    res = solve(SOLVERS[name], FiniteSMDP(reward=[[r]], kernel=[[g]]))
    assert res.success and res.status == "converged"
    assert abs(res.v[0] - r / (1 - g)) <= res.error_bound <= TOL


@pytest.mark.parametrize("name", SOLVERS)
def test_two_state_chain(name):
    res = solve(SOLVERS[name], _chain())
    assert np.abs(res.v - [18.0, 20.0]).max() <= res.error_bound <= TOL
    assert res.policy.tolist() == [1, 0]
    assert res.method == ("pi" if name.startswith("pi") else "mpi")


@pytest.mark.parametrize("name", SOLVERS)
def test_terminal_action(name):
    m = FiniteSMDP(reward=[[4.0, 1.0], [5.0, 0.0]],
                   kernel=[[0.0, 0.0], [0.8, 0.0], [0.0, 0.0], [0.0, 0.8]])
    res = solve(SOLVERS[name], m)
    assert np.abs(res.v - [5.0, 5.0]).max() <= res.error_bound <= TOL
    assert res.policy.tolist() == [1, 0]


@pytest.mark.parametrize("name", SOLVERS)
@pytest.mark.parametrize("inst", _tiny_instances(20, seed=11, smdp=False), ids=lambda _: "mdp")
def test_matches_enumeration_on_random_mdps(name, inst):
    reward, kernel, adm = inst
    res = solve(SOLVERS[name], FiniteSMDP(reward=reward, kernel=kernel, admissible=adm))
    _check_against_reference(res, reward, kernel, adm, TOL)


@pytest.mark.parametrize("name", SOLVERS)
@pytest.mark.parametrize("inst", _tiny_instances(20, seed=12, smdp=True, terminal=True), ids=lambda _: "smdp")
def test_matches_enumeration_on_random_smdps(name, inst):
    reward, kernel, adm = inst
    res = solve(SOLVERS[name], FiniteSMDP(reward=reward, kernel=kernel, admissible=adm))
    _check_against_reference(res, reward, kernel, adm, TOL)


@pytest.mark.parametrize("inst", _tiny_instances(20, seed=13, smdp=True), ids=lambda _: "smdp")
def test_pi_returns_the_optimal_policy_with_an_exact_evaluation(inst):
    reward, kernel, adm = inst
    res = solve(PolicyIteration(), FiniteSMDP(reward=reward, kernel=kernel, admissible=adm))
    v_star, q_star = _brute_force(reward, kernel, adm)
    # Random continuous rewards: the optimal action is unique; PI finds it exactly.
    assert res.policy.tolist() == np.nanargmax(q_star, axis=1).tolist()
    assert res.bellman_residual <= 1e-12 * (1 + np.abs(v_star).max())
    r, D, _ = _dense_parts(reward, kernel, adm)
    np.testing.assert_allclose(res.v, _policy_value(r, D, res.policy), rtol=0, atol=1e-11)


def test_mpi_sup_rule_residual_is_below_the_promise():
    rng = np.random.default_rng(5)
    S, A, g = 8, 3, 0.95
    P = rng.random((S * A, S))
    kernel = g * P / P.sum(axis=1, keepdims=True)
    res = solve(ModifiedPolicyIteration(k=3, tol=TOL, rule="sup"),
                FiniteSMDP(reward=rng.random((S, A)), kernel=kernel))
    assert res.success and res.bellman_residual <= (1 - g) * TOL


def test_krylov_branch_matches_direct_branch():
    rng = np.random.default_rng(7)
    S, A, nnz = 300, 4, 5
    rows = np.repeat(np.arange(S * A), nnz)
    cols = np.concatenate([rng.choice(S, nnz, replace=False) for _ in range(S * A)])
    vals = rng.random(S * A * nnz)
    P = sp.csr_array((vals, (rows, cols)), shape=(S * A, S))
    P = sp.diags_array(1.0 / P.sum(axis=1)) @ P
    g = rng.uniform(0.5, 0.97, size=S * A)
    model = FiniteSMDP(reward=rng.normal(size=(S, A)), kernel=sp.diags_array(g) @ P)
    direct = solve(PolicyIteration(evaluation="lu"), model)
    krylov = solve(PolicyIteration(evaluation="krylov"), model)
    auto = solve(PolicyIteration(), model)
    assert "sparse LU" in direct.message and "BiCGSTAB" in krylov.message
    # a random sparse kernel mixes: the default's Krylov trial succeeds, LU is never built
    assert "BiCGSTAB" in auto.message and "sparse LU" not in auto.message
    assert direct.success and krylov.success
    assert np.array_equal(direct.policy, krylov.policy)
    assert np.abs(direct.v - krylov.v).max() <= 1e-9
    assert np.abs(direct.v - krylov.v).max() <= direct.error_bound + krylov.error_bound


def test_pi_ties_do_not_cycle_and_report_the_lowest_index():
    # State 0: action 0 (reward 1e-12, discount 0.5 into state 1 worth 2) is
    # worth 1 + 1e-12, action 1 (reward 1, terminal) is worth 1: tied within
    # 1e-10. The one-step greedy start picks action 1; PI keeps it (the tie
    # rule) and stops after one evaluation; the reported greedy policy is the
    # lowest index within 1e-10 of the max, 0 (SPEC section 3).
    m = FiniteSMDP(reward=[[1e-12, 1.0], [1.0, 1.0]],
                   kernel=[[0.0, 0.5], [0.0, 0.0], [0.0, 0.5], [0.0, 0.5]])
    res = solve(PolicyIteration(), m)
    assert res.iterations == 1 and res.success
    assert res.policy.tolist() == [0, 0]
    np.testing.assert_allclose(res.v, [1.0, 2.0], rtol=0, atol=1e-11)


@pytest.mark.parametrize("solver", [PolicyIteration(max_iter=1), ModifiedPolicyIteration(max_iter=1),
                                    ModifiedPolicyIteration(max_iter=1, rule="sup")])
def test_max_iter_is_reported_not_raised(solver):
    res = solve(solver, _chain())
    assert (res.success, res.status, res.iterations) == (False, "max_iter", 1)
    assert np.abs(res.v - [18.0, 20.0]).max() <= res.error_bound


def test_mpi_stagnation_is_reported():
    res = solve(ModifiedPolicyIteration(tol=TOL, rule="sup"), FiniteSMDP(reward=[[1e20]], kernel=[[0.5]]))
    assert res.status == "stagnated" and not res.success
    assert abs(res.v[0] - 2e20) <= res.error_bound < 1e7


@pytest.mark.parametrize("inst", _tiny_instances(10, seed=14, smdp=False), ids=lambda _: "mdp")
def test_mpi_with_long_partial_evaluation_needs_few_improvements(inst):
    # With k large, each partial evaluation is nearly exact, so MPI takes about
    # as many improvement steps as PI (plus the final check), far fewer than the
    # ~log(tol)/log(gamma) sweeps of value iteration.
    reward, kernel, adm = inst
    model = FiniteSMDP(reward=reward, kernel=kernel, admissible=adm)
    pi = solve(PolicyIteration(), model)
    mpi = solve(ModifiedPolicyIteration(k=2000, tol=TOL, rule="sup"), model)
    assert mpi.success and mpi.iterations <= pi.iterations + 3
