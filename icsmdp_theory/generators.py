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
from icsmdp_theory.validation import is_int, positive_int

__all__ = ["random_icsmdp", "random_sparse_rows", "observation_mod", "NumpyChoices",
           "draw_icsmdp", "OBSERVATION_KINDS"]


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
    if is_int(value):
        value = (value,) * n
    try:
        value = tuple(value)
    except TypeError:
        raise InvalidArgumentError(f"`{name}` must be an int or {n} ints, got {value!r}.") from None
    if len(value) != n:
        raise InvalidArgumentError(f"`{name}` must be an int or {n} ints, got {len(value)}.")
    for k, v in enumerate(value):
        if not is_int(v) or v < 1:
            raise InvalidArgumentError(f"`{name}` must hold integers >= 1; entry {k} is {v!r}.")
    return tuple(int(v) for v in value)


def _random_icsmdp_iv(num_agents, num_latent, num_interface, num_private, num_actions,
                      nnz_per_row, end_probability, gamma, horizon, successor_density,
                      reward_range):
    N = positive_int("num_agents", num_agents)
    positive_int("num_latent", num_latent)
    positive_int("num_interface", num_interface)
    positive_int("horizon", horizon)
    nLs = _as_tuple(num_private, N, "num_private")
    nAs = _as_tuple(num_actions, N, "num_actions")
    if nnz_per_row is not None:
        positive_int("nnz_per_row", nnz_per_row)
    if isinstance(end_probability, (tuple, list)):
        if len(end_probability) != 2:
            raise InvalidArgumentError(
                f"`end_probability` must be a number or (lo, hi), got {end_probability!r}.")
        lo, hi = end_probability
        if not 0 < lo <= hi <= 1:
            raise InvalidArgumentError(f"`end_probability` bounds must satisfy 0 < lo <= hi <= 1, got {end_probability}.")
        end_probability = (float(lo), float(hi))
    elif not 0 < end_probability <= 1:
        raise InvalidArgumentError(f"`end_probability` must lie in (0, 1], got {end_probability}.")
    if isinstance(gamma, bool) or not 0 < gamma < 1:
        raise InvalidArgumentError(f"`gamma` must lie in (0, 1), got {gamma!r}.")
    if not 0 <= successor_density <= 1:
        raise InvalidArgumentError(f"`successor_density` must lie in [0, 1], got {successor_density!r}.")
    lo_r, hi_r = reward_range
    if not (np.isfinite(lo_r) and np.isfinite(hi_r) and lo_r <= hi_r):
        raise InvalidArgumentError(
            f"`reward_range` must be finite (lo, hi) with lo <= hi, got {reward_range!r}.")
    return N, nLs, nAs, end_probability


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
    N, nLs, nAs, end_probability = _random_icsmdp_iv(
        num_agents, num_latent, num_interface, num_private, num_actions, nnz_per_row,
        end_probability, gamma, horizon, successor_density, reward_range)
    rng = np.random.default_rng(rng)
    nX, nM = num_latent, num_interface
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


# ------------------------------------------------------------------------------
# Integer-weight instances from an abstract choice source (shared with the
# Hypothesis strategies in ``icsmdp_theory/testing/strategies.py`` and ``icsmdp verify``)
# ------------------------------------------------------------------------------
class NumpyChoices:
    """A choice source backed by a numpy Generator (what ``icsmdp verify`` uses).

    A choice source has two methods: ``integers(lo, hi, size=None)`` (inclusive
    bounds; an int, or an int array of ``size``) and ``boolean()``. The
    Hypothesis strategies provide the same interface over ``draw`` so that
    Hypothesis can shrink an instance choice by choice.
    """

    def __init__(self, rng: np.random.Generator | int | None = None):
        self.rng = np.random.default_rng(rng)

    def integers(self, lo: int, hi: int, size=None):
        out = self.rng.integers(lo, hi + 1, size=size)
        return int(out) if size is None else np.asarray(out, dtype=np.int64)

    def boolean(self) -> bool:
        return bool(self.rng.integers(0, 2))


def _size_knob(source, knob, name) -> int:
    if isinstance(knob, (int, np.integer)):
        return int(knob)
    lo, hi = knob
    if not 1 <= lo <= hi:
        raise InvalidArgumentError(f"`{name}` range must satisfy 1 <= lo <= hi, got {knob}.")
    return source.integers(lo, hi)


def _normalized_rows(weights: np.ndarray) -> np.ndarray:
    """Integer weights -> probability rows; an all-zero row puts its mass on entry 0."""
    w = np.asarray(weights, dtype=float)
    zero = w.sum(axis=-1) == 0
    w[zero, ..., 0] = 1.0
    return w / w.sum(axis=-1, keepdims=True)


#: Observation-map kinds understood by :func:`draw_icsmdp`.
OBSERVATION_KINDS = ("injective", "surjective", "mod")


