"""Tests of estimators.fit: ML epoch models from traces and the assumption checks (SPEC 10).

Independent truths: hand-computed counts of a hand-written trace; the known
model behind simulated traces (the ML law within a binomial confidence bound);
scipy's ``chi2_contingency(lambda_="log-likelihood")`` for the G statistic;
the uniform law of p-values under the Markov property (binomial bound on the
share below 0.05), and a non-Markov trace for power.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.stats import binom, chi2, chi2_contingency, kstest

from estimators.fit import FitResult, fit_epoch_model, grouped_g_test
from icsmdp_theory.errors import InvalidArgumentError, InvalidTraceError
from icsmdp_theory.traces import TraceData, TraceWriter, read_trace
from property_tests.estimators.trace_sampler import random_truth, sample_trace


# ---------------------------------------------------------------- the hand trace
@pytest.fixture
def hand_trace(tmp_path):
    """Five episodes, interleaved; ep 2 truncated after one line; ep 3 leads into a pair without outcome."""
    p = tmp_path / "hand.jsonl"
    with TraceWriter(p, gamma=0.9, agents=["a", "b"], reward_components=["c1"],
                     admissible={"a": ["b", "STOP"], "b": ["a", "STOP"]}) as w:
        w.write(0, "a", "x", "b", 1, reward=1.0, components={"c1": 10})
        w.write(1, "a", "x", "b", 1, reward=3.0, components={"c1": 30})
        w.write(0, "b", "y", "STOP", 2, reward=2.0, components={"c1": 20})
        w.write(1, "b", "z", "a", 1, reward=4.0, components={"c1": 40})
        w.write(2, "a", "x", "b", 2, reward=6.0, components={"c1": 60})      # truncated: no outcome
        w.write(1, "a", "x", "STOP", 3, reward=5.0, components={"c1": 50})
        w.write(3, "b", "w", "a", 1, reward=7.0, components={"c1": 70})      # dangling: (q, a) has no outcome
        w.write(4, "b", "y", "STOP", 1, reward=8.0, components={"c1": 80})
        w.write(3, "a", "q", "b", 1, reward=9.0, components={"c1": 90})      # truncated: no outcome
    return read_trace(p)


def test_ml_fit_of_the_hand_trace(hand_trace):
    r = fit_epoch_model(hand_trace)
    assert isinstance(r, FitResult) and r.success and r.status == "computed"
    m = r.model
    # by hand: epoch states (x,a), (y,b), (z,b); (w,b) only dangling, (q,a) no outcome
    assert m.labels == ('"x"', '"y"', '"z"')
    assert m.state_label.tolist() == [0, 1, 2] and m.state_agent.tolist() == [0, 1, 1]
    assert (r.invocations, r.invocations_used, r.episodes, r.truncated_episodes) == (9, 6, 5, 2)
    assert (r.states_seen, r.pairs_without_outcome, r.labels_seen, r.triples_seen) == (3, 2, 5, 4)
    assert (r.dangling, r.starts_dropped) == (1, 1)
    a, b, stop = 0, 1, 2
    expected_adm = np.zeros((3, 3), bool)
    expected_adm[0, [b, stop]] = True
    expected_adm[1, stop] = True
    expected_adm[2, a] = True
    assert np.array_equal(m.admissible, expected_adm)
    # P_hat: (x,a,b) -> (y,1) 1/2, (z,1) 1/2; (x,a,STOP) tau 3; (y,b,STOP) tau 1, 2 each 1/2; (z,b,a) -> (x,1)
    rows = sorted(zip(m.trans_state.tolist(), m.trans_successor.tolist(), m.trans_next_label.tolist(),
                      m.trans_tau.tolist(), m.trans_prob.tolist()))
    assert rows == [(0, 1, 1, 1, 0.5), (0, 1, 2, 1, 0.5), (0, 2, -1, 3, 1.0),
                    (1, 2, -1, 1, 0.5), (1, 2, -1, 2, 0.5), (2, 0, 0, 1, 1.0)]
    # R_hat = means over the invocations with an outcome (the truncated R = 6 and 9 and dangling 7 excluded)
    np.testing.assert_allclose(m.reward[expected_adm], [2.0, 5.0, 5.0, 4.0])
    np.testing.assert_allclose(m.components[..., 0][expected_adm], [20.0, 50.0, 50.0, 40.0])
    assert np.isnan(m.reward[~expected_adm]).all()
    # rho0: starts (x,a) x3, (y,b) x1; (w,b) dropped
    np.testing.assert_allclose(m.rho0, [0.75, 0.25, 0.0])
    c = m.counts
    assert c["triple_count"] == [2, 1, 2, 1]
    assert sorted(zip(c["reward_successor"], c["reward_value"], c["reward_count"])) == \
        [(0, 4.0, 1), (1, 1.0, 1), (1, 3.0, 1), (2, 2.0, 1), (2, 5.0, 1), (2, 8.0, 1)]
    assert c["start_count"] == [3, 1] and c["alpha0"] == 0.5
    assert r.unvisited_declared == []
    json.dumps(r.to_dict(), allow_nan=False)        # --json ready


def test_declared_admissible_reports_unvisited(hand_trace):
    r = fit_epoch_model(hand_trace, admissible="declared")
    assert r.unvisited_declared == [{"label": '"y"', "agent": "b", "successor": "a"},
                                    {"label": '"z"', "agent": "b", "successor": "STOP"}]
    assert r.triples_seen == 4                      # excluded: the model is the observed one


def test_declared_without_header_and_bad_arguments(hand_trace):
    bare = dataclasses.replace(hand_trace, declared_admissible=None)
    with pytest.raises(InvalidArgumentError, match="header key `admissible`"):
        fit_epoch_model(bare, admissible="declared")
    with pytest.raises(InvalidArgumentError, match="observed, declared"):
        fit_epoch_model(hand_trace, admissible="seen")
    with pytest.raises(InvalidArgumentError, match="alpha0"):
        fit_epoch_model(hand_trace, alpha0=0.0)
    # a successor outside the declared set (the reader refuses it; a hand-built TraceData too)
    narrow = dataclasses.replace(hand_trace, declared_admissible={0: (1,), 1: (0, 2)})
    with pytest.raises(InvalidTraceError, match=r"line 7: key `successor`: 'STOP'"):
        fit_epoch_model(narrow, admissible="declared")


def test_dangling_chain_is_followed_to_the_fixpoint():
    """(z,b) -> (x,a) -> (y,b) where (y,b) has no outcome: both earlier invocations dangle."""
    lab = np.array([2, 0, 1]); ag = np.array([1, 0, 1]); succ = np.array([0, 1, 0])
    base = dict(path="<hand>", gamma=0.9, agent_names=("a", "b"), component_names=(),
                declared_admissible=None, labels=("x", "y", "z"), episode_ids=(0, 1),
                components=None, num_episodes=2, num_truncated_episodes=1)
    t = TraceData(**base, episode=np.array([0, 0, 0, 1]), agent=np.append(ag, 0),
                  label=np.append(lab, 0), successor=np.append(succ, 2), tau=np.ones(4, np.int64),
                  reward=np.arange(4.0), next_label=np.array([0, 1, -1, -1]), line=np.arange(2, 6),
                  num_invocations=4)
    r = fit_epoch_model(t)
    # ep 1: (x,a) -> STOP keeps (x,a) a state, so only (x,a)->(y,b) and then nothing else dangles
    assert r.dangling == 1 and r.states_seen == 2
    t2 = dataclasses.replace(t, episode=np.array([0, 0, 0]), agent=ag, label=lab, successor=succ,
                             tau=np.ones(3, np.int64), reward=np.arange(3.0),
                             next_label=np.array([0, 1, -1]), line=np.arange(2, 5), num_invocations=3,
                             num_episodes=1, episode_ids=(0,))
    with pytest.raises(InvalidTraceError, match="no invocation has an outcome"):
        fit_epoch_model(t2)


# ---------------------------------------------------------------- consistency
def test_ml_law_converges_to_the_truth():
    rng = np.random.default_rng(7)
    truth = random_truth(rng, num_labels=3, num_agents=2)
    trace = sample_trace(truth, rng, episodes=6000, max_steps=30, noise=0.5)
    m = fit_epoch_model(trace).model
    label_of = [int(x) for x in m.labels]           # model label index -> truth label
    c = m.counts
    assert len(c["triple_count"]) == truth.admissible.sum()     # every admissible triple was visited
    for k, i, cc, n in zip(c["triple_label"], c["triple_agent"], c["triple_successor"], c["triple_count"]):
        s = m.state_index(k, i)
        sel = (m.trans_state == s) & (m.trans_successor == cc)
        p_hat = {(label_of[kn] if kn >= 0 else -1, tau): p for kn, tau, p in zip(
            m.trans_next_label[sel].tolist(), m.trans_tau[sel].tolist(), m.trans_prob[sel].tolist())}
        for o, (kn, tau) in enumerate(truth.outcomes.tolist()):
            p = truth.law[label_of[k], i, cc, o]
            est = p_hat.get((kn, tau), 0.0)
            # 5 standard errors (about 60 tests: a false alarm has probability < 1e-4)
            assert abs(est - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12, (k, i, cc, o, est, p, n)
        # R: truth + uniform noise on [-0.5, 0.5] (sd 0.5/sqrt(3))
        r_true = truth.reward[label_of[k], i, cc]
        assert abs(m.reward[s, cc] - r_true) <= 5 * 0.5 / np.sqrt(3 * n)
    # rho0 from the episode starts
    for s in range(m.num_epoch_states):
        p = truth.rho0[int(m.labels[m.state_label[s]]), m.state_agent[s]]
        assert abs(m.rho0[s] - p) <= 5 * np.sqrt(p * (1 - p) / 6000) + 1e-12


# ---------------------------------------------------------------- the G-test
def _observations(tables):
    """Expand a list of contingency tables into (group, row, col) observations."""
    g, r, c = [], [], []
    for j, t in enumerate(tables):
        rr, cc = np.nonzero(t)
        n = t[rr, cc]
        g.append(np.full(n.sum(), j))
        r.append(np.repeat(rr, n))
        c.append(np.repeat(cc, n))
    return np.concatenate(g), np.concatenate(r), np.concatenate(c)


def test_g_statistic_matches_scipy():
    rng = np.random.default_rng(3)
    tables = [rng.integers(8, 40, size=(rng.integers(2, 5), rng.integers(2, 6))) for _ in range(25)]
    g, r, c = _observations(tables)
    perm = rng.permutation(len(g))          # order of observations is irrelevant
    out = grouped_g_test(g[perm], r[perm], c[perm])
    assert out["group"].tolist() == list(range(25))
    for j, t in enumerate(tables):
        stat, p, dof, expected = chi2_contingency(t, correction=False, lambda_="log-likelihood")
        assert out["tested"][j] == (expected.min() >= 5)
        assert out["dof"][j] == dof
        assert out["statistic"][j] == pytest.approx(stat, rel=1e-10, abs=1e-10)
        # Williams' correction, from the table's margins
        n, R, C = t.sum(), t.shape[0], t.shape[1]
        q = 1 + (n * (1 / t.sum(1)).sum() - 1) * (n * (1 / t.sum(0)).sum() - 1) / (6 * n * (R - 1) * (C - 1))
        assert out["williams"][j] == pytest.approx(q, rel=1e-12)
        if out["tested"][j]:
            assert out["p_value"][j] == pytest.approx(chi2.sf(stat / q, dof), rel=1e-9)
            assert out["p_value"][j] > p            # the correction is conservative (q > 1)


def test_g_test_pools_rare_rows_and_columns():
    # rows 2 and 3 are rare (3 and 1 observations): pooled into one row of 4 (< 5: dropped);
    # column 2 is rare (4) and alone: dropped as well
    t = np.array([[20, 15, 2], [10, 25, 2], [2, 1, 0], [1, 0, 0]])
    out = grouped_g_test(*_observations([t]))
    stat, p, dof, _ = chi2_contingency(np.array([[20, 15], [10, 25]]), correction=False,
                                       lambda_="log-likelihood")
    assert out["statistic"][0] == pytest.approx(stat, rel=1e-10) and out["dof"][0] == dof == 1
    # rare rows summing to >= 5 stay as one pooled row
    t2 = np.array([[20, 15], [10, 25], [3, 0], [0, 3]])
    out2 = grouped_g_test(*_observations([t2]))
    stat2, *_ = chi2_contingency(np.array([[20, 15], [10, 25], [3, 3]]), correction=False,
                                 lambda_="log-likelihood")
    assert out2["statistic"][0] == pytest.approx(stat2, rel=1e-10) and out2["dof"][0] == 2
    assert not out2["tested"][0]            # the pooled row has expected counts 2.9 and 3.1 < 5


def _markov_p(seed, markov, episodes=1500):
    rng = np.random.default_rng(seed)
    truth = random_truth(rng, num_labels=3, num_agents=2, markov=markov)
    return fit_epoch_model(sample_trace(truth, rng, episodes=episodes, max_steps=20))


def _check_uniform(p):
    """Binomial bounds (each side 0.001) on the shares of p-values below 0.05 and below 0.5."""
    m = len(p)
    for q in (0.05, 0.5):
        k = int((p < q).sum())
        assert binom.ppf(0.001, m, q) <= k <= binom.ppf(0.999, m, q), (q, k, m, np.sort(p))


def test_markov_p_values_are_uniform_under_the_null():
    """200 Markov traces (about 2 s): p-values of the summed G-test roughly uniform."""
    p = np.array([_markov_p(seed, True).markov_test["p_value"] for seed in range(200)])
    assert np.isfinite(p).sum() >= 180          # almost every trace has a testable triple
    _check_uniform(p[np.isfinite(p)])


@pytest.mark.slow
def test_markov_p_values_are_uniform_under_the_null_many():
    p = np.array([_markov_p(seed, True).markov_test["p_value"] for seed in range(200, 1200)])
    p = p[np.isfinite(p)]
    _check_uniform(p)
    assert kstest(p, "uniform").pvalue > 1e-3


def test_markov_test_rejects_a_non_markov_trace():
    for seed in (1000, 1001, 1002):
        r = _markov_p(seed, False)
        assert r.markov_test["p_value"] < 1e-6 and "rejected" in r.markov_test["verdict"]
        assert r.markov_test["min_p_bonferroni"] <= 1.0 and r.markov_test["worst"] is not None


def test_successor_dependence_detected_and_not_under_commit_at_start():
    rng = np.random.default_rng(11)
    truth = random_truth(rng, num_labels=3, num_agents=2)
    # commit-at-start: the law of (k', tau) the same for every non-STOP successor of (k, i)
    N = truth.N
    truth.admissible[:, :, :N] = True
    truth.law[:, :, :N] = truth.law[:, :, :1]
    r = fit_epoch_model(sample_trace(truth, rng, episodes=3000, max_steps=20))
    t = r.successor_test
    assert t["tested"] >= 3 and t["p_value"] > 1e-3 and t["tau_only"]["p_value"] > 1e-3
    # a law that depends on the successor: tau 1 after handing to agent 0, tau 2 after agent 1
    is_tau1 = truth.outcomes[:, 1] == 1
    truth.law[:, :, 0] = np.where(is_tau1, truth.law[:, :, 0], 0.0)
    truth.law[:, :, 1] = np.where(~is_tau1, truth.law[:, :, 1], 0.0)
    truth.law /= truth.law.sum(axis=-1, keepdims=True)
    r = fit_epoch_model(sample_trace(truth, rng, episodes=3000, max_steps=20))
    assert r.successor_test["p_value"] < 1e-10 and r.successor_test["tau_only"]["p_value"] < 1e-10
    assert r.successor_test["worst"]["agent"] in ("ag0", "ag1")
