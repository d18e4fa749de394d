"""Tests of :mod:`estimators.behavior` (SPEC section 6) against explicit loops over the raw model.

Expected values are written from the definitions: ``b_i(c'|o)`` uniform on
``succ[i]``; epsilon-greedy puts ``1 - eps + eps/|adm|`` on the lowest admissible
index within ``1e-10`` of the admissible maximum; the epoch view is
``b_i(c' | phi_i(m, l_i))`` at the full state ``(x, m, l_0..l_{N-1})``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from estimators.behavior import (epoch_behavior, epsilon_greedy_behavior, uniform_behavior,
                                 validate_behavior)
from icsmdp_theory.cells import epoch_observations
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp

SHAPES = [
    dict(num_agents=1, num_interface=3),
    dict(num_agents=2, num_latent=2, num_interface=3, num_private=(2, 3), observation="random"),
    dict(num_agents=3, num_interface=4, num_private=(1, 2, 2), successor_density=0.5),
]


@pytest.fixture(scope="module")
def tiny():
    return load_example("tiny-handoff")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kwargs", SHAPES)
def test_uniform_is_uniform_over_admissible(seed, kwargs):
    model = random_icsmdp(seed, **kwargs)
    b = uniform_behavior(model)
    assert len(b) == model.num_agents
    for i, agent in enumerate(model.agents):
        k = int(agent.successors.sum())
        assert b[i].shape == (agent.num_observations, model.num_agents + 1)
        for o in range(agent.num_observations):
            for c in range(model.num_agents + 1):
                assert b[i][o, c] == (1.0 / k if agent.successors[c] else 0.0)
    assert np.array_equal(model.admissible, np.array([a.successors for a in model.agents]))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_epsilon_greedy_mass_on_greedy_successor(eps, seed):
    model = random_icsmdp(seed, num_agents=3, num_interface=3, successor_density=0.8)
    rng = np.random.default_rng(seed)
    q = [rng.normal(size=(a.num_observations, 4)) for a in model.agents]
    for qi, a in zip(q, model.agents):  # inadmissible entries must be ignored, even huge or nan
        qi[:, ~a.successors] = np.where(rng.random((qi.shape[0], (~a.successors).sum())) < 0.5,
                                        1e9, np.nan)
    b = epsilon_greedy_behavior(model, q, eps)
    for i, a in enumerate(model.agents):
        adm = np.flatnonzero(a.successors)
        for o in range(a.num_observations):
            best = adm[np.argmax(q[i][o, adm])]
            for c in range(4):
                if c not in adm:
                    expected = 0.0
                elif c == best:
                    expected = 1 - eps + eps / adm.size
                else:
                    expected = eps / adm.size
                assert b[i][o, c] == pytest.approx(expected, abs=1e-15)
        assert np.allclose(b[i].sum(axis=1), 1.0)


def test_epsilon_greedy_ties_go_to_lowest_admissible_index(tiny):
    # planner admits {1, 2}; checker admits {0, 2}. Ties within 1e-10 -> lowest index.
    q = [np.array([[9.0, 1.0, 1.0 + 1e-11], [0.0, 1.0, 1.0 + 1e-9]]),
         np.array([[5.0, 99.0, 5.0], [4.0, 0.0, 5.0], [3.0, 0.0, 3.0]])]
    b = epsilon_greedy_behavior(tiny, q, 0.2)
    assert b[0].tolist() == [[0.0, 0.9, 0.1], [0.0, 0.1, 0.9]]
    assert b[1].tolist() == [[0.9, 0.0, 0.1], [0.1, 0.0, 0.9], [0.9, 0.0, 0.1]]


@pytest.mark.parametrize("kwargs", SHAPES)
def test_epoch_observations_and_behavior_match_explicit_loop(kwargs):
    model = random_icsmdp(5, **kwargs)
    rng = np.random.default_rng(0)
    beh = []
    for a in model.agents:  # a random valid behavior
        w = rng.random((a.num_observations, model.num_agents + 1)) * a.successors
        beh.append(w / w.sum(axis=1, keepdims=True))
    obs = epoch_observations(model)
    eb = epoch_behavior(model, beh)
    nX, nM, nL = model.num_latent, model.num_interface, model.num_private
    f = 0
    for x, m in itertools.product(range(nX), range(nM)):
        for ls in itertools.product(*[range(n) for n in nL]):
            for i, a in enumerate(model.agents):
                o = a.observation[m, ls[i]]
                assert obs[f, i] == o
                assert np.array_equal(eb[f, i], beh[i][o])
            f += 1
    assert f == model.num_full_states
    assert eb.shape == (model.num_full_states, model.num_agents, model.num_agents + 1)
    # default behavior is uniform
    assert np.array_equal(epoch_behavior(model), epoch_behavior(model, uniform_behavior(model)))


# ------------------------------------------------------------------ invalid input
def _valid(tiny):
    return [np.array([[0.0, 0.5, 0.5], [0.0, 0.25, 0.75]]),
            np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])]


def test_validate_accepts_valid_and_none(tiny):
    out = validate_behavior(tiny, _valid(tiny))
    assert [b.tolist() for b in out] == [b.tolist() for b in _valid(tiny)]
    assert [b.tolist() for b in validate_behavior(tiny, None)] == \
        [b.tolist() for b in uniform_behavior(tiny)]


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:1], r"^`behavior` must be a list of 2 arrays \(one per agent\), got 1\.$"),
    (lambda b: np.zeros((2, 3)), r"^`behavior` must be a list of 2 arrays \(one per agent\), got ndarray\.$"),
    (lambda b: [b[0], b[1][:2]],
     r"^`behavior\[1\]` \(agent 1 \(`checker`\)\) must have shape \[3, 3\] \(observations, successors\), got \[2, 3\]\.$"),
    (lambda b: [np.where(np.arange(3) == 1, np.nan, b[0]), b[1]],
     r"^`behavior\[0\]` \(agent 0 \(`planner`\)\) must be finite: entry \[o=0, c'=1\] is nan\.$"),
    (lambda b: [b[0], np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0], [1.5, 0.0, -0.5]])],
     r"^`behavior\[1\]` \(agent 1 \(`checker`\)\) must be non-negative: entry \[o=2, c'=2\] is -0\.5\.$"),
    (lambda b: [np.array([[0.0, 0.5, 0.5], [0.1, 0.25, 0.65]]), b[1]],
     r"^`behavior\[0\]` \(agent 0 \(`planner`\)\) puts mass 0\.1 on inadmissible successor c'=0 \(agent 0\) at observation o=1\.$"),
    (lambda b: [b[0], np.array([[0.5, 0.0, 0.5], [0.5, 0.2, 0.3], [0.0, 0.0, 1.0]])],
     r"^`behavior\[1\]` \(agent 1 \(`checker`\)\) puts mass 0\.2 on inadmissible successor c'=1 \(agent 1\) at observation o=1\.$"),
    (lambda b: [np.array([[0.0, 0.5, 0.5], [0.0, 0.25, 0.7]]), b[1]],
     r"^rows of `behavior\[0\]` \(agent 0 \(`planner`\)\) must sum to 1: observation o=1 sums to 0\.95\.$"),
])
def test_validate_rejects_with_located_message(tiny, mutate, message):
    with pytest.raises(InvalidArgumentError, match=message):
        validate_behavior(tiny, mutate(_valid(tiny)))


def test_validate_names_stop(tiny):
    model = random_icsmdp(0, num_agents=1, num_interface=2, stop_admissible=False)
    nO = model.agents[0].num_observations
    b = np.tile([0.5, 0.5], (nO, 1))
    with pytest.raises(InvalidArgumentError, match=r"inadmissible successor c'=1 \(STOP\) at observation o=0\.$"):
        validate_behavior(model, [b])


@pytest.mark.parametrize("args, message", [
    (dict(epsilon=1.5), r"^`epsilon` must lie in \[0, 1\], got 1\.5\.$"),
    (dict(epsilon=-0.1), r"^`epsilon` must lie in \[0, 1\], got -0\.1\.$"),
    (dict(epsilon="0.1"), r"^`epsilon` must be a number in \[0, 1\], got '0\.1'\.$"),
    (dict(epsilon=True), r"^`epsilon` must be a number in \[0, 1\], got True\.$"),
    (dict(q_obs=[np.zeros((2, 3))]), r"^`q_obs` must be a list of 2 arrays \(one per agent\), got 1\.$"),
    (dict(q_obs=[np.zeros((2, 3)), np.zeros((2, 3))]),
     r"^`q_obs\[1\]` \(agent 1 \(`checker`\)\) must have shape \[3, 3\] \(observations, successors\), got \[2, 3\]\.$"),
    (dict(q_obs=[np.array([[0.0, np.inf, 0.0], [0.0, 0.0, 0.0]]), np.zeros((3, 3))]),
     r"^`q_obs\[0\]` \(agent 0 \(`planner`\)\) must be finite on admissible successors: entry \[o=0, c'=1\] is inf\.$"),
])
def test_epsilon_greedy_rejects(tiny, args, message):
    kw = dict(q_obs=[np.zeros((2, 3)), np.zeros((3, 3))], epsilon=0.1)
    kw.update(args)
    with pytest.raises(InvalidArgumentError, match=message):
        epsilon_greedy_behavior(tiny, **kw)
