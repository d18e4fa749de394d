"""Tests of estimators.posterior (SPEC 10 "Posterior").

Independent truths: the Dirichlet closed-form mean ``a_j / A`` and variance
``a_j (A - a_j) / (A^2 (A + 1))`` of each law and of ``rho0`` (Monte Carlo
with 5-standard-error bounds); the Bayesian bootstrap's closed forms (mean =
the sample mean, variance = population variance / (n + 1)); the support
``O_{c'}`` read off the trace by hand; numpy's type-7 quantiles; episodes
counted directly for subsamples.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from estimators.fit import fit_epoch_model
from estimators.posterior import PosteriorSampler, equal_tailed_interval, subsample_trace
from icsmdp_theory.epoch_io import load_epoch_model, save_epoch_model
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.traces import read_trace, write_synthetic_trace
from property_tests.estimators.trace_sampler import random_truth, sample_trace

DRAWS = 3000


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(5)
    truth = random_truth(rng, num_labels=3, num_agents=2, taus=(1, 2, 3))
    trace = sample_trace(truth, rng, episodes=60, max_steps=8, noise=1.0)   # small: visible prior
    # rewards on a grid of 1/2, so triples repeat values (multiplicities matter in the bootstrap)
    reward = np.round(trace.reward * 2) / 2
    reward.setflags(write=False)
    trace = dataclasses.replace(trace, reward=reward)
    return trace, fit_epoch_model(trace, alpha0=0.7)


@pytest.fixture(scope="module")
def draws(fitted):
    sampler = PosteriorSampler(fitted[1], rng=123, support="successor")
    return sampler, sampler.draws(DRAWS)


def _law(m, s, c):
    sel = (m.trans_state == s) & (m.trans_successor == c)
    return dict(zip(zip(m.trans_next_label[sel].tolist(), m.trans_tau[sel].tolist()),
                    m.trans_prob[sel].tolist()))


def test_support_is_every_outcome_seen_for_the_successor(fitted, draws):
    trace, fit = fitted
    sampler, models = draws
    m = fit.model
    N = m.num_agents
    # by hand from the trace: the outcomes (k', tau) of every invocation with successor c'
    has = (trace.successor == N) | (trace.next_label >= 0)
    label_index = {lab: j for j, lab in enumerate(m.labels)}
    seen = {c: set() for c in range(N + 1)}
    for c, kn, tau in zip(trace.successor[has], trace.next_label[has], trace.tau[has]):
        seen[int(c)].add((label_index[trace.labels[kn]] if kn >= 0 else -1, int(tau)))
    d = models[0]
    for s, c in zip(*np.nonzero(m.admissible)):
        assert set(_law(d, s, c)) == seen[int(c)]
    assert sampler.num_entries == sum(len(seen[int(c)]) for c in np.nonzero(m.admissible)[1])
    assert sampler.alpha0 == 0.7                    # taken from the fit's counts


def test_law_moments_match_the_dirichlet(fitted, draws):
    _, fit = fitted
    sampler, models = draws
    m = fit.model
    c = m.counts
    counts = {}
    for k, i, cc, kn, tau, n in zip(c["outcome_label"], c["outcome_agent"], c["outcome_successor"],
                                    c["outcome_next_label"], c["outcome_tau"], c["outcome_count"]):
        counts[(m.state_index(k, i), cc, kn, tau)] = n
    checked = 0
    for s, cc in list(zip(*np.nonzero(m.admissible)))[:6]:
        support = sorted(_law(models[0], s, cc))
        a = np.array([0.7 + counts.get((s, cc, kn, tau), 0) for kn, tau in support])
        A = a.sum()
        mean, var = a / A, a * (A - a) / (A ** 2 * (A + 1))
        x = np.array([[_law(d, s, cc)[o] for o in support] for d in models])
        np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-12)
        assert np.all(np.abs(x.mean(axis=0) - mean) <= 5 * np.sqrt(var / DRAWS))
        # sample variance: relative standard error about sqrt(2 / DRAWS) (heavier for Beta tails)
        assert np.all(np.abs(x.var(axis=0, ddof=1) / var - 1) <= 0.2)
        checked += 1
    assert checked >= 4


def test_rho0_moments_match_the_dirichlet(fitted, draws):
    _, fit = fitted
    _, models = draws
    m, c = fit.model, fit.model.counts
    a = np.zeros(m.num_epoch_states)
    for k, i, n in zip(c["start_label"], c["start_agent"], c["start_count"]):
        a[m.state_index(k, i)] = 0.7 + n
    x = np.array([d.rho0 for d in models])
    assert np.all(x[:, a == 0] == 0)
    A = a.sum()
    mean, var = a / A, a * (A - a) / (A ** 2 * (A + 1))
    assert np.all(np.abs(x.mean(axis=0) - mean) <= 5 * np.sqrt(var / DRAWS) + 1e-15)


def test_reward_bootstrap_closed_forms(fitted, draws):
    trace, fit = fitted
    _, models = draws
    m = fit.model
    N = m.num_agents
    has = (trace.successor == N) | (trace.next_label >= 0)
    label_index = {lab: j for j, lab in enumerate(m.labels)}
    x = np.array([d.reward for d in models])
    repeated = 0
    for s, cc in zip(*np.nonzero(m.admissible)):
        k = m.labels[m.state_label[s]]
        sel = has & (trace.label == trace.labels.index(k)) & (trace.agent == m.state_agent[s]) \
            & (trace.successor == cc)
        r = trace.reward[sel]
        n = len(r)
        assert label_index[k] == m.state_label[s] and n >= 1
        pop_var = r.var()                          # (1/n) sum (r - mean)^2
        bb_var = pop_var / (n + 1)                 # variance of the Dirichlet(1)-weighted mean
        assert abs(m.reward[s, cc] - r.mean()) < 1e-12
        assert abs(x[:, s, cc].mean() - r.mean()) <= 5 * np.sqrt(bb_var / DRAWS) + 1e-12
        if n >= 3 and bb_var > 0:
            assert abs(x[:, s, cc].var(ddof=1) / bb_var - 1) <= 0.25
            repeated += len(np.unique(r)) < n
    assert repeated >= 3
    assert np.isnan(x[:, ~m.admissible]).all()


def _without(model, keys):
    counts = {k: v for k, v in model.counts.items() if k not in keys}
    return EpochModel(name=model.name, gamma=model.gamma, agents=model.agent_names, labels=model.labels,
                      states=np.stack([model.state_label, model.state_agent], axis=1),
                      admissible=model.admissible, rho0=model.rho0,
                      transitions={"state": model.trans_state, "successor": model.trans_successor,
                                   "next_label": model.trans_next_label, "tau": model.trans_tau,
                                   "prob": model.trans_prob},
                      reward=model.reward, counts=counts)


def test_without_reward_values_the_ml_mean_is_kept(fitted):
    m = fitted[1].model
    bare = _without(m, {"reward_label", "reward_agent", "reward_successor", "reward_value",
                        "reward_count"})
    sampler = PosteriorSampler(bare, rng=0)
    assert not sampler.reward_bootstrap and "maximum-likelihood mean" in sampler.notes[0]
    d = sampler.draw()
    np.testing.assert_array_equal(d.reward[m.admissible], m.reward[m.admissible])
    with pytest.raises(InvalidArgumentError, match="no fit counts"):
        PosteriorSampler(_without(m, {"format"}))


def test_observed_support_and_arguments(fitted):
    m = fitted[1].model
    sampler = PosteriorSampler(m, rng=0, support="observed", alpha0=2.0)
    assert sampler.num_entries == len(m.trans_prob)
    d = sampler.draw()
    assert np.array_equal(d.trans_next_label, m.trans_next_label) and np.array_equal(d.trans_tau, m.trans_tau)
    with pytest.raises(InvalidArgumentError, match="state, pooled, successor, observed"):
        PosteriorSampler(m, support="all")
    with pytest.raises(InvalidArgumentError, match="alpha0"):
        PosteriorSampler(m, alpha0=-1.0)
    # same seed, same draws
    a = PosteriorSampler(m, rng=9).draw()
    b = PosteriorSampler(m, rng=9).draw()
    assert np.array_equal(a.trans_prob, b.trans_prob) and np.array_equal(a.rho0, b.rho0)


def test_tiny_alpha0_never_gives_an_empty_law(fitted):
    d = PosteriorSampler(fitted[1], rng=1, alpha0=1e-300).draw()
    sums = np.bincount(d.trans_state * (d.num_agents + 1) + d.trans_successor, weights=d.trans_prob)
    np.testing.assert_allclose(sums[sums > 0], 1.0, atol=1e-12)
    assert np.isfinite(d.trans_prob).all()


def test_equal_tailed_interval_is_numpy_linear_quantiles():
    rng = np.random.default_rng(2)
    for n in (1, 2, 7, 200):
        x = rng.normal(size=n)
        for level in (0.5, 0.9, 0.95):
            lo, hi = equal_tailed_interval(x, level)
            q = np.quantile(x, [(1 - level) / 2, (1 + level) / 2], method="linear")
            assert lo == pytest.approx(q[0], abs=1e-15) and hi == pytest.approx(q[1], abs=1e-15)
    assert equal_tailed_interval([1.0, np.inf, np.inf, np.inf], 0.5) == (np.inf, np.inf)
    assert np.isnan(equal_tailed_interval([1.0, np.nan], 0.9)).all()
    with pytest.raises(InvalidArgumentError, match="level"):
        equal_tailed_interval([1.0], 1.0)


def test_subsample_keeps_whole_episodes(fitted):
    trace = fitted[0]
    sub = subsample_trace(trace, 0.25, rng=4)
    assert sub.num_episodes == round(0.25 * trace.num_episodes)
    kept_ids = set(sub.episode_ids)
    # every line of a kept episode, none of the others, in file order
    orig = [(trace.episode_ids[e], int(line)) for e, line in zip(trace.episode, trace.line)]
    want = [x for x in orig if x[0] in kept_ids]
    got = [(sub.episode_ids[e], int(line)) for e, line in zip(sub.episode, sub.line)]
    assert got == want and sub.num_invocations == len(want)
    # ordinals by first appearance; truncated episodes counted directly
    first = list(dict.fromkeys(sub.episode.tolist()))
    assert first == list(range(sub.num_episodes))
    ends = {e: c for e, c in zip(sub.episode.tolist(), sub.successor.tolist())}   # last line wins
    assert sub.num_truncated_episodes == sum(c != trace.num_agents for c in ends.values())
    fit_epoch_model(sub)                                  # a valid trace for the fit


def test_draw_time_is_reported_on_a_2000_state_model(tmp_path):
    """Not a benchmark gate: a 2,000-state fit (synthetic trace), and one draw per support, timed."""
    p = tmp_path / "s.jsonl"
    write_synthetic_trace(p, invocations=40_000, agents=10, labels=200, seed=1)
    fit = fit_epoch_model(read_trace(p))
    assert fit.states_seen == 2000
    sampler = PosteriorSampler(fit, rng=0, support="observed")
    t0 = time.perf_counter()
    d = sampler.draw()
    assert time.perf_counter() - t0 < 5.0 and d.num_epoch_states == 2000


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_saved_fitted_model_rebuilds_the_same_posterior(fitted, tmp_path, suffix):
    m = fitted[1].model
    path = tmp_path / f"model{suffix}"
    save_epoch_model(m, path)
    loaded = load_epoch_model(path)
    a, b = PosteriorSampler(m, rng=3), PosteriorSampler(loaded, rng=3)
    assert b.reward_bootstrap and b.alpha0 == a.alpha0 == 0.7
    da, db = a.draw(), b.draw()
    for key in ("trans_state", "trans_successor", "trans_next_label", "trans_tau", "trans_prob",
                "rho0"):
        np.testing.assert_array_equal(getattr(da, key), getattr(db, key))
    np.testing.assert_array_equal(da.reward, db.reward)


def test_pooled_support_moments_match_the_empirical_bayes_dirichlet(fitted):
    """support="pooled": Dirichlet(n + alpha0 * share) with ``share`` the trace-wide frequency of
    each outcome after the successor (computed here from the trace itself)."""
    trace, fit = fitted
    m = fit.model
    N = m.num_agents
    has = trace.next_label >= 0
    label_of = {lab: j for j, lab in enumerate(m.labels)}
    # outcome frequencies per successor, straight from the trace lines with a next state
    freq: dict = {}
    for j in np.flatnonzero(has | (trace.successor == N)):
        c = int(trace.successor[j])
        nl = -1 if c == N else label_of[trace.labels[trace.next_label[j]]]
        freq.setdefault(c, {}).setdefault((nl, int(trace.tau[j])), 0)
        freq[c][(nl, int(trace.tau[j]))] += 1
    sampler = PosteriorSampler(fit, rng=7, support="pooled")
    models = sampler.draws(2000)
    c_ = m.counts
    counts = {}
    for k, i, cc, kn, tau, n in zip(c_["outcome_label"], c_["outcome_agent"], c_["outcome_successor"],
                                    c_["outcome_next_label"], c_["outcome_tau"], c_["outcome_count"]):
        counts[(m.state_index(k, i), cc, kn, tau)] = n
    checked = 0
    for s, cc in list(zip(*np.nonzero(m.admissible)))[:6]:
        support = sorted(_law(models[0], s, cc))
        tot = sum(freq[int(cc)].values())
        a = np.array([counts.get((s, cc, kn, tau), 0) + 0.7 * freq[int(cc)].get((kn, tau), 0) / tot
                      for kn, tau in support])
        assert abs(a.sum() - 0.7 - sum(counts.get((s, cc, kn, tau), 0) for kn, tau in support)) < 1e-9
        A = a.sum()
        mean, var = a / A, a * (A - a) / (A ** 2 * (A + 1))
        x = np.array([[_law(d, s, cc)[o] for o in support] for d in models])
        assert np.all(np.abs(x.mean(axis=0) - mean) <= 5 * np.sqrt(var / len(models)) + 1e-12)
        checked += 1
    assert checked >= 4
