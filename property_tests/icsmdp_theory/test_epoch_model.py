"""The explicit epoch model (SPEC section 10): hand-derived values, storage order, checks.

The hand model: agents ``a``, ``b``; labels ``x``, ``y``; epoch states
``(x, a)``, ``(y, b)``, ``(y, a)`` (given in that order; stored sorted by
``(k, i)``), ``gamma = 0.9``:

- ``(x, a)``: to ``b`` -> ``(y, b)`` after 1 step (0.6) or 2 steps (0.4); STOP after 1 step;
- ``(y, b)``: to ``a`` -> ``(x, a)`` after 1 step (0.5) or ``(y, a)`` after 3 (0.5); STOP after 2;
- ``(y, a)``: STOP only, after 1 step (0.3) or 4 steps (0.7).
"""
import numpy as np
import pytest

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import (InvalidArgumentError, InvalidEpochModelError,
                                  InvalidInstanceError, InvalidObservationMapError)

NAN = float("nan")


def hand_kwargs(**change):
    kw = dict(
        name="hand", gamma=0.9, agents=["a", "b"], labels=["x", "y"],
        states=[[0, 0], [1, 1], [1, 0]],
        admissible=[[False, True, True], [True, False, True], [False, False, True]],
        rho0=[1.0, 0.0, 0.0],
        reward=[[NAN, 1.0, 0.0], [2.0, NAN, 0.0], [NAN, NAN, 5.0]],
        transitions={"state": [0, 0, 0, 1, 1, 1, 2, 2],
                     "successor": [1, 1, 2, 0, 0, 2, 2, 2],
                     "next_label": [1, 1, -1, 0, 1, -1, -1, -1],
                     "tau": [1, 2, 1, 1, 3, 2, 1, 4],
                     "prob": [0.6, 0.4, 1.0, 0.5, 0.5, 1.0, 0.3, 0.7]})
    for k, v in change.items():
        if k.startswith("t_"):
            kw["transitions"] = dict(kw["transitions"], **{k[2:]: v})
        else:
            kw[k] = v
    return kw


def hand(**change):
    return EpochModel(**hand_kwargs(**change))


def test_hand_model_values():
    m = hand()
    xa, yb, ya = m.state_index("x", "a"), m.state_index("y", "b"), m.state_index("y", "a")
    assert (xa, ya, yb) == (0, 1, 2)                       # sorted by (k, i)
    assert m.state_label.tolist() == [0, 1, 1] and m.state_agent.tolist() == [0, 0, 1]
    E = m.end_discount()
    assert E[xa, 1] == pytest.approx(0.6 * 0.9 + 0.4 * 0.81, abs=1e-15)
    assert E[xa, 2] == pytest.approx(0.9)
    assert E[yb, 0] == pytest.approx(0.5 * 0.9 + 0.5 * 0.729, abs=1e-15)
    assert E[yb, 2] == pytest.approx(0.81)
    assert E[ya, 2] == pytest.approx(0.3 * 0.9 + 0.7 * 0.9 ** 4, abs=1e-15)
    assert np.isnan(E[xa, 0]) and np.isnan(E[ya, 0]) and np.isnan(E[ya, 1])
    assert m.gamma_bar() == pytest.approx(0.9)
    D = m.discounted_kernel().toarray()
    expected = np.zeros((9, 3))
    expected[xa * 3 + 1, yb] = 0.864
    expected[yb * 3 + 0, xa] = 0.45
    expected[yb * 3 + 0, ya] = 0.5 * 0.729
    np.testing.assert_allclose(D, expected, atol=1e-15)
    P = m.transition_law().toarray()
    law = np.zeros((9, 3))
    law[xa * 3 + 1, yb] = 1.0
    law[yb * 3 + 0, [xa, ya]] = 0.5
    np.testing.assert_allclose(P, law, atol=1e-15)
    assert m.reward[yb, 0] == 2.0 and m.reward[ya, 2] == 5.0 and np.isnan(m.reward[ya, 0])
    assert m.rho0.tolist() == [1.0, 0.0, 0.0]
    assert m.describe_state(yb) == {"label": "y", "agent": 1, "agent_name": "b"}
    # transitions sorted by (state, successor, next state, tau); STOP next = -1
    key = list(zip(m.trans_state, m.trans_successor, m.trans_next, m.trans_tau))
    assert key == sorted(key) and len(key) == 8
    assert set(m.trans_next[m.trans_successor == 2].tolist()) == {-1}


