"""Tests of :mod:`estimators.mixing` (SPEC section 6) against independent computations.

- ``t_mix`` and projected ``t_mix``: a plain loop ``t = 0, 1, 2, ...`` over
  ``numpy.linalg.matrix_power(T, t)`` with the stationary law from a least-squares
  solve of ``pi (T - I) = 0, sum pi = 1``;
- relaxation time: the closed form of a two-state chain (``lambda_2 = 1 - a - b``)
  and ``numpy.linalg.eigvals``;
- the epoch chain of a model is rebuilt from the raw arrays by the loops of
  ``test_stationary`` and its cells ``(i, phi_i(m, l_i))`` by an explicit loop.
"""
from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from estimators.behavior import uniform_behavior
from estimators.mixing import (DEFAULT_EPS, decision_projection, mixing_report, mixing_time,
                               mixing_time_bounds, observation_projection, projected_mixing_time,
                               relaxation_time)
from estimators.stationary import epoch_chain, epoch_chain_operator, stationary_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import random_icsmdp
from property_tests.estimators.test_stationary import (_periodic_model, _raw_chain,
                                                       _reducible_model, _stochastic)

EPS = [0.01, 0.1, 0.25, 0.45]


# =========================================================================== brute force
def _pi(T):
    n = T.shape[0]
    A = np.vstack([T.T - np.eye(n), np.ones((1, n))])
    return np.linalg.lstsq(A, np.concatenate([np.zeros(n), [1.0]]), rcond=None)[0]


def _brute_distances(T, pi, proj=None, t_max=5000):
    """``d(t)`` for ``t = 0..`` until ``d(t) <= min(EPS)`` or ``t_max``, by matrix_power."""
    P = np.eye(T.shape[0]) if proj is None else proj
    target = pi @ P
    out = []
    for t in range(t_max + 1):
        X = np.linalg.matrix_power(T, t) @ P
        out.append(0.5 * np.abs(X - target).sum(axis=1).max())
        if out[-1] <= 1e-3:
            break
    return np.array(out)


def _brute_tmix(dists, eps):
    hit = np.flatnonzero(dists <= eps)
    return float(hit[0]) if hit.size else np.inf


def _ergodic_chain(rng, n, kind):
    if kind == "dense":
        T = _stochastic(rng, n, density=0.6)
    elif kind == "lazy_cycle":  # slow: t_mix grows like n^2
        lazy = rng.uniform(0.3, 0.7)
        T = lazy * np.eye(n) + (1 - lazy) * (0.7 * np.roll(np.eye(n), 1, axis=1)
                                             + 0.3 * np.roll(np.eye(n), -1, axis=1))
    elif kind == "two_blocks":  # nearly decomposable: t_mix ~ 1/delta
        k = n // 2
        T = np.zeros((n, n))
        T[:k, :k] = _stochastic(rng, k)
        T[k:, k:] = _stochastic(rng, n - k)
        delta = 10.0 ** -rng.uniform(1.5, 2.5)
        T[0, k] += delta
        T[k, 0] += delta
        T /= T.sum(axis=1, keepdims=True)
    else:  # "transient": an ergodic core {0..n-3} plus transient states
        T = np.zeros((n, n))
        T[:n - 2, :n - 2] = _stochastic(rng, n - 2)
        T[n - 2:] = rng.random((2, n))
        T[n - 2:, n - 2:] *= 3.0
        T[n - 2:] /= T[n - 2:].sum(axis=1, keepdims=True)
    return T


# =========================================================================== t_mix
@pytest.mark.parametrize("kind", ["dense", "lazy_cycle", "two_blocks", "transient"])
@pytest.mark.parametrize("seed", range(4))
def test_mixing_time_against_matrix_powers(kind, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))
    T = _ergodic_chain(rng, n, kind)
    pi = _pi(T)
    dists = _brute_distances(T, pi)
    for eps in EPS:
        expected = _brute_tmix(dists, eps)
        res = mixing_time(T, pi, eps)
        assert res.status == "exact" and res.success
        assert res.t_mix == expected, (eps, res.message)
        assert res.distance == pytest.approx(dists[int(expected)], abs=1e-12)
        # sparse input, same answer
        assert mixing_time(sp.csr_array(T), pi, eps).t_mix == expected


def test_mixing_time_zero_and_one():
    assert mixing_time(np.array([[1.0]]), [1.0]).t_mix == 0.0
    T = np.full((4, 4), 0.25)   # one step to stationarity
    assert mixing_time(T, np.full(4, 0.25), 0.01).t_mix == 1.0


