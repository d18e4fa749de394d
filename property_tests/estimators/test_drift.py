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
from estimators.fit import fit_epoch_model
from icsmdp_theory.epoch_io import label_maps_from_dict
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.math_reasoning import CALIBRATED, math_reasoning
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
@pytest.mark.slow
def test_math_reasoning_calibrations_mathqa_against_mmlu_elem(tmp_path):
    """Traces of math_reasoning("MathQA") and ("MMLU-Elem"), uniform over admissible handoffs, 5,000 episodes each.

    The calibrations differ most in the mix of difficulty levels (rho0): drift is found in
    the start law, with the TV of the two calibrated mixes. The per-call laws differ by a
    few points only, spread over hundreds of triples with tens of invocations each: few are
    resolved at this size. The policy comparison on the 4-bit map is checked against the
    AIS-greedy policies of each fitted model computed cell by cell here (cells keyed by
    their four bits, read from the labels).
    """
    fits = []
    for j, name in enumerate(("MathQA", "MMLU-Elem")):
        m = math_reasoning(name)
        behavior = []
        for i in range(m.num_agents):
            mask = m.state_agent == i
            ok = np.ones((m.num_observations[i], m.num_agents + 1), bool)
            np.logical_and.at(ok, m.state_observation[mask], m.admissible[mask])
            behavior.append(ok / ok.sum(1, keepdims=True))
        path = tmp_path / f"{name}.jsonl"
        simulate_epoch_trace(m, path, episodes=5000, behavior=behavior, seed=j, max_invocations=60)
        fits.append(fit_epoch_model(read_trace(path)))
    bits = {"format": "icsmdp-obs/1", "fields": [["given", "modified", "checked", "judged"]] * 4}
    d = trace_drift(fits[0], fits[1], obs=bits, rng=0)
    mix_tv = 0.5 * np.abs(np.subtract(CALIBRATED["MathQA"].mix, CALIBRATED["MMLU-Elem"].mix)).sum()
    assert d.drift_found and d.start["rejected"] and d.start["adjusted"] < 1e-10
    assert abs(d.start["tv"] - mix_tv) < 0.04                 # 3 levels, 5,000 starts each
    keys = ("given", "modified", "checked", "judged")
    rec = []
    for f in fits:
        mm = label_maps_from_dict(bits, f.model)
        ais = ais_smdp(mm, reference="stationary")
        sol = ais_solution(ais)
        qm = np.where(ais.admissible, sol.q, -np.inf)
        best = ais.admissible & (qm >= qm.max(1, keepdims=True) - 1e-9)
        cells = {}
        for s_ in range(mm.num_epoch_states):
            i = int(mm.state_agent[s_])
            state = json.loads(mm.labels[int(mm.state_label[s_])])
            cells[(mm.agent_names[i], tuple(state[k] for k in keys))] = \
                best[ais.cell_index(i, int(mm.state_observation[s_]))]
        rec.append(cells)
    shared = set(rec[0]) & set(rec[1])
    direct = {key for key in shared if not (rec[0][key] & rec[1][key]).any()}
    got = {(c["agent"], tuple(c["fields"][k] for k in keys)) for c in d.ais_policy["changed"]}
    assert d.ais_policy["shared_cells"] == len(shared) and got == direct
    json.dumps(d.to_dict(), allow_nan=False)
