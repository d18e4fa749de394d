"""Traces ``icsmdp-trace/1`` (SPEC section 10): reader, writer and simulators against exact laws."""
import json
import os

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError, InvalidTraceError
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import load_instance
from icsmdp_theory.traces import (TraceWriter, read_trace, simulate_trace, write_synthetic_trace)

HEADER = '{"format": "icsmdp-trace/1", "gamma": 0.5, "agents": ["a", "b"]}'
L1 = '{"episode": 0, "agent": "a", "state": [0, 1], "successor": "b", "tau": 2, "reward": 1.5}'
L2 = '{"episode": 0, "agent": "b", "state": {"y": 1, "x": 0}, "successor": "STOP", "tau": 1, "reward": 2}'


def _write(tmp_path, *lines, name="t.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _uniform(model):
    return [np.tile(a.successors / a.successors.sum(), (a.num_observations, 1)) for a in model.agents]


# ------------------------------------------------------------------ reader
def test_read_small_trace_by_hand(tmp_path):
    p = _write(tmp_path, HEADER, L1,
               '{"episode": "e", "agent": "b", "state": 7, "successor": "a", "tau": 3, "rewards": [1, 2, 4]}',
               L2,
               '{"episode": "e", "agent": "a", "state": [0, 1], "successor": "b", "tau": 1, "reward": 0}')
    t = read_trace(p)
    assert t.labels == ("7", "[0,1]", '{"x":0,"y":1}')          # sorted canonical labels
    assert t.label.tolist() == [1, 0, 2, 1]
    assert t.episode.tolist() == [0, 1, 0, 1] and t.episode_ids == (0, "e")
    assert t.agent.tolist() == [0, 1, 1, 0] and t.successor.tolist() == [1, 0, 2, 1]
    assert t.tau.tolist() == [2, 3, 1, 1]
    assert t.reward.tolist() == [1.5, 1 + 0.5 * 2 + 0.25 * 4, 2.0, 0.0]
    # next state = state of the episode's next line; -1 after STOP and at the truncated end
    assert t.next_label.tolist() == [2, 1, -1, -1]
    assert t.line.tolist() == [2, 3, 4, 5]
    assert (t.num_invocations, t.num_episodes, t.num_truncated_episodes) == (4, 2, 1)
    assert t.components is None and t.declared_admissible is None
    with pytest.raises(ValueError):
        t.tau[0] = 5                                            # read-only


def test_components_admissible_and_trailing_blank_lines(tmp_path):
    head = ('{"format": "icsmdp-trace/1", "gamma": 0.5, "agents": ["a", "b"], '
            '"reward_components": ["cost", "quality"], "admissible": {"a": ["b", "STOP"], "b": ["STOP"]}}')
    p = _write(tmp_path, head,
               '{"episode": 1, "agent": "a", "state": 0, "successor": "b", "tau": 2, "reward": 1, '
               '"components": {"quality": 3, "cost": [1, 2]}}',
               '{"episode": 1, "agent": "b", "state": 1, "successor": "STOP", "tau": 1, "reward": 1, '
               '"components": {"cost": 0.5, "quality": 0}}', "", "  ")
    t = read_trace(p)
    assert t.component_names == ("cost", "quality")
    assert t.components.tolist() == [[2.0, 3.0], [0.5, 0.0]]
    assert t.declared_admissible == {0: (1, 2), 1: (2,)}
    # a declared set given as an argument replaces the header's
    with pytest.raises(InvalidTraceError, match=r"line 2: key `successor`: 'b' is not a declared"):
        read_trace(p, admissible={"a": ["STOP"], "b": ["STOP"]})


def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "w.jsonl"
    expected = []
    with TraceWriter(p, gamma=0.9, agents=["x", "y", "z"], reward_components=["c"]) as w:
        for e in range(50):
            ag = int(rng.integers(3))
            for j in range(5):
                last = j == 4 or rng.random() < 0.3
                nxt = 3 if last else int(rng.integers(3))
                st = [int(v) for v in rng.integers(0, 3, 2)]
                tau = int(rng.integers(1, 4))
                rs = rng.normal(size=tau).tolist()
                w.write(e, ag, st, nxt, tau, rewards=rs, components={"c": float(tau)})
                expected.append((e, ag, json.dumps(st, separators=(",", ":")), nxt, tau,
                                 sum(0.9 ** u * r for u, r in enumerate(rs))))
                if last:
                    break
                ag = nxt
    t = read_trace(p)
    got = list(zip(t.episode.tolist(), t.agent.tolist(), [t.labels[k] for k in t.label],
                   t.successor.tolist(), t.tau.tolist()))
    assert got == [x[:5] for x in expected]
    np.testing.assert_allclose(t.reward, [x[5] for x in expected], rtol=1e-12, atol=1e-12)
    assert t.components[:, 0].tolist() == [float(x[4]) for x in expected]
    assert t.num_episodes == 50 and t.num_truncated_episodes == 0


def test_writer_leaves_nothing_on_error(tmp_path):
    p = tmp_path / "w.jsonl"
    p.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with TraceWriter(p, gamma=0.9, agents=["x"]) as w:
            w.write(0, "x", 0, "STOP", 1, reward=0.0)
            raise KeyboardInterrupt
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["w.jsonl"]
    with pytest.raises(InvalidArgumentError, match="`successor`"):
        with TraceWriter(tmp_path / "v.jsonl", gamma=0.9, agents=["x"]) as w:
            w.write(0, "x", 0, "nobody", 1, reward=0.0)
    assert os.listdir(tmp_path) == ["w.jsonl"]


#: (lines after the header or a replaced header, expected line number, key, fragment)
BAD = {
    "missing header": ([L1], 1, "format", "missing header"),
    "wrong format": (['{"format": "icsmdp-trace/2", "gamma": 0.5, "agents": ["a"]}', L1], 1, "format",
                     "must be 'icsmdp-trace/1'"),
    "unknown agent": ([HEADER, L1.replace('"agent": "a"', '"agent": "c"')], 2, "agent", "unknown agent"),
    "successor mismatch": ([HEADER, L1.replace('"successor": "b"', '"successor": "a"'), L2], 3, "agent",
                           "does not match the successor 'a' of line 2"),
    "tau zero": ([HEADER, L1.replace('"tau": 2', '"tau": 0')], 2, "tau", "integer in [1, 2^62], got 0"),
    "tau float": ([HEADER, L1.replace('"tau": 2', '"tau": 2.0')], 2, "tau", "the number 2.0"),
    "tau bool": ([HEADER, L1.replace('"tau": 2', '"tau": true')], 2, "tau", "the boolean true"),
    "rewards length": ([HEADER, L1.replace('"reward": 1.5', '"rewards": [1, 2, 3]')], 2, "rewards",
                       "has 3 entries but `tau` is 2"),
    "NaN": ([HEADER, L1, L2.replace('"reward": 2', '"reward": NaN')], 3, None, "NaN is not a finite"),
    "Infinity in state": ([HEADER, L1.replace("[0, 1]", "[0, -Infinity]")], 2, None, "-Infinity"),
    "1e400": ([HEADER, L1.replace("1.5", "1e400")], 2, "reward", "finite number"),
    "1e400 in state": ([HEADER, L1.replace("[0, 1]", "[0, 1e400]")], 2, "state", "finite"),
    "not JSON": ([HEADER, L1, '{"episode": 0, "agent": "b",'], 3, None, "not JSON"),
    "empty trace": ([HEADER], 2, None, "empty trace"),
    "empty file": ([""], 1, "format", "missing header"),
    "duplicate key": ([HEADER, L1.replace('"tau": 2', '"tau": 2, "tau": 2')], 2, "tau",
                      "more than once"),
    "unknown key": ([HEADER, L1.replace('"tau": 2', '"tau": 2, "cost": 1')], 2, "cost", "unknown key"),
    "after STOP": ([HEADER, L1, L2, L2], 4, "episode", "already ended with STOP at line 3"),
    "blank middle": ([HEADER, L1, "", L2], 3, None, "blank line in the middle"),
    "reward and rewards": ([HEADER, L1.replace('"reward": 1.5', '"reward": 1, "rewards": [1, 2]')], 2,
                           "rewards", "not both"),
    "no reward": ([HEADER, L1.replace(', "reward": 1.5', '')], 2, "reward", "missing"),
    "gamma": (['{"format": "icsmdp-trace/1", "gamma": 1, "agents": ["a"]}', L1], 1, "gamma", "(0, 1)"),
    "episode float": ([HEADER, L1.replace('"episode": 0', '"episode": 0.5')], 2, "episode", "integer or"),
    "line not object": ([HEADER, "[1, 2]"], 2, None, "must be a JSON object"),
    "components undeclared": ([HEADER, L1.replace('"tau": 2', '"tau": 2, "components": {"c": 1}')], 2,
                              "components", "declares no"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_traces(tmp_path, case):
    lines, line, key, fragment = BAD[case]
    p = _write(tmp_path, *lines)
    with pytest.raises(InvalidTraceError) as exc:
        read_trace(p)
    msg = str(exc.value)
    prefix = f"{p}: line {line}: " + (f"key `{key}`: " if key else "")
    assert msg.startswith(prefix), msg
    assert fragment in msg and "\n" not in msg


def test_synthetic_trace_is_valid_and_counts(tmp_path):
    info = write_synthetic_trace(tmp_path / "s.jsonl", invocations=2345, agents=4, labels=30,
                                 episode_length=7, seed=3)
    t = read_trace(info["path"])
    assert t.num_invocations == 2345 and t.num_episodes == info["episodes"] == 335
    assert t.num_truncated_episodes == 0 and len(t.labels) <= 30
    assert np.all(t.tau >= 1) and np.all(t.tau <= 5)


# ------------------------------------------------------------------ simulation vs exact laws
def test_tiny_handoff_first_invocation_law(tmp_path):
    """tiny-handoff by hand: the planner starts at m=0 and moves to m=1; from m=1 it stays
    (prob 1/2) or moves to m=2 (1/2); it ends w.p. 1/2 at m=1 and surely at m=2. With
    a_t = 0.5 * 0.25^(t-1): P(tau=1, m'=1) = 1/2, P(tau=t+1, m'=1) = a_t/4,
    P(tau=t+1, m'=2) = a_t/2; the successor is uniform on {checker, STOP}, independent."""
    model = load_example("tiny-handoff")
    n = 20_000
    info = simulate_trace(model, tmp_path / "t.jsonl", episodes=n, behavior=_uniform(model), seed=5)
    assert info["episodes"] == n and info["truncated_episodes"] == 0
    t = read_trace(tmp_path / "t.jsonl")
    first = np.r_[True, t.episode[1:] != t.episode[:-1]]
    assert first.sum() == n
    assert set(t.labels[k] for k in t.label[first]) == {"[0,0,0,0]"}
    assert np.all(t.agent[first] == 0) and np.all(t.reward[first] == 0.0)
    succ = t.successor[first]

    def check(count, total, p):
        assert abs(count - total * p) <= 5 * np.sqrt(total * p * (1 - p)) + 1, (count, total, p)

    check((succ == 1).sum(), n, 0.5)
    sel = first & (t.successor == 1)                 # handed to the checker: next state known
    m_next = np.array([json.loads(t.labels[k])[1] for k in t.next_label[sel]])
    tau = t.tau[sel]
    total = sel.sum()
    check(((tau == 1) & (m_next == 1)).sum(), total, 0.5)
    for s in (1, 2, 3):
        a = 0.5 * 0.25 ** (s - 1)
        check(((tau == s + 1) & (m_next == 1)).sum(), total, a / 4)
        check(((tau == s + 1) & (m_next == 2)).sum(), total, a / 2)
    assert np.all(np.isin(m_next, [1, 2]))
    # checker at m=2 (obs 2): reward 1 exactly when it commits to STOP, tau = 1
    chk = (t.agent == 1) & np.array([json.loads(t.labels[k])[1] == 2 for k in t.label])
    assert np.all(t.tau[chk] == 1)
    assert np.all(t.reward[chk] == np.where(t.successor[chk] == 2, 1.0, 0.0))


def test_horizon_truncation_law(tmp_path):
    """tiny-handoff with H = 2 (by hand): an episode is written unless the planner's first
    invocation outlasts step 2 (prob 1/8); it is truncated (ends without STOP) when
    planner tau=1 -> checker -> planner (1/8) or planner tau=2 -> checker (3/16)."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "icsmdp_theory", "examples",
                       "tiny-handoff.json")
    doc = json.load(open(src))
    doc["horizon"] = 2
    inst = tmp_path / "h2.json"
    inst.write_text(json.dumps(doc))
    model = load_instance(inst)
    n = 20_000
    info = simulate_trace(model, tmp_path / "t.jsonl", episodes=n, behavior=_uniform(model), seed=9)
    t = read_trace(tmp_path / "t.jsonl")
    assert (t.num_episodes, t.num_truncated_episodes) == (info["episodes"], info["truncated_episodes"])
    for count, p in ((info["episodes"], 7 / 8), (info["truncated_episodes"], 5 / 16)):
        assert abs(count - n * p) <= 5 * np.sqrt(n * p * (1 - p)), (count, p)
    # no episode runs past H primitive steps
    steps = np.bincount(t.episode, weights=t.tau)
    assert steps.max() <= 2


def test_simulation_is_reproducible(tmp_path):
    model = load_example("workflow")
    b = _uniform(model)
    a1 = simulate_trace(model, tmp_path / "a.jsonl", episodes=300, behavior=b, seed=11)
    a2 = simulate_trace(model, tmp_path / "b.jsonl", episodes=300, behavior=b, seed=11)
    a3 = simulate_trace(model, tmp_path / "c.jsonl", episodes=300, behavior=b, seed=12)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    assert a1["invocations"] == read_trace(tmp_path / "a.jsonl").num_invocations
    assert a1["invocations"] == a2["invocations"]


def test_simulate_trace_rejects_bad_behavior(tmp_path):
    model = load_example("tiny-handoff")
    b = _uniform(model)
    b[0] = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])   # planner -> planner is inadmissible
    with pytest.raises(InvalidArgumentError, match=r"inadmissible successor c'=0 at observation o=0"):
        simulate_trace(model, tmp_path / "t.jsonl", episodes=3, behavior=b, seed=0)
    assert not (tmp_path / "t.jsonl").exists()


def test_epoch_trace_of_the_export_follows_the_hand_law(tmp_path):
    """The export of tiny-handoff sampled at the epoch level: the planner's first invocation
    has the law derived by hand in test_tiny_handoff_first_invocation_law, and the labels are
    those the primitive simulator writes."""
    from icsmdp_theory.epoch_export import export_epoch
    from icsmdp_theory.traces import simulate_epoch_trace
    em = export_epoch(load_example("tiny-handoff"))
    b = []
    for i in range(em.num_agents):
        adm = np.zeros((em.num_observations[i], em.num_successors))
        mask = em.state_agent == i
        adm[em.state_observation[mask]] = em.admissible[mask]
        b.append(adm / adm.sum(axis=1, keepdims=True))
    n = 20_000
    info = simulate_epoch_trace(em, tmp_path / "e.jsonl", episodes=n, behavior=b, seed=2)
    t = read_trace(tmp_path / "e.jsonl")
    assert info["episodes"] == t.num_episodes == n and info["invocations"] == t.num_invocations
    first = np.r_[True, t.episode[1:] != t.episode[:-1]]
    assert {t.labels[k] for k in t.label[first]} == {"[0,0,0,0]"}
    sel = first & (t.successor == 1)
    m_next = np.array([json.loads(t.labels[k])[1] for k in t.next_label[sel]])
    tau, total = t.tau[sel], sel.sum()
    for s, m, p in ((1, 1, 0.5), (2, 1, 0.125), (2, 2, 0.25), (3, 1, 0.03125), (3, 2, 0.0625)):
        count = ((tau == s) & (m_next == m)).sum()
        assert abs(count - total * p) <= 5 * np.sqrt(total * p * (1 - p)) + 1, (s, m, count)
    # truncation after max_invocations lines
    info = simulate_epoch_trace(em, tmp_path / "c.jsonl", episodes=500, behavior=b, seed=2,
                                max_invocations=1)
    t = read_trace(tmp_path / "c.jsonl")
    assert t.num_invocations == 500 and t.num_truncated_episodes == info["truncated_episodes"]
    assert info["truncated_episodes"] == int((t.successor != 2).sum())
