"""Tests of :mod:`icsmdp_theory.options` (SPEC section 2) against independent computations.

Every expected value here is computed without :class:`OptionReduction`:

- a Monte Carlo simulator of invocations written on the raw model arrays
  (``internal_policy``, ``kernel[a]``, ``reward``, ``end_probability``), with
  5-standard-error confidence bounds (a normal tail of about 6e-7 per
  comparison; the rng is seeded, so the test is deterministic);
- dense ``numpy.linalg`` inverses and matrix powers on small instances;
- closed forms derived with sympy (constant end probability).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import sympy

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.options import OptionReduction, gamma_bar, option_reduction

METHODS = ("lu", "neumann")


# --------------------------------------------------------------------------- helpers
def _raw_local(model, i):
    """Dense per-local-state arrays of agent ``i`` from the raw model fields only.

    Returns ``pol[y, a]``, ``K[a, y, y']``, ``rew[y, a, c']``, ``beta[y]`` with
    ``y = (x*nM + m)*nL + l`` (SPEC section 1), built by an explicit loop.
    """
    ag = model.agents[i]
    nX, nM = model.num_latent, model.num_interface
    nL, nA = ag.internal_policy.shape[1], ag.internal_policy.shape[2]
    nY = nX * nM * nL
    K = np.stack([np.asarray(sp.csr_array(k).toarray()) for k in ag.kernel])
    pol = np.empty((nY, nA))
    rew = np.empty((nY, nA, model.num_agents + 1))
    beta = np.empty(nY)
    for x in range(nX):
        for m in range(nM):
            for l in range(nL):
                y = (x * nM + m) * nL + l
                pol[y] = ag.internal_policy[m, l]
                rew[y] = ag.reward[x, m]
                beta[y] = ag.end_probability[x, m, l]
    return pol, K, rew, beta


def _dense_reduction(model, i):
    """``Kbar, rbar, beta, R, D, Pend`` by dense inverses (SPEC section 2 formulas)."""
    pol, K, rew, beta = _raw_local(model, i)
    kbar = np.einsum("ya,ayz->yz", pol, K)
    rbar = np.einsum("ya,yac->yc", pol, rew)
    g = model.gamma
    n = kbar.shape[0]
    G = g * kbar * (1.0 - beta)[None, :]
    E = g * kbar * beta[None, :]
    inv = np.linalg.inv(np.eye(n) - G)
    M = kbar * (1.0 - beta)[None, :]
    Pend = np.linalg.solve(np.eye(n) - M, kbar * beta[None, :])
    return kbar, rbar, beta, inv @ rbar, inv @ E, Pend


def _sample_rows(rng, probs):
    """One index per row of the row-stochastic ``probs`` (inverse-cdf sampling)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)


def _simulate(model, i, y0, n, rng):
    """Simulate ``n`` invocations of agent ``i`` from local state ``y0``.

    Returns ``ret[n, N+1]`` (``sum_{s<tau} gamma^s r(., c')`` for every ``c'``),
    ``disc[n]`` (``gamma^tau``), ``tau[n]`` and the end state ``y_end[n]``.
    """
    pol, K, rew, beta = _raw_local(model, i)
    g = model.gamma
    y = np.full(n, y0)
    alive = np.ones(n, bool)
    disc = np.ones(n)
    tau = np.zeros(n, np.int64)
    ret = np.zeros((n, model.num_agents + 1))
    for _ in range(10_000):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        yy = y[idx]
        a = _sample_rows(rng, pol[yy])
        ret[idx] += disc[idx, None] * rew[yy, a]
        nxt = _sample_rows(rng, K[a, yy])
        disc[idx] *= g
        tau[idx] += 1
        y[idx] = nxt
        ended = rng.random(idx.size) < beta[nxt]
        alive[idx[ended]] = False
    assert not alive.any()
    return ret, disc, tau, y


def _within(est, exact, se, what):
    """``|est - exact| <= 5 se + 1e-3`` elementwise, with a useful message."""
    bound = 5.0 * se + 1e-3
    err = np.abs(np.asarray(est) - np.asarray(exact))
    worst = np.unravel_index(np.argmax(err - bound), np.shape(err)) if np.ndim(err) else ()
    assert np.all(err <= bound), (
        f"{what}: Monte Carlo {np.asarray(est)[worst]} vs exact {np.asarray(exact)[worst]} "
        f"at {worst}, error {err[worst]:.3g} > bound {np.asarray(bound)[worst]:.3g}")


