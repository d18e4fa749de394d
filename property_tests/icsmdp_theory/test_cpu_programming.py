"""The CPU-programming family (icsmdp_theory.cpu_programming): dynamics, rewards, maps, exact Q*.

Independent truths: the register operations written out again in plain Python
(``_op``), the kernel and reward rows against them, ``Q*_lat`` against a value
iteration written here on the deterministic dynamics, ``V*`` of the starter
against the closed form of the shortest successful program found by
breadth-first search, and the AIS gaps of the injective map (zero).
"""
import itertools
from collections import deque

import numpy as np
import pytest

from estimators.gaps import gap_report
from icsmdp_theory.cpu_programming import (CPU_AGENTS, CPU_MODES, cpu_block, cpu_decode,
                                           cpu_encode, cpu_features, cpu_locality,
                                           cpu_programming, cpu_step, cpu_targets,
                                           cpu_visible_map)
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import load_instance, save_instance
from solvers.oracle import centralized_oracle

N = len(CPU_AGENTS)
STOP = N


def _op(name, mode, regs, V):
    """The operation table of the module docstring, in plain Python."""
    a, b, mem = regs
    lo, hi = 0, V - 1
    clip = lambda x: max(lo, min(hi, x))  # noqa: E731
    if name == "loader_a":
        a = clip(a + 1) if mode == "inc" else clip(a - 1)
    elif name == "loader_b":
        b = clip(b + 1) if mode == "inc" else clip(b - 1)
    elif name == "alu":
        a = clip(a + b) if mode == "add" else clip(a - b)
    elif name == "selector":
        a, b = (b, a) if mode == "swap" else (a, a)
    elif name == "writer":
        mem = a
    return a, b, mem


def _states(V):
    return list(itertools.product(range(V), repeat=4))  # (A, B, MEM, t)


@pytest.mark.parametrize("V", [2, 3, 4])
def test_encode_decode_and_step_match_the_table(V):
    for a, b, mem, t in _states(V):
        m = cpu_encode(a, b, mem, t, V)
        assert cpu_decode(m, V) == (a, b, mem, t)
        for i, name in enumerate(CPU_AGENTS):
            for k, mode in enumerate(CPU_MODES[name]):
                got = cpu_step(np.array([a]), np.array([b]), np.array([mem]), name, mode, V)
                assert tuple(int(x[0]) for x in got) == _op(name, mode, (a, b, mem), V)
                got_k = cpu_step(np.array([a]), np.array([b]), np.array([mem]), i, k, V)
                assert tuple(int(x[0]) for x in got_k) == _op(name, mode, (a, b, mem), V)


def test_model_kernels_rewards_and_structure():
    V, cost, goal = 3, 0.5, 10.0
    model = cpu_programming(values=V, step_cost=cost, goal_reward=goal)
    assert model.num_agents == 6 and model.num_interface == V ** 4
    assert model.num_modes == tuple(len(CPU_MODES[n]) for n in CPU_AGENTS)
    assert model.num_choices == 2 * (N + 1)
    # the starter starts; every (A, B, MEM, t) is equally likely
    assert model.rho_agent.tolist() == [1, 0, 0, 0, 0, 0]
    assert np.allclose(model.rho_latent_interface, 1 / V ** 4)
    for i, (name, ag) in enumerate(zip(CPU_AGENTS, model.agents)):
        assert ag.modes == CPU_MODES[name]
        assert not ag.successors[0] and ag.successors[1:N].all()
        assert ag.successors[STOP] == (name == "writer")
        assert np.all(ag.end_probability == 1.0)
        for k, mode in enumerate(ag.modes):
            pol = model.mode_policy(i, k)
            assert np.all(pol[:, 0, k] == 1.0)
            K = ag.kernel[k].toarray() if hasattr(ag.kernel[k], "toarray") else np.asarray(ag.kernel[k])
            for a, b, mem, t in _states(V):
                m = int(cpu_encode(a, b, mem, t, V))
                a2, b2, mem2 = _op(name, mode, (a, b, mem), V)
                row = np.zeros(V ** 4)
                row[int(cpu_encode(a2, b2, mem2, t, V))] = 1.0
                assert np.array_equal(K[m], row)
                r = ag.reward[0, m, k]
                want = np.full(N + 1, -cost)
                if name == "writer" and mem2 == t:
                    want[STOP] += goal
                assert np.array_equal(r, want)


