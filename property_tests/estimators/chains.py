"""Independent builders for the chain tests: the epoch chain by explicit loops over full states
from the raw model arrays, hand-made models, and textbook chains with closed forms.

Nothing here calls the modules under test (:mod:`estimators.epoch_chain`,
:mod:`estimators.markov_chain`, :mod:`estimators.stationary`, :mod:`estimators.mixing_time`,
:mod:`estimators.mixing`).
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.model import ICSMDP

__all__ = ["raw_agent", "full_states", "raw_rho0", "raw_chain", "simulate_epochs", "hand_model",
           "stochastic", "cesaro", "birth_death", "birth_death_law", "reducible_model",
           "periodic_model", "stationary_lstsq", "lazy_cycle", "lazy_hypercube",
           "drift_birth_death", "drift_birth_death_eigenvalues", "MODEL_SHAPES", "brute_distances",
           "brute_tmix"]


def raw_agent(model, i):
    """Dense ``Kbar[y, y']``, ``beta[y]`` and end law ``P[y, y']`` of agent ``i`` from raw fields."""
    ag = model.agents[i]
    nX, nM, nL = model.num_latent, model.num_interface, ag.rho_private.shape[0]
    nY = nX * nM * nL
    K = np.stack([sp.csr_array(k).toarray() for k in ag.kernel])
    kbar = np.zeros((nY, nY))
    beta = np.zeros(nY)
    for x, m, l in itertools.product(range(nX), range(nM), range(nL)):
        y = (x * nM + m) * nL + l
        for a in range(K.shape[0]):
            kbar[y] += ag.internal_policy[m, l, a] * K[a, y]
        beta[y] = ag.end_probability[x, m, l]
    P = np.linalg.inv(np.eye(nY) - kbar * (1 - beta)[None, :]) @ (kbar * beta[None, :])
    return kbar, beta, P


def full_states(model):
    nX, nM, nL = model.num_latent, model.num_interface, model.num_private
    states = [(x, m, ls) for x in range(nX) for m in range(nM)
              for ls in itertools.product(*[range(n) for n in nL])]
    return states, {s: f for f, s in enumerate(states)}


def raw_rho0(model):
    states, _ = full_states(model)
    N = model.num_agents
    rho = np.zeros(len(states) * N)
    for f, (x, m, ls) in enumerate(states):
        p = model.rho_latent_interface[x, m]
        for j, l in enumerate(ls):
            p *= model.agents[j].rho_private[l]
        for i in range(N):
            rho[f * N + i] = p * model.rho_agent[i]
    return rho


def raw_chain(model, behavior):
    """The epoch chain of SPEC section 6 by explicit loops."""
    states, index = full_states(model)
    N, nM = model.num_agents, model.num_interface
    n = len(states) * N
    rho = raw_rho0(model)
    ends = [raw_agent(model, i)[2] for i in range(N)]
    T = np.zeros((n, n))
    for f, (x, m, ls) in enumerate(states):
        for i, ag in enumerate(model.agents):
            nL = len(ag.rho_private)
            y = (x * nM + m) * nL + ls[i]
            b = behavior[i][ag.observation[m, ls[i]]]
            s = f * N + i
            T[s] += b[N] * rho
            for c in range(N):
                if b[c] == 0:
                    continue
                for y2 in range(ends[i].shape[1]):
                    xm2, l2 = divmod(y2, nL)
                    x2, m2 = divmod(xm2, nM)
                    ls2 = list(ls)
                    ls2[i] = l2
                    T[s, index[(x2, m2, tuple(ls2))] * N + c] += b[c] * ends[i][y, y2]
    return T


def simulate_epochs(model, behavior, s, num, rng):
    """``num`` next epoch states from epoch state ``s``, simulated from the raw arrays."""
    states, index = full_states(model)
    N, nM = model.num_agents, model.num_interface
    f, i = divmod(s, N)
    x, m, ls = states[f]
    ag = model.agents[i]
    nL = len(ag.rho_private)
    K = np.stack([sp.csr_array(k).toarray() for k in ag.kernel])
    b = behavior[i][ag.observation[m, ls[i]]]
    succ = rng.choice(N + 1, size=num, p=b)
    y = np.full(num, (x * nM + m) * nL + ls[i])
    running = np.ones(num, bool)
    while running.any():
        idx = np.flatnonzero(running)
        yy = y[idx]
        l_, xm = yy % nL, yy // nL
        m_ = xm % nM
        pol = ag.internal_policy[m_, l_]                      # (k, nA)
        a = (rng.random(idx.size)[:, None] > np.cumsum(pol, axis=1)).sum(axis=1)
        a = np.minimum(a, pol.shape[1] - 1)
        rows = K[a, yy]                                       # (k, nY)
        nxt = (rng.random(idx.size)[:, None] > np.cumsum(rows, axis=1)).sum(axis=1)
        nxt = np.minimum(nxt, rows.shape[1] - 1)
        y[idx] = nxt
        xx, mm, ll = nxt // (nM * nL), (nxt // nL) % nM, nxt % nL
        ended = rng.random(idx.size) < ag.end_probability[xx, mm, ll]
        running[idx[ended]] = False
    out = np.empty(num, dtype=np.int64)
    rho = raw_rho0(model)
    stop = succ == N
    out[stop] = rng.choice(rho.size, size=int(stop.sum()), p=rho)
    for k in np.flatnonzero(~stop):
        l2, xm2 = y[k] % nL, y[k] // nL
        ls2 = list(ls)
        ls2[i] = int(l2)
        out[k] = index[(int(xm2 // nM), int(xm2 % nM), tuple(ls2))] * N + succ[k]
    return out


def hand_model(agents, *, nM=2, rho_xm=None, rho_agent, name="hand"):
    """An ICSMDP with nX = 1 and the given agent specs (defaults filled in)."""
    N = len(agents)
    full = []
    for spec in agents:
        nL = spec.get("n_private", 1)
        nY = nM * nL
        d = dict(name=spec.get("name", f"a{len(full)}"), n_private=nL, n_actions=1,
                 rho_private=spec.get("rho_private", np.full(nL, 1.0 / nL)),
                 internal_policy=np.ones((nM, nL, 1)), kernel=spec["kernel"].reshape(1, nY, nY),
                 reward=np.zeros((1, nM, 1, N + 1)),
                 end_probability=spec.get("beta", np.ones((1, nM, nL))),
                 observation=spec.get("observation", np.arange(nY).reshape(nM, nL)),
                 successors=np.array(spec["successors"]))
        full.append(d)
    rho_xm = np.full((1, nM), 1.0 / nM) if rho_xm is None else rho_xm
    return ICSMDP(name=name, gamma=0.9, horizon=10, n_latent=1, n_interface=nM,
                  rho_latent_interface=rho_xm, rho_agent=rho_agent, agents=full)


def stochastic(rng, n, density=1.0):
    w = rng.random((n, n)) * (rng.random((n, n)) < density)
    w[np.arange(n), rng.permutation(n)] += 0.1
    return w / w.sum(axis=1, keepdims=True)


def cesaro(T, rho, n):
    acc = np.zeros_like(rho)
    v = rho.copy()
    for _ in range(n):
        acc += v
        v = v @ T
    return acc / n


def birth_death(p, q):
    """Birth-death chain with up-probabilities ``p[k]`` (k < n-1) and down ``q[k]`` (k > 0)."""
    n = len(p) + 1
    T = np.zeros((n, n))
    for k in range(n - 1):
        T[k, k + 1] = p[k]
        T[k + 1, k] = q[k]
    T[np.arange(n), np.arange(n)] = 1.0 - T.sum(axis=1)
    return T


def birth_death_law(p, q):
    """``pi_k ∝ prod_{j<k} p_j / q_j`` (``q_j`` = down-probability from ``j+1``), in log space."""
    logw = np.concatenate([[0.0], np.cumsum(np.log(p) - np.log(q))])
    w = np.exp(logw - logw.max())
    return w / w.sum()


def reducible_model(rng):
    # agent 0 hands to agent 1 or 2; agents 1 and 2 only ever hand to themselves (no STOP)
    return hand_model([dict(kernel=stochastic(rng, 3), successors=[False, True, True, False]),
                   dict(kernel=stochastic(rng, 3), successors=[False, True, False, False]),
                   dict(kernel=stochastic(rng, 3), successors=[False, False, True, False])],
                  nM=3, rho_agent=[1.0, 0.0, 0.0])


def periodic_model(rng):
    # two agents that must alternate, never STOP: period 2
    return hand_model([dict(kernel=stochastic(rng, 3), successors=[False, True, False]),
                   dict(kernel=stochastic(rng, 3), successors=[True, False, False])],
                  nM=3, rho_agent=[1.0, 0.0])


def stationary_lstsq(T):
    """``pi`` from a least-squares solve of ``pi (T - I) = 0, sum pi = 1``."""
    n = T.shape[0]
    A = np.vstack([T.T - np.eye(n), np.ones((1, n))])
    return np.linalg.lstsq(A, np.concatenate([np.zeros(n), [1.0]]), rcond=None)[0]


def lazy_cycle(n, sparse=False):
    """Lazy simple random walk on the n-cycle: hold 1/2, step +-1 w.p. 1/4 each (n >= 3).

    Eigenvalues ``1/2 + cos(2 pi k / n)/2``, ``k = 0..n-1``."""
    i = np.arange(n)
    T = sp.csr_array((np.concatenate([np.full(n, 0.5), np.full(2 * n, 0.25)]),
                      (np.concatenate([i, i, i]), np.concatenate([i, (i + 1) % n, (i - 1) % n]))),
                     shape=(n, n))
    return T if sparse else T.toarray()


def lazy_hypercube(d, sparse=True):
    """Lazy walk on {0,1}^d: hold w.p. 1/2, else flip a uniform coordinate.

    Eigenvalues ``1 - k/d`` (multiplicity ``C(d, k)``), so ``t_rel = d``."""
    n = 2 ** d
    s = np.arange(n)
    rows = np.concatenate([s] + [s] * d)
    cols = np.concatenate([s] + [s ^ (1 << j) for j in range(d)])
    vals = np.concatenate([np.full(n, 0.5)] + [np.full(n, 0.5 / d)] * d)
    T = sp.csr_array((vals, (rows, cols)), shape=(n, n))
    return T if sparse else T.toarray()


def drift_birth_death(n, p, q, sparse=False):
    """P(i, i+1) = p, P(i, i-1) = q, holding the rest: P(0,0) = 1-p, P(n-1,n-1) = 1-q."""
    i = np.arange(n - 1)
    T = sp.lil_array((n, n))
    T[i, i + 1] = p
    T[i + 1, i] = q
    diag = 1.0 - np.asarray(T.sum(axis=1)).ravel()
    T.setdiag(diag)
    T = sp.csr_array(T)
    return T if sparse else T.toarray()


def drift_birth_death_eigenvalues(n, p, q):
    """Closed form: ``1`` and ``1 - p - q + 2 sqrt(pq) cos(pi k / n)``, ``k = 1..n-1``."""
    k = np.arange(1, n)
    return np.concatenate([[1.0], 1 - p - q + 2 * np.sqrt(p * q) * np.cos(np.pi * k / n)])


#: Random model shapes used by the epoch-chain and stationary-law tests.
MODEL_SHAPES = [
    dict(num_agents=1, num_interface=4),
    dict(num_agents=2, num_latent=2, num_interface=3, num_private=(2, 3)),
    dict(num_agents=3, num_interface=2, num_private=(2, 1, 2), num_actions=2, nnz_per_row=2),
    dict(num_agents=2, num_interface=5, nnz_per_row=2, end_probability=(0.1, 0.6),
         observation="random"),
]


def brute_distances(T, pi, proj=None, t_max=5000):
    """``d(t)`` for ``t = 0..`` until ``d(t) <= min(EPS)`` or ``t_max``, by matrix_power."""
    P = np.eye(T.shape[0]) if proj is None else proj
    target = pi @ P
    out = []
    for t in range(t_max + 1):
        X = np.linalg.matrix_power(T, t) @ P
        out.append(0.5 * np.abs(X - target).sum(axis=1).max())
        if out[-1] <= 1e-3:
            break
    return np.array(out)


def brute_tmix(dists, eps):
    hit = np.flatnonzero(dists <= eps)
    return float(hit[0]) if hit.size else np.inf