def _prob_se(p, n):
    return np.sqrt(np.clip(p, 0, 1) * (1 - np.clip(p, 0, 1)) / n)


# --------------------------------------------------------------------------- Monte Carlo
MC_INSTANCES = [
    # (seed, kwargs): private states, two actions, latent states
    (11, dict(num_agents=2, num_latent=2, num_interface=3, num_private=2, num_actions=2,
              end_probability=(0.2, 0.9), reward_range=(0.0, 1.0))),
    (12, dict(num_agents=3, num_latent=1, num_interface=4, num_private=(2, 3, 1),
              num_actions=2, nnz_per_row=3, end_probability=(0.15, 0.6), gamma=0.95)),
]


@pytest.mark.parametrize("seed,kwargs", MC_INSTANCES)
def test_option_reduction_matches_monte_carlo(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    rng = np.random.default_rng(1000 + seed)
    n = 20_000
    for i in range(model.num_agents):
        red = option_reduction(model, i)
        nY = red.num_local_states
        nM, nL = model.num_interface, model.agents[i].num_private
        # coarse label of an end state: its interface state m
        m_label = (np.arange(nY) // nL) % nM
        R = red.option_reward()
        g = red.effective_discount()
        end_law = red.end_law_pushforward(np.arange(nY), nY)
        disc_push = red.end_kernel_pushforward(m_label, nM)
        law = red.duration_law(m_label, nM)
        assert law.tail_bound <= 1e-12
        for y0 in rng.choice(nY, size=min(2, nY), replace=False):
            ret, disc, tau, yend = _simulate(model, i, y0, n, rng)
            # option reward, every successor
            _within(ret.mean(axis=0), R[y0], ret.std(axis=0) / np.sqrt(n),
                    f"option_reward agent {i} y={y0}")
            # effective discount E[gamma^tau]
            _within(disc.mean(), g[y0], disc.std() / np.sqrt(n),
                    f"effective_discount agent {i} y={y0}")
            # undiscounted end-state law
            freq = np.bincount(yend, minlength=nY) / n
            _within(freq, end_law[y0], _prob_se(end_law[y0], n),
                    f"end_law_pushforward agent {i} y={y0}")
            # discounted end kernel pushed through m: E[gamma^tau 1{m_end = o}]
            samples = disc[:, None] * (m_label[yend][:, None] == np.arange(nM)[None, :])
            _within(samples.mean(axis=0), disc_push[y0], samples.std(axis=0) / np.sqrt(n),
                    f"end_kernel_pushforward agent {i} y={y0}")
            # joint law of (m_end, tau)
            T = law.max_duration
            assert tau.max() <= T + 50
            joint = np.zeros((nM, max(T, int(tau.max()))))
            np.add.at(joint, (m_label[yend], tau - 1), 1.0 / n)
            exact = np.zeros_like(joint)
            exact[:, :T] = law.prob[y0]
            _within(joint, exact, _prob_se(exact, n), f"duration_law agent {i} y={y0}")


# --------------------------------------------------------------------------- dense algebra
DENSE_INSTANCES = [
    (21, dict(num_agents=2, num_latent=2, num_interface=3, num_private=2, num_actions=2)),
    (22, dict(num_agents=3, num_latent=1, num_interface=4, num_private=(1, 3, 2),
              num_actions=(2, 1, 2), nnz_per_row=2, end_probability=(0.2, 1.0))),
    # slowly ending invocations (beta in [0.01, 0.05]): Neumann needs many terms
    (23, dict(num_agents=2, num_latent=2, num_interface=2, num_private=2, num_actions=2,
              end_probability=(0.01, 0.05), gamma=0.99)),
    # beta = 1 somewhere: rows of G vanish
    (24, dict(num_agents=2, num_latent=1, num_interface=3, num_private=2, num_actions=2,
              end_probability=(0.5, 1.0), nnz_per_row=1)),
]


def _close(actual, expected, what, tol=1e-10):
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(np.asarray(actual) - expected).max(initial=0.0))
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol * scale:.3g}"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed,kwargs", DENSE_INSTANCES)
def test_option_reduction_matches_dense_inverse(seed, kwargs, method):
    model = random_icsmdp(seed, **kwargs)
    rng = np.random.default_rng(seed)
    for i in range(model.num_agents):
        kbar, rbar, beta, R, D, Pend = _dense_reduction(model, i)
        red = OptionReduction(model, i, method=method)
        assert red.method == method
        nY = kbar.shape[0]
        tag = f"agent {i}, {method}"
        _close(red.option_reward(), R, f"option_reward {tag}")
        _close(red.effective_discount(), D.sum(axis=1), f"effective_discount {tag}")
        v = rng.normal(size=nY)
        _close(red.apply_end_kernel(v), D @ v, f"apply_end_kernel (vector) {tag}")
        V = rng.normal(size=(nY, 3))
        _close(red.apply_end_kernel(V), D @ V, f"apply_end_kernel (block) {tag}")
        k = 3
        labels = rng.integers(0, k, size=nY)
        labels[:k] = np.arange(k)
        onehot = np.eye(k)[labels]
        _close(red.end_kernel_pushforward(labels, k), D @ onehot, f"end_kernel_pushforward {tag}")
        _close(red.end_law_pushforward(labels, k), Pend @ onehot, f"end_law_pushforward {tag}")
        _close(red.end_law_pushforward(np.arange(nY), nY).sum(axis=1), np.ones(nY),
               f"end law rows sum to 1 {tag}")
        # D is sub-stochastic with row sums < 1, and gamma_bar is its largest row sum
        assert np.all(D >= -1e-15) and np.all(D.sum(axis=1) < 1)


