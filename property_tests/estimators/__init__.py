"""Tests of :mod:`estimators` (AIS gaps, minimax gaps).

The helpers below recompute SPEC sections 2 and 4 by brute force from the raw
model arrays (dense matrices, explicit loops over states), independently of
:mod:`icsmdp_theory.options` and :mod:`estimators.ais`, for small instances only.
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

__all__ = ["dense_reduction", "full_epoch_states", "brute_cell_statistics", "simulate_invocations"]


def dense_reduction(model, i, max_duration=None):
    """Dense ``R[y, c']``, ``D[y, y']`` and ``P[tau-1, y, y']`` of agent ``i`` by explicit loops."""
    a = model.agents[i]
    nX, nM, nL, nA, N = model.num_latent, model.num_interface, a.num_private, a.num_actions, model.num_agents
    nY = nX * nM * nL
    K = [k.toarray() for k in a.kernel]
    Kbar = np.zeros((nY, nY))
    rbar = np.zeros((nY, N + 1))
    beta = np.zeros(nY)
    for x, m, l in itertools.product(range(nX), range(nM), range(nL)):
        y = (x * nM + m) * nL + l
        beta[y] = a.end_probability[x, m, l]
        for act in range(nA):
            p = a.internal_policy[m, l, act]
            Kbar[y] += p * K[act][y]
            rbar[y] += p * a.reward[x, m, act]
    g = model.gamma
    G = g * Kbar * (1 - beta)[None, :]
    E = g * Kbar * beta[None, :]
    A = np.eye(nY) - G
    R = np.linalg.solve(A, rbar)
    D = np.linalg.solve(A, E)
    out = {"R": R, "D": D, "Kbar": Kbar, "beta": beta}
    if max_duration is not None:
        Mu, Eu = Kbar * (1 - beta)[None, :], Kbar * beta[None, :]
        P, term = [], Eu
        for _ in range(max_duration):
            P.append(term)
            term = Mu @ term
        out["P"] = np.array(P)
    return out


def full_epoch_states(model):
    """All ``(x, m, ls)`` full states in C order (``ls`` a tuple of private states)."""
    ranges = [range(model.num_latent), range(model.num_interface)] + [range(n) for n in model.num_private]
    for t in itertools.product(*ranges):
        yield t[0], t[1], tuple(t[2:])


def _successor_obs(model, i, j, m2, l2_i, ls):
    """Observation of successor ``j`` after agent ``i`` ends at ``(m2, l2_i)`` from full state ``ls``."""
    lj = l2_i if j == i else ls[j]
    return int(model.agents[j].observation[m2, lj])


def brute_cell_statistics(model, weight=None, max_duration=40):
    """``R_hat[(i, o)][c']``, ``D_hat[(i, o)][j][o']`` and ``P_hat[(i, o)][j][o', tau-1]`` by loops.

    ``weight(i, x, m, ls)`` gives the reference mass of an epoch state (default 1,
    i.e. uniform on each cell); a cell with zero total mass is averaged uniformly.
    """
    N, nM = model.num_agents, model.num_interface
    red = [dense_reduction(model, i, max_duration) for i in range(N)]
    states = list(full_epoch_states(model))
    R_hat, D_hat, P_hat = {}, {}, {}
    for i, agent in enumerate(model.agents):
        nL = agent.num_private
        for o in range(agent.num_observations):
            members = [(x, m, ls) for x, m, ls in states if agent.observation[m, ls[i]] == o]
            w = np.array([1.0 if weight is None else weight(i, x, m, ls) for x, m, ls in members])
            if w.sum() <= 0:
                w = np.ones(len(members))
            w = w / w.sum()
            r = np.zeros(N + 1)
            dh = {j: np.zeros(model.agents[j].num_observations) for j in range(N)}
            ph = {j: np.zeros((model.agents[j].num_observations, max_duration)) for j in range(N)}
            for wk, (x, m, ls) in zip(w, members):
                y = (x * nM + m) * nL + ls[i]
                r += wk * red[i]["R"][y]
                for y2 in range(red[i]["D"].shape[1]):
                    xm2, l2 = divmod(y2, nL)
                    m2 = xm2 % nM
                    for j in range(N):
                        o2 = _successor_obs(model, i, j, m2, l2, ls)
                        dh[j][o2] += wk * red[i]["D"][y, y2]
                        ph[j][o2] += wk * red[i]["P"][:, y, y2]
            R_hat[(i, o)] = r
            D_hat[(i, o)] = dh
            P_hat[(i, o)] = ph
    return R_hat, D_hat, P_hat


def simulate_invocations(model, rng, i, x, m, ls, j, n, *, max_steps=10_000):
    """Draw ``n`` invocations of agent ``i`` from full state ``(x, m, ls)`` (raw model arrays).

    Returns ``(o', tau)`` arrays: the successor ``j``'s observation at the end and the duration.
    """
    a = model.agents[i]
    nM, nL = model.num_interface, a.num_private
    K = np.array([k.toarray() for k in a.kernel])          # [a, y, y']
    cumK = np.cumsum(K, axis=2)
    pol = np.cumsum(a.internal_policy, axis=2)             # [m, l, a]
    beta = a.end_probability.reshape(-1)
    y = np.full(n, (x * nM + m) * nL + ls[i])
    tau = np.zeros(n, dtype=np.int64)
    end_y = np.full(n, -1)
    alive = np.arange(n)
    for _ in range(max_steps):
        if alive.size == 0:
            break
        yy = y[alive]
        xm, l = np.divmod(yy, nL)
        mm = xm % nM
        act = np.minimum((rng.random(alive.size)[:, None] < pol[mm, l]).argmax(axis=1), K.shape[0] - 1)
        u = rng.random(alive.size)[:, None]
        y2 = np.minimum((u < cumK[act, yy]).argmax(axis=1), K.shape[1] - 1)
        y[alive] = y2
        tau[alive] += 1
        ends = rng.random(alive.size) < beta[y2]
        end_y[alive[ends]] = y2[ends]
        alive = alive[~ends]
    xm2, l2 = np.divmod(end_y, nL)
    m2 = xm2 % nM
    lj = l2 if j == i else np.full(n, ls[j])
    return model.agents[j].observation[m2, lj], tau


def full_lp_radius(laws):
    """The SPEC's LP written plainly: u_sk >= |p_sk - q_k|, 0.5 sum_k u_sk <= t, sum q = 1."""
    n, K = laws.shape
    nv = K + n * K + 1
    r = np.arange(n * K)
    s, k = np.divmod(r, K)
    rows = np.concatenate([r, r, n * K + r, n * K + r, 2 * n * K + s, 2 * n * K + np.arange(n)])
    cols = np.concatenate([k, K + r, k, K + r, K + r, np.full(n, nv - 1)])
    vals = np.concatenate([-np.ones(n * K), -np.ones(n * K), np.ones(n * K), -np.ones(n * K),
                           0.5 * np.ones(n * K), -np.ones(n)])
    A = sp.csr_array((vals, (rows, cols)), shape=(2 * n * K + n, nv))
    b = np.concatenate([-laws.ravel(), laws.ravel(), np.zeros(n)])
    c = np.zeros(nv)
    c[-1] = 1
    Aeq = np.zeros((1, nv))
    Aeq[0, :K] = 1
    # HiGHS's default feasibility tolerance (1e-7) leaves errors of that order in the value
    res = linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=[1.0], bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    return res.fun
