"""Tests of the default posterior of estimators.posterior: the ``"state"`` prior and the
borrowing of declared triples a trace never visited (SPEC 10 "Posterior"; README "How far to
trust the intervals").

Independent truths: the Dirichlet closed-form mean of each law, with the prior read off the
trace lines by hand (outcomes per successor, outcomes per epoch state); the borrowed laws and
rewards recomputed from the same draw's seen successors and the fit's triple counts; the
Dirichlet mean ``share`` of a borrowed STOP duration law (Monte Carlo, 5 standard errors).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from estimators.fit import fit_epoch_model
from estimators.posterior import DEFAULT_SUPPORT, PosteriorSampler
from icsmdp_theory.epoch_io import load_epoch_model, save_epoch_model
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from property_tests.estimators.trace_sampler import random_truth, sample_trace

ALPHA0 = 0.7


def _law(m, s, c):
    sel = (m.trans_state == s) & (m.trans_successor == c)
    return dict(zip(zip(m.trans_next_label[sel].tolist(), m.trans_tau[sel].tolist()),
                    m.trans_prob[sel].tolist()))


def _outcome_counts(m):
    c = m.counts
    out = {}
    for k, i, cc, kn, tau, n in zip(c["outcome_label"], c["outcome_agent"], c["outcome_successor"],
                                    c["outcome_next_label"], c["outcome_tau"], c["outcome_count"]):
        out[(m.state_index(k, i), cc, kn, tau)] = n
    return out


def _triple_counts(m):
    c = m.counts
    return {(m.state_index(k, i), cc): n for k, i, cc, n in
            zip(c["triple_label"], c["triple_agent"], c["triple_successor"], c["triple_count"])}


def _by_hand(trace, m):
    """From the trace lines with an outcome: ``freq[c'][(k', tau)]`` (trace-wide, per successor),
    ``local[s][(k', tau)]`` (per epoch state, after any successor != STOP) and
    ``own[(s, c')]`` (the outcomes of each triple)."""
    N = m.num_agents
    label_of = {lab: j for j, lab in enumerate(m.labels)}
    freq: dict = {}
    local: dict = {}
    own: dict = {}
    for j in np.flatnonzero((trace.next_label >= 0) | (trace.successor == N)):
        c = int(trace.successor[j])
        nl = -1 if c == N else label_of[trace.labels[trace.next_label[j]]]
        o = (nl, int(trace.tau[j]))
        s = m.state_index(label_of[trace.labels[trace.label[j]]], int(trace.agent[j]))
        freq.setdefault(c, {}).setdefault(o, 0)
        freq[c][o] += 1
        own.setdefault((s, c), set()).add(o)
        if c != N:
            local.setdefault(s, {}).setdefault(o, 0)
            local[s][o] += 1
    return freq, local, own


@pytest.fixture(scope="module")
def small():
    """A small trace of a random truth (its prior is visible in the posterior)."""
    rng = np.random.default_rng(11)
    truth = random_truth(rng, num_labels=3, num_agents=2, taus=(1, 2, 3))
    trace = sample_trace(truth, rng, episodes=60, max_steps=8, noise=1.0)
    return trace, fit_epoch_model(trace, alpha0=ALPHA0)


@pytest.fixture(scope="module")
def declared():
    """A trace whose header declares every successor for every agent; few episodes, so some
    declared triples are never visited."""
    rng = np.random.default_rng(3)
    truth = random_truth(rng, num_labels=4, num_agents=3, taus=(1, 2), stop_taus=(1, 2, 3))
    trace = sample_trace(truth, rng, episodes=40, max_steps=6, noise=0.5)
    N = truth.N
    trace = dataclasses.replace(trace, declared_admissible={i: tuple(range(N + 1)) for i in range(N)})
    return trace, fit_epoch_model(trace, alpha0=ALPHA0)


def test_the_default_is_the_state_prior():
    assert DEFAULT_SUPPORT == "state"


def test_state_prior_moments_match_the_dirichlet(small):
    """conc = n + alpha0 * (trace-wide share of the outcome after c') + alpha0 * [the outcome was
    seen at the same epoch state after some c'' != STOP and (k', c') is a state]."""
    trace, fit = small
    m = fit.model
    N = m.num_agents
    is_state = {(int(k), int(i)) for k, i in zip(m.state_label, m.state_agent)}
    freq, local, _ = _by_hand(trace, m)
    counts = _outcome_counts(m)
    sampler = PosteriorSampler(fit, rng=5)
    models = sampler.draws(2000)
    for s, cc in zip(*np.nonzero(m.admissible)):
        s, cc = int(s), int(cc)
        loc = set() if cc == N else {o for o in local.get(s, ()) if (o[0], cc) in is_state}
        support = set(freq[cc]) | loc
        assert set(_law(models[0], s, cc)) == support
        tot = sum(freq[cc].values())
        order = sorted(support)
        a = np.array([counts.get((s, cc, kn, tau), 0) + ALPHA0 * freq[cc].get((kn, tau), 0) / tot
                      + (ALPHA0 if (kn, tau) in loc else 0.0) for kn, tau in order])
        A = a.sum()
        mean, var = a / A, a * (A - a) / (A ** 2 * (A + 1))
        x = np.array([[_law(d, s, cc)[o] for o in order] for d in models])
        assert np.all(np.abs(x.mean(axis=0) - mean) <= 5 * np.sqrt(var / len(models)) + 1e-12)


def test_a_local_outcome_never_seen_after_the_successor_is_in_the_support():
    """A hand-made trace: at state (A, ag0) successor ag0 led to label B, successor ag1 to
    label C; (C, ag0) and (B, ag1) are states, so each pair also gets the other's outcome."""
    from icsmdp_theory.traces import TraceData

    def ro(a, dt):
        a = np.asarray(a, dtype=dt)
        a.setflags(write=False)
        return a
    # labels A=0, B=1, C=2; agents 0, 1; STOP = 2
    rows = [  # episode, agent, label, successor, tau, next_label
        (0, 0, 0, 0, 1, 1), (0, 0, 1, 1, 1, 2), (0, 1, 2, 2, 1, -1),
        (1, 0, 0, 1, 1, 2), (1, 1, 2, 0, 1, 2), (1, 0, 2, 1, 1, 1), (1, 1, 1, 2, 1, -1),
    ]
    e, a, lab, c, t, nl = (list(col) for col in zip(*rows))
    trace = TraceData(path="<hand>", gamma=0.9, agent_names=("ag0", "ag1"), component_names=(),
                      declared_admissible=None, labels=("A", "B", "C"), episode_ids=(0, 1),
                      episode=ro(e, np.int64), agent=ro(a, np.int64), label=ro(lab, np.int64),
                      successor=ro(c, np.int64), tau=ro(t, np.int64),
                      reward=ro(np.zeros(len(rows)), float), components=None,
                      next_label=ro(nl, np.int64), line=ro(np.arange(2, len(rows) + 2), np.int64),
                      num_invocations=len(rows), num_episodes=2, num_truncated_episodes=0)
    fit = fit_epoch_model(trace)
    m = fit.model
    s = m.state_index(m.labels.index("A"), 0)
    d = PosteriorSampler(fit, rng=0).draw()
    assert set(_law(d, s, 0)) >= {(m.labels.index("B"), 1), (m.labels.index("C"), 1)}
    assert set(_law(d, s, 1)) >= {(m.labels.index("B"), 1), (m.labels.index("C"), 1)}
    d_obs = PosteriorSampler(fit, rng=0, support="observed").draw()
    assert set(_law(d_obs, s, 0)) == {(m.labels.index("B"), 1)}


def test_the_fit_records_the_declared_sets(declared, small):
    trace, fit = declared
    c = fit.model.counts
    pairs = set(zip(c["declared_agent"], c["declared_successor"]))
    assert pairs == {(i, j) for i in range(3) for j in range(4)}
    assert "declared_agent" not in small[1].model.counts


def _expected_borrow(m):
    """Declared-but-unvisited triples, split into those with something to borrow from."""
    N = m.num_agents
    adm = m.admissible
    states = {(int(k), int(i)) for k, i in zip(m.state_label, m.state_agent)}
    out_nonstop, out_stop, skipped = [], [], 0
    stop_agents = {int(m.state_agent[s]) for s in np.flatnonzero(adm[:, N])}
    for s in range(m.num_epoch_states):
        for cc in range(N + 1):
            if adm[s, cc]:
                continue
            if cc == N:
                (out_stop if int(m.state_agent[s]) in stop_agents else [None]).append(s)
                skipped += int(m.state_agent[s]) not in stop_agents
                continue
            seen = [c for c in range(N) if adm[s, c]]
            nexts = {kn for c in seen for kn, _ in _law(m, s, c)}
            if seen and any((int(kn), cc) in states for kn in nexts):
                out_nonstop.append((s, cc))
            else:
                skipped += 1
    return out_nonstop, out_stop, skipped


def test_borrowed_triples_are_the_declared_unvisited_ones(declared):
    _, fit = declared
    m = fit.model
    nonstop, stop, skipped = _expected_borrow(m)
    assert nonstop and stop                          # the fixture exercises both kinds
    sampler = PosteriorSampler(fit, rng=1)
    assert sampler.borrowed == len(nonstop) + len(stop)
    assert sampler.not_borrowed == skipped
    d = sampler.draw()
    want = m.admissible.copy()
    for s, cc in nonstop:
        want[s, cc] = True
    want[stop, m.num_agents] = True
    assert np.array_equal(d.admissible, want)
    off = PosteriorSampler(fit, rng=1, borrow=False)
    assert off.borrowed == 0 and np.array_equal(off.draw().admissible, m.admissible)


def test_a_borrowed_law_is_the_count_weighted_mixture_of_the_seen_successors(declared):
    _, fit = declared
    m = fit.model
    N = m.num_agents
    n = _triple_counts(m)
    states = {(int(k), int(i)) for k, i in zip(m.state_label, m.state_agent)}
    nonstop, _, _ = _expected_borrow(m)
    sampler = PosteriorSampler(fit, rng=2)
    for d in sampler.draws(20):
        for s, cc in nonstop:
            seen = [c for c in range(N) if m.admissible[s, c]]
            mix: dict = {}
            for c in seen:
                for (kn, tau), p in _law(d, s, c).items():
                    if (kn, cc) in states:
                        mix[(kn, tau)] = mix.get((kn, tau), 0.0) + n[(s, c)] * p
            tot = sum(mix.values())
            got = _law(d, s, cc)
            assert set(got) == set(mix)
            for o, v in mix.items():
                assert abs(got[o] - v / tot) <= 1e-12
            r = sum(n[(s, c)] * d.reward[s, c] for c in seen) / sum(n[(s, c)] for c in seen)
            assert abs(d.reward[s, cc] - r) <= 1e-12


def test_a_borrowed_stop_takes_an_agents_stop_reward_and_the_pooled_duration_law(declared):
    _, fit = declared
    m = fit.model
    N = m.num_agents
    _, stop, _ = _expected_borrow(m)
    counts = _outcome_counts(m)
    sampler = PosteriorSampler(fit, rng=3)
    models = sampler.draws(3000)
    s = stop[0]
    i = int(m.state_agent[s])
    pool: dict = {}
    for (s2, cc, kn, tau), c in counts.items():
        if cc == N and int(m.state_agent[s2]) == i:
            pool[tau] = pool.get(tau, 0) + c
    tot = sum(pool.values())
    share = {t: v / tot for t, v in pool.items()}
    donors = [x for x in np.flatnonzero(m.admissible[:, N]) if int(m.state_agent[x]) == i]
    picks = set()
    for d in models[:200]:
        law = _law(d, s, N)
        assert set(law) <= {(-1, t) for t in share} and abs(sum(law.values()) - 1) <= 1e-12
        match = [x for x in donors if d.reward[x, N] == d.reward[s, N]]
        assert match                                   # one of the agent's STOP states' draws
        picks.update(match)
    assert len(picks) > 1 or len(donors) == 1          # not always the same state
    x = np.array([[_law(d, s, N).get((-1, t), 0.0) for t in sorted(share)] for d in models])
    mean = np.array([share[t] for t in sorted(share)])
    var = mean * (1 - mean) / (ALPHA0 + 1)             # Dirichlet(alpha0 * share) marginals
    assert np.all(np.abs(x.mean(axis=0) - mean) <= 5 * np.sqrt(var / len(models)) + 1e-12)


def test_borrowed_draws_are_valid_epoch_models(declared):
    _, fit = declared
    for d in PosteriorSampler(fit, rng=4).draws(5):
        k = d.trans_prob > 0
        tr = dict(state=d.trans_state[k], successor=d.trans_successor[k],
                  next_label=d.trans_next_label[k], tau=d.trans_tau[k], prob=d.trans_prob[k])
        EpochModel(name="check", gamma=d.gamma, agents=d.agent_names, labels=d.labels,
                   states=np.stack([d.state_label, d.state_agent], axis=1),
                   admissible=d.admissible, rho0=d.rho0, transitions=tr,
                   reward=np.where(d.admissible, d.reward, 0.0))


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_saved_model_borrows_the_same(declared, tmp_path, suffix):
    _, fit = declared
    path = tmp_path / f"m{suffix}"
    save_epoch_model(fit.model, path)
    a = PosteriorSampler(fit, rng=9).draw()
    b = PosteriorSampler(load_epoch_model(path), rng=9).draw()
    assert np.array_equal(a.admissible, b.admissible)
    np.testing.assert_array_equal(a.trans_prob, b.trans_prob)
    np.testing.assert_array_equal(np.nan_to_num(a.reward), np.nan_to_num(b.reward))


def _with_counts(model, **change):
    counts = dict(model.counts)
    for k, v in change.items():
        if v is None:
            counts.pop(k, None)
        else:
            counts[k] = v
    return EpochModel(name=model.name, gamma=model.gamma, agents=model.agent_names,
                      labels=model.labels,
                      states=np.stack([model.state_label, model.state_agent], axis=1),
                      admissible=model.admissible, rho0=model.rho0,
                      transitions=dict(state=model.trans_state, successor=model.trans_successor,
                                       next_label=model.trans_next_label, tau=model.trans_tau,
                                       prob=model.trans_prob),
                      reward=model.reward, counts=counts, validate=False)


def test_hostile_declared_counts_are_located(declared):
    _, fit = declared
    m = fit.model
    with pytest.raises(InvalidArgumentError, match="declared_agent` and `declared_successor"):
        PosteriorSampler(_with_counts(m, declared_successor=None))
    with pytest.raises(InvalidArgumentError, match="declared entry 1 .*agent 7"):
        PosteriorSampler(_with_counts(m, declared_agent=[0, 7], declared_successor=[0, 0]))
    with pytest.raises(InvalidArgumentError, match="declared_successor"):
        PosteriorSampler(_with_counts(m, declared_agent=[0], declared_successor=["x"]))
    # without the keys: nothing is borrowed, and the notes say why
    s = PosteriorSampler(_with_counts(m, declared_agent=None, declared_successor=None))
    assert s.borrowed == 0 and any("declared" in n for n in s.notes)


def test_max_outcomes_caps_the_pooled_and_the_local_components(small):
    """With ``max_outcomes=1`` a pair's support is its own outcomes, the successor's most
    frequent outcome and the state's most frequent local one (ties: smallest ``(k', tau)``),
    each read off the trace lines by hand."""
    trace, fit = small
    m = fit.model
    N = m.num_agents
    is_state = {(int(k), int(i)) for k, i in zip(m.state_label, m.state_agent)}
    freq, local, own = _by_hand(trace, m)

    def top(d):
        return min(d, key=lambda o: (-d[o], o))
    d = PosteriorSampler(fit, rng=0, max_outcomes=1).draw()
    for s, cc in zip(*np.nonzero(m.admissible)):
        s, cc = int(s), int(cc)
        want = own[(s, cc)] | {top(freq[cc])}
        if cc != N:
            o = top(local[s])
            if (o[0], cc) in is_state:
                want.add(o)
        assert set(_law(d, s, cc)) == want, (s, cc)
