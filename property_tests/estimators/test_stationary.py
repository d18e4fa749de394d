"""Tests of :mod:`estimators.stationary` (SPEC sections 4 and 6) against independent computations.

Nothing expected here is computed with the module under test:

- the epoch chain is rebuilt by explicit loops over full states from the raw
  model arrays (``internal_policy``, ``kernel[a]``, ``end_probability``,
  ``observation``, ``successors``, the initial laws), with the end law
  ``(I - Kbar diag(1 - beta))^{-1} Kbar diag(beta)`` by ``numpy.linalg.inv``,
  and checked against a Monte Carlo simulation of epochs (5 standard errors
  per cell, seeded);
- GTH is compared with the birth-death closed form
  ``pi_k ∝ prod_{j<k} p_j / q_{j+1}``, including laws spanning ``1e-200..1``
  where ``numpy.linalg.eig`` loses all relative precision;
- the long-run occupancy is compared with a plain Cesaro average
  ``(1/n) sum_{t<n} rho0 T^t`` and, for a reducible chain, with the mixture
  of per-class stationary laws weighted by absorption probabilities found by
  iterating the chain.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from estimators.behavior import uniform_behavior
from estimators.stationary import (DENSE_CHAIN_LIMIT, chain_classes, end_law, epoch_chain,
                                   epoch_chain_operator, epoch_chain_split, gth_stationary,
                                   long_run_occupancy, mu, stationary_law)
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.model import ICSMDP


# =========================================================================== raw helpers
def _raw_agent(model, i):
    """Dense ``Kbar[y, y']``, ``beta[y]`` and end law ``P[y, y']`` of agent ``i`` from raw fields."""
    ag = model.agents[i]
    nX, nM, nL = model.num_latent, model.num_interface, ag.rho_private.shape[0]
    nY = nX * nM * nL
    K = np.stack([sp.csr_array(k).toarray() for k in ag.kernel])
    kbar = np.zeros((nY, nY))
    beta = np.zeros(nY)
    for x, m, l in itertools.product(range(nX), range(nM), range(nL)):
        y = (x * nM + m) * nL + l
        for a in range(K.shape[0]):
            kbar[y] += ag.internal_policy[m, l, a] * K[a, y]
        beta[y] = ag.end_probability[x, m, l]
    P = np.linalg.inv(np.eye(nY) - kbar * (1 - beta)[None, :]) @ (kbar * beta[None, :])
    return kbar, beta, P


def _full_states(model):
    nX, nM, nL = model.num_latent, model.num_interface, model.num_private
    states = [(x, m, ls) for x in range(nX) for m in range(nM)
              for ls in itertools.product(*[range(n) for n in nL])]
    return states, {s: f for f, s in enumerate(states)}


def _raw_rho0(model):
    states, _ = _full_states(model)
    N = model.num_agents
    rho = np.zeros(len(states) * N)
    for f, (x, m, ls) in enumerate(states):
        p = model.rho_latent_interface[x, m]
        for j, l in enumerate(ls):
            p *= model.agents[j].rho_private[l]
        for i in range(N):
            rho[f * N + i] = p * model.rho_agent[i]
    return rho


def _raw_chain(model, behavior):
    """The epoch chain of SPEC section 6 by explicit loops."""
    states, index = _full_states(model)
    N, nM = model.num_agents, model.num_interface
    n = len(states) * N
    rho = _raw_rho0(model)
    ends = [_raw_agent(model, i)[2] for i in range(N)]
    T = np.zeros((n, n))
    for f, (x, m, ls) in enumerate(states):
        for i, ag in enumerate(model.agents):
            nL = len(ag.rho_private)
            y = (x * nM + m) * nL + ls[i]
            b = behavior[i][ag.observation[m, ls[i]]]
            s = f * N + i
            T[s] += b[N] * rho
            for c in range(N):
                if b[c] == 0:
                    continue
                for y2 in range(ends[i].shape[1]):
                    xm2, l2 = divmod(y2, nL)
                    x2, m2 = divmod(xm2, nM)
                    ls2 = list(ls)
                    ls2[i] = l2
                    T[s, index[(x2, m2, tuple(ls2))] * N + c] += b[c] * ends[i][y, y2]
    return T


def _simulate_epochs(model, behavior, s, num, rng):
    """``num`` next epoch states from epoch state ``s``, simulated from the raw arrays."""
    states, index = _full_states(model)
    N, nM = model.num_agents, model.num_interface
    f, i = divmod(s, N)
    x, m, ls = states[f]
    ag = model.agents[i]
    nL = len(ag.rho_private)
    K = np.stack([sp.csr_array(k).toarray() for k in ag.kernel])
    b = behavior[i][ag.observation[m, ls[i]]]
    succ = rng.choice(N + 1, size=num, p=b)
    y = np.full(num, (x * nM + m) * nL + ls[i])
    running = np.ones(num, bool)
    while running.any():
        idx = np.flatnonzero(running)
        yy = y[idx]
        l_, xm = yy % nL, yy // nL
        m_ = xm % nM
        pol = ag.internal_policy[m_, l_]                      # (k, nA)
        a = (rng.random(idx.size)[:, None] > np.cumsum(pol, axis=1)).sum(axis=1)
        a = np.minimum(a, pol.shape[1] - 1)
        rows = K[a, yy]                                       # (k, nY)
        nxt = (rng.random(idx.size)[:, None] > np.cumsum(rows, axis=1)).sum(axis=1)
        nxt = np.minimum(nxt, rows.shape[1] - 1)
        y[idx] = nxt
        xx, mm, ll = nxt // (nM * nL), (nxt // nL) % nM, nxt % nL
        ended = rng.random(idx.size) < ag.end_probability[xx, mm, ll]
        running[idx[ended]] = False
    out = np.empty(num, dtype=np.int64)
    rho = _raw_rho0(model)
    stop = succ == N
    out[stop] = rng.choice(rho.size, size=int(stop.sum()), p=rho)
    for k in np.flatnonzero(~stop):
        l2, xm2 = y[k] % nL, y[k] // nL
        ls2 = list(ls)
        ls2[i] = int(l2)
        out[k] = index[(int(xm2 // nM), int(xm2 % nM), tuple(ls2))] * N + succ[k]
    return out


def _model(agents, *, nM=2, rho_xm=None, rho_agent, name="hand"):
    """An ICSMDP with nX = 1 and the given agent specs (defaults filled in)."""
    N = len(agents)
    full = []
    for spec in agents:
        nL = spec.get("n_private", 1)
        nY = nM * nL
        d = dict(name=spec.get("name", f"a{len(full)}"), n_private=nL, n_actions=1,
                 rho_private=spec.get("rho_private", np.full(nL, 1.0 / nL)),
                 internal_policy=np.ones((nM, nL, 1)), kernel=spec["kernel"].reshape(1, nY, nY),
                 reward=np.zeros((1, nM, 1, N + 1)),
                 end_probability=spec.get("beta", np.ones((1, nM, nL))),
                 observation=spec.get("observation", np.arange(nY).reshape(nM, nL)),
                 successors=np.array(spec["successors"]))
        full.append(d)
    rho_xm = np.full((1, nM), 1.0 / nM) if rho_xm is None else rho_xm
    return ICSMDP(name=name, gamma=0.9, horizon=10, n_latent=1, n_interface=nM,
                  rho_latent_interface=rho_xm, rho_agent=rho_agent, agents=full)


def _stochastic(rng, n, density=1.0):
    w = rng.random((n, n)) * (rng.random((n, n)) < density)
    w[np.arange(n), rng.permutation(n)] += 0.1
    return w / w.sum(axis=1, keepdims=True)


def _cesaro(T, rho, n):
    acc = np.zeros_like(rho)
    v = rho.copy()
    for _ in range(n):
        acc += v
        v = v @ T
    return acc / n


SHAPES = [
    dict(num_agents=1, num_interface=4),
    dict(num_agents=2, num_latent=2, num_interface=3, num_private=(2, 3)),
    dict(num_agents=3, num_interface=2, num_private=(2, 1, 2), num_actions=2, nnz_per_row=2),
    dict(num_agents=2, num_interface=5, nnz_per_row=2, end_probability=(0.1, 0.6),
         observation="random"),
]


# =========================================================================== the epoch chain
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kwargs", SHAPES)
def test_epoch_chain_matches_raw_loops(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    rng = np.random.default_rng(seed)
    beh = []
    for a in model.agents:
        w = rng.random((a.num_observations, model.num_agents + 1)) * a.successors
        beh.append(w / w.sum(axis=1, keepdims=True))
    expected = _raw_chain(model, beh)
    T = epoch_chain(model, beh)
    assert T.shape == expected.shape
    assert np.abs(T - expected).max() < 1e-12
    assert np.abs(T.sum(axis=1) - 1.0).max() < 1e-12
    S = epoch_chain(model, beh, sparse=True)
    assert sp.issparse(S) and np.abs(S.toarray() - expected).max() < 1e-12
    split = epoch_chain_split(model, beh)
    assert np.abs(split.toarray() - expected).max() < 1e-12
    v = rng.normal(size=T.shape[0])
    op = epoch_chain_operator(model, beh)
    assert np.abs(op.matvec(v) - expected @ v).max() < 1e-12
    assert np.abs(op.rmatvec(v) - expected.T @ v).max() < 1e-12
    # default behavior is uniform over admissible successors
    T_unif = _raw_chain(model, uniform_behavior(model))
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
    _, _, P = _raw_agent(model, 0)
    got = end_law(model, 0)
    assert np.abs(got - P).max() < 1e-12
    # structural zeros (reachability) are exact zeros, not round-off
    assert np.array_equal(got > 0, P > 1e-14)
    assert np.all(got[P <= 1e-14] == 0.0)


@pytest.mark.parametrize("kwargs, seed", [(SHAPES[1], 0), (SHAPES[2], 1), (SHAPES[3], 2)])
def test_epoch_chain_matches_monte_carlo(kwargs, seed):
    model = random_icsmdp(seed, **kwargs)
    beh = uniform_behavior(model)
    T = epoch_chain(model, beh)
    rng = np.random.default_rng(100 + seed)
    num = 20000
    # the start state with the most spread-out row: the hardest to match
    s = int(np.argmax((T > 0).sum(axis=1)))
    draws = _simulate_epochs(model, beh, s, num, rng)
    freq = np.bincount(draws, minlength=T.shape[0]) / num
    se = np.sqrt(T[s] * (1 - T[s]) / num)
    assert np.all(np.abs(freq - T[s]) <= 5 * se + 1e-12), np.abs(freq - T[s]).max()
    assert np.all(freq[T[s] == 0] == 0)


def test_stop_moves_to_rho0():
    rng = np.random.default_rng(0)
    # agent 0 may only STOP; agent 1 hands to agent 0 or STOPs
    model = _model([dict(kernel=_stochastic(rng, 3), successors=[False, False, True]),
                    dict(kernel=_stochastic(rng, 3), successors=[True, False, True])],
                   nM=3, rho_xm=np.array([[0.2, 0.3, 0.5]]), rho_agent=[0.4, 0.6])
    T = epoch_chain(model)
    rho = _raw_rho0(model)
    for f in range(3):
        assert np.array_equal(T[f * 2 + 0], rho)   # exactly rho0: no terminal epoch
    assert np.all(T[1::2] >= 0.5 * rho[None, :] - 1e-15)   # agent 1 STOPs w.p. 1/2
    assert np.allclose(T.sum(axis=1), 1.0)


def test_epoch_chain_size_guard():
    model = random_icsmdp(0, num_agents=2, num_interface=30)  # 60 epoch states
    with pytest.raises(StateSpaceTooLargeError,
                       match=r"this instance has n = 60 epoch states and the dense limit is 50 "):
        epoch_chain(model, max_states=50)
    assert epoch_chain(model, sparse=True, max_states=50).shape == (60, 60)
    assert DENSE_CHAIN_LIMIT == 5000
    with pytest.raises(InvalidArgumentError, match=r"^`max_states` must be an integer >= 1, got 0\.$"):
        epoch_chain(model, max_states=0)


# =========================================================================== GTH
def _birth_death(p, q):
    """Birth-death chain with up-probabilities ``p[k]`` (k < n-1) and down ``q[k]`` (k > 0)."""
    n = len(p) + 1
    T = np.zeros((n, n))
    for k in range(n - 1):
        T[k, k + 1] = p[k]
        T[k + 1, k] = q[k]
    T[np.arange(n), np.arange(n)] = 1.0 - T.sum(axis=1)
    return T


def _birth_death_law(p, q):
    """``pi_k ∝ prod_{j<k} p_j / q_j`` (``q_j`` = down-probability from ``j+1``), in log space."""
    logw = np.concatenate([[0.0], np.cumsum(np.log(p) - np.log(q))])
    w = np.exp(logw - logw.max())
    return w / w.sum()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [2, 7, 150, 300])
def test_gth_birth_death_closed_form(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.5, size=n - 1)
    q = rng.uniform(0.05, 0.5, size=n - 1)
    pi = gth_stationary(_birth_death(p, q))
    exact = _birth_death_law(p, q)
    assert np.max(np.abs(pi - exact) / exact) < 1e-12


def test_gth_keeps_relative_precision_down_to_1e_200():
    # ratios p_j/q_j between 1e-21 and 1: the law spans 1 .. ~1e-200
    rng = np.random.default_rng(7)
    n = 25
    q = rng.uniform(0.3, 0.5, size=n - 1)
    p = q * 10.0 ** -rng.uniform(5.0, 12.0, size=n - 1)
    exact = _birth_death_law(p, q)
    assert exact.min() < 1e-150 and exact.min() > 1e-250
    T = _birth_death(p, q)
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
    T = _birth_death(p, q)
    assert np.all(np.diag(T) == 1.0)
    exact = _birth_death_law(p, q)
    pi = gth_stationary(T)
    assert np.max(np.abs(pi - exact) / exact) < 1e-12


@pytest.mark.parametrize("n", [3, 40, 260])
def test_gth_random_dense_against_linear_solve(n):
    rng = np.random.default_rng(n)
    T = _stochastic(rng, n, density=0.5)
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


# =========================================================================== occupancy
def test_reducible_chain_is_absorption_weighted_mixture():
    rng = np.random.default_rng(11)
    n = 9
    T = np.zeros((n, n))
    T[0:2, 0:9] = rng.random((2, 9))          # transient states 0, 1 reach everything
    T[2:5, 2:5] = _stochastic(rng, 3)         # closed class A = {2, 3, 4}
    T[5:9, 5:9] = _stochastic(rng, 4)         # closed class B = {5, 6, 7, 8}
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
        res = long_run_occupancy(mat, rho)
        assert np.abs(res.law - expected).max() < 1e-13
        assert res.num_closed_classes == 2 and res.closed_class_sizes == (3, 4)
        assert res.class_weights == pytest.approx((w_a, w_b), abs=1e-13)
        assert res.num_transient_states == 2
        assert res.class_labels.tolist() == [-1, -1, 0, 0, 0, 1, 1, 1, 1]
    assert np.abs(_cesaro(T, rho, 4000) - expected).sum() < 50 / 4000


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kwargs", SHAPES)
def test_stationary_law_matches_cesaro_average(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    beh = uniform_behavior(model)
    T = _raw_chain(model, beh)
    rho = _raw_rho0(model)
    res = stationary_law(model)
    pi = res.law.reshape(-1)
    assert res.law.shape == (model.num_full_states, model.num_agents)
    assert abs(pi.sum() - 1.0) < 1e-12 and np.all(pi >= 0)
    assert np.abs(pi @ T - pi).max() < 1e-14
    n = 20000
    assert np.abs(_cesaro(T, rho, n) - pi).sum() < 100 / n
    assert stationary_law(model) is res   # cached


def _reducible_model(rng):
    # agent 0 hands to agent 1 or 2; agents 1 and 2 only ever hand to themselves (no STOP)
    return _model([dict(kernel=_stochastic(rng, 3), successors=[False, True, True, False]),
                   dict(kernel=_stochastic(rng, 3), successors=[False, True, False, False]),
                   dict(kernel=_stochastic(rng, 3), successors=[False, False, True, False])],
                  nM=3, rho_agent=[1.0, 0.0, 0.0])


def _periodic_model(rng):
    # two agents that must alternate, never STOP: period 2
    return _model([dict(kernel=_stochastic(rng, 3), successors=[False, True, False]),
                   dict(kernel=_stochastic(rng, 3), successors=[True, False, False])],
                  nM=3, rho_agent=[1.0, 0.0])


def test_reducible_model_two_closed_classes_against_cesaro():
    model = _reducible_model(np.random.default_rng(5))
    res = stationary_law(model)
    assert res.num_closed_classes == 2 and res.num_transient_states == 3
    assert res.class_periods == (1, 1)
    T = _raw_chain(model, uniform_behavior(model))
    pi = res.law.reshape(-1)
    n = 20000
    assert np.abs(_cesaro(T, _raw_rho0(model), n) - pi).sum() < 100 / n
    # agent 0 picks 1 or 2 with probability 1/2 each
    assert res.class_weights == pytest.approx((0.5, 0.5), abs=1e-14)
    assert res.law[:, 0].sum() == 0.0


def test_periodic_model_against_cesaro():
    model = _periodic_model(np.random.default_rng(6))
    res = stationary_law(model)
    assert res.num_closed_classes == 1 and res.class_periods == (2,)
    T = _raw_chain(model, uniform_behavior(model))
    pi = res.law.reshape(-1)
    n = 20000
    assert np.abs(_cesaro(T, _raw_rho0(model), n) - pi).sum() < 100 / n
    assert res.law[:, 0].sum() == pytest.approx(0.5, abs=1e-14)


def test_restart_usually_gives_one_closed_class():
    model = random_icsmdp(4, num_agents=3, num_interface=3, stop_admissible=True)
    res = stationary_law(model)
    assert res.num_closed_classes == 1


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


def test_mu_is_law_times_behavior():
    model = load_example("tiny-handoff")
    res = stationary_law(model)
    beh = uniform_behavior(model)
    m = mu(model, res.law, beh)
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
    from icsmdp_theory.generators import random_icsmdp
    from estimators.stationary import stationary_law as law_of
    model = random_icsmdp(seed, num_agents=3, num_latent=2, num_interface=3, num_private=2,
                          num_actions=2, stop_admissible=True)
    dense = law_of(model).law
    free = law_of(model, max_states=10)
    assert free.settings["method"] == "operator"
    np.testing.assert_allclose(free.law, dense, atol=1e-12)


def test_matrix_free_occupancy_refuses_a_chain_that_never_stops():
    from icsmdp_theory.errors import StateSpaceTooLargeError
    from icsmdp_theory.generators import random_icsmdp
    from estimators.stationary import stationary_law as law_of
    model = random_icsmdp(0, num_agents=2, num_interface=4, stop_admissible=False)
    with pytest.raises(StateSpaceTooLargeError, match="does not reach STOP"):
        law_of(model, max_states=2)


@pytest.mark.parametrize("seed", range(3))
def test_matrix_free_gmres_equals_the_renewal_sum(seed):
    """GMRES on (I - A^T) z = rho0 against the term-by-term renewal sum sum_k rho0^T A^k."""
    from estimators.behavior import validate_behavior
    from estimators.stationary import (_renewal_sum, _stop_and_restart, epoch_chain_operator,
                                       stationary_law as law_of)
    model = random_icsmdp(seed, num_agents=3, num_latent=2, num_interface=4, num_private=2,
                          num_actions=2, stop_admissible=True)
    res = law_of(model, max_states=10)
    assert "GMRES" in res.message and res.iterations >= 1
    beh = validate_behavior(model, None)
    stop, rho = _stop_and_restart(model, beh)
    z, k = _renewal_sum(epoch_chain_operator(model, beh), stop, rho, model, 1e-15, 100_000)
    assert k > 1
    np.testing.assert_allclose(res.law.reshape(-1), z / z.sum(), atol=1e-13)
