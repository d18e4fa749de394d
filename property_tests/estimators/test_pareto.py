"""estimators.pareto against brute force: the upper hull of the values of ALL deterministic policies.

The brute force enumerates the product of the admissible sets, evaluates each
policy by a dense linear solve written here (not ``policy_value``), and finds
the supported vertices by their definition: a point is a vertex when it is
strictly better than every other distinct point for all ``t`` in an open
interval of weights ``w(t) = (1 - t, t)``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from estimators.pareto import (ParetoFront, pareto_front, reachable_choices, total_reward_optimum,
                               weighted_model, weighted_reward)
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError


def tiny_model(seed: int, *, K: int = 3, N: int = 2, costs: bool = False) -> EpochModel:
    """Every (label, agent) state; random admissible sets and laws; components ``gain``, ``cost``.

    ``costs=True``: ``gain >= 0`` paid at STOP only, ``cost < 0`` on every pair, STOP
    admissible somewhere (a model with well-defined totals).
    """
    rng = np.random.default_rng(seed)
    states = [[k, i] for k in range(K) for i in range(N)]
    S = len(states)
    adm = rng.random((S, N + 1)) < 0.6
    adm[np.arange(S), rng.integers(0, N + 1, S)] = True
    if costs:
        adm[rng.integers(0, S), N] = True
    tr = {key: [] for key in ("state", "successor", "next_label", "tau", "prob")}
    for s in range(S):
        for c in np.flatnonzero(adm[s]):
            if c == N:
                outs = [(-1, t) for t in (1, 2)]
            else:
                outs = [(int(k2), int(t)) for k2 in rng.choice(K, 2, replace=False) for t in (1, 2)]
            p = rng.dirichlet(np.ones(len(outs)))
            for (k2, t), q in zip(outs, p):
                tr["state"].append(s); tr["successor"].append(int(c)); tr["next_label"].append(k2)
                tr["tau"].append(t); tr["prob"].append(float(q))
    if costs:
        gain = np.where(np.arange(N + 1) == N, rng.random((S, N + 1)), 0.0)
        cost = -rng.uniform(0.1, 3.0, (S, N + 1))
    else:
        gain, cost = rng.normal(size=(S, N + 1)), rng.normal(size=(S, N + 1))
    comps = np.where(adm[:, :, None], np.stack([gain, cost], axis=2), np.nan)
    rho0 = rng.dirichlet(np.ones(S))
    return EpochModel(name=f"t{seed}", gamma=0.8, agents=[f"a{i}" for i in range(N)],
                      labels=[f"k{k}" for k in range(K)], states=states, admissible=adm,
                      rho0=rho0, transitions=tr, reward=np.where(adm, 0.0, np.nan),
                      component_names=["gain", "cost"], components=comps)


def _dense_law(m: EpochModel, discounted: bool) -> np.ndarray:
    """``L[s, c', s']`` from the transition entries (independent of the model's kernels)."""
    S, n1 = m.num_epoch_states, m.num_successors
    L = np.zeros((S, n1, S))
    for s, c, nx, tau, p in zip(m.trans_state, m.trans_successor, m.trans_next, m.trans_tau,
                                m.trans_prob):
        if nx >= 0:
            L[s, c, nx] += p * (m.gamma ** tau if discounted else 1.0)
    return L


def brute_force_points(m: EpochModel, discounted: bool, policies=None) -> list:
    """``(point, sigma)`` of every deterministic policy (totals: those stopping a.s. from rho0)."""
    S = m.num_epoch_states
    L = _dense_law(m, discounted)
    R = np.asarray(m.components)
    rho0 = np.asarray(m.rho0)
    if policies is None:
        policies = itertools.product(*[np.flatnonzero(m.admissible[s]) for s in range(S)])
    out = []
    for sigma in policies:
        sigma = np.asarray(sigma)
        P = L[np.arange(S), sigma]
        r = R[np.arange(S), sigma]
        if not discounted:
            seen = rho0 > 0
            for _ in range(S):
                seen = seen | (seen.astype(float) @ P > 0)
            idx = np.flatnonzero(seen)
            Pr = P[np.ix_(idx, idx)]
            if np.max(np.abs(np.linalg.eigvals(Pr))) > 1 - 1e-12:
                continue               # does not stop almost surely
            v = np.linalg.solve(np.eye(idx.size) - Pr, r[idx])
            out.append((rho0[idx] @ v, sigma))
        else:
            v = np.linalg.solve(np.eye(S) - P, r)
            out.append((rho0 @ v, sigma))
    return out


def supported_vertices(points: np.ndarray, tol: float = 1e-9) -> list:
    """Indices (one per distinct point) of the vertices, with their optimality intervals."""
    uniq = []
    for j, p in enumerate(points):
        if all(np.abs(p - points[u]).max() > tol for u in uniq):
            uniq.append(j)
    out = []
    for j in uniq:
        lo, hi, ok = 0.0, 1.0, True
        for u in uniq:
            if u == j:
                continue
            d = points[j] - points[u]          # f(t) = d0 + t (d1 - d0) must be >= 0
            a, b = d[0], d[1] - d[0]
            if abs(b) < 1e-14:
                ok = ok and a > 0
                continue
            root = -a / b
            if b > 0:
                lo = max(lo, root)
            else:
                hi = min(hi, root)
        if ok and hi - lo > 1e-9:
            out.append((j, lo, hi))
    return out


def _scales(m: EpochModel) -> np.ndarray:
    R = np.nan_to_num(np.asarray(m.components))
    sc = np.abs(R).reshape(-1, 2).max(axis=0)
    return np.where(sc > 0, sc, 1.0)


def _check_against_brute_force(m: EpochModel, front: ParetoFront, pts: list) -> None:
    values = np.array([p for p, _ in pts])
    scaled = values / _scales(m)
    verts = supported_vertices(scaled)
    got = np.array([[p.values["gain"], p.values["cost"]] for p in front.points])
    want = values[[j for j, _, _ in verts]]
    assert got.shape == want.shape, (got, want)
    order = np.argsort(-want[:, 0])
    assert np.allclose(got, want[order], atol=1e-8), (got, want[order])
    ranges = np.array([p.weight_range for p in front.points])
    want_ranges = np.array([(lo, hi) for _, lo, hi in verts])[order]
    assert np.allclose(ranges, want_ranges, atol=1e-7)
    assert ranges[0, 0] == 0.0 and ranges[-1, 1] == 1.0
    assert front.exact and front.status == "computed"
    # each point's policy has the point's values (a direct solve here)
    for p in front.points:
        (val, _), = brute_force_points(m, front.discounted, [p.policy])
        assert np.allclose(val, [p.values["gain"], p.values["cost"]], atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10 ** 6), st.sampled_from([2, 3, 9]))
