"""Batched estimators: values, SGD steps and gradients against independent computations.

References: central finite differences of the network's output (computed
through :func:`mlp_values`, a plain dense forward pass), the explicit SGD
formula ``theta - eta (Q - y) grad Q`` with the finite-difference gradient,
and per-seed calls compared bit for bit with batched ones.
"""
from __future__ import annotations

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from solvers.common import greedy
from solvers.approximators import (LinearQ, MLPQ, TabularQ, max_and_greedy, mlp_init, mlp_jacobian,
                                   mlp_num_parameters, mlp_values)

ADM = np.array([True, False, True, True])


def _fd_jacobian(theta, inputs, hidden, C, h=1e-6):
    J = np.empty(inputs.shape[:1] + (C, theta.size))
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        J[:, :, p] = (mlp_values(theta + e, inputs, hidden, C)
                      - mlp_values(theta - e, inputs, hidden, C)) / (2 * h)
    return J


@pytest.mark.parametrize("hidden, one_hot", [((5,), True), ((4, 3), False), ((3, 4, 2), False)])
def test_mlp_jacobian_matches_finite_differences(hidden, one_hot):
    rng = np.random.default_rng(len(hidden))
    nO, C = 4, 3
    inputs = np.eye(nO) if one_hot else rng.standard_normal((nO, 3))
    theta = mlp_init(rng, inputs.shape[1], hidden, C, one_hot=one_hot)
    theta += 0.1 * rng.standard_normal(theta.size)  # nonzero biases too
    J = mlp_jacobian(theta, inputs, hidden, C)
    assert J.shape == (nO, C, mlp_num_parameters(inputs.shape[1], hidden, C))
    assert np.allclose(J, _fd_jacobian(theta, inputs, hidden, C), rtol=1e-6, atol=1e-7)


def test_mlp_values_and_sgd_step_against_formula():
    rng = np.random.default_rng(0)
    S, nO, C, hidden = 5, 3, ADM.size, (6, 5)
    inputs = rng.standard_normal((nO, 2))
    theta0 = np.stack([mlp_init(rng, 2, hidden, C, one_hot=False) for _ in range(S)])
    est = MLPQ(S, nO, ADM, theta0=theta0, hidden=hidden, inputs=inputs)
    for s in range(S):
        q = mlp_values(theta0[s], inputs, hidden, C)
        assert np.allclose(est.table([s])[0][:, ADM], q[:, ADM], rtol=1e-13, atol=1e-13)
        assert np.all(np.isnan(est.table([s])[0][:, ~ADM]))
    seeds = np.array([0, 2, 4])
    o = np.array([1, 0, 2])
    c = np.array([0, 3, 2])
    y = np.array([0.5, -1.0, 2.0])
    eta = np.array([0.1, 0.05, 0.2])
    before = est.parameters(seeds)
    q_before = est.value(seeds, o, c)
    est.sgd(seeds, o, c, y, eta)
    after = est.parameters(seeds)
    for r, s in enumerate(seeds):
        g = _fd_jacobian(before[r], inputs, hidden, C)[o[r], c[r]]
        expect = before[r] - eta[r] * (q_before[r] - y[r]) * g
        assert np.allclose(after[r], expect, rtol=1e-7, atol=1e-8)
    # untouched seeds keep their parameters exactly
    assert np.array_equal(est.parameters([1, 3]), theta0[[1, 3]])


def test_one_hot_mlp_equals_explicit_one_hot_inputs():
    rng = np.random.default_rng(2)
    nO, C, hidden = 4, ADM.size, (7, 3)
    th = mlp_init(rng, nO, hidden, C)
    a = MLPQ(2, nO, ADM, theta0=th, hidden=hidden)
    b = MLPQ(2, nO, ADM, theta0=th, hidden=hidden, inputs=np.eye(nO))
    assert np.allclose(a.table(), b.table(), rtol=1e-14, atol=1e-14, equal_nan=True)
    s, o, c = np.array([1]), np.array([2]), np.array([3])
    a.sgd(s, o, c, np.array([1.0]), np.array([0.3]))
    b.sgd(s, o, c, np.array([1.0]), np.array([0.3]))
    assert np.allclose(a.parameters(), b.parameters(), rtol=1e-13, atol=1e-14)


