"""Tests of :mod:`estimators.epoch_chain` (SPEC section 6) against independent computations.

The epoch chain is rebuilt by explicit loops over full states from the raw
model arrays (``internal_policy``, ``kernel[a]``, ``end_probability``,
``observation``, ``successors``, the initial laws), with the end law
``(I - Kbar diag(1 - beta))^{-1} Kbar diag(beta)`` by ``numpy.linalg.inv``
(:mod:`property_tests.estimators.chains`), and checked against a Monte Carlo
simulation of epochs (5 standard errors per cell, seeded).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from estimators.behavior import uniform_behavior
from estimators.epoch_chain import (DENSE_CHAIN_LIMIT, EpochStepper, end_law, epoch_chain,
                                    epoch_chain_operator, epoch_chain_split, stop_and_restart)
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.generators import random_icsmdp
from property_tests.estimators.chains import (MODEL_SHAPES, full_states, hand_model, raw_agent,
                                              raw_chain, raw_rho0, simulate_epochs, stochastic)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kwargs", MODEL_SHAPES)
def test_epoch_chain_matches_raw_loops(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    rng = np.random.default_rng(seed)
    beh = []
    for a in model.agents:
        w = rng.random((a.num_observations, model.num_agents + 1)) * a.successors
        beh.append(w / w.sum(axis=1, keepdims=True))
    expected = raw_chain(model, beh)
    T = epoch_chain(model, behavior=beh)
    assert T.shape == expected.shape
    assert np.abs(T - expected).max() < 1e-12
    assert np.abs(T.sum(axis=1) - 1.0).max() < 1e-12
    S = epoch_chain(model, behavior=beh, sparse=True)
    assert sp.issparse(S) and np.abs(S.toarray() - expected).max() < 1e-12
    split = epoch_chain_split(model, behavior=beh)
    assert np.abs(split.toarray() - expected).max() < 1e-12
    v = rng.normal(size=T.shape[0])
    op = epoch_chain_operator(model, behavior=beh)
    assert np.abs(op.matvec(v) - expected @ v).max() < 1e-12
    assert np.abs(op.rmatvec(v) - expected.T @ v).max() < 1e-12
    # default behavior is uniform over admissible successors
    T_unif = raw_chain(model, uniform_behavior(model))
    assert np.abs(epoch_chain(model) - T_unif).max() < 1e-12
    # the operator shares one solve between successors with equal columns (uniform: all equal)
    op = epoch_chain_operator(model)
    assert np.abs(op.matvec(v) - T_unif @ v).max() < 1e-12
    assert np.abs(op.rmatvec(v) - T_unif.T @ v).max() < 1e-12
    w = v + 1j * rng.normal(size=v.size)
    assert np.abs(op.matvec(w) - T_unif @ w).max() < 1e-12
    assert np.abs(op.rmatvec(w) - T_unif.T @ w).max() < 1e-12


def test_end_law_zero_outside_support_and_matches_inverse():
    model = random_icsmdp(3, num_agents=1, num_interface=30, nnz_per_row=2,
                          end_probability=(0.05, 1.0))
    _, _, P = raw_agent(model, 0)
    got = end_law(model, 0)
    assert np.abs(got - P).max() < 1e-12
    # structural zeros (reachability) are exact zeros, not round-off
    assert np.array_equal(got > 0, P > 1e-14)
    assert np.all(got[P <= 1e-14] == 0.0)


@pytest.mark.parametrize("kwargs, seed", [(MODEL_SHAPES[1], 0), (MODEL_SHAPES[2], 1), (MODEL_SHAPES[3], 2)])
def test_epoch_chain_matches_monte_carlo(kwargs, seed):
    model = random_icsmdp(seed, **kwargs)
    beh = uniform_behavior(model)
    T = epoch_chain(model, behavior=beh)
    rng = np.random.default_rng(100 + seed)
    num = 20000
    # the start state with the most spread-out row: the hardest to match
    s = int(np.argmax((T > 0).sum(axis=1)))
    draws = simulate_epochs(model, beh, s, num, rng)
    freq = np.bincount(draws, minlength=T.shape[0]) / num
    se = np.sqrt(T[s] * (1 - T[s]) / num)
    assert np.all(np.abs(freq - T[s]) <= 5 * se + 1e-12), np.abs(freq - T[s]).max()
    assert np.all(freq[T[s] == 0] == 0)


def test_stop_moves_to_rho0():
    rng = np.random.default_rng(0)
    # agent 0 may only STOP; agent 1 hands to agent 0 or STOPs
    model = hand_model([dict(kernel=stochastic(rng, 3), successors=[False, False, True]),
                    dict(kernel=stochastic(rng, 3), successors=[True, False, True])],
                   nM=3, rho_xm=np.array([[0.2, 0.3, 0.5]]), rho_agent=[0.4, 0.6])
    T = epoch_chain(model)
    rho = raw_rho0(model)
    for f in range(3):
        assert np.array_equal(T[f * 2 + 0], rho)   # exactly rho0: no terminal epoch
    assert np.all(T[1::2] >= 0.5 * rho[None, :] - 1e-15)   # agent 1 STOPs w.p. 1/2
    assert np.allclose(T.sum(axis=1), 1.0)


def test_epoch_chain_size_guard():
    model = random_icsmdp(0, num_agents=2, num_interface=30)  # 60 epoch states
    with pytest.raises(StateSpaceTooLargeError,
                       match=r"this instance has n = 60 epoch states and the dense limit `exact_limit` is 50 "):
        epoch_chain(model, exact_limit=50)
    assert epoch_chain(model, sparse=True, exact_limit=50).shape == (60, 60)
    assert DENSE_CHAIN_LIMIT == 5000
    with pytest.raises(InvalidArgumentError, match=r"^`exact_limit` must be an integer >= 1, got 0\.$"):
        epoch_chain(model, exact_limit=0)


@pytest.mark.parametrize("kwargs", MODEL_SHAPES[1:3])
def test_stepper_and_restart_match_raw_loops(kwargs):
    model = random_icsmdp(5, **kwargs)
    beh = uniform_behavior(model)
    T = raw_chain(model, beh)
    X = np.random.default_rng(1).random((T.shape[0], 4))
    assert np.abs(EpochStepper(model, behavior=beh)(X) - T @ X).max() < 1e-14
    stop, rho = stop_and_restart(model, behavior=beh)
    assert np.abs(rho - raw_rho0(model)).max() < 1e-15
    N = model.num_agents
    states, _ = full_states(model)
    for f, (x, m, ls) in enumerate(states):
        for i, ag in enumerate(model.agents):
            assert stop[f * N + i] == beh[i][ag.observation[m, ls[i]]][N]
    # the restart part of each row is stop[s] * rho0 (rows restart only through STOP)
    assert np.all(T >= stop[:, None] * rho[None, :] - 1e-15)
