"""Tests of estimators.uncertainty (SPEC 10: gaps with credible intervals, evidence needed).

Independent computations: each draw is rebuilt from its own seed with the posterior sampler
and evaluated by ``gap_report`` directly; intervals are numpy quantiles of those values; the
identity map of a model whose labels are the full state is exact, so its greedy AIS policy is
optimal in every draw; the evidence slope is refitted with ``np.polyfit``.
"""
from __future__ import annotations

import numpy as np
import pytest

from estimators.behavior import uniform_behavior
from estimators.fit import fit_epoch_model
from estimators.gaps import gap_report
from estimators.posterior import PosteriorSampler
from estimators.uncertainty import GAP_VALUE_KEYS, evidence_needed, posterior_gaps
from icsmdp_theory.cells import epoch_observations
from icsmdp_theory.examples import load_example
from icsmdp_theory.traces import read_trace, simulate_trace

DRAWS = 12


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    model = load_example("tiny-handoff")
    path = tmp_path_factory.mktemp("u") / "t.jsonl"
    simulate_trace(model, path, episodes=400, behavior=uniform_behavior(model), seed=3)
    trace = read_trace(path)
    fit = fit_epoch_model(trace)
    obs = epoch_observations(model)
    labels = [f"[0,{m},0,0]" for m in range(model.num_interface)]
    index = {lab: f for f, lab in enumerate(labels)}
    maps = [np.array([obs[index[lab], i] for lab in fit.model.labels]) for i in range(2)]
    return trace, fit, fit.model.with_observation(maps)


def test_intervals_are_quantiles_of_independently_recomputed_draws(fitted):
    _, _, model = fitted
    res = posterior_gaps(model, draws=DRAWS, seed=5, mixing=False, reference="stationary")
    sampler = PosteriorSampler(model)
    seeds = np.random.SeedSequence(5).spawn(DRAWS)
    values = []
    for sd in seeds:
        d = sampler.draw(rng=np.random.default_rng(sd))
        rep = gap_report(d, reference="stationary", minimax=True, tol=1e-9)
        values.append([rep.alpha_tight, rep.epsilon_phi, rep.policy_loss,
                       float(d.rho0 @ np.nanmax(rep.q_star, axis=1))])
    values = np.array(values)
    for j, k in enumerate(["alpha_tight", "epsilon_phi", "policy_loss", "v0"]):
        lo, hi = np.quantile(values[:, j], [0.05, 0.95])
        assert res.intervals[k] == pytest.approx([lo, hi], abs=1e-8), k
    ml = gap_report(model, reference="stationary", tol=1e-9)
    assert res.values["alpha_tight"] == pytest.approx(ml.alpha_tight, abs=1e-9)
    assert set(GAP_VALUE_KEYS) <= set(res.keys)


def test_jobs_do_not_change_the_numbers(fitted):
    _, _, model = fitted
    a = posterior_gaps(model, draws=8, seed=1, mixing=False, minimax=False, jobs=1)
    b = posterior_gaps(model, draws=8, seed=1, mixing=False, minimax=False, jobs=2)
    np.testing.assert_array_equal(a.draws, b.draws)


def test_against_itself_differs_by_nothing(fitted):
    _, _, model = fitted
    res = posterior_gaps(model, against=model, draws=6, seed=2, mixing=False, minimax=False)
    for k, iv in res.against["difference_intervals"].items():
        assert iv is None or iv == [0.0, 0.0], k
    assert res.against["intervals"] == res.intervals


def test_an_exact_map_is_optimal_in_every_draw(fitted):
    """Labels are the full states (one agent active per label): the identity map is exact."""
    _, fit, _ = fitted
    res = posterior_gaps(fit.model, draws=6, seed=4, mixing=False, minimax=False)
    assert res.greedy_agreement == 1.0 and res.greedy_agreement_ml
    assert res.values["epsilon_phi"] <= 1e-12 and res.values["max_q_gap"] <= 1e-8


def test_evidence_slope_is_the_least_squares_fit(fitted):
    trace, _, model = fitted
    maps = [np.asarray(o) for o in model.observation]
    labels = model.labels

    def apply_maps(m):
        idx = {lab: k for k, lab in enumerate(labels)}
        return m.with_observation([np.array([mp[idx[lab]] for lab in m.labels]) for mp in maps])

    ev = evidence_needed(trace, apply_maps, keys=("alpha_tight", "v0"), fractions=(0.25, 0.5, 1.0),
                         draws=10, target_width=0.01)
    n = np.log(ev.invocations.astype(float))
    for k in ("alpha_tight", "v0"):
        w = ev.widths[k]
        if ev.slope[k] is None:
            continue
        b, a = np.polyfit(n, np.log(w), 1)
        assert ev.slope[k] == pytest.approx(b) and ev.scale[k] == pytest.approx(np.exp(a))
        if b < 0:
            assert ev.projected_invocations[k] == pytest.approx((0.01 / np.exp(a)) ** (1 / b))