def test_storage_does_not_depend_on_the_given_order():
    base = hand()
    rng = np.random.default_rng(0)
    kw = hand_kwargs()
    for _ in range(5):
        perm = rng.permutation(3)
        inv = np.argsort(perm)
        tperm = rng.permutation(8)
        t = {k: np.asarray(v)[tperm] for k, v in kw["transitions"].items()}
        t["state"] = inv[t["state"]]
        m = EpochModel(**dict(kw, states=np.asarray(kw["states"])[perm],
                              admissible=np.asarray(kw["admissible"])[perm],
                              rho0=np.asarray(kw["rho0"])[perm], reward=np.asarray(kw["reward"])[perm],
                              transitions=t))
        for name in ("state_label", "state_agent", "admissible", "rho0", "reward", "trans_state",
                     "trans_successor", "trans_next_label", "trans_next", "trans_tau", "trans_prob"):
            np.testing.assert_array_equal(getattr(m, name), getattr(base, name), err_msg=name)


def test_immutable_and_read_only():
    m = hand()
    with pytest.raises(AttributeError):
        m.gamma = 0.5
    for arr in (m.rho0, m.reward, m.trans_prob, m.admissible, m.state_observation, m.observation[0],
                m.end_discount(), m.discounted_kernel().data):
        with pytest.raises(ValueError):
            arr[...] = 0


def test_observation_is_compacted_per_agent():
    m = hand()
    assert m.num_observations == (2, 1)           # a at x and y; b only at y
    w = m.with_observation([[7, 3], [5, 9]])
    assert w.observation[0].tolist() == [7, 3]
    # agent a: values {3, 7} on its states (x -> 7, y -> 3); agent b: {9}
    assert [v.tolist() for v in w.observation_values] == [[3, 7], [9]]
    assert w.state_observation.tolist() == [1, 0, 0]   # (x,a) -> 7 = rank 1; (y,a) -> 3; (y,b) -> 9
    assert w.num_observations == (2, 1)
    merged = m.with_observation([[4, 4], [0, 0]])
    assert merged.num_observations == (1, 1) and merged.state_observation.tolist() == [0, 0, 0]
    assert m.state_observation.tolist() == [0, 1, 0]      # the original is unchanged


def test_with_observation_keeps_dynamics_cache_only():
    m = hand()
    D = m.discounted_kernel()
    m.derived.get(("obs-thing",), lambda: 1, observation=True)
    w = m.with_observation([[0, 1], [0, 0]])
    assert w.derived is not m.derived
    assert w.discounted_kernel() is D
    assert w.derived.keys(observation=True) == []


@pytest.mark.parametrize("maps,fragment", [
    ([[0, 1]], "one map per agent: expected 2, got 1"),
    ([[0, 1], [0]], "`maps` of agent 1 (`b`) must be 2 integers"),
    ([[0, -1], [0, 0]], "label 1 ('y') maps to -1"),
    ([[0.0, 1.0], [0, 0]], "must be 2 integers"),
])
def test_bad_observation_maps(maps, fragment):
    with pytest.raises(InvalidObservationMapError) as exc:
        hand().with_observation(maps)
    assert fragment in str(exc.value)


def test_state_index_errors():
    m = hand()
    with pytest.raises(InvalidArgumentError, match="is not an epoch state"):
        m.state_index("x", "b")
    with pytest.raises(InvalidArgumentError, match="unknown label 'z'"):
        m.state_index("z", 0)
    with pytest.raises(InvalidArgumentError, match="unknown agent 'c'"):
        m.state_index(0, "c")


