"""Tests of :mod:`estimators.markov_chain` against independent computations.

- GTH is compared with the birth-death closed form
  ``pi_k ∝ prod_{j<k} p_j / q_{j+1}``, including laws spanning ``1e-200..1``
  where ``numpy.linalg.eig`` loses all relative precision;
- the long-run occupancy of a reducible chain is compared with the mixture of
  per-class stationary laws weighted by absorption probabilities found by
  iterating the chain, and with a plain Cesaro average;
- detailed balance is compared with the definition ``pi_s T[s,s'] = pi_s' T[s',s]``
  on chains built reversible (symmetric weights, birth-death chains) or not.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from estimators.markov_chain import (absorption_probabilities, chain_classes, detailed_balance,
                                     gth_stationary, long_run_occupancy, symmetrized_chain)
from icsmdp_theory.errors import InvalidArgumentError
from property_tests.estimators.chains import (birth_death, birth_death_law, cesaro,
                                              drift_birth_death, stochastic)


# =========================================================================== GTH
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [2, 7, 150, 300])
def test_gth_birth_death_closed_form(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.5, size=n - 1)
    q = rng.uniform(0.05, 0.5, size=n - 1)
    pi = gth_stationary(birth_death(p, q))
    exact = birth_death_law(p, q)
    assert np.max(np.abs(pi - exact) / exact) < 1e-12


def test_gth_keeps_relative_precision_down_to_1e_200():
    # ratios p_j/q_j between 1e-21 and 1: the law spans 1 .. ~1e-200
    rng = np.random.default_rng(7)
    n = 25
    q = rng.uniform(0.3, 0.5, size=n - 1)
    p = q * 10.0 ** -rng.uniform(5.0, 12.0, size=n - 1)
    exact = birth_death_law(p, q)
    assert exact.min() < 1e-150 and exact.min() > 1e-250
    T = birth_death(p, q)
    pi = gth_stationary(T)
    assert np.max(np.abs(pi - exact) / exact) < 1e-12
    # the eigen-solver's answer for the same chain has no relative precision left
    vals, vecs = np.linalg.eig(T.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    v = v / v.sum()
    assert np.max(np.abs(v - exact) / exact) > 1e-3 or np.any(v <= 0)


def test_gth_sticky_states_whose_diagonal_rounds_to_one():
    # exit probabilities 1e-25..1e-17: 1 - P[k, k] is 0 in floating point, yet the law is
    # determined by the off-diagonal entries, which GTH alone uses
    rng = np.random.default_rng(8)
    n = 12
    p = 10.0 ** -rng.uniform(17.0, 25.0, size=n - 1)
    q = 10.0 ** -rng.uniform(17.0, 25.0, size=n - 1)
    T = birth_death(p, q)
    assert np.all(np.diag(T) == 1.0)
    exact = birth_death_law(p, q)
    pi = gth_stationary(T)
    assert np.max(np.abs(pi - exact) / exact) < 1e-12


@pytest.mark.parametrize("n", [3, 40, 260])
def test_gth_random_dense_against_linear_solve(n):
    rng = np.random.default_rng(n)
    T = stochastic(rng, n, density=0.5)
    # irreducible: add a cycle
    T = 0.9 * T + 0.1 * np.roll(np.eye(n), 1, axis=1)
    A = np.vstack([T.T - np.eye(n), np.ones((1, n))])
    ref = np.linalg.lstsq(A, np.concatenate([np.zeros(n), [1.0]]), rcond=None)[0]
    pi = gth_stationary(T)
    assert np.abs(pi - ref).max() < 1e-13
    assert np.abs(pi @ T - pi).max() < 1e-15 * n
    assert np.abs(gth_stationary(sp.csr_array(T)) - pi).max() < 1e-15


def test_gth_rejects_reducible_and_invalid():
    with pytest.raises(InvalidArgumentError, match=r"^`P` must be irreducible for GTH; it has 2 communicating classes"):
        gth_stationary([[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(InvalidArgumentError, match=r"^rows of `P` must sum to 1 \(within 1e-09\): row 1 sums to 0\.9\.$"):
        gth_stationary([[0.5, 0.5], [0.4, 0.5]])
    with pytest.raises(InvalidArgumentError, match=r"^`P` must be non-negative"):
        gth_stationary([[1.5, -0.5], [0.5, 0.5]])
    with pytest.raises(InvalidArgumentError, match=r"^`P` must be a non-empty square matrix, got shape \[2, 3\]\.$"):
        gth_stationary(np.ones((2, 3)) / 3)


# =========================================================================== classes and occupancy
def test_reducible_chain_is_absorption_weighted_mixture():
    rng = np.random.default_rng(11)
    n = 9
    T = np.zeros((n, n))
    T[0:2, 0:9] = rng.random((2, 9))          # transient states 0, 1 reach everything
    T[2:5, 2:5] = stochastic(rng, 3)         # closed class A = {2, 3, 4}
    T[5:9, 5:9] = stochastic(rng, 4)         # closed class B = {5, 6, 7, 8}
    T[5:9, 5:9] = 0.5 * T[5:9, 5:9] + 0.5 * np.roll(np.eye(4), 1, axis=1)
    T[0:2] /= T[0:2].sum(axis=1, keepdims=True)
    rho = np.zeros(n)
    rho[[0, 1, 3]] = [0.5, 0.3, 0.2]
    # absorption probabilities by brute-force iteration of the law
    v = rho.copy()
    for _ in range(3000):
        v = v @ T
    w_a, w_b = v[2:5].sum(), v[5:9].sum()
    assert v[:2].sum() < 1e-14

    def class_law(block):
        k = block.shape[0]
        A = np.vstack([block.T - np.eye(k), np.ones((1, k))])
        return np.linalg.lstsq(A, np.concatenate([np.zeros(k), [1.0]]), rcond=None)[0]
    expected = np.zeros(n)
    expected[2:5] = w_a * class_law(T[2:5, 2:5])
    expected[5:9] = w_b * class_law(T[5:9, 5:9])
    for mat in (T, sp.csr_array(T)):
        H = absorption_probabilities(mat, chain_classes(mat))
        e0, e1 = np.eye(n)[0], np.eye(n)[1]
        for row, e in zip(H, (e0, e1)):     # iterate the law from each transient state
            w = e.copy()
            for _ in range(3000):
                w = w @ T
            assert row == pytest.approx([w[2:5].sum(), w[5:9].sum()], abs=1e-13)
        res = long_run_occupancy(mat, rho)
        assert np.abs(res.law - expected).max() < 1e-13
        assert res.num_closed_classes == 2 and res.closed_class_sizes == (3, 4)
        assert res.class_weights == pytest.approx((w_a, w_b), abs=1e-13)
        assert res.num_transient_states == 2
        assert res.class_labels.tolist() == [-1, -1, 0, 0, 0, 1, 1, 1, 1]
    assert np.abs(cesaro(T, rho, 4000) - expected).sum() < 50 / 4000


def test_chain_classes_periods():
    # a 3-cycle and a 2-cycle with a transient state feeding both
    T = np.zeros((6, 6))
    T[0, 1] = T[1, 2] = T[2, 0] = 1.0
    T[3, 4] = T[4, 3] = 1.0
    T[5, [0, 3, 5]] = [0.25, 0.25, 0.5]
    c = chain_classes(T)
    assert c.labels.tolist() == [0, 0, 0, 1, 1, -1]
    assert c.periods == (3, 2) and c.transient.tolist() == [5]
    assert not c.is_ergodic_unichain


# =========================================================================== detailed balance
def _flows(T, pi):
    F = pi[:, None] * T
    return np.abs(F - F.T).max() / F.max()


@pytest.mark.parametrize("seed", range(4))
def test_detailed_balance_on_symmetric_weights(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    W = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    W = W + W.T + np.diag(rng.random(n))
    W[np.arange(n - 1), np.arange(1, n)] += 0.1   # connected
    W[np.arange(1, n), np.arange(n - 1)] += 0.1
    T = W / W.sum(axis=1, keepdims=True)
    pi = W.sum(axis=1) / W.sum()          # the closed form for a walk on weights
    assert _flows(T, pi) < 1e-14          # reversible by the definition
    for mat in (T, sp.csr_array(T)):
        db = detailed_balance(mat)
        assert db.is_reversible and db.violation < 1e-12
        np.testing.assert_allclose(np.exp(db.log_pi), pi, rtol=1e-12)
        S = symmetrized_chain(mat)
        S = S.toarray() if sp.issparse(S) else S
        r = np.sqrt(pi)
        np.testing.assert_allclose(S, r[:, None] * T / r[None, :], atol=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_detailed_balance_rejects_nonreversible(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 20))
    T = stochastic(rng, n)                # dense, symmetric support, generic: not reversible
    A = np.vstack([T.T - np.eye(n), np.ones((1, n))])
    pi = np.linalg.lstsq(A, np.concatenate([np.zeros(n), [1.0]]), rcond=None)[0]
    assert _flows(T, pi) > 1e-6           # the definition fails
    db = detailed_balance(T)
    assert not db.is_reversible and db.log_pi is None and "Kolmogorov" in db.reason
    cyc = 0.5 * np.eye(3) + 0.5 * np.roll(np.eye(3), 1, axis=1)   # one-way cycle
    assert detailed_balance(cyc).reason == "the support of T is not symmetric"


def test_detailed_balance_where_pi_underflows():
    # birth-death chain with drift: pi_k ∝ (p/q)^k spans 1 .. 1e-602, below double precision
    n, p, q = 1000, 0.1, 0.4
    T = drift_birth_death(n, p, q, sparse=True)
    db = detailed_balance(T)
    assert db.is_reversible
    logw = np.arange(n) * np.log(p / q)
    exact = logw - (logw.max() + np.log(np.exp(logw - logw.max()).sum()))
    assert exact.min() < -1380
    np.testing.assert_allclose(db.log_pi, exact, rtol=1e-12, atol=1e-9)