@pytest.mark.parametrize("cycle", [2, 3, 5])
def test_periodic_chain_is_inf_with_reason(cycle):
    T = np.roll(np.eye(cycle), 1, axis=1)
    res = mixing_time(T, np.full(cycle, 1.0 / cycle), 0.25)
    assert res.t_mix == np.inf and res.status == "periodic" and res.success
    assert f"period {cycle}" in res.message
    assert relaxation_time(T) == np.inf


def test_two_closed_classes_is_inf_with_reason():
    T = np.array([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0],
                  [0.0, 0.0, 0.3, 0.7], [0.0, 0.0, 0.6, 0.4]])
    pi = np.array([0.1, 0.1, 0.8 * 6 / 13, 0.8 * 7 / 13])
    res = mixing_time(T, pi, 0.45)
    assert res.t_mix == np.inf and res.status == "multiple_closed_classes"
    assert "2 closed classes" in res.message
    # the reason is real: d(t) >= 1/2 > eps at every t
    assert _brute_distances(T, pi, t_max=200).min() >= 0.5 - 1e-12
    assert relaxation_time(T) == np.inf


def test_cap_reports_failure():
    rng = np.random.default_rng(0)
    T = _ergodic_chain(rng, 8, "lazy_cycle")
    pi = _pi(T)
    res = mixing_time(T, pi, 0.01, max_doublings=2)
    assert res.t_mix == np.inf and res.status == "cap" and not res.success
    assert "max_doublings=2" in res.message
    res = mixing_time(T, pi, 0.01, memory_limit=8 * 64 * 5)
    assert res.status == "memory" and not res.success


# =========================================================================== projected
@pytest.mark.parametrize("seed", range(6))
def test_projected_mixing_time_against_matrix_powers(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 9))
    T = _ergodic_chain(rng, n, ["dense", "two_blocks", "transient"][seed % 3])
    pi = _pi(T)
    k = int(rng.integers(2, n))
    cells = np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)])
    proj = np.zeros((n, k))
    proj[np.arange(n), cells] = 1.0
    soft = rng.random((n, 3))   # a row-stochastic (soft) projection as well
    soft /= soft.sum(axis=1, keepdims=True)
    for P in (proj, soft):
        dists = _brute_distances(T, pi, P)
        for eps in EPS:
            res = projected_mixing_time(T, pi, P, eps)
            assert res.t_mix == _brute_tmix(dists, eps) and res.status == "exact"
            assert res.t_mix <= mixing_time(T, pi, eps).t_mix   # projection contracts TV


def test_projected_mixing_of_a_periodic_chain():
    # period 2 between sides {0, 1} and {2, 3}
    T = np.array([[0.0, 0.0, 0.6, 0.4], [0.0, 0.0, 0.3, 0.7],
                  [0.5, 0.5, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]])
    pi = _pi(T)
    lumped = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # mixes the sides
    sides = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])   # keeps the sides
    dists = _brute_distances(T, pi, lumped)
    res = projected_mixing_time(T, pi, lumped, 0.1)
    assert res.status == "exact" and res.t_mix == _brute_tmix(dists, 0.1)
    res = projected_mixing_time(T, pi, sides, 0.1)
    assert res.t_mix == np.inf and res.status == "limit_above_eps" and res.success
    assert res.distance == pytest.approx(0.5, abs=1e-12)   # the sides alternate forever
    assert mixing_time(T, pi, 0.1).status == "periodic"


# =========================================================================== spectra and bounds
@pytest.mark.parametrize("a, b", [(0.3, 0.1), (0.5, 0.5), (0.9, 0.8), (0.01, 0.02), (1.0, 0.2)])
def test_relaxation_time_two_state_closed_form(a, b):
    T = np.array([[1 - a, a], [b, 1 - b]])
    lam2 = 1 - a - b
    assert relaxation_time(T) == pytest.approx(1.0 / (1.0 - abs(lam2)), rel=1e-12)


