"""Tests of the bundled examples: both load and validate; ``tiny-handoff`` is the
SPEC section 9 text; ``workflow`` has the designed structure (see
``icsmdp_theory/examples/build_workflow.py``), checked here against the design,
not against the builder's code."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import DEFAULT_EXAMPLE, EXAMPLES, example_path, load_example
from icsmdp_theory.examples.build_workflow import build_workflow
from icsmdp_theory.io import instance_to_dict, save_instance

# SPEC section 9, verbatim (the planner is given in full there).
SPEC_TOP = """{
  "format": "icsmdp/1",
  "name": "tiny-handoff",
  "gamma": 0.9,
  "horizon": 60,
  "n_latent": 1,
  "n_interface": 3,
  "rho_latent_interface": [[1.0, 0.0, 0.0]],
  "rho_agent": [1.0, 0.0]
}"""
SPEC_PLANNER = """{
  "name": "planner",
  "n_private": 1,
  "n_actions": 1,
  "rho_private": [1.0],
  "internal_policy": [[[1.0]], [[1.0]], [[1.0]]],
  "kernel": [[[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]],
  "reward": [[[[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]]],
  "end_probability": [[[1.0], [0.5], [1.0]]],
  "observation": [[0], [1], [1]],
  "successors": [false, true, true]
}"""


def _raw(name):
    return json.loads(example_path(name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_load(name):
    model = load_example(name)
    assert model.name == name
    assert DEFAULT_EXAMPLE in EXAMPLES


def test_unknown_example():
    with pytest.raises(InvalidArgumentError,
                       match=r"^unknown example 'nope'; choose one of tiny-handoff, workflow\.$"):
        load_example("nope")


def test_tiny_handoff_is_the_spec_text():
    raw = _raw("tiny-handoff")
    assert {k: v for k, v in raw.items() if k != "agents"} == json.loads(SPEC_TOP)
    assert raw["agents"][0] == json.loads(SPEC_PLANNER)
    assert list(raw["agents"][1]) == list(json.loads(SPEC_PLANNER))    # "same keys"
    assert raw["agents"][1]["name"] == "checker"
    # and the model read from it holds exactly those numbers
    doc = instance_to_dict(load_example("tiny-handoff"))
    assert doc["agents"][0] == json.loads(SPEC_PLANNER)


def test_tiny_handoff_model_arrays():
    model = load_example("tiny-handoff")
    planner = model.agents[0]
    np.testing.assert_array_equal(planner.kernel[0].toarray(),
                                  [[0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]])
    np.testing.assert_array_equal(planner.end_probability.ravel(), [1.0, 0.5, 1.0])
    np.testing.assert_array_equal(planner.reward[0, :, 0, :], [[0, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert planner.successors.tolist() == [False, True, True]
    assert model.num_observations == (2, 3)


# ------------------------------------------------------------- workflow
PLAN, CODE, PASS, BUG = 0, 1, 2, 3
PLANNER, CODER, TESTER, STOP = 0, 1, 2, 3
WF = load_example("workflow")


def bit(m, k):
    return (m >> k) & 1


def dense(agent):
    return [k.toarray() for k in agent.kernel]


def y_of(x, m, l, nL):
    return (x * 16 + m) * nL + l


def test_workflow_sizes():
    assert WF.agent_names() == ["planner", "coder", "tester"]
    assert (WF.num_latent, WF.num_interface, WF.num_private) == (4, 16, (1, 2, 2))
    assert WF.num_epoch_states == 4 * 16 * (1 * 2 * 2) * 3 == 768
    assert WF.gamma == 0.95 and WF.horizon == 60
    assert [a.num_actions for a in WF.agents] == [2, 2, 2]
    assert all(a.kernel_is_sparse for a in WF.agents)


def test_workflow_file_is_reproducible(tmp_path):
    built = build_workflow()
    assert instance_to_dict(built) == instance_to_dict(WF)
    assert save_instance(built, tmp_path / "w.json").read_bytes() == \
        example_path("workflow").read_bytes()


def test_workflow_handoff_graph():
    adm = np.array([a.successors for a in WF.agents])
    np.testing.assert_array_equal(adm, [[False, True, False, False],
                                        [False, True, True, False],
                                        [True, True, True, True]])


def test_workflow_observation_maps():
    planner, coder, tester = WF.agents
    assert WF.num_observations == (4, 32, 16)
    for m, l in itertools.product(range(16), range(2)):
        assert planner.observation[m, 0] == bit(m, PLAN) + 2 * bit(m, BUG)
        assert coder.observation[m, l] == 2 * m + l
        assert tester.observation[m, l] == 2 * (bit(m, CODE) + 2 * bit(m, PASS) + 4 * bit(m, BUG)) + l
    # not injective on (m, l) for the planner and the tester; injective for the coder
    for agent, injective in ((planner, False), (coder, True), (tester, False)):
        distinct = len(np.unique(agent.observation))
        assert (distinct == agent.observation.size) == injective, agent.name


def test_workflow_initial_law():
    rho = np.zeros((4, 16))
    rho[0, 0], rho[2, 0] = 0.6, 0.4         # easy/hard, correct-by-default, empty artifact
    np.testing.assert_array_equal(WF.rho_latent_interface, rho)
    np.testing.assert_array_equal(WF.rho_agent, [1.0, 0.0, 0.0])
    assert [a.rho_private.tolist() for a in WF.agents] == [[1.0], [1.0, 0.0], [1.0, 0.0]]


def test_workflow_policies_and_end_probabilities():
    planner, coder, tester = WF.agents
    for m in range(16):
        want = [0.2, 0.8] if bit(m, PLAN) else [0.6, 0.4]
        np.testing.assert_array_equal(planner.internal_policy[m, 0], want)
        np.testing.assert_array_equal(coder.internal_policy[m], [[0.8, 0.2], [0.0, 1.0]])
        np.testing.assert_array_equal(tester.internal_policy[m], [[0.7, 0.3], [0.0, 1.0]])
        for x in range(4):
            assert planner.end_probability[x, m, 0] == (1.0 if bit(m, PLAN) else 0.3)
            fresh = bit(m, CODE) and not bit(m, PASS) and not bit(m, BUG)
            assert (coder.end_probability[x, m] == (0.9 if fresh else 0.1)).all()
            assert (tester.end_probability[x, m] == 1.0).all()
    for a in WF.agents:
        assert a.end_probability.min() > 0 and a.end_probability.max() <= 1


def test_workflow_rewards():
    planner, coder, tester = WF.agents
    np.testing.assert_allclose(planner.reward[..., 0, :], -0.02)
    np.testing.assert_allclose(planner.reward[..., 1, :], -0.04)
    np.testing.assert_allclose(coder.reward, -0.02)
    np.testing.assert_allclose(tester.reward[..., :STOP], -0.02)
    for x, m in itertools.product(range(4), range(16)):
        defective = x % 2
        if not bit(m, CODE):
            ship = 0.0
        elif defective:
            ship = -1.0
        elif bit(m, PASS) and not bit(m, BUG):
            ship = 1.0
        else:
            ship = 0.0
        np.testing.assert_allclose(tester.reward[x, m, :, STOP], ship - 0.02, atol=1e-15)


def test_workflow_planner_kernel():
    plan, decompose = dense(WF.agents[0])
    for d, f, m in itertools.product(range(2), range(2), range(16)):
        x, y = 2 * d + f, y_of(2 * d + f, m, 0, 1)
        m1 = m | 1
        p = 0.9 if d == 0 else 0.6
        want = np.zeros(64)
        want[y_of(x, m1, 0, 1)] += p
        want[y_of(x, m, 0, 1)] += 1 - p
        np.testing.assert_allclose(plan[y], want, atol=1e-15)
        want = np.zeros(64)
        easier = 0.3 if d == 1 else 0.0
        for d2, pd in ((0, easier), (d, 1 - easier)):
            want[y_of(2 * d2 + f, m1, 0, 1)] += pd * 0.5
            want[y_of(2 * d2 + f, m, 0, 1)] += pd * 0.5
        np.testing.assert_allclose(decompose[y], want, atol=1e-15)


def test_workflow_coder_kernel():
    load, write = dense(WF.agents[1])
    for d, f, m, l in itertools.product(range(2), range(2), range(16), range(2)):
        y = y_of(2 * d + f, m, l, 2)
        want = np.zeros(128)
        want[y_of(2 * d + f, m, 1, 2)] = 1.0
        np.testing.assert_array_equal(load[y], want)
        p = [0.1, 0.4][d] + 0.25 * (1 - bit(m, PLAN)) + 0.2 * (1 - l)
        if bit(m, BUG):
            p /= 2
        fresh = bit(m, PLAN) | 2                        # code written, no test result
        want = np.zeros(128)
        want[y_of(2 * d + 1, fresh, l, 2)] = p
        want[y_of(2 * d + 0, fresh, l, 2)] = 1 - p
        np.testing.assert_allclose(write[y], want, atol=1e-15)
    # the defect probability is lowest for an easy, planned task with context loaded
    assert write[y_of(0, 1, 1, 2), y_of(1, 3, 1, 2)] == pytest.approx(0.1)
    assert write[y_of(2, 0, 0, 2), y_of(3, 2, 0, 2)] == pytest.approx(0.85)


def test_workflow_tester_kernel():
    build, run = dense(WF.agents[2])
    for x, m, l in itertools.product(range(4), range(16), range(2)):
        y = y_of(x, m, l, 2)
        want = np.zeros(128)
        want[y_of(x, m, 1, 2)] = 1.0
        np.testing.assert_array_equal(build[y], want)
        want = np.zeros(128)
        if not bit(m, CODE):
            want[y] = 1.0
        else:
            fail = (0.95 if l else 0.5) if x % 2 else 0.05
            base = m & 0b0011
            want[y_of(x, base | 8, l, 2)] = fail       # bug found, tests not passing
            want[y_of(x, base | 4, l, 2)] = 1 - fail   # tests pass, no bug
        np.testing.assert_allclose(run[y], want, atol=1e-15)


def _option_reward(model, i):
    """``R_i(y, c') = (I - G)^-1 rbar`` by a dense solve (SPEC section 2)."""
    a = model.agents[i]
    nX, nM, nL, nA = model.num_latent, model.num_interface, a.num_private, a.num_actions
    nY = nX * nM * nL
    kbar, rbar = np.zeros((nY, nY)), np.zeros((nY, model.num_successors))
    for x, m, l in itertools.product(range(nX), range(nM), range(nL)):
        y = y_of(x, m, l, nL)
        for act in range(nA):
            kbar[y] += a.internal_policy[m, l, act] * a.kernel[act].toarray()[y]
            rbar[y] += a.internal_policy[m, l, act] * a.reward[x, m, act]
    beta = a.end_probability.ravel()
    g = model.gamma * kbar * (1 - beta)[None, :]
    return np.linalg.solve(np.eye(nY) - g, rbar)


def test_workflow_aliasing_is_not_free():
    """Some observation cell holds states whose option rewards differ (epsilon_phi > 0)."""
    spreads = []
    for i, a in enumerate(WF.agents):
        R = _option_reward(WF, i)
        labels = np.broadcast_to(a.observation[None], (4,) + a.observation.shape).ravel()
        spread = max(np.ptp(R[labels == o][:, c]) for o in np.unique(labels)
                     for c in np.flatnonzero(a.successors))
        spreads.append(spread)
    # the tester cannot tell correct from defective code: shipping is worth +1 or -1
    assert spreads[TESTER] == pytest.approx(2.0)
    assert spreads[PLANNER] > 1e-3        # hard tasks take longer to plan
    # the coder's invocation does not depend on the latent state, and its map is injective
    assert spreads[CODER] < 1e-12
