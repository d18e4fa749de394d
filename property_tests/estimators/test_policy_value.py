"""estimators.policy_value against power series of the kernel (an independent computation)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from estimators.policy_value import policy_value
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError


def random_epoch_model(seed: int, *, K: int = 4, N: int = 2, stop_bias: float = 0.3) -> EpochModel:
    """Every (label, agent) state; random admissible sets, laws over (k', tau), rewards, 2 components."""
    rng = np.random.default_rng(seed)
    states = [[k, i] for k in range(K) for i in range(N)]
    S = len(states)
    adm = rng.random((S, N + 1)) < 0.7
    adm[np.arange(S), rng.integers(0, N + 1, S)] = True
    tr = {key: [] for key in ("state", "successor", "next_label", "tau", "prob")}
    for s in range(S):
        for c in np.flatnonzero(adm[s]):
            if c == N:
                outs = [(-1, t) for t in (1, 2)]
            else:
                outs = [(int(k2), int(t)) for k2 in rng.choice(K, 2, replace=False) for t in (1, 3)]
            p = rng.dirichlet(np.ones(len(outs)))
            for (k2, t), q in zip(outs, p):
                tr["state"].append(s); tr["successor"].append(int(c)); tr["next_label"].append(k2)
                tr["tau"].append(t); tr["prob"].append(float(q))
    reward = np.where(adm, rng.normal(size=(S, N + 1)), np.nan)
    comps = np.where(adm[:, :, None], rng.normal(size=(S, N + 1, 2)), np.nan)
    rho0 = rng.dirichlet(np.ones(S))
    return EpochModel(name=f"r{seed}", gamma=0.8, agents=[f"a{i}" for i in range(N)],
                      labels=[f"k{k}" for k in range(K)], states=states, admissible=adm,
                      rho0=rho0, transitions=tr, reward=reward, component_names=["u", "w"],
                      components=comps)


def _series(model, sigma, discounted, terms=4000):
    S = model.num_epoch_states
    rows = np.arange(S) * model.num_successors + sigma
    K = (model.discounted_kernel() if discounted else model.transition_law())[rows].toarray()
    R = np.concatenate([np.asarray(model.reward)[:, :, None], np.asarray(model.components)], 2)
    r = R[np.arange(S), sigma]
    total, term = np.zeros_like(r), r.copy()
    for _ in range(terms):
        total += term
        term = K @ term
    return np.asarray(model.rho0) @ total, np.abs(term).max()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6))
def test_discounted_values_equal_the_power_series(seed, pseed):
    m = random_epoch_model(seed)
    rng = np.random.default_rng(pseed)
    sigma = np.array([rng.choice(np.flatnonzero(m.admissible[s])) for s in range(m.num_epoch_states)])
    v = policy_value(m, sigma)
    ref, _ = _series(m, sigma, True)
    got = [v.values[n] for n in ("reward", "u", "w")]
    assert np.allclose(got, ref, atol=1e-9)
    assert v.terminates


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_undiscounted_totals_of_a_stopping_policy_equal_the_power_series(seed):
    m = random_epoch_model(seed)
    # a policy that stops wherever STOP is admissible, else moves: terminates iff the series converges
    N = m.num_agents
    sigma = np.array([N if m.admissible[s, N] else np.flatnonzero(m.admissible[s])[0]
                      for s in range(m.num_epoch_states)])
    v = policy_value(m, sigma, discounted=False)
    ref, tail = _series(m, sigma, False)
    if tail < 1e-12:
        assert v.terminates and not v.trapped.any()
        assert np.allclose([v.values[n] for n in ("reward", "u", "w")], ref, atol=1e-8)
    else:
        assert v.trapped.any()


def test_accuracy_of_a_looping_policy_is_its_absorption_probability():
    # x: stop (reward 1) w.p. 1 with successor STOP or go to y; y loops forever on itself
    m = EpochModel(name="loop", gamma=0.9, agents=["a"], labels=["x", "y"],
                   states=[[0, 0], [1, 0]], admissible=[[True, True], [True, False]],
                   rho0=[1.0, 0.0], reward=[[0.0, 1.0], [0.0, np.nan]],
                   transitions={"state": [0, 0, 1, 0], "successor": [0, 0, 0, 1],
                                "next_label": [0, 1, 1, -1], "tau": [1, 1, 1, 1],
                                "prob": [0.5, 0.5, 1.0, 1.0]})
    v = policy_value(m, [1, 0], discounted=False)      # x stops at once
    assert v.values["reward"] == 1.0 and v.terminates
    v = policy_value(m, [0, 0], discounted=False)      # x -> x or y, never stops
    assert v.values["reward"] == 0.0 and not v.terminates and v.trapped.all()


def test_bad_policies_are_refused_with_the_state():
    m = random_epoch_model(1)
    with pytest.raises(InvalidArgumentError, match="shape"):
        policy_value(m, [0])
    bad = np.array([np.flatnonzero(~m.admissible[s])[0] if (~m.admissible[s]).any() else 0
                    for s in range(m.num_epoch_states)])
    s = int(np.flatnonzero([(~m.admissible[s]).any() for s in range(m.num_epoch_states)])[0])
    with pytest.raises(InvalidArgumentError, match=f"entry {s} .*not admissible"):
        policy_value(m, bad)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6))
def test_reachable_states_under_a_policy_is_a_plain_graph_search(seed, pseed):
    """``EpochModel.reachable_states(policy)`` against a breadth-first search over the table."""
    m = random_epoch_model(seed)
    rng = np.random.default_rng(pseed)
    sigma = np.array([rng.choice(np.flatnonzero(m.admissible[s])) for s in range(m.num_epoch_states)])
    succ = {s: set() for s in range(m.num_epoch_states)}
    for s, c, nxt in zip(m.trans_state, m.trans_successor, m.trans_next):
        if nxt >= 0 and c == sigma[s]:
            succ[int(s)].add(int(nxt))
    seen = set(np.flatnonzero(np.asarray(m.rho0) > 0).tolist())
    todo = list(seen)
    while todo:
        for t in succ[todo.pop()] - seen:
            seen.add(t)
            todo.append(t)
    assert set(np.flatnonzero(m.reachable_states(sigma)).tolist()) == seen
