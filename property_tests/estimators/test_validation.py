"""estimators.validation: Monte Carlo episodes of a fixed policy against closed forms and exact
values.

Independent references: the law of a geometric number of invocations (pmf summed by
hand), the exact values of :func:`estimators.policy_value.policy_value` (itself tested
against power series) with statistical bounds whose false-alarm rate is stated, and
hand-computed quantiles and CVaR of small samples.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

import estimators.validation as validation
from estimators.policy_value import PolicyValue, policy_value
from estimators.validation import (ais_greedy_policy, empirical_cvar, greedy_policy,
                                   run_greedy_policy, sample_statistics, simulate_policy)
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.math_reasoning import WORKFLOW_NAMES, math_reasoning, workflow_policy
from property_tests.estimators.test_policy_value import random_epoch_model
from solvers import ICQ, solve

P, GAMMA, TAU = 0.176, 0.9, 2


def geometric_model(p: float = P, gamma: float = GAMMA, tau: int = TAU) -> EpochModel:
    """Labels a, b; one agent. At a, continuing (successor 0) pays reward 1 and costs one call,
    takes ``tau`` steps and lands in b w.p. ``p`` (else a); at b, STOP pays 0 and costs one call.
    Under "continue at a, STOP at b" the number N of invocations at a is Geometric(p) on
    {1, 2, ...}."""
    rows = [(0, 0, 0, tau, 1 - p), (0, 0, 1, tau, p), (0, 1, -1, 1, 1.0), (1, 1, -1, 1, 1.0)]
    rows = [r for r in rows if r[4] > 0]
    tr = {key: [r[j] for r in rows]
          for j, key in enumerate(("state", "successor", "next_label", "tau", "prob"))}
    return EpochModel(
        name="geometric", gamma=gamma, agents=["solo"], labels=["a", "b"],
        states=[[0, 0], [1, 0]], admissible=[[True, True], [False, True]], rho0=[1.0, 0.0],
        reward=[[1.0, 0.0], [0.0, 0.0]], component_names=["calls"],
        components=[[[-1.0], [-1.0]], [[0.0], [-1.0]]], transitions=tr)


def _pmf_geometric(p, kmax=4000):
    k = np.arange(1, kmax + 1)
    return k, p * (1 - p) ** (k - 1)


def _law_quantile(values, probs, level):
    order = np.argsort(values)
    v, w = values[order], probs[order]
    return float(v[np.searchsorted(np.cumsum(w), level - 1e-15)])


def _law_cvar(values, probs, alpha):
    order = np.argsort(values)
    v, w = values[order], probs[order]
    left, total = alpha, 0.0
    for vi, wi in zip(v, w):
        take = min(wi, left)
        total += take * vi
        left -= take
        if left <= 0:
            break
    return total / alpha


# ----------------------------------------------------------------- closed forms
def test_geometric_invocations_match_the_closed_forms():
    n = 200_000
    m = geometric_model()
    r = simulate_policy(m, np.array([0, 1]), episodes=n, seed=3)
    k, pk = _pmf_geometric(P)
    # the sample itself: N invocations at a, then the STOP invocation at b
    N = r.invocations - 1
    assert np.array_equal(r.totals[:, 0], N) and np.array_equal(r.totals[:, 1], -(N + 1))
    assert np.array_equal(r.durations, TAU * N + 1)
    g2 = GAMMA ** TAU
    assert np.allclose(r.returns[:, 0], (1 - g2 ** N) / (1 - g2))
    assert np.allclose(r.returns[:, 1], -(1 - g2 ** N) / (1 - g2) - g2 ** N)
    # distributions: mean, sd, quantiles, CVaR of N and -(N+1) from the pmf
    for j, values in ((0, k.astype(float)), (1, -(k + 1.0))):
        row = r.row(r.names[j], discounted=False)
        mean = float(pk @ values)
        sd = math.sqrt(float(pk @ (values - mean) ** 2))
        assert abs(row["mean"] - mean) < 5 * sd / math.sqrt(n)
        assert abs(row["sd"] - sd) < 0.02 * sd
        for name, level in (("q05", 0.05), ("q50", 0.5), ("q95", 0.95)):
            # P was chosen so that no jump of the cdf lies within 8 standard errors of a level
            assert row[name] == _law_quantile(values, pk, level), name
        cvar = _law_cvar(values, pk, 0.05)
        assert abs(row["cvar05"] - cvar) < 0.02 * abs(cvar)
    # closed forms of the means: E N = 1/p; discounted E x^N = p x / (1 - (1-p) x)
    assert abs(float(pk @ k) - 1 / P) < 1e-9
    egn = P * g2 / (1 - (1 - P) * g2)
    disc_reward = (1 - egn) / (1 - g2)
    row = r.row("reward")
    assert abs(row["mean"] - disc_reward) < 5 * row["sd"] / math.sqrt(n)
    assert abs(row["exact"] - disc_reward) < 1e-12
    assert abs(r.row("calls")["exact"] - (-disc_reward - egn)) < 1e-12
    assert r.status == "ok" and r.truncated == 0


def test_a_deterministic_episode_has_zero_spread_and_passes():
    r = simulate_policy(geometric_model(p=1.0), np.array([0, 1]), episodes=50, seed=0)
    row = r.row("reward")
    assert row["sd"] == 0 and row["mean"] == row["exact"] == 1.0 and row["check"] == "pass"
    assert row["q05"] == row["q95"] == row["cvar05"] == 1.0
    assert r.row("calls", discounted=False)["mean"] == -2.0
    assert r.status == "ok"


def test_statistics_of_small_samples_by_hand():
    s = sample_statistics(np.arange(1.0, 21.0))          # 1..20
    assert s["mean"] == 10.5 and abs(s["sd"] - math.sqrt(35.0)) < 1e-12
    assert (s["q05"], s["q50"], s["q95"]) == (1.0, 10.0, 19.0)   # smallest x with F_n(x) >= p
    assert s["cvar05"] == 1.0                               # the worst 5 % = one of 20
    assert empirical_cvar(np.arange(1.0, 21.0), 0.1) == 1.5
    assert abs(empirical_cvar(np.arange(1.0, 21.0), 0.125) - (1 + 2 + 0.5 * 3) / 2.5) < 1e-12
    with pytest.raises(InvalidArgumentError, match="alpha"):
        empirical_cvar([1.0], 0.0)


# ----------------------------------------------------------------- the check
def _stopping_policy(m):
    N = m.num_agents
    return np.array([N if m.admissible[s, N] else np.flatnonzero(m.admissible[s])[0]
                     for s in range(m.num_epoch_states)])


def test_the_check_passes_on_random_epoch_models():
    """40 random models, random policies: a correct simulator fails a model's simultaneous 99 %
    check with probability <= 0.01, so more than 3 failures has probability < 1e-3."""
    fails, zs = 0, []
    for seed in range(40):
        m = random_epoch_model(seed)
        rng = np.random.default_rng(seed)
        sigma = _stopping_policy(m) if seed % 2 else np.array(
            [rng.choice(np.flatnonzero(m.admissible[s])) for s in range(m.num_epoch_states)])
        r = simulate_policy(m, sigma, episodes=20_000, seed=seed, horizon=2000)
        fails += r.status == "violated"
        zs += [row["z"] for row in r.rows if row["z"] is not None and row["discounted"]]
        for row in r.rows:      # an undefined exact total is never called a pass or a fail
            if not math.isfinite(row["exact"]):
                assert row["check"] == "inconclusive"
    assert binom.sf(3, 40, 0.01) < 1e-3
    assert fails <= 3
    # the discounted z-scores look standard normal (mean 0, variance 1) over ~120 rows
    zs = np.asarray(zs)
    assert abs(zs.mean()) < 4 / math.sqrt(zs.size) and 0.6 < zs.var() < 1.5


def test_the_check_fails_when_the_exact_value_is_off(monkeypatch):
    m = geometric_model()
    real = validation.policy_value

    def shifted(model, policy, *, discounted=True):
        v = real(model, policy, discounted=discounted)
        values = dict(v.values, reward=v.values["reward"] + 0.05)
        return PolicyValue(success=True, status="computed", message="shifted", names=v.names,
                           values=values, per_state=v.per_state, discounted=v.discounted,
                           terminates=v.terminates, trapped=v.trapped)

    monkeypatch.setattr(validation, "policy_value", shifted)
    r = simulate_policy(m, np.array([0, 1]), episodes=100_000, seed=0)
    assert r.row("reward")["check"] == "fail" and r.row("calls")["check"] == "pass"
    assert r.status == "violated" and not r.success


def test_simultaneous_intervals_are_wider():
    m = random_epoch_model(5)
    sigma = _stopping_policy(m)
    a = simulate_policy(m, sigma, episodes=1000, seed=1)
    b = simulate_policy(m, sigma, episodes=1000, seed=1, simultaneous=False)
    assert abs(b.z_critical - 2.5758293035489) < 1e-9
    assert abs(a.z_critical - norm.ppf(1 - 0.01 / (2 * a.rows_checked))) < 1e-12
    assert a.rows_checked >= 2 and a.z_critical > b.z_critical


def test_cut_episodes_are_counted_and_make_the_check_inconclusive():
    # continue at a with p = 0.01: about 37 % of episodes are still running after 100 steps
    m = geometric_model(p=0.01, tau=1)
    r = simulate_policy(m, np.array([0, 1]), episodes=2000, seed=0, horizon=100)
    expected = 2000 * 0.99 ** 100
    assert abs(r.truncated - expected) < 5 * math.sqrt(2000 * 0.99 ** 100 * (1 - 0.99 ** 100))
    assert r.row("reward", discounted=False)["check"] == "inconclusive"
    assert r.row("reward", discounted=False)["truncation_bias"] > 0
    # the discounted return after 100 steps is worth at most 0.9^100 * 10: within the interval
    assert r.row("reward")["check"] == "pass"
    assert (r.durations[r.invocations < 101] <= 101).all()
    assert r.status == "inconclusive"


@pytest.mark.parametrize("dataset", ["MathQA", "MMLU-HS", "MMLU-Elem"])
def test_the_check_passes_on_every_named_workflow(dataset):
    """The Done-when bullet: each check has false-alarm probability <= 1 % (simultaneous)."""
    m = math_reasoning(dataset)
    for name in WORKFLOW_NAMES:
        sigma = workflow_policy(m, name)
        r = simulate_policy(m, sigma, episodes=50_000, seed=7)
        assert r.status == "ok", (dataset, name, r.message)
        acc = policy_value(m, sigma, discounted=False).values["correct"]
        assert r.row("correct", discounted=False)["exact"] == acc
        assert r.truncated == 0 and r.invocations.max() <= 9


# ----------------------------------------------------------------- reproducibility
def test_seeds_reproduce_and_chunks_do_not_matter_for_reproducibility(monkeypatch):
    m = random_epoch_model(11)
    sigma = _stopping_policy(m)
    monkeypatch.setattr(validation, "CHUNK_EPISODES", 700)
    a = simulate_policy(m, sigma, episodes=2500, seed=4)
    b = simulate_policy(m, sigma, episodes=2500, seed=4, progress=lambda k: None)
    c = simulate_policy(m, sigma, episodes=2500, seed=5)
    assert np.array_equal(a.returns, b.returns) and np.array_equal(a.totals, b.totals)
    assert np.array_equal(a.invocations, b.invocations)
    assert not np.array_equal(a.returns, c.returns)
    seen = []
    simulate_policy(m, sigma, episodes=2500, seed=4, progress=seen.append)
    assert seen == [700, 700, 700, 400]


# ----------------------------------------------------------------- policies
def test_greedy_policies_of_the_workflow_example():
    e = export_epoch(load_example("workflow"))
    g = greedy_policy(e)
    a = ais_greedy_policy(e)
    assert g.shape == a.shape == (e.num_epoch_states,)
    assert e.admissible[np.arange(e.num_epoch_states), a].all()
    # the greedy policy of Q* is optimal: no other policy has a larger discounted value
    rg = simulate_policy(e, g, episodes=20_000, seed=0)
    ra = simulate_policy(e, a, episodes=20_000, seed=0)
    assert rg.status == ra.status == "ok"
    assert rg.row("reward")["exact"] >= ra.row("reward")["exact"] - 1e-9
    # the AIS-greedy policy is a function of the cell: constant on each (agent, observation)
    cells = e.state_agent * 1000 + e.state_observation
    for c in np.unique(cells):
        assert np.unique(a[cells == c]).size == 1


def test_run_greedy_policy_matches_the_record_cells(tmp_path):
    inst = load_example("tiny-handoff")
    rec = solve(ICQ(seeds=2, updates=200, checkpoints=(200,), progress=False), inst)
    sigma = run_greedy_policy(inst, rec, seed_index=1)
    e = export_epoch(inst)
    assert sigma.shape == (e.num_epoch_states,)
    # by hand: state s = f*N + i takes the argmax of its cell's row
    q = np.asarray(rec.q[-1, 1])
    offs = np.r_[0, np.cumsum(inst.num_observations)]
    for s in range(e.num_epoch_states):
        i = int(e.state_agent[s])
        row = np.where(inst.admissible[i], np.nan_to_num(q[offs[i] + e.state_observation[s]],
                                                         nan=-np.inf), -np.inf)
        assert sigma[s] == int(np.flatnonzero(row >= row.max() - 1e-10)[0])
    assert simulate_policy(e, sigma, episodes=5000, seed=0).status == "ok"
    with pytest.raises(InvalidArgumentError, match="seed_index"):
        run_greedy_policy(inst, rec, seed_index=2)
    with pytest.raises(InvalidArgumentError, match="kind"):
        run_greedy_policy(e, rec)


def test_bad_input_is_refused():
    m = geometric_model()
    with pytest.raises(InvalidArgumentError, match="not admissible"):
        simulate_policy(m, np.array([0, 0]), episodes=10)
    with pytest.raises(InvalidArgumentError, match="episodes"):
        simulate_policy(m, np.array([0, 1]), episodes=1)
    with pytest.raises(InvalidArgumentError, match="EpochModel"):
        simulate_policy(load_example("tiny-handoff"), np.array([0, 1]), episodes=10)
    with pytest.raises(InvalidArgumentError, match="horizon"):
        simulate_policy(m, np.array([0, 1]), episodes=10, horizon=0)
