"""The batched primitive-step simulator against exact quantities (SPEC sections 1-2).

Independent references: the exact option reduction (``R_i(y, c')``,
``E[gamma^tau | y]`` and the discounted end kernel ``D_i``, by sparse solves
in :mod:`icsmdp_theory.options`), the initial law ``rho0`` of
:mod:`icsmdp_theory.epoch`, and the probability rows of the sampling tables.
Monte Carlo means are compared within 5 standard errors (plus ``1e-9``).
"""
from __future__ import annotations

import numpy as np
import pytest

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.options import option_reduction
from icsmdp_theory.simulate import (BatchSimulator, CategoricalRows, SeedStreams, STEP_COLUMNS,
                                    sample_invocations, seed_sequences)

Z = 5.0


def _model(seed=3):
    # latent states, private states, several actions, sparse kernels, random ends
    return random_icsmdp(seed, num_agents=3, num_latent=2, num_interface=3, num_private=(1, 2, 3),
                         num_actions=(1, 2, 3), nnz_per_row=3, end_probability=(0.2, 0.9),
                         gamma=0.9, stop_admissible=True)


def _close(samples, exact):
    se = samples.std(ddof=1) / np.sqrt(samples.size)
    return abs(samples.mean() - exact) <= Z * se + 1e-9, (samples.mean(), exact, se)


@pytest.mark.parametrize("agent, y, succ", [(0, 0, 1), (1, 3, 3), (2, 7, 0), (2, 16, 2)])
def test_invocations_match_option_reduction(agent, y, succ):
    model = _model()
    red = option_reduction(model, agent)
    n = 40_000
    ret, tau, end = sample_invocations(model, agent, y, succ, n, rng=agent * 100 + y)
    ok, info = _close(ret, red.option_reward()[y, succ])
    assert ok, info
    g = model.gamma ** tau
    ok, info = _close(g, red.effective_discount()[y])
    assert ok, info
    # discounted end kernel D_i(y'|y) for every end state y'
    nY = red.num_local_states
    D_row = red.apply_end_kernel(np.eye(nY))[y]
    for y2 in range(nY):
        ok, info = _close(g * (end == y2), D_row[y2])
        assert ok, (y2, info)


def test_invocation_closed_form_tiny_handoff():
    # planner at m0 -> m1 surely; at m1 it ends w.p. 1/2, else moves to m2 w.p. 1/2 (then ends).
    model = load_example("tiny-handoff")
    ret, tau, end = sample_invocations(model, 0, 0, 1, 100_000, rng=1)
    assert tau.min() >= 1 and set(np.unique(end)) <= {1, 2}
    # P(tau = 1) = P(end at m1 after first step) = 1/2
    ok, info = _close((tau == 1).astype(float), 0.5)
    assert ok, info


def test_restart_draws_follow_rho0():
    model = _model(5)
    S = 60_000
    sim = BatchSimulator(model, S)
    rng = np.random.default_rng(0)
    idx = np.arange(S)
    sim.restart(idx, rng.random((S, model.num_agents + 2)))
    # decode the epoch state (f, i) of every seed and compare frequencies with rho0
    tb = sim.tables
    space = EpochSpace(model)
    G = sim.G
    xm = tb.xm_of[G]
    x, m = np.divmod(xm, model.num_interface)
    priv = sim.private.copy()
    priv[idx, sim.agent] = tb.l_of[G]
    f = np.ravel_multi_index((x, m) + tuple(priv.T), space.full_shape)
    s = f * model.num_agents + sim.agent
    freq = np.bincount(s, minlength=model.num_epoch_states) / S
    rho = initial_epoch_law(model).reshape(-1)
    se = np.sqrt(rho * (1 - rho) / S)
    assert np.all(np.abs(freq - rho) <= Z * se + 1e-12)


def test_categorical_rows_frequencies_and_bisection():
    rng = np.random.default_rng(1)
    P = rng.random((7, 9)) * (rng.random((7, 9)) < 0.5)
    P[:, 3] += 0.05
    P /= P.sum(axis=1, keepdims=True)
    t = CategoricalRows.dense(P)
    n = 200_000
    rows = rng.integers(0, 7, n)
    u = rng.random(n)
    draws = t.sample(rows, u)  # many queries: bisection path
    assert np.all(P[rows, draws] > 0)
    for r in range(7):
        sel = draws[rows == r]
        freq = np.bincount(sel, minlength=9) / sel.size
        se = np.sqrt(P[r] * (1 - P[r]) / sel.size)
        assert np.all(np.abs(freq - P[r]) <= Z * se + 1e-12)
    # the few-query path (global searchsorted) picks the same entries
    small = np.concatenate([t.sample(rows[k:k + 100], u[k:k + 100]) for k in range(0, 5000, 100)])
    assert np.array_equal(small, draws[:5000])
    # u at its largest value stays in its row
    top = np.full(7, np.nextafter(1.0, 0.0))
    last_positive = np.array([np.flatnonzero(P[r])[-1] for r in range(7)])
    assert np.array_equal(t.sample(np.arange(7), top), last_positive)


def test_seed_streams_subset_reproduces_batch():
    seqs = seed_sequences(11, 5)
    full = SeedStreams(seqs, step_width=STEP_COLUMNS, event_width=4, block=16)
    part = SeedStreams([seqs[3]], step_width=STEP_COLUMNS, event_width=4, block=7)
    steps_full = np.stack([full.step()[:, 3].copy() for _ in range(40)])
    steps_part = np.stack([part.step()[:, 0].copy() for _ in range(40)])
    assert np.array_equal(steps_full, steps_part)
    ev_full = np.stack([full.events(np.array([1, 3]))[1] for _ in range(300)])
    ev_part = np.stack([part.events(np.array([0]))[0] for _ in range(300)])
    assert np.array_equal(ev_full, ev_part)
    # distinct seeds draw different numbers
    assert not np.array_equal(full.step()[:, 0], full.step()[:, 1])


def test_sample_invocations_rejects_bad_arguments():
    from icsmdp_theory.errors import InvalidArgumentError
    model = load_example("tiny-handoff")
    with pytest.raises(InvalidArgumentError, match="`local_state`"):
        sample_invocations(model, 0, 3, 1, 10)
    with pytest.raises(InvalidArgumentError, match="`agent`"):
        sample_invocations(model, 2, 0, 1, 10)