def draw_icsmdp(source, *, agents=(1, 3), latent=(1, 2), interface=(1, 4), private=(1, 2),
                actions=(1, 2), max_weight: int = 4, reward_levels: int = 4,
                end_levels: int = 4, tau_one: bool = False, observation: str = "surjective",
                sparse: bool = False, gamma_levels: tuple = (0.5, 0.8, 0.9),
                name: str = "drawn") -> ICSMDP:
    """Draw a valid IC-SMDP whose numbers are small integer ratios.

    Every probability row is ``w / w.sum()`` for integer weights ``w`` in
    ``0..max_weight`` (an all-zero row puts its mass on its first entry:
    normalize, never filter); rewards are ``k / reward_levels`` with ``k`` in
    ``-reward_levels..reward_levels``; end probabilities are ``k / end_levels``
    with ``k`` in ``1..end_levels`` (so every invocation ends); ``gamma`` is one
    of ``gamma_levels``. Such numbers print exactly, so a shrunk counterexample
    replays from its JSON.

    Parameters
    ----------
    source : choice source
        :class:`NumpyChoices` or the Hypothesis source of ``icsmdp_theory.testing.strategies``.
    agents, latent, interface, private, actions : int or (lo, hi)
        Sizes ``N``, ``nX``, ``nM``, ``nL_i``, ``nA_i`` (fixed, or drawn in the range).
    tau_one : bool
        ``beta = 1`` everywhere: every invocation is one primitive step (an MDP).
    observation : {"injective", "surjective", "mod"}
        Injective ``m*nL + l``; a random surjective map; or ``m mod k`` with ``k`` drawn.
    sparse : bool
        Store kernels in the sparse file form.

    Examples
    --------
    >>> m1 = draw_icsmdp(NumpyChoices(3)); m2 = draw_icsmdp(NumpyChoices(3))
    >>> from icsmdp_theory.io import instance_to_dict
    >>> instance_to_dict(m1) == instance_to_dict(m2)
    True
    """
    if observation not in OBSERVATION_KINDS:
        raise InvalidArgumentError(
            f"`observation` must be one of {OBSERVATION_KINDS}, got {observation!r}.")
    N = _size_knob(source, agents, "agents")
    nX = _size_knob(source, latent, "latent")
    nM = _size_knob(source, interface, "interface")
    gamma = float(gamma_levels[source.integers(0, len(gamma_levels) - 1)])
    rho_xm = _normalized_rows(source.integers(0, max_weight, size=nX * nM)[None])[0].reshape(nX, nM)
    rho_c = _normalized_rows(source.integers(0, max_weight, size=N)[None])[0]
    specs = []
    for i in range(N):
        nL = _size_knob(source, private, "private")
        nA = _size_knob(source, actions, "actions")
        nY = nX * nM * nL
        rho_l = _normalized_rows(source.integers(0, max_weight, size=nL)[None])[0]
        pol = _normalized_rows(source.integers(0, max_weight, size=(nM, nL, nA)))
        kern = _normalized_rows(source.integers(0, max_weight, size=(nA, nY, nY)))
        reward = source.integers(-reward_levels, reward_levels,
                                 size=(nX, nM, nA, N + 1)) / reward_levels
        if tau_one:
            beta = np.ones((nX, nM, nL))
        else:
            beta = source.integers(1, end_levels, size=(nX, nM, nL)) / end_levels
        succ = source.integers(0, 1, size=N + 1).astype(bool)
        if not succ.any():
            succ[source.integers(0, N)] = True
        if observation == "injective":
            obs = np.arange(nM * nL).reshape(nM, nL)
        elif observation == "mod":
            obs = observation_mod(nM, nL, source.integers(1, nM))
        else:
            k = source.integers(1, nM * nL)
            raw = source.integers(0, k - 1, size=nM * nL)
            raw[:k] = np.arange(k)  # every label used; the rest drawn
            perm = np.argsort(source.integers(0, 10**6, size=nM * nL), kind="stable")
            obs = raw[perm].reshape(nM, nL)
        if sparse:
            a_, y_, y2_ = np.nonzero(kern)
            kernel = {"shape": [nA, nY, nY],
                      "entries": [[int(a), int(y), int(y2), float(kern[a, y, y2])]
                                  for a, y, y2 in zip(a_, y_, y2_)]}
        else:
            kernel = kern
        specs.append(dict(name=f"agent{i}", n_private=nL, n_actions=nA, rho_private=rho_l,
                          internal_policy=pol, kernel=kernel, reward=reward,
                          end_probability=beta, observation=obs, successors=succ))
    return ICSMDP(name=name, gamma=gamma, horizon=60, n_latent=nX, n_interface=nM,
                  rho_latent_interface=rho_xm, rho_agent=rho_c, agents=specs)