@pytest.mark.parametrize("seed,kwargs", DENSE_INSTANCES)
def test_gamma_bar_is_max_dense_row_sum(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    expected = max(_dense_reduction(model, i)[4].sum(axis=1).max()
                   for i in range(model.num_agents))
    assert abs(gamma_bar(model) - expected) <= 1e-12
    assert gamma_bar(model) < 1


@pytest.mark.parametrize("seed,kwargs", DENSE_INSTANCES[:2] + DENSE_INSTANCES[3:])
def test_duration_law_matches_matrix_powers(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    rng = np.random.default_rng(seed)
    for i in range(model.num_agents):
        kbar, _, beta, _, _, _ = _dense_reduction(model, i)
        nY = kbar.shape[0]
        M = kbar * (1 - beta)[None, :]
        B = kbar * beta[None, :]
        red = option_reduction(model, i)
        k = 2
        labels = rng.integers(0, k, size=nY)
        labels[:k] = np.arange(k)
        for lab, nlab in ((labels, k), (None, None)):
            law = red.duration_law(lab, nlab)
            onehot = np.eye(nY) if lab is None else np.eye(k)[lab]
            term = B @ onehot
            for t in range(law.max_duration):
                assert np.abs(law.prob[:, :, t] - term).max() <= 1e-12, (i, t)
                term = M @ term
            # remaining mass after the last duration: P(tau > T | y) = row sums of M^T
            remaining = np.linalg.matrix_power(M, law.max_duration).sum(axis=1)
            assert abs(law.tail_bound - remaining.max()) <= 1e-12
            assert law.tail_bound <= 1e-12
            total = law.prob.sum(axis=(1, 2))
            assert np.all(np.abs(total - 1.0) <= law.tail_bound + 1e-12)
            assert np.all(total <= 1 + 1e-12)
            assert law.prob.shape == (nY, nY if lab is None else k, law.max_duration)


# --------------------------------------------------------------------------- closed forms
def _gamma_bar_closed_form():
    """Solve ``g = gamma (p + (1 - p) g)`` for ``g = E[gamma^tau]``, constant ``beta = p``.

    One step always happens (discount gamma); it ends with probability p, else
    the same problem restarts one step later.
    """
    g, gam, p = sympy.symbols("g gamma p", positive=True)
    (sol,) = sympy.solve(sympy.Eq(g, gam * (p + (1 - p) * g)), g)
    assert sympy.simplify(sol - gam * p / (1 - gam * (1 - p))) == 0
    return sympy.lambdify((gam, p), sol, "math")


@pytest.mark.parametrize("gam,p", [(0.9, 0.5), (0.5, 1.0), (0.99, 0.1), (0.3, 0.25), (0.95, 0.8)])
def test_gamma_bar_closed_form_constant_beta(gam, p):
    closed = _gamma_bar_closed_form()(gam, p)
    model = random_icsmdp(7, num_agents=2, num_interface=4, num_private=(1, 2),
                          num_actions=1, end_probability=p, gamma=gam)
    assert abs(gamma_bar(model) - closed) <= 1e-12
    for i in range(model.num_agents):
        # beta does not depend on the state: E[gamma^tau | y] is the same for every y
        g = option_reduction(model, i).effective_discount()
        assert np.abs(g - closed).max() <= 1e-12


@pytest.mark.parametrize("p", [1.0, 0.5, 0.2, 0.05])
def test_duration_law_geometric_closed_form(p):
    model = random_icsmdp(3, num_agents=2, num_latent=2, num_interface=3, num_private=2,
                          num_actions=2, end_probability=p, gamma=0.9)
    for i in range(model.num_agents):
        law = option_reduction(model, i).duration_law()
        t = np.arange(1, law.max_duration + 1)
        geometric = (1 - p) ** (t - 1) * p  # P(tau = t), beta = p after every step
        marginal = law.prob.sum(axis=1)  # (nY, T)
        assert np.abs(marginal - geometric[None, :]).max() <= 1e-12
        assert law.tail_bound <= 1e-12
        assert abs(law.tail_bound - (1 - p) ** law.max_duration) <= 1e-14
        # it stops at the first duration whose remaining mass is below 1e-12
        if law.max_duration > 1:
            assert (1 - p) ** (law.max_duration - 1) > 1e-12
        assert np.all(np.abs(law.prob.sum(axis=(1, 2)) - 1) <= law.tail_bound + 1e-12)


# --------------------------------------------------------------------------- error paths
@pytest.fixture(scope="module")
def small_model():
    return random_icsmdp(5, num_agents=2, num_latent=2, num_interface=3, num_private=2,
                         num_actions=2)


@pytest.mark.parametrize("method", ["LU", "dense", "", None, "newton"])
def test_bad_method_is_rejected(small_model, method):
    with pytest.raises(InvalidArgumentError, match=r"`method` must be one of .*'auto'.*'lu'.*'neumann'"):
        OptionReduction(small_model, 0, method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rows", [0, 11, 13])
def test_wrong_rhs_rows_are_rejected(small_model, method, rows):
    red = OptionReduction(small_model, 0, method=method)
    assert red.num_local_states == 12
    for rhs in (np.ones(rows), np.ones((rows, 2))):
        with pytest.raises(InvalidArgumentError, match=rf"`rhs` must have 12 rows .*got {rows}"):
            red.solve_continue(rhs)
    for values in (np.ones(rows), np.ones((rows, 2))):
        with pytest.raises(InvalidArgumentError, match=r"`values` must have 12 rows"):
            red.apply_end_kernel(values)


def _bad_labels(nY):
    ok = np.arange(nY) % 3
    return [
        ("too short", ok[:-1], 3),
        ("too long", np.append(ok, 0), 3),
        ("negative", np.where(ok == 0, -1, ok), 3),
        ("too large", ok, 2),
        ("two-dimensional", ok[:, None], 3),
        ("non-integer", ok + 0.5, 3),
    ]


@pytest.mark.parametrize("case", range(6))
def test_bad_labels_are_rejected(small_model, case):
    red = option_reduction(small_model, 1)
    what, labels, k = _bad_labels(red.num_local_states)[case]
    for call in (red.end_kernel_pushforward, red.end_law_pushforward, red.duration_law):
        with pytest.raises(InvalidArgumentError, match=r"`labels` must be 12 integers"):
            call(labels, k)


def test_bad_agent_index_is_rejected(small_model):
    for i in (-1, 2):
        with pytest.raises(InvalidArgumentError, match=r"`i` \(agent index\) must lie in 0\.\.1, got"):
            option_reduction(small_model, i)
