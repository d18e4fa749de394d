"""Tests of estimators.drift: per-triple drift tests, their correction, and the policy comparison (SPEC 10).

Independent truths: Holm's step-down and Benjamini-Hochberg's step-up
procedures written from their definitions; scipy (``chi2_contingency``
G statistic, ``ttest_ind(equal_var=False)``, ``permutation_test``) and an
enumeration of every ``2 x C`` table with the given margins for the exact
conditional p-value; the known models behind simulated traces (no drift: the
family-wise false-positive rate below the level plus a binomial 99 % margin;
a planted change: detected and named); value iteration on each fitted model
for the policy comparison.
"""
from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
from scipy.stats import binom, chi2, chi2_contingency, multivariate_hypergeom, permutation_test, ttest_ind

from estimators.drift import DriftResult, adjusted_p_values, trace_drift
from estimators.ais import ais_smdp, ais_solution
from estimators.decentralized import best_decentralized_policy, enumerate_decentralized_policies
from estimators.policy_value import policy_value
from estimators.fit import fit_epoch_model
from icsmdp_theory.epoch_io import label_maps_from_dict
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.math_reasoning import (CALIBRATED, WORKFLOW_NAMES, math_reasoning, workflow_cells,
                                          workflow_policy)
from icsmdp_theory.traces import TraceWriter, read_trace, simulate_epoch_trace
from property_tests.estimators.trace_sampler import random_truth, sample_trace
from solvers.api import ValueIteration, solve


# ---------------------------------------------------------------- helpers
def _truth():
    """3 labels, 2 agents, 14 triples; every law and reward non-degenerate (rewards get noise)."""
    return random_truth(np.random.default_rng(5), num_labels=3, num_agents=2, taus=(1, 2),
                        stop_taus=(1, 2))


def _fit(truth, rng, episodes=300, noise=0.5):
    return fit_epoch_model(sample_trace(truth, rng, episodes=episodes, noise=noise))


def _hand_trace(path, gamma, agents, rows):
    """rows: (episode, agent, state, successor, tau, reward); episodes of one STOP line each unless chained."""
    with TraceWriter(path, gamma=gamma, agents=agents) as w:
        for ep, ag, st, succ, tau, r in rows:
            w.write(ep, ag, st, succ, tau, reward=r)
    return fit_epoch_model(read_trace(path))


def _stop_rows(taus, rewards, start=0):
    """One-line episodes of agent a at label x that STOP after ``tau`` with reward ``r``."""
    return [(start + e, "a", "x", "STOP", int(t), float(r)) for e, (t, r) in enumerate(zip(taus, rewards))]


# ---------------------------------------------------------------- multiple testing
def _holm_rejects(p, level):
    """Holm's step-down: reject p_(1..j) while p_(l) <= level / (m - l + 1)."""
    m = len(p)
    out = np.zeros(m, bool)
    for rank, j in enumerate(np.argsort(p, kind="stable")):
        if p[j] > level / (m - rank):
            break
        out[j] = True
    return out


def _bh_rejects(p, level):
    """Benjamini-Hochberg step-up: reject the k smallest, k = max{j: p_(j) <= j level / m}."""
    m = len(p)
    ps = np.sort(p)
    ok = np.flatnonzero(ps <= np.arange(1, m + 1) * level / m)
    if not ok.size:
        return np.zeros(m, bool)
    return p <= ps[ok[-1]]