def test_centralized_discounted_front_is_the_hull_of_all_policies(seed, weights):
    m = tiny_model(seed)
    front = pareto_front(m, components=("gain", "cost"), weights=weights)
    _check_against_brute_force(m, front, brute_force_points(m, True))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_centralized_total_front_is_the_hull_of_all_stopping_policies(seed):
    m = tiny_model(seed, costs=True)
    pts = brute_force_points(m, False)
    if not pts:
        with pytest.raises(InvalidArgumentError, match="no policy stops almost surely"):
            pareto_front(m, components=("gain", "cost"), discounted=False)
        return
    front = pareto_front(m, components=("gain", "cost"), discounted=False, weights=3)
    _check_against_brute_force(m, front, pts)


def test_rates_are_slopes_between_consecutive_points():
    m = tiny_model(7)
    f = pareto_front(m, components=("gain", "cost"))
    for a, b, rate in zip(f.points[:-1], f.points[1:], f.rates):
        assert rate == pytest.approx((b.values["cost"] - a.values["cost"])
                                     / (b.values["gain"] - a.values["gain"]))
        assert rate < 0
    assert "unsupported" in f.message and "may exist" in f.note


def test_weighted_model_reward_is_the_weighted_sum():
    m = tiny_model(3)
    wm = weighted_model(m, [0.25, -2.0], ["gain", "cost"])
    R = np.asarray(m.components)
    assert np.array_equal(np.isnan(wm.reward), ~m.admissible)
    assert np.allclose(wm.reward[m.admissible], (0.25 * R[..., 0] - 2.0 * R[..., 1])[m.admissible])
    assert wm.components is m.components or np.array_equal(wm.components, m.components,
                                                           equal_nan=True)