def _independent_q_star(V, gamma=0.95, cost=0.5, goal=10.0, sweeps=2000):
    """Value iteration on (m, i) with choices (k, c'), from the plain-Python table."""
    states = _states(V)
    index = {s: n for n, s in enumerate(states)}
    q = np.full((len(states), N, 2 * (N + 1)), np.nan)
    nxt = {}
    for s in states:
        for i, name in enumerate(CPU_AGENTS):
            for k, mode in enumerate(CPU_MODES[name]):
                a2, b2, mem2 = _op(name, mode, s[:3], V)
                nxt[index[s], i, k] = (index[(a2, b2, mem2, s[3])], mem2 == s[3])
                q[index[s], i, k * (N + 1) + 1:k * (N + 1) + N] = 0.0   # agents 1..N-1
                if name == "writer":
                    q[index[s], i, k * (N + 1) + STOP] = 0.0
    for _ in range(sweeps):
        v = np.nanmax(q, axis=2)
        new = np.full_like(q, np.nan)
        for (n, i, k), (n2, hit) in nxt.items():
            for c in range(1, N + 1):
                if c == STOP:
                    if CPU_AGENTS[i] == "writer":
                        new[n, i, k * (N + 1) + c] = -cost + (goal if hit else 0.0)
                else:
                    new[n, i, k * (N + 1) + c] = -cost + gamma * v[n2, c]
        if np.nanmax(np.abs(new - np.where(np.isnan(q), 0, q))) < 1e-12:
            q = new
            break
        q = new
    return states, q


def test_q_star_equals_an_independent_value_iteration():
    V = 3
    model = cpu_programming(values=V)
    sol = centralized_oracle(model).solution
    states, q = _independent_q_star(V)
    mine = np.asarray(sol.q).reshape(V ** 4, N, -1)
    order = [int(cpu_encode(*s, V)) for s in states]
    got = mine[order]
    assert np.array_equal(np.isnan(got), np.isnan(q))
    assert np.nanmax(np.abs(got - q)) < 1e-7


def test_starter_value_is_the_shortest_program_in_closed_form():
    """``V*(starter)`` = ``-cost (1 - g^n)/(1 - g) + goal g^(n-1)`` with ``n`` the fewest
    invocations (starter included) of a successful program, by breadth-first search."""
    V, g, cost, goal = 3, 0.95, 0.5, 10.0
    model = cpu_programming(values=V)
    v = np.asarray(centralized_oracle(model).solution.v).reshape(V ** 4, N)
    for s in _states(V):
        # BFS over (registers, active agent); the writer may finish when its write hits t
        start = (s[:3], 0)
        dist = {start: 1}
        queue, best = deque([start]), None
        while queue:
            regs, i = queue.popleft()
            name = CPU_AGENTS[i]
            for mode in CPU_MODES[name]:
                r2 = _op(name, mode, regs, V)
                if name == "writer" and r2[2] == s[3]:
                    best = dist[(regs, i)] if best is None else min(best, dist[(regs, i)])
                for c in range(1, N):
                    if (r2, c) not in dist:
                        dist[(r2, c)] = dist[(regs, i)] + 1
                        queue.append((r2, c))
        n = best
        want = -cost * (1 - g ** n) / (1 - g) + goal * g ** (n - 1)
        assert abs(v[int(cpu_encode(*s, V)), 0] - want) < 1e-7, (s, n)