#: One rejection rule per entry: the change and a fragment of the one-line message.
BAD = [
    (dict(gamma=1.0), "`gamma` must be a number in (0, 1)"),
    (dict(gamma=True), "`gamma` must be a number in (0, 1), got the boolean True"),
    (dict(agents=["a", "a"]), "`agents` entry 1 repeats 'a'"),
    (dict(agents=["a", "STOP"]), "reserved for the STOP successor"),
    (dict(labels=["x", 3]), "`labels` entry 1 must be a string"),
    (dict(labels=["x", "x"]), "`labels` entry 1 repeats 'x'"),
    (dict(states=[[0, 0], [1, 1], [0, 0]]), "`states` entries 0 and 2 repeat (label 0 ('x'), agent 0 (`a`))"),
    (dict(states=[[0, 0], [1, 2], [1, 0]]), "`states` entry 1: agent 2 is unknown"),
    (dict(states=[[0, 0], [2, 1], [1, 0]]), "`states` entry 1: label 2 is unknown"),
    (dict(states=[[0.0, 0.0], [1, 1], [1, 0]]), "`states` must be an array of integers"),
    (dict(admissible=[[False, True, True], [True, False, True], [False, False, False]]),
     "state 2 (label 1 ('y'), agent 0 (`a`)) has no admissible successor"),
    (dict(admissible=[[0, 1, 1], [1, 0, 1], [0, 0, 1]]), "`admissible` must be an array of booleans"),
    (dict(rho0=[0.9, 0.0, 0.0]), "`rho0` must sum to 1"),
    (dict(rho0=[1.5, -0.5, 0.0]), "`rho0` at state 1 (label 1 ('y'), agent 1 (`b`)) must be a finite probability"),
    (dict(rho0=[1.0, 0.0]), "`rho0` must have shape (3)"),
    (dict(reward=[[NAN, NAN, 0.0], [2.0, NAN, 0.0], [NAN, NAN, 5.0]]),
     "`reward` at state 0 (label 0 ('x'), agent 0 (`a`)), successor 1 (`b`) must be finite"),
    (dict(reward=[[NAN, 1e300, 0.0], [2.0, NAN, 0.0], [NAN, NAN, 5.0]]), "exceeds 1e+100"),
    (dict(t_prob=[0.6, 0.3, 1.0, 0.5, 0.5, 1.0, 0.3, 0.7]),
     "state 0 (label 0 ('x'), agent 0 (`a`)), successor 1 (`b`) has rows summing to 0.9"),
    (dict(t_successor=[1, 1, 2, 0, 0, 2, 2, 1]), "`transitions` entry 7"),
    (dict(t_state=[0, 0, 0, 1, 1, 1, 2, 3]), "`transitions` entry 7: state 3 is not a row of `states`"),
    (dict(t_successor=[1, 1, 2, 0, 0, 2, 2, 3]), "`transitions` entry 7: unknown successor 3"),
    (dict(t_successor=[1, 1, 2, 0, 0, 2, 0, 2], t_next_label=[1, 1, -1, 0, 1, -1, 0, -1]),
     "`transitions` entry 6 (state 2 (label 1 ('y'), agent 0 (`a`)), successor 0 (`a`)): the successor is not admissible"),
    (dict(t_next_label=[1, 1, 0, 0, 1, -1, -1, -1]), "a STOP row must have next label -1"),
    (dict(t_next_label=[1, 1, -1, -1, 1, -1, -1, -1]), "`transitions` entry 3 (state 1 (label 1 ('y'), agent 1 (`b`)), successor 0 (`a`)): unknown next label -1"),
    (dict(t_next_label=[0, 1, -1, 0, 1, -1, -1, -1]),
     "`transitions` entry 0 (state 0 (label 0 ('x'), agent 0 (`a`)), successor 1 (`b`)): the next epoch state (label 0 ('x'), agent 1 (`b`)) is not an epoch state"),
    (dict(t_tau=[1, 1, 1, 1, 3, 2, 1, 4]), "`transitions` entry 1 (state 0 (label 0 ('x'), agent 0 (`a`)), successor 1 (`b`)) repeats entry 0"),
    (dict(t_tau=[1, 2, 0, 1, 3, 2, 1, 4]), "`tau` must be an integer >= 1, got 0"),
    (dict(t_tau=[1.0, 2, 1, 1, 3, 2, 1, 4]), "`transitions.tau` must be an array of integers"),
    (dict(t_prob=[0.6, 0.4, 1.0, 0.5, 0.5, 1.0, 0.0, 1.0]), "`prob` must be a probability > 0, got 0.0"),
    (dict(t_prob=[0.6, 0.4, 1.0, 0.5, 0.5, 1.0, NAN, 0.7]), "`prob` must be a probability > 0, got nan"),
    (dict(t_prob=[0.6, 0.4, 1.0, 0.5, 0.5, 1.0, 0.3]), "`transitions` columns must have one length"),
    (dict(transitions={"state": [0]}), "`transitions`: missing column `successor`"),
    (dict(transitions=[1, 2]), "`transitions` must be a mapping"),
    (dict(observation=[[0, 1]]), "`observation` must hold one map per agent"),
    (dict(component_names=["tokens"]), "`components` is missing"),
    (dict(component_names=["t"], components=np.zeros((3, 3, 2))), "`components` must have shape (3, 3, 1)"),
    (dict(counts=[1, 2]), "`counts` must be a mapping"),
]