def test_total_reward_optimum_refuses_positive_moves_and_names_the_state():
    m = tiny_model(5)          # normal components: some move has a positive reward
    r = weighted_reward(m, [1.0, 0.0], ["gain", "cost"])
    moves = m.admissible.copy()
    moves[:, m.num_agents] = False
    assert (np.nan_to_num(r)[moves] > 0).any()
    with pytest.raises(InvalidArgumentError, match=r"<= 0 before STOP .*: state \d+ \(label"):
        total_reward_optimum(m, r)


def test_three_components_scan_the_simplex():
    m = tiny_model(11)
    f = pareto_front(m, components=("gain", "cost", "reward"), weights=4)
    assert not f.exact and f.num_solves == 10        # lattice of 3 divisions in 3 parts
    pts = np.array([[p.values[c] for c in ("gain", "cost", "reward")] for p in f.points])
    for a in pts:                                    # no point dominates another
        assert not any(np.all(b >= a) and np.any(b > a + 1e-12) for b in pts)


def test_reachable_choices_follow_the_policy():
    m = tiny_model(2)
    f = pareto_front(m, components=("gain", "cost"))
    sigma = f.points[0].policy
    rows = reachable_choices(m, sigma)
    assert rows and all(r["successor"] in (*m.agent_names, "STOP") for r in rows)
    for r in rows:
        s = m.state_index(r["label"], r["agent"])
        assert m.successor_name(int(sigma[s])) == r["successor"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(components=("gain",)), "at least two"),
    (dict(components=("gain", "nope")), "unknown component 'nope'"),
    (dict(components=("gain", "gain")), "repeats"),
    (dict(weights=1), "`weights` must be an integer >= 2"),
    (dict(obs="cells"), "`obs` must be None, 'model'"),
])
def test_bad_arguments_are_refused(kwargs, match):
    m = tiny_model(1)
    with pytest.raises(InvalidArgumentError, match=match):
        pareto_front(m, **{"components": ("gain", "cost"), **kwargs})


# ---------------------------------------------------------------- decentralized fronts
def _cells(m: EpochModel, maps) -> tuple[np.ndarray, list]:
    """Flat cell of each state under ``maps`` and each cell's admissible set (intersection)."""
    keys = [(int(m.state_agent[s]), int(maps[m.state_agent[s]][m.state_label[s]]))
            for s in range(m.num_epoch_states)]
    uniq = sorted(set(keys))
    cell = np.array([uniq.index(k) for k in keys])
    adm = [np.flatnonzero(m.admissible[cell == c].all(axis=0)) for c in range(len(uniq))]
    return cell, adm


def all_decentralized_policies(m: EpochModel, maps) -> list:
    """The full product over cells of their admissible sets (no pruning), as epoch policies."""
    cell, adm = _cells(m, maps)
    return [np.array(choice)[cell] for choice in itertools.product(*adm)]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6), st.booleans())