@pytest.mark.parametrize("n", [40, 300])
def test_relaxation_time_against_eigvals(n):
    rng = np.random.default_rng(n)
    T = _stochastic(rng, n, density=0.05)
    T = 0.6 * T + 0.4 * np.roll(np.eye(n), 1, axis=1)
    ev = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    assert ev[0] == pytest.approx(1.0, abs=1e-12)
    assert relaxation_time(T) == pytest.approx(1.0 / (1.0 - ev[1]), rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_bounds_contain_exact_reversible(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    W = rng.random((n, n)) * (rng.random((n, n)) < 0.6)
    W = W + W.T + np.diag(rng.random(n))   # symmetric weights: a reversible walk
    W[np.arange(n), (np.arange(n) + 1) % n] += 0.05
    W[(np.arange(n) + 1) % n, np.arange(n)] += 0.05
    T = W / W.sum(axis=1, keepdims=True)
    pi = W.sum(axis=1) / W.sum()
    dists = _brute_distances(T, pi)
    ev = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    t_rel = 1.0 / (1.0 - ev[1])
    for eps in EPS:
        b = mixing_time_bounds(T, pi, eps)
        t = _brute_tmix(dists, eps)
        assert b.upper_method == "reversible" and b.is_reversible
        assert b.lower == pytest.approx(max(0.0, (t_rel - 1) * math.log(1 / (2 * eps))), rel=1e-9)
        assert b.upper == pytest.approx(t_rel * math.log(1 / (eps * pi.min())), rel=1e-9)
        assert b.lower <= t <= b.upper


@pytest.mark.parametrize("seed", range(8))
def test_bounds_contain_exact_nonreversible(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    T = _ergodic_chain(rng, n, ["dense", "lazy_cycle", "two_blocks"][seed % 3])
    pi = _pi(T)
    dists = _brute_distances(T, pi)
    for eps in EPS:
        b = mixing_time_bounds(T, pi, eps)
        assert b.upper_method == "singular_value" and not b.is_reversible
        assert b.lower <= _brute_tmix(dists, eps) <= b.upper


def test_bounds_with_transient_states_have_no_upper():
    rng = np.random.default_rng(3)
    T = _ergodic_chain(rng, 7, "transient")
    b = mixing_time_bounds(T, _pi(T), 0.25)
    assert b.upper == np.inf and b.upper_method == "none" and "transient" in b.message


# =========================================================================== the report
def _cells(model):
    """``cell[s]`` of epoch states: ``offset_i + phi_i(m, l_i)``, by an explicit loop."""
    nM = model.num_interface
    offsets = np.concatenate([[0], np.cumsum([a.num_observations for a in model.agents])])
    out = []
    for x, m in itertools.product(range(model.num_latent), range(nM)):
        for ls in itertools.product(*[range(n) for n in model.num_private]):
            for i, a in enumerate(model.agents):
                out.append(offsets[i] + a.observation[m, ls[i]])
    return np.array(out), int(offsets[-1])


REPORT_SHAPES = [
    dict(num_agents=2, num_latent=2, num_interface=3, num_private=(2, 3), stop_admissible=True),
    dict(num_agents=3, num_interface=3, num_private=(2, 1, 2), nnz_per_row=2,
         stop_admissible=True, observation="random"),
    dict(num_agents=2, num_interface=6, nnz_per_row=2, end_probability=(0.5, 1.0),
         successor_density=0.5, stop_admissible=True),
]


@pytest.mark.parametrize("kwargs", REPORT_SHAPES)
@pytest.mark.parametrize("seed", range(2))
def test_mixing_report_against_matrix_powers(kwargs, seed):
    model = random_icsmdp(seed, **kwargs)
    beh = uniform_behavior(model)
    T = _raw_chain(model, beh)
    pi = _pi(T)
    cells, k = _cells(model)
    proj = np.zeros((T.shape[0], k))
    proj[np.arange(T.shape[0]), cells] = 1.0
    N1 = model.num_agents + 1
    dec = np.zeros((T.shape[0], k * N1))
    for s in range(T.shape[0]):
        f, i = divmod(s, model.num_agents)
        ob = cells[s] - sum(a.num_observations for a in model.agents[:i])  # phi_i(m, l_i)
        dec[s, cells[s] * N1:(cells[s] + 1) * N1] = beh[i][ob]
    dists = _brute_distances(T, pi)
    dproj = _brute_distances(T, pi, proj)
    ddec = _brute_distances(T, pi, dec)
    ev = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    for eps in (0.05, DEFAULT_EPS):
        rep = mixing_report(model, eps=eps)
        assert rep.t_mix_is_exact and rep.status == "exact" and rep.success
        assert rep.t_mix == _brute_tmix(dists, eps)
        assert rep.t_mix_lower == rep.t_mix_upper == rep.t_mix
        assert rep.projected_t_mix == _brute_tmix(dproj, eps)
        assert rep.projected_t_mix_decision == _brute_tmix(ddec, eps)
        assert rep.relaxation_time == pytest.approx(1.0 / (1.0 - ev[1]), rel=1e-9)
        assert rep.num_closed_classes == 1 and rep.period == 1
        assert rep.pi_min == pytest.approx(pi.min(), abs=1e-14)
    # TV after pushing through the same kernel b(c'|cell) is the TV on cells
    assert np.allclose(dproj, ddec, atol=1e-12)
    assert np.allclose(observation_projection(model).toarray(), proj)
    assert np.allclose(decision_projection(model, beh).toarray(), dec)


@pytest.mark.parametrize("kwargs", REPORT_SHAPES[:2])
def test_block_steps_equal_dense_products(kwargs):
    from estimators.mixing import _Powers
    from estimators.stationary import _EpochStepper
    model = random_icsmdp(3, **kwargs)
    beh = uniform_behavior(model)
    T = _raw_chain(model, beh)
    X = np.random.default_rng(0).random((T.shape[0], 5))
    step = _EpochStepper(model, beh)
    assert np.abs(step(X) - T @ X).max() < 1e-14
    # powers advanced by block steps agree with dense powers
    powers = _Powers(T, step, step.cost_per_column)
    powers.product_cost = np.inf   # force steps
    assert np.abs(powers.advance(T, 3, None) - np.linalg.matrix_power(T, 4)).max() < 1e-14


def test_report_uses_block_steps_on_private_states():
    from estimators.stationary import _EpochStepper
    # 2 agents, 10 and 5 private states: a block step costs a fraction of a dense product
    model = random_icsmdp(2, num_agents=2, num_latent=1, num_interface=4, num_private=(5, 10),
                          nnz_per_row=2, stop_admissible=True, successor_density=0.5)
    n = model.num_epoch_states
    step = _EpochStepper(model, uniform_behavior(model))
    assert step.cost_per_column * n < 2.0 * n ** 3 / 2.5e10   # steps are chosen
    T = epoch_chain(model)
    pi = stationary_law(model).law.reshape(-1)
    for eps in (0.02, 0.25):
        rep = mixing_report(model, eps=eps)
        assert rep.t_mix == mixing_time(T, pi, eps).t_mix == _brute_tmix(_brute_distances(T, pi), eps)


def test_mixing_report_reducible_and_periodic_models():
    rep = mixing_report(_reducible_model(np.random.default_rng(5)))
    assert rep.t_mix == np.inf and rep.status == "multiple_closed_classes"
    assert rep.num_closed_classes == 2 and rep.relaxation_time == np.inf
    rep = mixing_report(_periodic_model(np.random.default_rng(6)))
    assert rep.t_mix == np.inf and rep.status == "periodic" and rep.period == 2
    assert rep.relaxation_time == np.inf and rep.t_mix_is_exact
    # cells (i, o) carry the agent, which alternates: the projection cannot mix either
    assert rep.projected_t_mix == np.inf


@pytest.mark.parametrize("seed", range(3))
def test_mixing_report_beyond_exact_limit_reports_bounds(seed):
    model = random_icsmdp(seed, num_agents=2, num_interface=5, num_private=(2, 1),
                          nnz_per_row=3, stop_admissible=True)
    T = _raw_chain(model, uniform_behavior(model))
    pi = _pi(T)
    exact = mixing_report(model)
    rep = mixing_report(model, exact_limit=10)
    assert not rep.t_mix_is_exact and np.isnan(rep.t_mix) and rep.status == "bounds"
    assert np.isnan(rep.projected_t_mix) and rep.num_closed_classes == -1
    t = _brute_tmix(_brute_distances(T, pi), DEFAULT_EPS)
    assert exact.t_mix == t
    assert rep.t_mix_lower <= t <= rep.t_mix_upper
    ev = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    assert rep.relaxation_time == pytest.approx(1.0 / (1.0 - ev[1]), rel=1e-6)
    assert rep.pi_min == pytest.approx(pi.min(), rel=1e-6)
    assert rep.upper_bound_method in ("singular_value", "reversible")


def test_bounds_on_operator_match_dense():
    model = random_icsmdp(1, num_agents=2, num_interface=5, num_private=(2, 1),
                          nnz_per_row=3, stop_admissible=True)
    T = epoch_chain(model)
    pi = stationary_law(model).law.reshape(-1)
    dense = mixing_time_bounds(T, pi, 0.25)
    op = mixing_time_bounds(epoch_chain_operator(model), pi, 0.25)
    assert op.relaxation_time == pytest.approx(dense.relaxation_time, rel=1e-8)
    assert op.upper == pytest.approx(dense.upper, rel=1e-6)
    assert op.upper_method == dense.upper_method


def test_mixing_report_never_forms_dense_beyond_exact_limit():
    # 6,000 epoch states > the default exact_limit: a dense T alone would take 288 MB
    model = random_icsmdp(0, num_agents=2, num_interface=3000, nnz_per_row=3,
                          end_probability=(0.5, 1.0), stop_admissible=True,
                          successor_density=1.0)
    n = model.num_epoch_states
    tracemalloc.start()
    try:
        rep = mixing_report(model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * 8 * n * n, peak
    assert rep.status == "bounds" and not rep.t_mix_is_exact and np.isnan(rep.t_mix)
    assert np.isfinite(rep.relaxation_time) and rep.t_mix_lower <= rep.t_mix_upper < np.inf
    assert rep.num_epoch_states == n


# =========================================================================== input validation
@pytest.mark.parametrize("eps, message", [
    (0.5, r"^`eps` must lie in \(0, 0\.5\)"),
    (0.0, r"^`eps` must lie in \(0, 0\.5\)"),
    ("a", r"^`eps` must be a number in \(0, 0\.5\), got 'a'\.$"),
])
def test_eps_validation(eps, message):
    with pytest.raises(InvalidArgumentError, match=message):
        mixing_time(np.eye(1), [1.0], eps)


def test_pi_and_matrix_validation():
    T = np.array([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(InvalidArgumentError, match=r"^`pi` must be stationary for `T`: \|\|pi T - pi\|\|_1 = "):
        mixing_time(T, [0.5, 0.5])
    with pytest.raises(InvalidArgumentError, match=r"^`pi` must hold 2 probabilities \(one per state\), got 3\.$"):
        mixing_time(T, [0.2, 0.3, 0.5])
    with pytest.raises(InvalidArgumentError, match=r"^rows of `T` must sum to 1 \(within 1e-09\): row 0 sums to 0\.9\.$"):
        mixing_time(np.array([[0.5, 0.4], [0.2, 0.8]]), [2 / 7, 5 / 7])
    with pytest.raises(InvalidArgumentError, match=r"^rows of `projection` must sum to 1: row 1 sums to 0\.5\.$"):
        projected_mixing_time(T, [2 / 7, 5 / 7], np.array([[1.0, 0.0], [0.5, 0.0]]))
    with pytest.raises(InvalidArgumentError, match=r"^`max_doublings` must be an integer in 1\.\.62, got 0\.$"):
        mixing_time(T, [2 / 7, 5 / 7], max_doublings=0)


@pytest.mark.slow
def test_exact_t_mix_on_the_2000_state_benchmark_chain():
    """The chain of ``python -m reports.bench gaps`` (which times it): exact, and equal to the
    first ``t`` whose dense power ``T^t`` is within 1/4 of ``pi`` (powers step by step)."""
    from reports.bench import TMIX_INSTANCE
    model = random_icsmdp(0, **TMIX_INSTANCE)
    T = epoch_chain(model)
    pi = stationary_law(model).law.reshape(-1)
    res = mixing_time(T, pi)
    assert res.status == "exact"
    P = np.eye(T.shape[0])
    t = 0
    while 0.5 * np.abs(P - pi).sum(axis=1).max() > 0.25:
        P, t = P @ T, t + 1
    assert res.t_mix == t


def test_mixing_bounds_without_stop_use_the_arpack_eigenvector():
    """Beyond exact_limit, a chain that never reaches STOP has no renewal occupancy: pi comes
    from ARPACK's eigenvector, and the bounds still contain the exact t_mix."""
    model = random_icsmdp(0, num_agents=2, num_interface=4, nnz_per_row=3,
                          stop_admissible=False)
    exact = mixing_report(model)
    rep = mixing_report(model, exact_limit=2)
    assert rep.status == "bounds" and any("ARPACK eigenvector" in n for n in rep.notes)
    assert exact.t_mix == 3.0  # finite: the bounds are a real check
    assert rep.t_mix_lower <= exact.t_mix <= rep.t_mix_upper
