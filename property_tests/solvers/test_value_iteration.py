"""Value iteration on :class:`FiniteSMDP` against closed forms and brute-force enumeration.

Every expected value is computed independently of the solver: by hand, or by
enumerating all deterministic policies and solving ``(I - D_sigma) v = r_sigma``
with ``numpy.linalg.solve`` (see ``test_smdp._brute_force``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import solvers.value_iteration  # noqa: F401  (registers the solver)
from property_tests.solvers.test_smdp import _brute_force, _dense_parts, _policy_value, _tiny_instances
from solvers.api import ValueIteration, solve
from solvers.smdp import FiniteSMDP

TOL = 1e-8
#: Slack for the rounding error of the dense reference solution itself.
REF = 1e-12

RULES = ["sup", "span"]


def _check_against_reference(res, reward, kernel, adm, tol):
    """``res`` is within its bound of ``v*``/``q*``, the bound within ``tol``, the policy optimal."""
    v_star, q_star = _brute_force(reward, kernel, adm)
    r, D, adm_arr = _dense_parts(reward, kernel, adm)
    scale = REF * (1.0 + np.abs(v_star).max())
    assert res.success and res.status == "converged", res.message
    assert res.error_bound <= tol
    assert np.abs(res.v - v_star).max() <= res.error_bound + scale
    assert np.all(np.isnan(res.q[~adm_arr]))
    assert np.abs(res.q - q_star)[adm_arr].max() <= res.error_bound + scale
    assert adm_arr[np.arange(len(v_star)), res.policy].all()
    v_pol = _policy_value(r, D, res.policy)
    assert np.abs(v_pol - v_star).max() <= tol
    # The reported residual is the independently computed max |T v - v|.
    Tv = np.max(np.where(adm_arr, r + D @ res.v, -np.inf), axis=1)
    assert res.bellman_residual == pytest.approx(np.abs(Tv - res.v).max(), rel=1e-6, abs=1e-13)


# ---------------------------------------------------------------- closed forms

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("r, g", [(1.0, 0.5), (-3.0, 0.9), (2.5, 0.0), (0.7, 0.99)])
def test_one_state_one_action(rule, r, g):
    res = solve(ValueIteration(tol=TOL, rule=rule), FiniteSMDP(reward=[[r]], kernel=[[g]]))
    assert res.success
    assert abs(res.v[0] - r / (1 - g)) <= res.error_bound <= TOL
    assert res.policy.tolist() == [0]
    assert res.method == "vi" and res.settings == {"tol": TOL, "max_iter": 100_000, "rule": rule}


@pytest.mark.parametrize("rule", RULES)
def test_two_state_chain(rule):
    # State 0: stay (reward 1, discount 0.9 on itself: worth 1/0.1 = 10) or
    # move (reward 0, discount 0.9 to state 1). State 1: one action, reward 2,
    # discount 0.9 on itself: v1 = 20, so moving is worth 0.9*20 = 18 > 10.
    kernel = [[0.9, 0.0], [0.0, 0.9], [0.0, 0.9], [0.0, 0.0]]
    m = FiniteSMDP(reward=[[1.0, 0.0], [2.0, 0.0]], kernel=kernel,
                   admissible=[[True, True], [True, False]])
    res = solve(ValueIteration(tol=TOL, rule=rule), m)
    assert np.abs(res.v - [18.0, 20.0]).max() <= res.error_bound <= TOL
    assert res.policy.tolist() == [1, 0]
    assert np.isnan(res.q[1, 1]) and abs(res.q[0, 0] - 17.2) <= res.error_bound


@pytest.mark.parametrize("rule", RULES)
def test_terminal_action(rule):
    # State 0: terminate with reward 4 (all-zero row), or continue with reward 1
    # and discount 0.8 on itself (worth 1/0.2 = 5). State 1: terminate (5) or
    # loop with reward 0 (worth 0.8 * 5 = 4).
    kernel = [[0.0, 0.0], [0.8, 0.0], [0.0, 0.0], [0.0, 0.8]]
    m = FiniteSMDP(reward=[[4.0, 1.0], [5.0, 0.0]], kernel=kernel)
    assert m.discount_range == (0.0, 0.8)
    res = solve(ValueIteration(tol=TOL, rule=rule), m)
    assert np.abs(res.v - [5.0, 5.0]).max() <= res.error_bound <= TOL
    assert res.policy.tolist() == [1, 0]


def test_zero_discount_is_exact_after_one_sweep():
    m = FiniteSMDP(reward=[[1.0, 3.0], [-1.0, -2.0]], kernel=np.zeros((4, 2)))
    res = solve(ValueIteration(tol=1e-14), m)
    assert res.iterations == 1 and res.success
    assert res.v.tolist() == [3.0, -1.0] and res.bellman_residual == 0.0


# ------------------------------------------------------------- enumeration

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("inst", _tiny_instances(25, seed=1, smdp=False), ids=lambda _: "mdp")
def test_matches_enumeration_on_random_mdps(rule, inst):
    reward, kernel, adm = inst
    res = solve(ValueIteration(tol=TOL, rule=rule), FiniteSMDP(reward=reward, kernel=kernel, admissible=adm))
    _check_against_reference(res, reward, kernel, adm, TOL)
    # For an MDP the residual of the returned values is below (1 - gamma) tol.
    g = FiniteSMDP(reward=reward, kernel=kernel, admissible=adm).discount_range[1]
    assert res.bellman_residual <= (1 - g) * TOL * (1 + 1e-9)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("inst", _tiny_instances(25, seed=2, smdp=True, terminal=True), ids=lambda _: "smdp")
def test_matches_enumeration_on_random_smdps(rule, inst):
    reward, kernel, adm = inst
    res = solve(ValueIteration(tol=TOL, rule=rule), FiniteSMDP(reward=reward, kernel=kernel, admissible=adm))
    _check_against_reference(res, reward, kernel, adm, TOL)


def test_smdp_row_sums_really_vary():
    sums = set()
    for reward, kernel, adm in _tiny_instances(25, seed=2, smdp=True, terminal=True):
        g = kernel.sum(axis=1).reshape(adm.shape)[adm]
        sums.update(np.round(g, 12).tolist())
    assert {0.0, 0.3, 0.9} <= sums


# ------------------------------------------------- promises of the sup rule

@pytest.mark.parametrize("g", [0.5, 0.9, 0.99])
def test_sup_rule_sweep_count_and_bound(g):
    rng = np.random.default_rng(3)
    S, A = 6, 3
    P = rng.random((S * A, S))
    kernel = g * P / P.sum(axis=1, keepdims=True)
    reward = rng.normal(size=(S, A))
    res = solve(ValueIteration(tol=TOL, rule="sup"), FiniteSMDP(reward=reward, kernel=kernel))
    # v_0 = 0, so ||v_1 - v_0|| = max_s |max_a r(s, a)|.
    step0 = np.abs(reward.max(axis=1)).max()
    promised = math.ceil(math.log(TOL * (1 - g) / (g * step0)) / math.log(g)) + 2
    assert res.iterations <= promised
    v_star, _ = _brute_force(reward, kernel)
    assert np.abs(res.v - v_star).max() <= res.error_bound + REF * np.abs(v_star).max()
    assert res.error_bound <= TOL
    assert res.bellman_residual / (1 - g) >= np.abs(res.v - v_star).max() - REF * np.abs(v_star).max()


# ----------------------------------------------------- non-convergence is data

@pytest.mark.parametrize("rule", RULES)
def test_max_iter_is_reported_not_raised(rule):
    m = FiniteSMDP(reward=[[1.0, 0.0], [2.0, 0.0]], kernel=[[0.9, 0.0], [0.0, 0.9], [0.0, 0.9], [0.0, 0.0]],
                   admissible=[[True, True], [True, False]])
    res = solve(ValueIteration(tol=TOL, rule=rule, max_iter=1), m)
    assert (res.success, res.status, res.iterations) == (False, "max_iter", 1)
    assert "max_iter" in res.message
    # The bound is still a valid bound.
    assert np.abs(res.v - [18.0, 20.0]).max() <= res.error_bound


@pytest.mark.parametrize("rule", RULES)
def test_stagnation_reports_the_achieved_bound(rule):
    # v* = 1e20 / (1 - 0.5) = 2e20 exactly; tol = 1e-8 is far below the
    # resolution of doubles near 2e20 (about 3e4).
    res = solve(ValueIteration(tol=TOL, rule=rule), FiniteSMDP(reward=[[1e20]], kernel=[[0.5]]))
    assert res.status == "stagnated" and res.success is False
    assert res.iterations < 200
    assert abs(res.v[0] - 2e20) <= res.error_bound
    assert res.error_bound < 1e7  # achieved accuracy: relative 5e-14