def test_decentralized_front_is_the_hull_of_all_decentralized_policies(seed, discounted):
    from hypothesis import assume
    m = tiny_model(seed, costs=not discounted)
    rng = np.random.default_rng(seed + 1)
    maps = [rng.integers(0, 2, m.num_labels) for _ in range(m.num_agents)]
    cell, adm = _cells(m, maps)
    assume(all(a.size for a in adm))
    pts = brute_force_points(m, discounted, all_decentralized_policies(m, maps))
    assume(pts)
    front = pareto_front(m, components=("gain", "cost"), obs=maps, discounted=discounted,
                         weights=3)
    assert front.decentralized
    _check_against_brute_force(m, front, pts)
    for p in front.points:                      # constant on every cell
        for c in range(len(adm)):
            assert np.unique(p.policy[cell == c]).size == 1


def test_decentralized_optimum_at_a_weight_is_best_decentralized_policy():
    from estimators.decentralized import best_decentralized_policy
    for seed in range(100):                    # the first model whose cells are all valid
        m = tiny_model(seed, costs=True)
        maps = [np.array([0, 0, 1]), np.array([0, 1, 1])]
        if all(a.size for a in _cells(m, maps)[1]) and brute_force_points(
                m, False, all_decentralized_policies(m, maps)):
            break
    front = pareto_front(m, components=("gain", "cost"), obs=maps, discounted=False)
    mm = m.with_observation(maps)
    sc = np.array(front.scales)
    for t in (0.0, 0.3, 0.7, 1.0):
        raw = np.array([1 - t, t]) / sc
        best = best_decentralized_policy(mm, weights={"gain": raw[0], "cost": raw[1]},
                                         discounted=False)
        on_front = max(raw @ [p.values["gain"], p.values["cost"]] for p in front.points)
        assert on_front == pytest.approx(best.value, abs=1e-10)
    assert len(front.points) >= 2


def _sparse_points(m: EpochModel, policies) -> list:
    """Totals of ``correct`` and ``tokens`` by a sparse solve on the states reached from rho0."""
    import scipy.sparse as sparse
    import scipy.sparse.linalg as sla
    S, n1 = m.num_epoch_states, m.num_successors
    P = sparse.csr_array(m.transition_law())
    R = np.asarray(m.components)[:, :, [m.component_names.index("correct"),
                                        m.component_names.index("tokens")]]
    rho0 = np.asarray(m.rho0)
    out = []
    for sigma in policies:
        K = P[np.arange(S) * n1 + sigma]
        seen = rho0 > 0
        while True:
            nxt = seen | (K.T @ seen.astype(float) > 0)
            if (nxt == seen).all():
                break
            seen = nxt
        idx = np.flatnonzero(seen)
        A = sparse.csc_array(sparse.eye_array(idx.size) - K[idx][:, idx])
        try:
            v = sla.splu(A).solve(np.ascontiguousarray(R[idx, sigma[idx]]))
        except RuntimeError:            # singular: the policy loops forever somewhere
            continue
        if not np.isfinite(v).all() or np.abs(v).max() > 1e9:
            continue
        # a.s. stopping: the STOP probability from every reached state is 1
        stop = (sigma[idx] == m.num_agents).astype(float)
        if np.abs(sla.splu(A).solve(stop) - 1).max() > 1e-9:
            continue
        out.append((rho0[idx] @ v, sigma))
    return out


def test_math_reasoning_decentralized_front_is_the_hull_of_the_enumeration():
    """Done-when of issue 14: the exact front on the 4-bit cells (MathQA, accuracy vs tokens)
    equals the upper hull of every deterministic decentralized policy (102 policies, < 1 s)."""
    from estimators.decentralized import enumerate_decentralized_policies
    from icsmdp_theory.math_reasoning import math_reasoning
    m = math_reasoning("MathQA")
    pts = _sparse_points(m, enumerate_decentralized_policies(m))
    values = np.array([p for p, _ in pts])
    front = pareto_front(m, components=("correct", "tokens"), obs="model", discounted=False)
    verts = supported_vertices(values / np.array(front.scales))
    want = values[[j for j, _, _ in verts]]
    want = want[np.argsort(-want[:, 0])]
    got = np.array([[p.values["correct"], p.values["tokens"]] for p in front.points])
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-9), (got, want)
    assert front.exact and len(front.points) >= 3
