"""Tests of :mod:`estimators.mixing` (SPEC section 6) against independent computations.

The epoch chain of a model is rebuilt from the raw arrays by explicit loops
(:mod:`property_tests.estimators.chains`) and its cells ``(i, phi_i(m, l_i))``
by an explicit loop; mixing times come from a plain loop over
``numpy.linalg.matrix_power`` and relaxation times from ``numpy.linalg.eigvals``.
"""
from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from estimators.behavior import uniform_behavior
from estimators.epoch_chain import EpochStepper, epoch_chain, epoch_chain_operator
from estimators.mixing import decision_projection, mixing_report, observation_projection
from estimators.mixing_time import DEFAULT_EPS, MatrixPowers, mixing_time, mixing_time_bounds
from estimators.stationary import stationary_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.examples import load_example
from property_tests.estimators.chains import (brute_distances, brute_tmix, periodic_model,
                                              raw_chain, reducible_model, stationary_lstsq)


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
    T = raw_chain(model, beh)
    pi = stationary_lstsq(T)
    cells, k = _cells(model)
    proj = np.zeros((T.shape[0], k))
    proj[np.arange(T.shape[0]), cells] = 1.0
    N1 = model.num_agents + 1
    dec = np.zeros((T.shape[0], k * N1))
    for s in range(T.shape[0]):
        f, i = divmod(s, model.num_agents)
        ob = cells[s] - sum(a.num_observations for a in model.agents[:i])  # phi_i(m, l_i)
        dec[s, cells[s] * N1:(cells[s] + 1) * N1] = beh[i][ob]
    dists = brute_distances(T, pi)
    dproj = brute_distances(T, pi, proj)
    ddec = brute_distances(T, pi, dec)
    ev = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    for eps in (0.05, DEFAULT_EPS):
        rep = mixing_report(model, eps=eps)
        assert rep.t_mix_is_exact and rep.status == "exact" and rep.success
        assert rep.t_mix == brute_tmix(dists, eps)
        assert rep.t_mix_lower == rep.t_mix_upper == rep.t_mix
        assert rep.projected_t_mix == brute_tmix(dproj, eps)
        assert rep.projected_t_mix_decision == brute_tmix(ddec, eps)
        assert rep.relaxation_time == pytest.approx(1.0 / (1.0 - ev[1]), rel=1e-9)
        assert rep.num_closed_classes == 1 and rep.period == 1
        assert rep.pi_min == pytest.approx(pi.min(), abs=1e-14)
    # TV after pushing through the same kernel b(c'|cell) is the TV on cells
    assert np.allclose(dproj, ddec, atol=1e-12)
    assert np.allclose(observation_projection(model).toarray(), proj)
    assert np.allclose(decision_projection(model, behavior=beh).toarray(), dec)


@pytest.mark.parametrize("kwargs", REPORT_SHAPES[:2])
def test_block_steps_equal_dense_products(kwargs):
    model = random_icsmdp(3, **kwargs)
    beh = uniform_behavior(model)
    T = raw_chain(model, beh)
    X = np.random.default_rng(0).random((T.shape[0], 5))
    step = EpochStepper(model, behavior=beh)
    assert np.abs(step(X) - T @ X).max() < 1e-14
    # powers advanced by block steps agree with dense powers
    powers = MatrixPowers(T, step, step.cost_per_column)
    powers.product_cost = np.inf   # force steps
    assert np.abs(powers.advance(T, 3, None) - np.linalg.matrix_power(T, 4)).max() < 1e-14


def test_report_uses_block_steps_on_private_states():
    # 2 agents, 10 and 5 private states: a block step costs a fraction of a dense product
    model = random_icsmdp(2, num_agents=2, num_latent=1, num_interface=4, num_private=(5, 10),
                          nnz_per_row=2, stop_admissible=True, successor_density=0.5)
    n = model.num_epoch_states
    step = EpochStepper(model, behavior=uniform_behavior(model))
    assert step.cost_per_column * n < 2.0 * n ** 3 / 2.5e10   # steps are chosen
    T = epoch_chain(model)
    pi = stationary_law(model).law.reshape(-1)
    for eps in (0.02, 0.25):
        rep = mixing_report(model, eps=eps)
        assert rep.t_mix == mixing_time(T, pi, eps=eps).t_mix == brute_tmix(brute_distances(T, pi), eps)


def test_mixing_report_reducible_and_periodic_models():
    rep = mixing_report(reducible_model(np.random.default_rng(5)))
    assert rep.t_mix == np.inf and rep.status == "multiple_closed_classes"
    assert rep.num_closed_classes == 2 and rep.relaxation_time == np.inf
    rep = mixing_report(periodic_model(np.random.default_rng(6)))
    assert rep.t_mix == np.inf and rep.status == "periodic" and rep.period == 2
    assert rep.relaxation_time == np.inf and rep.t_mix_is_exact
    # cells (i, o) carry the agent, which alternates: the projection cannot mix either
    assert rep.projected_t_mix == np.inf


@pytest.mark.parametrize("seed", range(3))
def test_mixing_report_beyond_exact_limit_reports_bounds(seed):
    model = random_icsmdp(seed, num_agents=2, num_interface=5, num_private=(2, 1),
                          nnz_per_row=3, stop_admissible=True)
    T = raw_chain(model, uniform_behavior(model))
    pi = stationary_lstsq(T)
    exact = mixing_report(model)
    rep = mixing_report(model, exact_limit=10)
    assert not rep.t_mix_is_exact and np.isnan(rep.t_mix) and rep.status == "bounds"
    assert np.isnan(rep.projected_t_mix) and rep.num_closed_classes == -1
    t = brute_tmix(brute_distances(T, pi), DEFAULT_EPS)
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
    dense = mixing_time_bounds(T, pi, eps=0.25)
    op = mixing_time_bounds(epoch_chain_operator(model), pi, eps=0.25)
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


@pytest.mark.parametrize("name", ["tiny-handoff", "workflow"])
def test_bundled_examples_against_independent_spectra(name):
    """The numbers ``icsmdp gaps --json`` prints for the bundled examples, against eigvals and a
    step-by-step power loop; ``workflow`` (768 epoch states) takes the seeded ARPACK path, so
    its relaxation time is the same on every call."""
    model = load_example(name)
    T = epoch_chain(model)                      # checked against raw loops in test_epoch_chain
    pi = stationary_law(model).law.reshape(-1)
    rep = mixing_report(model)
    ev = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    assert rep.relaxation_time == pytest.approx(1.0 / (1.0 - ev[1]), rel=1e-9)
    assert mixing_report(load_example(name)).relaxation_time == rep.relaxation_time
    P, t = np.eye(T.shape[0]), 0
    while 0.5 * np.abs(P - pi).sum(axis=1).max() > DEFAULT_EPS:
        P, t = P @ T, t + 1
    assert rep.t_mix == t and rep.t_mix_lower == rep.t_mix_upper == t
    assert (rep.t_mix, rep.projected_t_mix) == {"tiny-handoff": (2.0, 2.0),
                                                "workflow": (10.0, 6.0)}[name]


def test_mixing_report_validation():
    model = load_example("tiny-handoff")
    with pytest.raises(InvalidArgumentError, match=r"^`exact_limit` must be an integer >= 1, got 0\.$"):
        mixing_report(model, exact_limit=0)
    with pytest.raises(TypeError):
        mixing_report(model, uniform_behavior(model))   # behavior is keyword-only