@pytest.mark.parametrize("seed", range(20))
def test_adjusted_p_values_reproduce_the_step_procedures(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = np.where(rng.random(m) < 0.3, rng.random(m) * 0.01, rng.random(m))
    p[rng.random(m) < 0.2] = p[0]                               # ties
    holm, bh = adjusted_p_values(p), adjusted_p_values(p, correction="bh")
    assert ((holm >= p) & (holm <= 1) & (bh >= p - 1e-15) & (bh <= holm + 1e-15)).all()
    for level in (0.001, 0.01, 0.05, 0.1, 0.3):
        assert np.array_equal(holm <= level, _holm_rejects(p, level))
        assert np.array_equal(bh <= level, _bh_rejects(p, level))


def test_adjusted_p_values_refuse_bad_input():
    with pytest.raises(InvalidArgumentError, match="`correction` must be one of holm, bh"):
        adjusted_p_values([0.1], correction="bonferroni")
    with pytest.raises(InvalidArgumentError, match="p-values in"):
        adjusted_p_values([0.1, 1.5])
    assert adjusted_p_values([]).size == 0


# ---------------------------------------------------------------- the per-triple tests, by hand
def test_g_test_with_williams_on_a_large_table(tmp_path):
    rng = np.random.default_rng(0)
    tn = rng.choice([1, 2, 3], size=400, p=[0.5, 0.3, 0.2])
    to = rng.choice([1, 2, 3], size=300, p=[0.4, 0.3, 0.3])
    new = _hand_trace(tmp_path / "n.jsonl", 0.9, ["a"], _stop_rows(tn, np.zeros(400)))
    old = _hand_trace(tmp_path / "o.jsonl", 0.9, ["a"], _stop_rows(to, np.zeros(300)))
    r = trace_drift(new, old, rng=0)
    (t,) = r.triples
    table = np.array([[np.sum(tn == k) for k in (1, 2, 3)], [np.sum(to == k) for k in (1, 2, 3)]])
    g, _, dof, _ = chi2_contingency(table, correction=False, lambda_="log-likelihood")
    n, rows, cols = table.sum(), table.sum(1), table.sum(0)
    q = 1 + (n * (1 / rows).sum() - 1) * (n * (1 / cols).sum() - 1) / (6 * n * (2 - 1) * (3 - 1))
    assert t["law"]["test"] == "g_test" and t["law"]["dof"] == dof == 2
    assert t["law"]["p_value"] == pytest.approx(chi2.sf(g / q, 2), rel=1e-9)
    assert t["tv"] == pytest.approx(0.5 * np.abs(table[0] / 400 - table[1] / 300).sum(), abs=1e-15)
    assert t["reward"]["test"] == "degenerate" and r.num_tests == 1      # constant equal rewards
    assert t["adjusted"] == t["law"]["p_value"]                           # one test: no adjustment


def _exact_conditional_p(x_new, x_old):
    """P(G >= G_obs) over every 2 x C table with these margins (multivariate hypergeometric)."""
    col = np.asarray(x_new) + np.asarray(x_old)
    n1 = int(np.sum(x_new))

    def g(x):
        t = np.array([x, col - x], float)
        e = t.sum(1, keepdims=True) * t.sum(0, keepdims=True) / t.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2 * np.nansum(np.where(t > 0, t * np.log(t / e), 0.0))

    g_obs = g(np.asarray(x_new))
    law = multivariate_hypergeom(m=col, n=n1)
    p = 0.0
    for x in itertools.product(*(range(int(c) + 1) for c in col)):
        if sum(x) == n1:
            if g(np.array(x)) >= g_obs - 1e-9:
                p += law.pmf(x)
    return p


def test_sparse_table_gets_the_exact_conditional_p_value(tmp_path):
    taus_new = [1] * 6 + [2] * 1 + [3] * 1
    taus_old = [1] * 1 + [2] * 4 + [3] * 2
    new = _hand_trace(tmp_path / "n.jsonl", 0.9, ["a"], _stop_rows(taus_new, np.zeros(8)))
    old = _hand_trace(tmp_path / "o.jsonl", 0.9, ["a"], _stop_rows(taus_old, np.zeros(7)))
    B = 20000
    r = trace_drift(new, old, permutations=B, rng=1)
    (t,) = r.triples
    exact = _exact_conditional_p([6, 1, 1], [1, 4, 2])
    assert t["law"]["test"] == "monte_carlo" and r.tests["law"]["monte_carlo"] == 1
    # the Monte Carlo p-value (1 + hits) / (B + 1): within 4 binomial standard deviations of the exact one
    sd = np.sqrt(exact * (1 - exact) / B)
    assert abs(t["law"]["p_value"] - exact) <= 4 * sd + 1 / (B + 1)
    assert 0.01 < exact < 0.5                                              # a meaningful check


def test_reward_tests_exact_welch_and_permutation(tmp_path):
    rng = np.random.default_rng(3)
    # constant rewards that differ: p = 2 / binom(12, 6) (the split and its mirror)
    new = _hand_trace(tmp_path / "n1.jsonl", 0.9, ["a"], _stop_rows([1] * 6, [1.0] * 6))
    old = _hand_trace(tmp_path / "o1.jsonl", 0.9, ["a"], _stop_rows([1] * 6, [2.0] * 6))
    (t,) = trace_drift(new, old, rng=0).triples
    assert t["reward"]["test"] == "exact" and t["law"]["test"] == "degenerate"
    assert t["reward"]["p_value"] == pytest.approx(2 / 924, rel=1e-12)
    assert t["reward_difference"] == -1.0
    # large samples: Welch's t-test, as scipy computes it
    a, b = rng.normal(0.0, 1.0, 50).round(3), rng.normal(0.6, 2.0, 40).round(3)
    new = _hand_trace(tmp_path / "n2.jsonl", 0.9, ["a"], _stop_rows([1] * 50, a))
    old = _hand_trace(tmp_path / "o2.jsonl", 0.9, ["a"], _stop_rows([1] * 40, b))
    (t,) = trace_drift(new, old, rng=0).triples
    ref = ttest_ind(a, b, equal_var=False)
    assert t["reward"]["test"] == "welch"
    assert t["reward"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert t["reward"]["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    # small samples: the exact permutation test (enumeration), as scipy's permutation_test
    a, b = rng.normal(0.0, 1.0, 7).round(3), rng.normal(1.0, 1.0, 6).round(3)
    new = _hand_trace(tmp_path / "n3.jsonl", 0.9, ["a"], _stop_rows([1] * 7, a))
    old = _hand_trace(tmp_path / "o3.jsonl", 0.9, ["a"], _stop_rows([1] * 6, b))
    (t,) = trace_drift(new, old, rng=0).triples                            # binom(13, 7) = 1716 <= 9999
    ref = permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                           alternative="two-sided", n_resamples=np.inf)
    assert t["reward"]["test"] == "permutation"
    assert t["reward"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


# ---------------------------------------------------------------- no drift: the error rates
def test_no_drift_family_wise_false_positive_rate_is_controlled():
    """Pairs of traces of one model: P(any triple flagged) <= 0.05 (+ a binomial 99 % margin), Holm and BH."""
    truth = _truth()
    rng = np.random.default_rng(11)
    R, level = 100, 0.05
    holm = bh = raw_small = raw_total = 0
    for r in range(R):
        a, b = _fit(truth, rng), _fit(truth, rng)
        d = trace_drift(a, b, permutations=499, rng=r)
        holm += d.drift_found
        p = np.array([t[k]["p_value"] for t in d.triples for k in ("law", "reward")
                      if t[k]["test"] != "degenerate"]
                     + ([d.start["p_value"]] if d.start["test"] != "degenerate" else []))
        bh += bool(_bh_rejects(p, level).any())               # the step-up rule on the raw p-values
        assert d.drift_found == bool(_holm_rejects(p, level).any())
        raw_small += sum(x <= level for x in p)
        raw_total += len(p)
    bound = binom.ppf(0.99, R, level)
    assert holm <= bound and bh <= bound, (holm, bh, bound)
    # every per-test p-value is valid: the share at or below 0.05 is not above 0.05 (+ 99.9 % margin)
    assert raw_total >= 20 * R
    assert raw_small <= binom.ppf(0.999, raw_total, level), (raw_small, raw_total)


@pytest.mark.slow
def test_no_drift_on_an_exported_primitive_instance(tmp_path):
    """simulate_epoch_trace of tiny-handoff, 300 pairs: P(drift found) <= 0.05 + a binomial 99 % margin (15 of 300 seen)."""
    m = export_epoch(load_example("tiny-handoff"))
    behavior = []
    for i in range(m.num_agents):
        mask = m.state_agent == i
        ok = np.ones((m.num_observations[i], m.num_agents + 1), bool)
        np.logical_and.at(ok, m.state_observation[mask], m.admissible[mask])
        behavior.append(ok / ok.sum(1, keepdims=True))
    R, flagged = 300, 0
    for r in range(R):
        fits = []
        for side in (0, 1):
            path = tmp_path / f"{r}-{side}.jsonl"
            simulate_epoch_trace(m, path, episodes=300, behavior=behavior, seed=5000 + 2 * r + side)
            fits.append(fit_epoch_model(read_trace(path)))
        d = trace_drift(*fits, permutations=999, rng=r)
        flagged += d.drift_found
        assert d.num_shared >= 6
    assert flagged <= binom.ppf(0.99, R, 0.05)


# ---------------------------------------------------------------- a planted change
def _planted(truth, *, law=True):
    """A copy of ``truth`` where triple (0, ag0, ag0) has its non-STOP outcome law reversed (TV 0.70),
    or (``law=False``) where triple (1, ag1, STOP)'s reward is shifted by 0.4."""
    changed = copy.deepcopy(truth)
    if law:
        p = changed.law.copy()
        nonstop = truth.outcomes[:, 0] >= 0
        row = p[0, 0, 0].copy()
        row[nonstop] = row[nonstop][::-1]
        p[0, 0, 0] = row
        changed.law = p
    else:
        rew = changed.reward.copy()
        rew[1, 1, 2] += 0.4
        changed.reward = rew
    return changed


@pytest.mark.parametrize("law", [True, False])
def test_a_planted_change_is_detected_and_named(law):
    truth = _truth()
    assert truth.admissible[0, 0, 0] and truth.admissible[1, 1, 2]
    changed = _planted(truth, law=law)
    target = ("0", "ag0", "ag0") if law else ("1", "ag1", "STOP")
    rng = np.random.default_rng(21 + law)
    R, hits, others = 25, 0, 0
    for r in range(R):
        d = trace_drift(_fit(changed, rng), _fit(truth, rng), permutations=999, rng=r)
        named = {(t["label"], t["agent"], t["successor"]) for t in d.changed}
        hits += target in named
        others += bool(named - {target})
        if target in named:
            t = next(t for t in d.changed if (t["label"], t["agent"], t["successor"]) == target)
            assert t["adjusted"] <= 0.05 and (t["law"] if law else t["reward"])["rejected"]
            if law:
                assert t["tv"] > 0.4
            else:
                assert abs(t["reward_difference"] - 0.4) < 0.3
    assert hits >= R - 2, hits                               # high power
    assert others <= binom.ppf(0.99, R, 0.05)                # other triples: family-wise control


# ---------------------------------------------------------------- the policy comparison
def _recommended_direct(model, tol=1e-7):
    """Recommended successor sets of every state by value iteration (a second solver)."""
    q = solve(ValueIteration(tol=1e-11), model).q
    qm = np.where(model.admissible, q, -np.inf)
    return model.admissible & (qm >= qm.max(1, keepdims=True) - tol)


def test_policy_change_flag_matches_a_direct_comparison():
    truth = _truth()
    other = copy.deepcopy(truth)
    other.reward = -truth.reward                              # a different workflow: other greedy choices
    rng = np.random.default_rng(7)
    for new_truth in (truth, other):
        a, b = _fit(new_truth, rng, episodes=400), _fit(truth, rng, episodes=400)
        d = trace_drift(a, b, rng=0)
        ra, rb = _recommended_direct(a.model), _recommended_direct(b.model)
        key_a = {(a.model.labels[k], int(i)): s for s, (k, i) in
                 enumerate(zip(a.model.state_label, a.model.state_agent))}
        key_b = {(b.model.labels[k], int(i)): s for s, (k, i) in
                 enumerate(zip(b.model.state_label, b.model.state_agent))}
        shared = sorted(set(key_a) & set(key_b))
        direct = {(lab, f"ag{i}") for lab, i in shared if not (ra[key_a[lab, i]] & rb[key_b[lab, i]]).any()}
        got = {(c["label"], c["agent"]) for c in d.policy["changed"]}
        assert got == direct
        assert d.policy_changed == bool(direct) and d.policy["shared_states"] == len(shared)
        for c in d.policy["changed"]:
            s = key_a[c["label"], int(c["agent"][2:])]
            assert c["new"] == (["ag0", "ag1", "STOP"][int(np.argmax(np.where(a.model.admissible[s],
                                solve(ValueIteration(tol=1e-11), a.model).q[s], -np.inf)))])
    assert d.policy_changed                                   # the reversed rewards change the policy


def test_ais_policy_comparison_on_a_map_by_label():
    """AIS-greedy compared cell by cell; by_label codes are comparable, so each model is mapped alone."""
    truth = _truth()
    other = copy.deepcopy(truth)
    other.reward = -truth.reward
    rng = np.random.default_rng(8)
    a, b = _fit(other, rng, episodes=400), _fit(truth, rng, episodes=400)
    doc = {"format": "icsmdp-obs/1", "by_label": [{"0": 0, "1": 0, "2": 1}, {"0": 5, "1": 7, "2": 7}]}
    d = trace_drift(a, b, obs=doc, rng=0, reference="uniform")
    direct = set()
    shared = 0
    sols = []
    for f in (a, b):
        mm = label_maps_from_dict(doc, f.model)
        ais = ais_smdp(mm, reference="uniform")
        q = ais_solution(ais).q
        qm = np.where(ais.admissible, q, -np.inf)
        rec = ais.admissible & (qm >= qm.max(1, keepdims=True) - 1e-7)
        cells = {}
        for i in range(mm.num_agents):
            for o, raw in enumerate(mm.observation_values[i].tolist()):
                cells[(f"ag{i}", raw)] = rec[ais.cell_index(i, o)]
        sols.append(cells)
    for key in set(sols[0]) & set(sols[1]):
        shared += 1
        if not (sols[0][key] & sols[1][key]).any():
            direct.add(key)
    got = {(c["agent"], c["observation"]) for c in d.ais_policy["changed"]}
    assert got == direct and d.ais_policy["shared_cells"] == shared
    assert d.ais_policy["policy_changed"] == bool(direct)
    json.dumps(d.to_dict(), allow_nan=False)


# ---------------------------------------------------------------- only one trace, bad input
def test_triples_seen_in_one_trace_are_listed_apart(tmp_path):
    rows_new = _stop_rows([1, 1, 2], [0, 0, 0]) + [(10, "a", "y", "STOP", 1, 0.0)]
    rows_old = _stop_rows([1, 2, 2], [0, 0, 0]) + [(10, "b", "x", "STOP", 1, 0.0), (11, "b", "x", "STOP", 2, 0.0)]
    new = _hand_trace(tmp_path / "n.jsonl", 0.9, ["a", "b"], rows_new)
    old = _hand_trace(tmp_path / "o.jsonl", 0.9, ["a", "b"], rows_old)
    d = trace_drift(new, old, rng=0)
    assert isinstance(d, DriftResult) and d.num_shared == 1
    assert d.only_new == [{"label": '"y"', "agent": "a", "successor": "STOP", "count": 1}]
    assert d.only_old == [{"label": '"x"', "agent": "b", "successor": "STOP", "count": 2}]
    assert "1 triples only in the new trace, 1 only in the old" in d.verdict


def test_traces_of_different_workflows_are_refused(tmp_path):
    base = _hand_trace(tmp_path / "a.jsonl", 0.9, ["a"], _stop_rows([1, 2], [0, 0]))
    other_gamma = _hand_trace(tmp_path / "b.jsonl", 0.95, ["a"], _stop_rows([1, 2], [0, 0]))
    other_agents = _hand_trace(tmp_path / "c.jsonl", 0.9, ["a", "b"], _stop_rows([1, 2], [0, 0]))
    with pytest.raises(InvalidArgumentError, match=r"different gamma: new 0.9, old 0.95"):
        trace_drift(base, other_gamma)
    with pytest.raises(InvalidArgumentError, match=r"different agents: new \['a'\], old \['a', 'b'\]"):
        trace_drift(base, other_agents)
    with pytest.raises(InvalidArgumentError, match="`new_fit` must be a FitResult"):
        trace_drift("trace.jsonl", base)
    with pytest.raises(InvalidArgumentError, match="`level` must lie in"):
        trace_drift(base, base, level=1.0)
    with pytest.raises(InvalidArgumentError, match="`correction` must be one of holm, bh"):
        trace_drift(base, base, correction="sidak")
    with pytest.raises(InvalidArgumentError, match="`permutations` must be an integer >= 99"):
        trace_drift(base, base, permutations=10)
    same = trace_drift(base, base.model, rng=0)               # a fitted model read back works too
    assert not same.drift_found and same.changed == []


def test_a_changed_start_law_is_drift(tmp_path):
    """Same (k, i, c') laws, other mix of episode starts: no triple changed, the start law did."""
    rows_new = [(e, "a", "x" if e < 60 else "y", "STOP", 1, 0.0) for e in range(80)]
    rows_old = [(e, "a", "x" if e < 20 else "y", "STOP", 1, 0.0) for e in range(80)]
    new = _hand_trace(tmp_path / "n.jsonl", 0.9, ["a"], rows_new)
    old = _hand_trace(tmp_path / "o.jsonl", 0.9, ["a"], rows_old)
    d = trace_drift(new, old, rng=0)
    table = np.array([[60, 20], [20, 60]])
    g, _, _, _ = chi2_contingency(table, correction=False, lambda_="log-likelihood")
    n, rows, cols = 160, table.sum(1), table.sum(0)
    q = 1 + (n * (1 / rows).sum() - 1) * (n * (1 / cols).sum() - 1) / (6 * n)
    assert d.changed == [] and d.num_tests == 1
    assert d.start["test"] == "g_test" and d.start["p_value"] == pytest.approx(chi2.sf(g / q, 1), rel=1e-9)
    assert d.start["tv"] == pytest.approx(0.5) and d.start["rejected"] and d.drift_found


# ---------------------------------------------------------------- the LLM workflow, two calibrations
_BITS = ("given", "modified", "checked", "judged")
_FIELDS = {"format": "icsmdp-obs/1", "fields": [list(_BITS)] * 4}
_NAMES = ["commissioner", "editor", "thinker", "checker", "STOP"]


def _uniform_behavior(m):
    """Uniform over the successors every state of the cell admits."""
    behavior = []
    for i in range(m.num_agents):
        mask = m.state_agent == i
        ok = np.ones((m.num_observations[i], m.num_agents + 1), bool)
        np.logical_and.at(ok, m.state_observation[mask], m.admissible[mask])
        behavior.append(ok / ok.sum(1, keepdims=True))
    return behavior


def _math_fit(tmp_path, dataset, episodes, seed):
    m = math_reasoning(dataset)
    path = tmp_path / f"{dataset}-{seed}.jsonl"
    simulate_epoch_trace(m, path, episodes=episodes, behavior=_uniform_behavior(m), seed=seed,
                         max_invocations=60)
    return fit_epoch_model(read_trace(path))


def _bits(model, s):
    state = json.loads(model.labels[int(model.state_label[s])])
    return "".join(str(int(state[k])) for k in _BITS)


def _reach(model, sigma):
    """States reachable from rho0 under sigma (plain breadth-first search over the transitions)."""
    seen = set(np.flatnonzero(model.rho0 > 0).tolist())
    todo = list(seen)
    while todo:
        s = todo.pop()
        rows = (model.trans_state == s) & (model.trans_successor == sigma[s]) & (model.trans_next >= 0)
        for s2 in model.trans_next[rows].tolist():
            if s2 not in seen:
                seen.add(s2)
                todo.append(s2)
    return np.array(sorted(seen))


def _evaluate_table(model, table, *, objective="correct", discounted=False):
    """Objective of the cell table {(agent, bits): successor} in ``model``; None when a reached state
    has no data for its choice (the successor is not admissible there)."""
    want = np.array([_NAMES.index(table[(_NAMES[int(model.state_agent[s])], _bits(model, s))])
                     for s in range(model.num_epoch_states)])
    ok = model.admissible[np.arange(model.num_epoch_states), want]
    first = np.argmax(model.admissible, axis=1)
    sigma = np.where(ok, want, first)
    if not ok[_reach(model, sigma)].all():
        return None
    return policy_value(model, sigma, discounted=discounted).values[objective]


def _true_tables(m):
    """Every decentralized policy of the true math model as a table over (agent, bits) (14)."""
    tables = []
    for sigma in enumerate_decentralized_policies(m):
        t = dict(workflow_cells("Direct"))                          # defaults on unreached cells
        for s in range(m.num_epoch_states):
            t[(_NAMES[int(m.state_agent[s])], _bits(m, s))] = _NAMES[int(sigma[s])]
        tables.append(t)
    return tables


def _reported_table(side):
    """The table of a reported optimum (cells by their four bits), the rest from the Direct defaults."""
    t = dict(workflow_cells("Direct"))
    for c in side["cells"]:
        t[(c["agent"], "".join(str(c["fields"][k]) for k in _BITS))] = c["successor"]
    return t


def test_true_optima_of_the_two_calibrations_are_comb_e_and_cot():
    """best_decentralized_policy on the true models equals the paper's workflows, checked by policy_value."""
    for dataset, name, other in (("MathQA", "Comb-E", "CoT"), ("MMLU-Elem", "CoT", "Comb-E")):
        m = math_reasoning(dataset)
        best = best_decentralized_policy(m)
        sigma = workflow_policy(m, name)
        on = _reach(m, best.policy)
        assert np.array_equal(best.policy[on], sigma[on])
        acc = {w: policy_value(m, workflow_policy(m, w), discounted=False).values["correct"]
               for w in WORKFLOW_NAMES}
        assert best.value == pytest.approx(acc[name], abs=1e-12) == max(acc.values())
        assert acc[name] - acc[other] > 0.0015                  # 0.0031 (MathQA), 0.0018 (MMLU-Elem)


def test_decentralized_optimum_of_fitted_math_traces_against_brute_force(tmp_path):
    """Small traces: the reported optimum of each fitted model is the best of the true model's 14
    policies evaluated (policy_value) in the fitted model where it has data; the losses likewise."""
    new, old = _math_fit(tmp_path, "MathQA", 3000, 0), _math_fit(tmp_path, "MMLU-Elem", 3000, 1)
    d = trace_drift(new, old, obs=_FIELDS, rng=0)
    dec = d.decentralized
    assert dec["computed"] and dec["objective"] == "correct" and not dec["discounted"]
    tables = _true_tables(math_reasoning("MathQA"))
    assert len(tables) == 14
    for side, f in (("new", new), ("old", old)):
        vals = [_evaluate_table(f.model, t) for t in tables]
        best = max(v for v in vals if v is not None)
        assert dec[side]["value"] == pytest.approx(best, abs=1e-9)
        assert _evaluate_table(f.model, _reported_table(dec[side])) == pytest.approx(best, abs=1e-9)
        for w in WORKFLOW_NAMES:                               # the named workflows' fitted values
            v = _evaluate_table(f.model, workflow_cells(w))
            got = dec[side]["workflow_values"][w]
            assert (got is None) == (v is None) and (v is None or got == pytest.approx(v, abs=1e-9))
        named = [w for w in WORKFLOW_NAMES
                 if all(workflow_cells(w)[(c["agent"], "".join(str(c["fields"][k]) for k in _BITS))]
                        == c["successor"] for c in dec[side]["cells"] if c["reached"])]
        assert dec[side]["workflows"] == named
    for side, other, f in (("new", "old", new), ("old", "new", old)):
        kept = dict(_reported_table(dec[side]))
        kept.update({k: v for k, v in _reported_table(dec[other]).items()})
        v = _evaluate_table(f.model, kept)
        assert (dec["loss_" + side] is None) == (v is None)
        if v is not None:
            assert dec["loss_" + side] == pytest.approx(dec[side]["value"] - v, abs=1e-9)
    differ = {(c["agent"], "".join(str(c["fields"][k]) for k in _BITS))
              for c in dec["new"]["cells"] for o in dec["old"]["cells"]
              if c["observation"] == o["observation"] and c["agent"] == o["agent"]
              and c["successor"] != o["successor"] and (c["reached"] or o["reached"])}
    assert {(c["agent"], "".join(str(c["fields"][k]) for k in _BITS)) for c in dec["changed"]} == differ
    assert dec["policy_changed"] == bool(differ)
    json.dumps(d.to_dict(), allow_nan=False)


def test_decentralized_optimum_on_a_generic_trace_by_brute_force():
    """A trace without components: the discounted reward, every cell assignment enumerated."""
    truth = _truth()
    other = copy.deepcopy(truth)
    other.reward = -truth.reward
    rng = np.random.default_rng(8)
    a, b = _fit(other, rng, episodes=400), _fit(truth, rng, episodes=400)
    doc = {"format": "icsmdp-obs/1", "by_label": [{"0": 0, "1": 0, "2": 1}, {"0": 5, "1": 7, "2": 7}]}
    d = trace_drift(a, b, obs=doc, rng=0)
    dec = d.decentralized
    assert dec["computed"] and dec["objective"] == "reward" and dec["discounted"]
    for side, f in (("new", a), ("old", b)):
        mm = label_maps_from_dict(doc, f.model)
        cells = sorted({(int(mm.state_agent[s]), int(mm.state_observation[s]))
                        for s in range(mm.num_epoch_states)})
        union = {c: np.zeros(3, bool) for c in cells}
        for s in range(mm.num_epoch_states):
            union[(int(mm.state_agent[s]), int(mm.state_observation[s]))] |= mm.admissible[s]
        best = -np.inf
        for choice in itertools.product(*[np.flatnonzero(union[c]).tolist() for c in cells]):
            pick = dict(zip(cells, choice))
            want = np.array([pick[(int(mm.state_agent[s]), int(mm.state_observation[s]))]
                             for s in range(mm.num_epoch_states)])
            ok = mm.admissible[np.arange(mm.num_epoch_states), want]
            sigma = np.where(ok, want, np.argmax(mm.admissible, axis=1))
            if ok[_reach(mm, sigma)].all():
                best = max(best, policy_value(mm, sigma, discounted=True).values["reward"])
        assert dec[side]["value"] == pytest.approx(best, abs=1e-9)
        assert dec[side]["workflows"] is None and dec[side]["workflow_values"] is None


def test_decentralized_optimum_avoids_successors_without_data(tmp_path):
    """Agent a sees x and z alike; a -> b at x leads (through b at y) to z, where a was never seen
    handing to b: the policy 'a -> b' has no value in the fitted model, so the optimum is STOP
    (value 0) although a -> b pays more wherever it was seen."""
    rows = []
    for e in range(40):
        if e % 2:
            rows.append((e, "a", "x", "STOP", 1, 0.0))
        else:
            rows += [(e, "a", "x", "b", 1, 0.0), (e, "b", "y", "a", 1, 0.0), (e, "a", "z", "STOP", 1, 5.0)]
    f = _hand_trace(tmp_path / "t.jsonl", 0.9, ["a", "b"], rows)
    doc = {"format": "icsmdp-obs/1", "by_label": [{'"x"': 0, '"y"': 1, '"z"': 0},
                                                   {'"x"': 0, '"y"': 0, '"z"': 0}]}
    d = trace_drift(f, f.model, obs=doc, rng=0)
    dec = d.decentralized
    assert dec["computed"] and dec["new"]["value"] == 0.0 and dec["states_without_data_new"] == 1
    (cell,) = [c for c in dec["new"]["cells"] if c["agent"] == "a" and c["observation"] == 0]
    assert cell["successor"] == "STOP" and not dec["policy_changed"]
    # every policy needs a missing successor: no optimum, and the reason is given
    rows2 = [(e, "a", "x" if e % 2 else "z", "STOP" if e % 2 else "b", 1, 1.0) for e in range(20)] + \
        [(e, "b", "y", "STOP", 1, 0.0) for e in range(0, 20, 2)]
    rows2 = sorted(rows2, key=lambda r: r[0])
    g = _hand_trace(tmp_path / "u.jsonl", 0.9, ["a", "b"], rows2)
    d2 = trace_drift(g, g.model, obs=doc, rng=0)
    assert not d2.decentralized["computed"] and "never showed" in d2.decentralized["reason"]
    assert "decentralized optimum on the map not computed" in d2.verdict
    small = trace_drift(f, f.model, obs=doc, rng=0, max_policies=1)
    assert not small.decentralized["computed"] and "more than 1 decentralized" in \
        small.decentralized["reason"]


@pytest.mark.slow
def test_math_reasoning_calibrations_mathqa_against_mmlu_elem(tmp_path):
    """Traces of math_reasoning("MathQA") and ("MMLU-Elem"), uniform over admissible handoffs, 100,000 episodes each.

    Drift is found (the start law: the calibrated mixes of difficulty levels differ, TV
    0.55). The AIS-greedy comparison is checked against the AIS-greedy policies of each
    fitted model computed cell by cell here. The exact decentralized optimum of each fitted
    model is the true one up to exact ties: evaluated in the true model it has the true
    optimum's accuracy (Comb-E on MathQA, CoT on MMLU-Elem; a fitted model may pick a
    variant with the same true accuracy, e.g. a check whose verdict is never acted on), and
    the recommendation changes: the new (MathQA) optimum revises after a negative verdict,
    the old one does not, and each loses accuracy in the other's true model.

    The seeds matter (measured, 8 independent traces of 100,000 episodes per dataset,
    /tmp study in the helper's report): the MathQA fitted optimum had Comb-E's true
    accuracy 8/8, the MMLU-Elem one CoT's 5/8 (3/8 a revising variant, 0.0018 worse);
    two traces of one dataset gave a cell-level change of the optimum in 6/7 pairs
    (true-tie variants and near ties), a true-accuracy change in 0/7 (MathQA) and 2/7
    (MMLU-Elem). The true gaps (0.0031, 0.0018) are below what such traces resolve.
    """
    fits = [_math_fit(tmp_path, name, 100_000, j) for j, name in enumerate(("MathQA", "MMLU-Elem"))]
    d = trace_drift(fits[0], fits[1], obs=_FIELDS, rng=0)
    mix_tv = 0.5 * np.abs(np.subtract(CALIBRATED["MathQA"].mix, CALIBRATED["MMLU-Elem"].mix)).sum()
    assert d.drift_found and d.start["rejected"] and d.start["adjusted"] < 1e-10
    assert abs(d.start["tv"] - mix_tv) < 0.01
    rec = []
    for f in fits:
        mm = label_maps_from_dict(_FIELDS, f.model)
        ais = ais_smdp(mm, reference="stationary")
        sol = ais_solution(ais)
        qm = np.where(ais.admissible, sol.q, -np.inf)
        best = ais.admissible & (qm >= qm.max(1, keepdims=True) - 1e-9)
        cells = {}
        for s_ in range(mm.num_epoch_states):
            i = int(mm.state_agent[s_])
            cells[(mm.agent_names[i], _bits(mm, s_))] = best[ais.cell_index(i, int(mm.state_observation[s_]))]
        rec.append(cells)
    shared = set(rec[0]) & set(rec[1])
    direct = {key for key in shared if not (rec[0][key] & rec[1][key]).any()}
    got = {(c["agent"], "".join(str(c["fields"][k]) for k in _BITS)) for c in d.ais_policy["changed"]}
    assert d.ais_policy["shared_cells"] == len(shared) and got == direct
    # the exact decentralized optima, judged in the true models
    dec = d.decentralized
    assert dec["computed"] and dec["policy_changed"]
    truth = {name: math_reasoning(name) for name in ("MathQA", "MMLU-Elem")}
    opt = {name: best_decentralized_policy(m).value for name, m in truth.items()}
    acc = {(side, name): _evaluate_table(m, _reported_table(dec[side]))
           for side in ("new", "old") for name, m in truth.items()}
    assert acc["new", "MathQA"] == pytest.approx(opt["MathQA"], abs=1e-9)          # 0.8361 (Comb-E)
    assert acc["old", "MMLU-Elem"] == pytest.approx(opt["MMLU-Elem"], abs=1e-9)    # 0.9600 (CoT)
    assert opt["MathQA"] - acc["old", "MathQA"] > 0.0015       # CoT-like in MathQA: 0.0031 lost
    assert opt["MMLU-Elem"] - acc["new", "MMLU-Elem"] > 0.0015  # Comb-E in MMLU-Elem: 0.0018 lost
    assert dec["new"]["workflow"] == "Comb-E"
    revise = ("commissioner", "1010")
    assert _reported_table(dec["new"])[revise] == "editor" and _reported_table(dec["old"])[revise] != "editor"
    assert dec["loss_new"] > 0 and dec["loss_old"] > 0
    json.dumps(d.to_dict(), allow_nan=False)