@pytest.mark.parametrize("width,shift", [(1, 0), (1, 1), (2, 0), (2, 2), (3, 0), (3, 1)])
def test_visible_maps_and_features_describe_the_block(width, shift):
    V = 3
    maps = cpu_visible_map(V, width, shift)
    for enc in ("absolute", "relative"):
        feats = cpu_features(V, width, shift, enc)
        for i in range(N):
            block = cpu_block(i, width, shift)
            assert len(block) == width and len(set(block)) == width
            o = maps[i][:, 0]
            assert o.shape == (V ** 4,) and set(o.tolist()) == set(range(V ** (width + 1)))
            assert feats[i].shape[0] == V ** (width + 1)
            for s in _states(V):
                m = int(cpu_encode(*s, V))
                vis = np.array([s[r] for r in block], float)
                want = (np.r_[vis, s[3], vis - s[3]] if enc == "absolute" else vis - s[3]) / (V - 1)
                assert np.array_equal(feats[i][o[m]], want)
                # same observation <=> same visible registers and target
            keys = {}
            for s in _states(V):
                key = tuple(s[r] for r in block) + (s[3],)
                keys.setdefault(key, set()).add(int(o[int(cpu_encode(*s, V))]))
            assert all(len(x) == 1 for x in keys.values())
            assert len({next(iter(x)) for x in keys.values()}) == len(keys)


def test_locality_by_hand():
    assert cpu_block("writer", 2) == (2, 0) and cpu_block("loader_b", 1, 1) == (2,)
    assert [cpu_locality(i, 3) for i in range(N)] == [1.0] * N
    assert [cpu_locality(i, 2) for i in range(N)] == [1.0] * N
    assert [cpu_locality(i, 1) for i in range(N)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert [cpu_locality(i, 1, 2) for i in range(N)] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_the_injective_map_has_zero_gaps_and_a_coarse_one_does_not():
    V = 3
    full = gap_report(cpu_programming(values=V), reference="uniform", minimax=False)
    assert full.epsilon_phi == 0 and full.delta_phi == 0 and full.max_q_gap < 1e-8
    coarse = gap_report(cpu_programming(values=V, width=1, shift=2), reference="uniform",
                        minimax=False)
    # the writer's block {MEM} hides A, which its write copies to MEM: its STOP reward aliases
    assert coarse.epsilon_phi == pytest.approx(10 * (1 - 1 / V))
    assert coarse.max_q_gap > 0


def test_targets_and_initial_law():
    t = cpu_targets(10, 0.2, seed=3)
    assert t.size == 2 and np.all(np.diff(t) > 0) and set(t) <= set(range(10))
    assert np.array_equal(t, cpu_targets(10, 0.2, seed=3))
    assert cpu_targets(5, 0.01).size == 1 and cpu_targets(5, 1.0).tolist() == [0, 1, 2, 3, 4]
    model = cpu_programming(values=3, targets=[2])
    rho = model.rho_latent_interface[0]
    t_of = np.arange(81) % 3
    assert np.allclose(rho[t_of == 2], 1 / 27) and np.all(rho[t_of != 2] == 0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(values=1), "`values`"), (dict(values=3, targets=[3]), "`targets`"),
    (dict(values=3, targets=[]), "`targets`"), (dict(values=3, width=4), "`width`"),
    (dict(values=3, step_cost=-1), "`step_cost`"), (dict(values=3, gamma=1.0), "`gamma`"),
])
def test_bad_arguments_are_located(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        cpu_programming(**kwargs)


def test_bad_feature_encoding_and_mode():
    with pytest.raises(InvalidArgumentError, match="`encoding`"):
        cpu_features(3, 2, 0, "onehot")
    with pytest.raises(InvalidArgumentError, match="modes"):
        cpu_step(0, 0, 0, "writer", "add", 3)


def test_the_instance_survives_the_file_format_with_its_modes(tmp_path):
    """``icsmdp/1`` with the per-agent ``modes`` key: written, read back, same ``Q*``."""
    model = cpu_programming(values=2, width=2)
    path = tmp_path / "cpu.json"
    save_instance(model, path)
    back = load_instance(path)
    assert back.num_modes == model.num_modes and [a.modes for a in back.agents] == \
        [a.modes for a in model.agents]
    q0 = np.asarray(centralized_oracle(model).solution.q)
    q1 = np.asarray(centralized_oracle(back).solution.q)
    assert np.array_equal(np.isnan(q0), np.isnan(q1)) and np.nanmax(np.abs(q0 - q1)) < 1e-12
