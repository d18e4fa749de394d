"""The invocation-level simulator of explicit epoch models (icsmdp_theory.epoch_simulate).

Independent references: the model's own transition table ``P(k', tau | s, c')``
and ``rho0`` (the numbers the simulator must reproduce in frequency, held by a
chi-square test at a fixed seed) and, for an export, the primitive simulator's
invocations (:func:`icsmdp_theory.simulate.sample_invocations`).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.epoch_simulate import (DEFAULT_HORIZON, EpochBatchSimulator,
                                          sample_epoch_invocations)
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.simulate import sample_invocations


def _hand():
    # one agent, labels a and b; from b committed to itself: (a, tau=2) or (b, tau=1), 1/2 each
    return EpochModel(
        name="hand", gamma=0.9, agents=["solo"], labels=["a", "b"],
        states=[[0, 0], [1, 0]], admissible=[[True, True], [True, True]],
        rho0=[0.25, 0.75], reward=[[0.0, 1.0], [0.5, 2.0]],
        transitions={"state": [0, 1, 1, 1, 0, 1, 1], "successor": [0, 0, 0, 0, 1, 1, 1],
                     "next_label": [1, 0, 1, 0, -1, -1, -1], "tau": [1, 2, 1, 5, 1, 3, 1],
                     "prob": [1.0, 0.3, 0.5, 0.2, 1.0, 0.6, 0.4]})


def _chi2_pvalue(observed: np.ndarray, probs: np.ndarray) -> float:
    return float(stats.chisquare(observed, probs * observed.sum()).pvalue)


@pytest.mark.parametrize("state, successor", [(1, 0), (1, 1)])
def test_invocation_frequencies_match_the_transition_table(state, successor):
    m = _hand()
    n = 40_000
    ret, tau, nxt = sample_epoch_invocations(m, state, successor, n, rng=3)
    rows = (m.trans_state == state) & (m.trans_successor == successor)
    want_next, want_tau, want_p = m.trans_next[rows], m.trans_tau[rows], m.trans_prob[rows]
    counts = np.array([np.sum((nxt == a) & (tau == t)) for a, t in zip(want_next, want_tau)])
    assert counts.sum() == n  # no outcome outside the table
    assert _chi2_pvalue(counts, want_p) > 1e-3
    assert np.all(ret == m.reward[state, successor])


def test_export_invocations_match_the_primitive_simulator():
    # the workflow export's law of (end state, tau) from one epoch state vs primitive steps
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    N = model.num_agents
    f, i, c = 1, 0, 2        # full state f (m = 1), planner, committed to STOP
    y = f  # nX = nL = 1: the planner's local state is m
    n = 60_000
    _, tau_p, _ = sample_invocations(model, i, y, c, n, rng=5)
    _, tau_e, nxt = sample_epoch_invocations(e, f * N + i, c, n, rng=6)
    assert np.all(nxt == -1)
    top = 6
    a = np.bincount(np.minimum(tau_p, top), minlength=top + 1)[1:]
    b = np.bincount(np.minimum(tau_e, top), minlength=top + 1)[1:]
    table = np.vstack([a, b])
    table = table[:, table.sum(axis=0) > 0]
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_restart_draws_rho0_and_the_clock_ends_invocations():
    m = _hand()
    n = 20_000
    sim = EpochBatchSimulator(m, n)
    assert sim.horizon == DEFAULT_HORIZON
    idx = np.arange(n)
    rng = np.random.default_rng(0)
    sim.restart(idx, rng.random((n, 3)))  # wider event rows are fine: column 0 draws s0
    counts = np.bincount(sim.G, minlength=2)
    assert _chi2_pvalue(counts, np.asarray(m.rho0)) > 1e-3
    assert np.array_equal(sim.agent, np.zeros(n))
    sim.begin(idx, np.zeros(n, np.int64), rng.random(n))
    d = sim.duration.copy()
    alive = np.ones(n, bool)
    for t in range(1, int(d.max()) + 1):
        ended = sim.step()
        assert np.array_equal(ended, d == t)  # each invocation ends exactly tau steps later
        alive &= ~ended
    assert not alive.any()
    assert np.all(sim.ret == m.reward[sim.G, 0])
    sim.handoff(idx, np.zeros(n, np.int64))
    assert np.all(sim.G == sim.next_state)


def test_inadmissible_successor_is_refused():
    m = EpochModel(name="x", gamma=0.5, agents=["a"], labels=["u"], states=[[0, 0]],
                   admissible=[[False, True]], rho0=[1.0], reward=[[np.nan, 1.0]],
                   transitions={"state": [0], "successor": [1], "next_label": [-1], "tau": [1],
                                "prob": [1.0]})
    sim = EpochBatchSimulator(m, 1)
    sim.restart(np.arange(1), np.zeros((1, 1)))
    with pytest.raises(InvalidArgumentError, match="inadmissible"):
        sim.begin(np.arange(1), np.array([0]), np.array([0.5]))
    with pytest.raises(InvalidArgumentError, match="inadmissible"):
        sample_epoch_invocations(m, 0, 0, 10)
