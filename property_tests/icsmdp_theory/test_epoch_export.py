"""Export of a primitive instance as an explicit epoch model (SPEC sections 2 and 10).

References, each computed without the export's power series:

- tiny-handoff: the laws derived by hand (module docstring of the test below);
- random instances: the option reduction's linear solves ``(I - G)^-1`` and
  ``(I - M)^-1`` (sparse LU / certified Neumann series): ``g_i``, ``D_i`` and the
  undiscounted end law, ``gamma_bar``, ``rho0``;
- sampled invocations (the primitive simulator) against the exported law
  by a chi-square test and the reward by a confidence bound.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import NumpyChoices, draw_icsmdp
from icsmdp_theory.options import gamma_bar, option_reduction
from icsmdp_theory.simulate import sample_invocations
from icsmdp_theory.testing.strategies import icsmdps, observation_maps


def _entries(e, s, c):
    """``{(next_label, tau): prob}`` of the rows of ``(s, c)``."""
    rows = (e.trans_state == s) & (e.trans_successor == c)
    return {(int(k), int(t)): float(p) for k, t, p in
            zip(e.trans_next_label[rows], e.trans_tau[rows], e.trans_prob[rows])}


def test_tiny_handoff_against_hand_derived_laws():
    """Planner (agent 0): m0 -> m1 surely; at m1 the invocation ends w.p. 1/2; from m1 a step
    goes to m1 or m2 (1/2 each), and ends surely at m2. Hence, for t >= 2,
    ``P(m1, 1 | m0) = 1/2``, ``P(m1, t | m0) = 1/2 (1/4)^(t-2) 1/4``, ``P(m2, t | m0) = 1/2 (1/4)^(t-2) 1/2``,
    ``P(m1, t | m1) = (1/4)^(t-1) 1/4``, ``P(m2, t | m1) = (1/4)^(t-1) 1/2``, ``P(m2, 1 | m2) = 1``.
    Checker (agent 1): m0 -> m0, m1 -> m2, m2 -> m2, one step each. Labels [0, m, 0, 0]."""
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    assert e.labels == ("[0,0,0,0]", "[0,1,0,0]", "[0,2,0,0]")
    assert e.agent_names == ("planner", "checker") and e.num_epoch_states == 6
    # P(tau > t | m0) = 2 (1/4)^t is the largest tail: the first t with it <= 1e-13 is 23
    assert 2 * 0.25 ** 22 > 1e-13 >= 2 * 0.25 ** 23
    assert e.truncation_remainder == pytest.approx(2 * 0.25 ** 23, rel=1e-9)
    for c in (1, 2):                           # planner -> checker, planner -> STOP
        for m in range(3):
            got = _entries(e, 2 * m + 0, c)
            want = {}
            if m == 2:
                want[(2, 1)] = 1.0
            for t in range(1, 24):
                if m == 0:
                    p1 = 0.5 if t == 1 else 0.5 * 0.25 ** (t - 2) * 0.25
                    p2 = 0.0 if t == 1 else 0.5 * 0.25 ** (t - 2) * 0.5
                elif m == 1:
                    p1, p2 = 0.25 ** (t - 1) * 0.25, 0.25 ** (t - 1) * 0.5
                else:
                    continue
                for k, p in ((1, p1), (2, p2)):
                    if p > 0:
                        want[(k, t)] = want.get((k, t), 0.0) + p
            if c == 2:                         # STOP: the law of tau alone
                stop = {}
                for (k, t), p in want.items():
                    stop[(-1, t)] = stop.get((-1, t), 0.0) + p
                want = stop
            assert set(got) == set(want), (m, c)
            for key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-13), (m, c, key)
            assert sum(got.values()) == pytest.approx(1.0, abs=1e-15)
    for m, nxt in ((0, 0), (1, 2), (2, 2)):    # checker -> planner: one step
        assert _entries(e, 2 * m + 1, 0) == {(nxt, 1): 1.0}
        assert _entries(e, 2 * m + 1, 2) == {(-1, 1): 1.0}
    assert e.admissible.tolist() == [[False, True, True], [True, False, True]] * 3
    # rewards: 1 only when the invocation starts at m2 committed to STOP
    expected_R = np.zeros((6, 3))
    expected_R[4, 2] = expected_R[5, 2] = 1.0
    np.testing.assert_allclose(np.where(e.admissible, e.reward, 0.0), expected_R, atol=1e-12)
    assert e.rho0.tolist() == [1.0, 0, 0, 0, 0, 0]
    assert [o.tolist() for o in e.observation] == [[0, 1, 1], [0, 1, 2]]
    assert e.gamma_bar() == pytest.approx(0.9)


def _check_against_primitive(model):
    e = export_epoch(model)
    N, n1 = model.num_agents, model.num_successors
    space = EpochSpace(model)
    assert e.num_epoch_states == model.num_epoch_states and e.num_labels == model.num_full_states
    assert e.truncation_remainder <= 1e-13
    np.testing.assert_array_equal(e.rho0, initial_epoch_law(model).ravel())
    assert e.gamma_bar() == pytest.approx(gamma_bar(model), abs=1e-9)
    D = e.discounted_kernel().tocsr()
    P = e.transition_law().tocsr()
    for s in range(e.num_epoch_states):
        d = space.decode(s)
        text = "[" + ",".join(str(v) for v in (d["x"], d["m"], *d["l"])) + "]"
        assert e.labels[e.state_label[s]] == text and e.state_agent[s] == d["agent"]
    for i in range(N):
        red = option_reduction(model, i)
        nY = red.num_local_states
        g = red.effective_discount()
        D_ref = red.end_kernel_pushforward(np.arange(nY), nY)     # (I - G)^-1 E
        P_ref = red.end_law_pushforward(np.arange(nY), nY)        # (I - M)^-1 Kbar diag(beta)
        obs = model.agents[i].observation
        for s in np.flatnonzero(e.state_agent == i):
            d = space.decode(s)
            y = model.local_index(i, d["x"], d["m"], d["l"][i])
            assert e.state_observation[s] == obs[d["m"], d["l"][i]]
            for c in np.flatnonzero(model.admissible[i]):
                assert e.end_discount()[s, c] == pytest.approx(g[y], abs=1e-9)
                assert e.reward[s, c] == pytest.approx(red.option_reward()[y, c], abs=1e-9)
                if c == N:
                    continue
                # push the row of (s, c) through the end state: f' -> agent i's y', rest kept
                for mat, ref in ((D, D_ref), (P, P_ref)):
                    row = mat[[s * n1 + c]]
                    pushed = np.zeros(nY)
                    for s2, v in zip(row.indices, row.data):
                        d2 = space.decode(s2)
                        assert d2["agent"] == c
                        assert all(d2["l"][j] == d["l"][j] for j in range(N) if j != i)
                        pushed[model.local_index(i, d2["x"], d2["m"], d2["l"][i])] += v
                    np.testing.assert_allclose(pushed, ref[y], atol=1e-9)
    return e


@settings(max_examples=max(5, settings.default.max_examples // 2))
@given(icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2)))
def test_random_exports_match_the_option_reduction(model):
    _check_against_primitive(model)


@settings(max_examples=max(3, settings.default.max_examples // 5))
@given(icsmdps(agents=(1, 2), interface=(1, 3), private=(1, 2), graph=True, sparse=True))
def test_random_exports_with_handoff_graphs(model):
    e = _check_against_primitive(model)
    np.testing.assert_array_equal(e.admissible, np.tile(model.admissible, (model.num_full_states, 1)))


@settings(max_examples=max(3, settings.default.max_examples // 5))
@given(icsmdps(agents=2, interface=(2, 3), private=(1, 2)).flatmap(
    lambda m: observation_maps(m.num_interface, m.agents[0].num_private).flatmap(
        lambda o0: observation_maps(m.num_interface, m.agents[1].num_private).map(
            lambda o1: (m, [o0, o1])))))
def test_export_of_proposed_maps_equals_relabelled_export(pair):
    model, maps = pair
    proposed = model.with_observation(maps)
    direct = export_epoch(proposed)
    relabelled = export_epoch(model).with_observation(list(direct.observation))
    np.testing.assert_array_equal(direct.state_observation, relabelled.state_observation)
    space = EpochSpace(model)
    for s in range(direct.num_epoch_states):
        d = space.decode(s)
        raw = proposed.agents[d["agent"]].observation[d["m"], d["l"][d["agent"]]]
        assert direct.observation_values[d["agent"]][direct.state_observation[s]] == raw


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_sampled_invocations_agree_with_the_exported_law(seed):
    model = draw_icsmdp(NumpyChoices(seed), agents=(2, 2), latent=(1, 2), interface=(2, 3),
                        private=(1, 2))
    e = export_epoch(model)
    rng = np.random.default_rng(seed)
    space = EpochSpace(model)
    n = 4000
    for _ in range(2):
        s = int(rng.integers(e.num_epoch_states))
        d = space.decode(s)
        i = d["agent"]
        c = int(rng.choice(np.flatnonzero(model.admissible[i])))
        y = model.local_index(i, d["x"], d["m"], d["l"][i])
        ret, tau, end = sample_invocations(model, i, y, c, n, rng=rng)
        # expected law of (y', tau) from the export: next full state -> agent i's y'
        rows = (e.trans_state == s) & (e.trans_successor == c)
        if c == model.num_agents:
            key_e = e.trans_tau[rows]
            key_s = tau
        else:
            ends = []
            for k in e.trans_next_label[rows]:
                dk = space.decode(int(k) * model.num_agents)
                ends.append(model.local_index(i, dk["x"], dk["m"], dk["l"][i]))
            big = int(max(tau.max(), e.trans_tau[rows].max())) + 1
            key_e = np.asarray(ends) * big + e.trans_tau[rows]
            key_s = end * big + tau
        cells, inv = np.unique(key_e, return_inverse=True)
        p = np.bincount(inv.ravel(), weights=e.trans_prob[rows])
        expected = n * p
        assert np.isin(key_s, cells).all()            # nothing sampled outside the support
        observed = np.bincount(np.searchsorted(cells, key_s), minlength=cells.size).astype(float)
        # pool cells with expected count < 5 into one
        small = expected < 5
        obs = np.append(observed[~small], observed[small].sum())
        exp = np.append(expected[~small], expected[small].sum())
        keep = exp > 0
        if keep.sum() > 1:
            assert stats.chisquare(obs[keep], exp[keep]).pvalue > 1e-4
        se = ret.std() / np.sqrt(n) + 1e-12
        assert abs(ret.mean() - e.reward[s, c]) <= 5 * se
        assert abs(np.mean(model.gamma ** tau) - e.end_discount()[s, c]) <= 5 * np.std(model.gamma ** tau) / np.sqrt(n) + 1e-12


def test_caps_and_arguments():
    model = load_example("tiny-handoff")
    with pytest.raises(StateSpaceTooLargeError, match="this instance has 6 "):
        export_epoch(model, max_epoch_states=5)
    with pytest.raises(StateSpaceTooLargeError, match="more than 50 "):
        export_epoch(model, max_transitions=50)
    with pytest.raises(InvalidArgumentError, match="`tail_tol` must be a number in"):
        export_epoch(model, tail_tol=0.0)
    coarse = export_epoch(model, tail_tol=1e-3)
    assert 0 < coarse.truncation_remainder <= 1e-3
    assert coarse.counts["tail_tol"] == 1e-3
    # the remainder is moved onto kept entries: every admissible law still sums to 1
    sums = np.bincount(coarse.trans_state * 3 + coarse.trans_successor, weights=coarse.trans_prob,
                       minlength=18).reshape(6, 3)
    np.testing.assert_allclose(sums[coarse.admissible], 1.0, atol=1e-15)
    assert coarse.trans_tau.max() < export_epoch(model).trans_tau.max()


def test_workflow_export_size_and_time():
    import time
    model = load_example("workflow")
    start = time.perf_counter()
    e = export_epoch(model)
    elapsed = time.perf_counter() - start
    assert e.num_epoch_states == 768 and e.num_labels == 256
    assert e.truncation_remainder <= 1e-13
    assert elapsed < 10.0
    assert e.gamma_bar() == pytest.approx(gamma_bar(model), abs=1e-12)
