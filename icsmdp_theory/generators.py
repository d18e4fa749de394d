"""Seeded random IC-SMDPs with size knobs (feeds tests, benchmarks and the strategies).

Every instance drawn here passes the model's validation by construction:
probability rows are normalized draws, end probabilities are bounded away
from 0 (so every invocation ends, Assumption 1(ii)), every agent has an
admissible successor, and observation maps are surjective.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP

__all__ = ["random_icsmdp", "random_sparse_rows", "observation_mod"]


def random_sparse_rows(rng: np.random.Generator, num_rows: int, num_cols: int,
                       nnz: int) -> sp.csr_array:
    """A CSR matrix whose rows each hold ``min(nnz, num_cols)`` distinct random
    columns with Dirichlet(1) probabilities (rows sum to 1).

    >>> k = random_sparse_rows(np.random.default_rng(0), 5, 7, 3)
    >>> k.shape, bool(np.allclose(k.sum(axis=1), 1)), int(k.nnz)
    ((5, 7), True, 15)
    """
    nnz = min(nnz, num_cols)
    cols = rng.integers(0, num_cols, size=(num_rows, nnz))
    while True:  # redraw rows that hold a repeated column (few rows, few rounds)
        s = np.sort(cols, axis=1)
        bad = np.flatnonzero(np.any(s[:, 1:] == s[:, :-1], axis=1))
        if bad.size == 0:
            break
        if nnz * 3 > num_cols:  # dense-ish rows: a permutation per bad row is cheap
            for r in bad:
                cols[r] = rng.permutation(num_cols)[:nnz]
        else:
            cols[bad] = rng.integers(0, num_cols, size=(bad.size, nnz))
    w = rng.exponential(size=(num_rows, nnz))
    w /= w.sum(axis=1, keepdims=True)
    indptr = np.arange(0, num_rows * nnz + 1, nnz)
    m = sp.csr_array((w.ravel(), cols.ravel(), indptr), shape=(num_rows, num_cols))
    m.sort_indices()
    return m


def observation_mod(num_interface: int, num_private: int, num_bins: int) -> np.ndarray:
    """The aliasing map ``phi(m, l) = m mod num_bins`` (the paper's synthetic map).

    >>> observation_mod(5, 1, 2).ravel().tolist()
    [0, 1, 0, 1, 0]
    """
    if not 1 <= num_bins <= num_interface:
        raise InvalidArgumentError(f"`num_bins` must lie in 1..{num_interface}, got {num_bins}.")
    return np.repeat((np.arange(num_interface) % num_bins)[:, None], num_private, axis=1)


def _as_tuple(value, n, name):
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise InvalidArgumentError(f"`{name}` must be an int or {n} ints, got {len(value)}.")
    return value


def random_icsmdp(rng: np.random.Generator | int | None = None, *, num_agents: int = 2,
                  num_latent: int = 1, num_interface: int = 3,
                  num_private: int | Sequence[int] = 1, num_actions: int | Sequence[int] = 1,
                  nnz_per_row: int | None = None, end_probability: float | tuple = (0.2, 1.0),
                  gamma: float = 0.9, horizon: int = 60, successor_density: float = 0.7,
                  stop_admissible: bool | None = None, observation: str | int = "injective",
                  reward_range: tuple = (0.0, 1.0), name: str = "random") -> ICSMDP:
    """Draw a valid random IC-SMDP.

    Parameters
    ----------
    rng : Generator, int or None
        Normalized once with :func:`numpy.random.default_rng`.
    num_agents, num_latent, num_interface : int
        ``N``, ``nX``, ``nM``.
    num_private, num_actions : int or sequence of int
        ``nL_i`` and ``nA_i`` (one value for all agents, or one per agent).
    nnz_per_row : int or None
        Nonzeros per kernel row (sparse kernels); ``None`` draws dense rows.
    end_probability : float or (lo, hi)
        A constant ``beta`` or bounds of a uniform draw; must be > 0 so that
        every invocation ends.
    successor_density : float
        Probability that each successor is admissible (at least one always is).
    stop_admissible : bool or None
        Force STOP admissible (``True``) or not (``False``) for every agent;
        ``None`` draws it with the others.
    observation : "injective", "random" or int
        ``phi_i(m, l)``: injective ``m*nL + l``; a random surjective map onto
        about half as many labels; or ``m mod k`` for an int ``k``.
    reward_range : (lo, hi)
        Rewards are uniform on this interval.

    Examples
    --------
    >>> model = random_icsmdp(0, num_agents=3, num_interface=4)
    >>> model.num_agents, model.num_epoch_states
    (3, 12)
    """
    rng = np.random.default_rng(rng)
    N, nX, nM = num_agents, num_latent, num_interface
    nLs = _as_tuple(num_private, N, "num_private")
    nAs = _as_tuple(num_actions, N, "num_actions")
    if isinstance(end_probability, tuple):
        lo, hi = end_probability
        if not 0 < lo <= hi <= 1:
            raise InvalidArgumentError(f"`end_probability` bounds must satisfy 0 < lo <= hi <= 1, got {end_probability}.")
    elif not 0 < end_probability <= 1:
        raise InvalidArgumentError(f"`end_probability` must lie in (0, 1], got {end_probability}.")
    rho_xm = rng.exponential(size=(nX, nM))
    rho_xm /= rho_xm.sum()
    rho_c = rng.exponential(size=N)
    rho_c /= rho_c.sum()
    agents = []
    for i in range(N):
        nL, nA = nLs[i], nAs[i]
        nY = nX * nM * nL
        pol = rng.exponential(size=(nM, nL, nA))
        pol /= pol.sum(axis=-1, keepdims=True)
        if nnz_per_row is None:
            dense = rng.exponential(size=(nA, nY, nY))
            dense /= dense.sum(axis=-1, keepdims=True)
            kernel = dense
        else:
            kernel = [random_sparse_rows(rng, nY, nY, nnz_per_row) for _ in range(nA)]
        lo_r, hi_r = reward_range
        reward = rng.uniform(lo_r, hi_r, size=(nX, nM, nA, N + 1))
        if isinstance(end_probability, tuple):
            beta = rng.uniform(*end_probability, size=(nX, nM, nL))
        else:
            beta = np.full((nX, nM, nL), float(end_probability))
        succ = rng.random(N + 1) < successor_density
        if stop_admissible is not None:
            succ[N] = stop_admissible
        if not succ.any():
            succ[rng.integers(0, N if stop_admissible is False else N + 1)] = True
        if observation == "injective":
            obs = np.arange(nM * nL).reshape(nM, nL)
        elif observation == "random":
            k = max(1, (nM * nL + 1) // 2)
            labels = np.concatenate([np.arange(k), rng.integers(0, k, size=nM * nL - k)])
            obs = rng.permutation(labels).reshape(nM, nL)
        elif isinstance(observation, (int, np.integer)) and not isinstance(observation, bool):
            obs = observation_mod(nM, nL, int(observation))
        else:
            raise InvalidArgumentError(
                f"`observation` must be 'injective', 'random' or an int, got {observation!r}.")
        rho_l = rng.exponential(size=nL)
        rho_l /= rho_l.sum()
        agents.append(dict(name=f"agent{i}", n_private=nL, n_actions=nA, rho_private=rho_l,
                           internal_policy=pol, kernel=kernel, reward=reward,
                           end_probability=beta, observation=obs, successors=succ))
    return ICSMDP(name=name, gamma=gamma, horizon=horizon, n_latent=nX, n_interface=nM,
                  rho_latent_interface=rho_xm, rho_agent=rho_c, agents=agents)