def test_linear_and_tabular_steps():
    rng = np.random.default_rng(3)
    psi = rng.standard_normal((3, ADM.size, 4))
    lin = LinearQ(2, psi, ADM, theta0=np.array([0.5, -1.0, 0.0, 2.0]))
    th = lin.parameters([1])[0]
    q = psi[2, 3] @ th
    lin.sgd(np.array([1]), np.array([2]), np.array([3]), np.array([1.5]), np.array([0.1]))
    assert np.allclose(lin.parameters([1])[0], th - 0.1 * (q - 1.5) * psi[2, 3], rtol=1e-14)
    assert np.allclose(lin.table([1])[0][:, ADM], (psi @ lin.parameters([1])[0])[:, ADM])
    tab = TabularQ(3, 2, ADM, init=1.0)
    tab.sgd(np.array([0, 2]), np.array([1, 0]), np.array([2, 3]), np.array([3.0, -1.0]),
            np.array([0.5, 1.0]))
    t = tab.table()
    assert t[0, 1, 2] == 2.0 and t[2, 0, 3] == -1.0 and t[1, 1, 2] == 1.0
    assert np.isnan(t[:, :, 1]).all()
    assert np.array_equal(tab.values(np.array([0]), np.array([1]))[0, ADM], t[0, 1, ADM])


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_projection_onto_trust_region(kind):
    rng = np.random.default_rng(4)
    nO, omega = 3, 0.05
    if kind == "linear":
        est = LinearQ(2, rng.standard_normal((nO, ADM.size, 5)), ADM, omega=omega)
    else:
        est = MLPQ(2, nO, ADM, theta0=mlp_init(rng, nO, (4,), ADM.size), hidden=(4,), omega=omega)
    th0 = est.initial_parameters()
    s = np.array([0, 1])
    for _ in range(20):
        est.sgd(s, np.array([0, 2]), np.array([0, 3]), np.array([50.0, -50.0]), np.array([0.5, 0.5]))
        d = np.linalg.norm(est.parameters() - th0, axis=1)
        assert np.all(d <= omega * (1 + 1e-12))
    assert np.allclose(d, omega)


@pytest.mark.parametrize("kind", ["tabular", "linear", "mlp"])
def test_batched_calls_equal_per_seed_calls_bitwise(kind):
    rng = np.random.default_rng(5)
    S, nO = 7, 4

    def make():
        if kind == "tabular":
            return TabularQ(S, nO, ADM)
        if kind == "linear":
            return LinearQ(S, np.random.default_rng(9).standard_normal((nO, ADM.size, 6)), ADM)
        return MLPQ(S, nO, ADM, theta0=mlp_init(np.random.default_rng(9), nO, (16, 8), ADM.size),
                    hidden=(16, 8))
    a, b = make(), make()
    for _ in range(30):
        seeds = np.sort(rng.choice(S, size=rng.integers(1, S + 1), replace=False))
        o = rng.integers(0, nO, seeds.size)
        c = rng.choice(np.flatnonzero(ADM), seeds.size)
        y = rng.standard_normal(seeds.size)
        eta = rng.uniform(0.01, 0.3, seeds.size)
        a.sgd(seeds, o, c, y, eta)
        for r in range(seeds.size):
            b.sgd(seeds[r:r + 1], o[r:r + 1], c[r:r + 1], y[r:r + 1], eta[r:r + 1])
        assert np.array_equal(a.best(seeds, o), np.concatenate(
            [b.best(seeds[r:r + 1], o[r:r + 1]) for r in range(seeds.size)]))
    assert np.array_equal(a.parameters(), b.parameters())


def test_max_and_greedy_matches_reference_tie_rule():
    rng = np.random.default_rng(6)
    q = np.round(rng.standard_normal((500, 5)), 1)  # many exact ties
    q[::7, 1] = q[::7, 3] + 5e-11                    # ties within the tolerance
    adm = np.array([True, True, False, True, True])
    idx = np.flatnonzero(adm)
    best, pick = max_and_greedy([q[:, c] for c in idx], idx, 1e-10)
    assert np.array_equal(pick, greedy(q, np.broadcast_to(adm, q.shape)))
    assert np.array_equal(best, np.where(adm, q, -np.inf).max(axis=1))


def test_estimators_reject_bad_shapes():
    with pytest.raises(InvalidArgumentError, match="`features`"):
        LinearQ(2, np.zeros((3, 2, 1)), ADM)
    with pytest.raises(InvalidArgumentError, match="`theta0`"):
        MLPQ(2, 3, ADM, theta0=np.zeros(5), hidden=(4,))
    with pytest.raises(InvalidArgumentError, match="`omega`"):
        LinearQ(2, np.zeros((3, ADM.size, 1)), ADM, omega=-1.0)


def test_tabular_max_and_greedy_track_the_table():
    rng = np.random.default_rng(7)
    S, nO = 4, 3
    tab = TabularQ(S, nO, ADM, init=0.5)
    for _ in range(200):
        seeds = np.sort(rng.choice(S, size=rng.integers(1, S + 1), replace=False))
        o = rng.integers(0, nO, seeds.size)
        c = rng.choice(np.flatnonzero(ADM), seeds.size)
        # values on a coarse grid create exact ties often
        tab.sgd(seeds, o, c, np.round(rng.standard_normal(seeds.size), 1), np.ones(seeds.size))
        t = tab.table()
        all_s, all_o = np.repeat(np.arange(S), nO), np.tile(np.arange(nO), S)
        flat = t.reshape(S * nO, -1)
        assert np.array_equal(tab.best(all_s, all_o), np.nanmax(flat, axis=1))
        assert np.array_equal(tab.greedy(all_s, all_o, 1e-10),
                              greedy(np.nan_to_num(flat, nan=-np.inf), np.broadcast_to(ADM, flat.shape)))
