"""A tiny, independent sampler of traces from a known epoch model (test helper for fit/posterior).

Written from SPEC 10 alone (not from :mod:`icsmdp_theory.traces`): episodes run
in lockstep, vectorized over episodes; at each step every active episode at
``(k, i)`` picks ``c'`` uniformly among the admissible successors, then draws
``(k', tau)`` from the law of ``(k, i, c')`` (or, when ``prev_law`` is given,
from a law that depends on the previous label: a non-Markov trace); the
reward is ``R(k, i, c')`` plus uniform noise on ``[-noise, noise]``. Lines are
emitted step by step, so episodes interleave in the file. An episode still
running after ``max_steps`` is truncated (its last line has no next line).

The laws are dense tables ``law[k, i, c', o]`` over outcomes ``o`` of
``outcomes`` (rows ``(k', tau)``, ``k' = -1`` for STOP); STOP laws live on the
STOP outcomes and the others on the non-STOP outcomes.
"""
from __future__ import annotations

import numpy as np

from icsmdp_theory.traces import TraceData

__all__ = ["TinyEpochTruth", "random_truth", "sample_trace"]


class TinyEpochTruth:
    """A known epoch model as dense tables (every pair ``(k, i)`` is a state)."""

    def __init__(self, *, gamma, num_labels, num_agents, admissible, outcomes, law, reward, rho0):
        self.gamma = gamma
        self.K, self.N = num_labels, num_agents
        self.admissible = admissible            # bool (K, N, N+1)
        self.outcomes = outcomes                # int (M, 2): (k', tau), k' = -1 for STOP
        self.law = law                          # float (K, N, N+1, M)  (or (P, K, N, N+1, M) by previous label)
        self.reward = reward                    # float (K, N, N+1)
        self.rho0 = rho0                        # float (K, N)


def random_truth(rng, *, num_labels=3, num_agents=2, taus=(1, 2), stop_taus=(1, 2), markov=True):
    """A random dense truth; ``markov=False`` gives laws indexed by the previous label too (``K + 1`` rows)."""
    K, N = num_labels, num_agents
    outs = [(k, t) for k in range(K) for t in taus] + [(-1, t) for t in stop_taus]
    outcomes = np.array(outs, dtype=np.int64)
    is_stop_o = outcomes[:, 0] < 0
    admissible = rng.random((K, N, N + 1)) < 0.7
    admissible[:, :, N] |= ~admissible.any(axis=2)      # at least one successor
    admissible[0, 0, :] = True
    P = K + 1 if not markov else 1
    law = rng.gamma(1.0, size=(P, K, N, N + 1, len(outs)))
    law[..., :N, is_stop_o] = 0.0
    law[..., N, ~is_stop_o] = 0.0
    law /= law.sum(axis=-1, keepdims=True)
    if markov:
        law = law[0]
    reward = rng.normal(size=(K, N, N + 1))
    rho0 = rng.random((K, N))
    rho0 /= rho0.sum()
    return TinyEpochTruth(gamma=0.9, num_labels=K, num_agents=N, admissible=admissible,
                          outcomes=outcomes, law=law, reward=reward, rho0=rho0)


def sample_trace(truth: TinyEpochTruth, rng, *, episodes: int, max_steps: int = 50,
                 noise: float = 0.0) -> TraceData:
    """A :class:`TraceData` of ``episodes`` episodes sampled from ``truth`` (see the module docstring)."""
    K, N = truth.K, truth.N
    markov = truth.law.ndim == 4
    start = rng.choice(K * N, size=episodes, p=truth.rho0.ravel())
    lab, ag = start // N, start % N
    prev = np.full(episodes, K)                      # K = "start"
    alive = np.arange(episodes)
    cols = {k: [] for k in ("episode", "agent", "label", "successor", "tau", "reward", "next_label")}
    cum_law = np.cumsum(truth.law, axis=-1)
    for step in range(max_steps):
        if alive.size == 0:
            break
        adm = truth.admissible[lab, ag]                          # (E, N+1)
        u = rng.random(alive.size) * adm.sum(axis=1)
        c = (np.cumsum(adm, axis=1) <= u[:, None]).sum(axis=1)   # uniform among admissible
        cum = cum_law[lab, ag, c] if markov else cum_law[prev, lab, ag, c]
        o = (cum < rng.random(alive.size)[:, None] * cum[:, -1:]).sum(axis=1)
        k_next, tau = truth.outcomes[o, 0], truth.outcomes[o, 1]
        stop = c == N
        last = step == max_steps - 1
        cols["episode"].append(alive)
        cols["agent"].append(ag)
        cols["label"].append(lab)
        cols["successor"].append(c)
        cols["tau"].append(tau)
        cols["reward"].append(truth.reward[lab, ag, c] + noise * (2 * rng.random(alive.size) - 1))
        cols["next_label"].append(np.where(stop | last, -1, k_next))
        go = ~stop
        alive, prev, lab, ag = alive[go], lab[go], k_next[go], c[go]
    arr = {k: np.concatenate(v).astype(np.int64 if k != "reward" else float) for k, v in cols.items()}
    n = len(arr["label"])
    for v in arr.values():
        v.setflags(write=False)
    line = np.arange(2, n + 2, dtype=np.int64)
    line.setflags(write=False)
    stops = int(np.count_nonzero(arr["successor"] == N))
    return TraceData(path="<sampled>", gamma=truth.gamma, agent_names=tuple(f"ag{i}" for i in range(N)),
                     component_names=(), declared_admissible=None,
                     labels=tuple(str(k) for k in range(K)), episode_ids=tuple(range(episodes)),
                     episode=arr["episode"], agent=arr["agent"], label=arr["label"],
                     successor=arr["successor"], tau=arr["tau"], reward=arr["reward"],
                     components=None, next_label=arr["next_label"], line=line,
                     num_invocations=n, num_episodes=episodes,
                     num_truncated_episodes=episodes - stops)