@pytest.mark.parametrize("change,fragment", BAD, ids=[f[:40] for _, f in BAD])
def test_each_rejection_rule_names_its_place(change, fragment):
    with pytest.raises(InvalidEpochModelError) as exc:
        hand(**change)
    msg = str(exc.value)
    assert fragment in msg
    assert "\n" not in msg
    assert isinstance(exc.value, InvalidInstanceError)


def test_missing_law_for_an_admissible_pair():
    kw = hand_kwargs()
    t = {k: np.asarray(v)[:-2] for k, v in kw["transitions"].items()}   # drop (y, a) STOP rows
    with pytest.raises(InvalidEpochModelError, match=r"state 2 .*successor 2 \(`STOP`\) has no transition rows"):
        EpochModel(**dict(kw, transitions=t))


def test_nan_reward_where_inadmissible_is_accepted_and_components_kept():
    comp = np.arange(9, dtype=float).reshape(3, 3, 1)
    m = hand(component_names=["tokens"], components=comp)
    assert m.components.shape == (3, 3, 1)
    assert m.components[m.state_index("y", "b"), 0, 0] == comp[1, 0, 0]
    assert np.isnan(m.components[0, 0, 0])


def test_validation_is_vectorized_on_a_large_model():
    """100,000 states with 3 outcomes each validate well under a second (no Python loop)."""
    import time
    S = 100_000
    rng = np.random.default_rng(1)
    states = np.column_stack([np.arange(S), np.zeros(S, int)])
    nxt = rng.integers(0, S, size=(S, 3))
    t = {"state": np.repeat(np.arange(S), 4), "successor": np.tile([0, 0, 0, 1], S),
         "next_label": np.column_stack([nxt, -np.ones(S, int)]).ravel(),
         "tau": np.tile([1, 2, 3, 1], S), "prob": np.tile([0.25, 0.25, 0.5, 1.0], S)}
    start = time.perf_counter()
    m = EpochModel(name="big", gamma=0.9, agents=["a"], labels=[str(k) for k in range(S)],
                   states=states, admissible=np.ones((S, 2), bool), rho0=np.full(S, 1 / S),
                   transitions=t, reward=np.zeros((S, 2)))
    assert time.perf_counter() - start < 3.0
    assert m.num_transitions == 4 * S
    np.testing.assert_allclose(m.end_discount()[:, 0], 0.25 * (0.9 + 0.81) + 0.5 * 0.729)
