"""Tests of :mod:`estimators.stationary` (SPEC sections 4 and 6) against independent computations.

The long-run occupancy of a model's epoch chain is compared with a plain Cesaro
average ``(1/n) sum_{t<n} rho0 T^t`` of the chain rebuilt by explicit loops
(:mod:`property_tests.estimators.chains`), with a hand computation on
``tiny-handoff``, and the matrix-free route with the dense one.
"""
from __future__ import annotations

import numpy as np
import pytest

from estimators.behavior import uniform_behavior, validate_behavior
from estimators.epoch_chain import epoch_chain
from estimators.stationary import mu, renewal_occupancy, stationary_law
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from property_tests.estimators.chains import (MODEL_SHAPES, cesaro, periodic_model, raw_chain,
                                              raw_rho0, reducible_model)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kwargs", MODEL_SHAPES)
def test_stationary_law_matches_cesaro_average(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    beh = uniform_behavior(model)
    T = raw_chain(model, beh)
    rho = raw_rho0(model)
    res = stationary_law(model)
    pi = res.law.reshape(-1)
    assert res.law.shape == (model.num_full_states, model.num_agents)
    assert abs(pi.sum() - 1.0) < 1e-12 and np.all(pi >= 0)
    assert np.abs(pi @ T - pi).max() < 1e-14
    n = 20000
    assert np.abs(cesaro(T, rho, n) - pi).sum() < 100 / n
    assert stationary_law(model) is res   # cached


def test_reducible_model_two_closed_classes_against_cesaro():
    model = reducible_model(np.random.default_rng(5))
    res = stationary_law(model)
    assert res.num_closed_classes == 2 and res.num_transient_states == 3
    assert res.class_periods == (1, 1)
    T = raw_chain(model, uniform_behavior(model))
    pi = res.law.reshape(-1)
    n = 20000
    assert np.abs(cesaro(T, raw_rho0(model), n) - pi).sum() < 100 / n
    # agent 0 picks 1 or 2 with probability 1/2 each
    assert res.class_weights == pytest.approx((0.5, 0.5), abs=1e-14)
    assert res.law[:, 0].sum() == 0.0


def test_periodic_model_against_cesaro():
    model = periodic_model(np.random.default_rng(6))
    res = stationary_law(model)
    assert res.num_closed_classes == 1 and res.class_periods == (2,)
    T = raw_chain(model, uniform_behavior(model))
    pi = res.law.reshape(-1)
    n = 20000
    assert np.abs(cesaro(T, raw_rho0(model), n) - pi).sum() < 100 / n
    assert res.law[:, 0].sum() == pytest.approx(0.5, abs=1e-14)


def test_restart_usually_gives_one_closed_class():
    model = random_icsmdp(4, num_agents=3, num_interface=3, stop_admissible=True)
    res = stationary_law(model)
    assert res.num_closed_classes == 1


def test_mu_is_law_times_behavior():
    model = load_example("tiny-handoff")
    res = stationary_law(model)
    beh = uniform_behavior(model)
    m = mu(model, res.law, behavior=beh)
    assert m.shape == (3, 2, 3)
    for f in range(3):
        for i in range(2):
            o = model.agents[i].observation[f, 0]
            assert np.array_equal(m[f, i], res.law[f, i] * beh[i][o])
    assert m.sum() == pytest.approx(1.0, abs=1e-14)
    with pytest.raises(InvalidArgumentError, match=r"^`law` must hold 6 values \(one per epoch state\), got 5\.$"):
        mu(model, np.ones(5) / 5)


def test_tiny_handoff_by_hand():
    # planner at m0 hands to checker (1/2) or STOPs (1/2); ends at m1 w.p. 2/3, m2 w.p. 1/3
    model = load_example("tiny-handoff")
    T = epoch_chain(model)
    assert T[0].tolist() == pytest.approx([0.5, 0, 0, 1 / 3, 0, 1 / 6], abs=1e-15)
    # closed class: (m0, planner), (m1, checker), (m2, planner), (m2, checker); by hand
    # pi solves pi T = pi on these four states
    res = stationary_law(model)
    idx = [0, 3, 4, 5]
    sub = T[np.ix_(idx, idx)]
    A = np.vstack([sub.T - np.eye(4), np.ones((1, 4))])
    ref = np.linalg.lstsq(A, np.concatenate([np.zeros(4), [1.0]]), rcond=None)[0]
    assert np.abs(res.law.reshape(-1)[idx] - ref).max() < 1e-14
    assert res.law.reshape(-1)[[1, 2]].tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- matrix-free route (large chains)
@pytest.mark.parametrize("seed", range(4))
def test_matrix_free_occupancy_equals_the_dense_route(seed):
    model = random_icsmdp(seed, num_agents=3, num_latent=2, num_interface=3, num_private=2,
                          num_actions=2, stop_admissible=True)
    dense = stationary_law(model).law
    free = stationary_law(model, exact_limit=10)
    assert free.settings["method"] == "operator"
    np.testing.assert_allclose(free.law, dense, atol=1e-12)


def test_matrix_free_occupancy_refuses_a_chain_that_never_stops():
    model = random_icsmdp(0, num_agents=2, num_interface=4, stop_admissible=False)
    with pytest.raises(StateSpaceTooLargeError, match="does not reach STOP"):
        stationary_law(model, exact_limit=2)
    with pytest.raises(StateSpaceTooLargeError, match="was not accepted"):
        renewal_occupancy(model, method="gmres")


@pytest.mark.parametrize("seed", range(3))
def test_matrix_free_gmres_equals_the_renewal_sum(seed):
    """GMRES on (I - A^T) z = rho0 against the term-by-term renewal sum sum_k rho0^T A^k."""
    model = random_icsmdp(seed, num_agents=3, num_latent=2, num_interface=4, num_private=2,
                          num_actions=2, stop_admissible=True)
    res = stationary_law(model, exact_limit=10)
    assert "GMRES" in res.message and res.iterations >= 1
    beh = validate_behavior(model, None)
    by_sum = renewal_occupancy(model, behavior=beh, method="renewal_sum", rel_tol=1e-15)
    assert "epochs summed" in by_sum.message and by_sum.iterations > 1
    np.testing.assert_allclose(res.law, by_sum.law, atol=1e-13)
    # and both against the dense route: the occupancy of the dense chain from rho0
    T = raw_chain(model, beh)
    pi = res.law.reshape(-1)
    assert np.abs(pi @ T - pi).max() < 1e-13


def test_stationary_law_cache_is_keyed_by_behavior_and_exact_limit():
    model = random_icsmdp(1, num_agents=2, num_interface=4, num_private=(2, 1),
                          stop_admissible=True)
    beh = uniform_behavior(model)
    other = [b.copy() for b in beh]
    other[0] = np.where(beh[0] > 0, np.arange(1, beh[0].shape[1] + 1), 0.0)
    other[0] /= other[0].sum(axis=1, keepdims=True)
    a = stationary_law(model, behavior=beh)
    b = stationary_law(model, behavior=other)
    c = stationary_law(model, behavior=beh, exact_limit=2)
    assert stationary_law(model, behavior=beh) is a
    assert b is not a and not np.allclose(a.law, b.law)
    assert c is not a and c.settings["method"] == "operator"
    for res, bb in ((a, beh), (b, other)):
        pi = res.law.reshape(-1)
        assert np.abs(pi @ raw_chain(model, bb) - pi).max() < 1e-13


def test_stationary_law_validation():
    model = load_example("tiny-handoff")
    with pytest.raises(InvalidArgumentError, match=r"^`exact_limit` must be an integer >= 1, got 0\.$"):
        stationary_law(model, exact_limit=0)
    with pytest.raises(InvalidArgumentError, match=r"^`method` must be one of 'auto', 'gmres', 'renewal_sum', got 'lu'\.$"):
        renewal_occupancy(model, method="lu")
    with pytest.raises(TypeError):
        stationary_law(model, uniform_behavior(model))   # behavior is keyword-only
