r"""The generic explicit finite SMDP solved by the exact solvers (SPEC section 3).

A finite semi-Markov decision process with the discount folded into its
transitions is three arrays:

* ``reward[s, a]``: expected discounted reward collected from state ``s`` under
  action ``a`` until the next decision epoch (the option reward ``R_i(y, c')``
  of SPEC section 2 when the SMDP is an IC-SMDP);
* ``kernel[s * num_actions + a, s_next] = D(s_next | s, a)``: the *discounted*
  transition, ``E[gamma^tau 1{next state = s_next} | s, a]``. Rows are
  sub-stochastic: ``g(s, a) = sum_s' D(s' | s, a)`` is the effective discount
  ``E[gamma^tau | s, a]`` (``gamma * 1`` for an ordinary MDP, ``0`` for a
  terminal action such as ``STOP``);
* ``admissible[s, a]``: which actions may be taken in each state.

The optimal values solve the Bellman equation

.. math::

    q^*(s, a) = r(s, a) + \sum_{s'} D(s' | s, a)\, v^*(s'), \qquad
    v^*(s) = \max_{a \text{ admissible in } s} q^*(s, a),

whose operator ``T`` is a sup-norm contraction with modulus
``g_hi = max g(s, a)`` over admissible pairs; the model rejects ``g_hi >= 1``.
This is the equation of the centralized oracle ``Q*_lat`` (SPEC section 3) and
of the AIS-induced SMDP ``Q_hat*`` (SPEC section 4) once flattened.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.errors import InvalidArgumentError
from solvers.common import TIE_TOL, greedy, higham_gamma
from solvers.iteration import solve_policy_system

__all__ = ["FiniteSMDP", "SMDPProblem"]

#: Tolerance on the row sums of ``P`` in :meth:`FiniteSMDP.from_mdp`.
_ROW_SUM_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class FiniteSMDP:
    r"""A validated, immutable finite SMDP with discounted transitions (SPEC section 3).

    Parameters
    ----------
    reward : array_like of float, shape (num_states, num_actions)
        ``reward[s, a]``, the expected discounted reward of action ``a`` in
        state ``s``. Must be finite at admissible pairs; entries at
        inadmissible pairs are ignored (``-inf`` or ``nan`` are allowed there).
    kernel : sparse matrix or array_like, shape (num_states * num_actions, num_states)
        ``kernel[s * num_actions + a, s_next] = D(s_next | s, a)``, the
        discounted transition. Entries are finite and nonnegative; the row of
        every admissible pair sums to less than 1 (an all-zero row is a
        terminal action). Stored as a ``scipy.sparse.csr_array``.
    admissible : array_like of bool, shape (num_states, num_actions), optional
        ``admissible[s, a]``; default all ``True``. Every state needs at
        least one admissible action.

    Attributes
    ----------
    num_states, num_actions : int
    effective_discount : ndarray, shape (num_states, num_actions)
        ``g(s, a) = sum_s' D(s' | s, a)``; ``nan`` at inadmissible pairs.
    discount_range : tuple of float
        ``(g_lo, g_hi)``, the min and max of ``g`` over admissible pairs.

    Notes
    -----
    The Bellman equation (SPEC section 3) is

    .. math::

        q[s, a] = reward[s, a] + \sum_{s'} D(s' | s, a)\, v[s'], \qquad
        v[s] = \max_{a \text{ admissible}} q[s, a].

    All arrays are copied and made read-only, so an instance that exists is
    valid and stays valid (STYLE 1). Checks run in a fixed order: shapes of
    ``reward`` and ``admissible``, one admissible action per state, finite
    rewards, shape of ``kernel``, finite and nonnegative entries, row sums.

    Examples
    --------
    One state, one action, reward 1 and discount 0.5, so ``v* = 1/(1-0.5) = 2``:

    >>> m = FiniteSMDP(reward=[[1.0]], kernel=[[0.5]])
    >>> m.num_states, m.num_actions, m.discount_range
    (1, 1, (0.5, 0.5))
    """

    reward: np.ndarray
    kernel: sp.csr_array
    admissible: np.ndarray | None = None

    def __post_init__(self) -> None:
        reward, kernel, admissible = _validate(self.reward, self.kernel, self.admissible)
        object.__setattr__(self, "reward", reward)
        object.__setattr__(self, "kernel", kernel)
        object.__setattr__(self, "admissible", admissible)
        # Row sums are part of validity: compute (and cache) them now.
        g = self.effective_discount
        masked = np.where(admissible, g, -np.inf)
        flat = int(np.argmax(masked))
        s, a = divmod(flat, reward.shape[1])
        if not masked.flat[flat] < 1.0:
            raise InvalidArgumentError(
                f"`kernel`: the discounted row for state {s}, action {a} sums to "
                f"{masked.flat[flat]:.12g}; rows of admissible actions must sum to "
                f"less than 1 (SPEC section 3).")

    @classmethod
    def from_mdp(cls, P: Any, R: Any, gamma: float,
                 admissible: Any = None) -> "FiniteSMDP":
        r"""Build the SMDP of an ordinary discounted MDP: ``D = gamma * P``.

        Parameters
        ----------
        P : array_like, shape (num_actions, num_states, num_states), or sequence of sparse matrices
            ``P[a, s, s_next]``, the transition probabilities; either a dense
            3-D array or a sequence of ``num_actions`` (sparse or dense)
            ``(num_states, num_states)`` matrices. The row of each admissible
            pair sums to 1 (tolerance 1e-9), or is all zero (a terminal
            action).
        R : array_like of float, shape (num_states, num_actions)
            ``R[s, a]``, the one-step reward.
        gamma : float
            Discount factor, ``0 <= gamma < 1``.
        admissible : array_like of bool, shape (num_states, num_actions), optional

        Returns
        -------
        FiniteSMDP
            With ``kernel[s * num_actions + a, s_next] = gamma * P[a, s, s_next]``.

        Examples
        --------
        >>> m = FiniteSMDP.from_mdp([[[0.0, 1.0], [0.0, 1.0]]], [[0.0], [1.0]], 0.9)
        >>> m.kernel.toarray()
        array([[0. , 0.9],
               [0. , 0.9]])
        """
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
            raise InvalidArgumentError(f"`gamma` must be a real number, got {gamma!r}.")
        gamma = float(gamma)
        if not 0.0 <= gamma < 1.0:
            raise InvalidArgumentError(f"`gamma` must satisfy 0 <= gamma < 1, got {gamma!r}.")
        R_arr = _as_float_2d("R", R)
        S, A = R_arr.shape
        blocks = _mdp_blocks(P, S, A)
        adm = _as_admissible(admissible, (S, A))
        for a, block in enumerate(blocks):
            _check_entries(f"`P[{a}]`", block, lambda row, a=a: f"state {row}, action {a}")
            sums = np.asarray(block.sum(axis=1)).ravel()
            bad = adm[:, a] & ~((np.abs(sums - 1.0) <= _ROW_SUM_TOL) | (sums == 0.0))
            if bad.any():
                s = int(np.flatnonzero(bad)[0])
                raise InvalidArgumentError(
                    f"`P`: row for state {s}, action {a} sums to {sums[s]:.12g}; rows of "
                    f"admissible actions must sum to 1 (tolerance {_ROW_SUM_TOL:g}) or be "
                    f"all zero (a terminal action).")
        stacked = sp.vstack(blocks, format="csr")          # row a*S + s
        perm = (np.arange(S)[:, None] + S * np.arange(A)[None, :]).ravel()  # row s*A + a
        kernel = (stacked[perm] * gamma).tocsr()
        return cls(reward=R_arr, kernel=kernel, admissible=adm)

    @cached_property
    def num_states(self) -> int:
        """Number of states ``S`` (the first axis of ``reward``)."""
        return int(self.reward.shape[0])

    @cached_property
    def num_actions(self) -> int:
        """Number of actions ``A`` (the second axis of ``reward``)."""
        return int(self.reward.shape[1])

    @cached_property
    def effective_discount(self) -> np.ndarray:
        """``g[s, a] = sum_s' D(s' | s, a)``, shape (num_states, num_actions); nan if inadmissible."""
        sums = np.asarray(self.kernel.sum(axis=1)).ravel().reshape(self.num_states, self.num_actions)
        out = np.where(self.admissible, sums, np.nan)
        out.flags.writeable = False
        return out

    @cached_property
    def discount_range(self) -> tuple[float, float]:
        """``(g_lo, g_hi)``: min and max of ``effective_discount`` over admissible pairs."""
        g = self.effective_discount[self.admissible]
        return float(g.min()), float(g.max())

    @cached_property
    def _masked_reward(self) -> np.ndarray:
        """Flat ``reward`` (index ``s*A + a``) with ``-inf`` at inadmissible pairs."""
        out = np.where(self.admissible, self.reward, -np.inf).ravel()
        out.flags.writeable = False
        return out

    @cached_property
    def _all_admissible(self) -> bool:
        return bool(self.admissible.all())


# --------------------------------------------------------------------------
# The problem object of the iteration engine (solvers.iteration).
# --------------------------------------------------------------------------

class SMDPProblem:
    r"""A :class:`FiniteSMDP` as an :class:`~solvers.iteration.IterationProblem`.

    Iterates are value vectors ``v`` of shape ``(num_states,)``; policies are
    integer arrays ``sigma[s]``.

    * ``apply(v)`` returns ``(T v, q)`` with the flat look-ahead
      ``q[s*A + a] = r(s, a) + sum_s' D(s'|s, a) v(s')`` (one sparse product,
      ``-inf`` at inadmissible pairs) and ``T v = max_a q``;
      ``apply(v, sigma)`` returns ``(r_sigma + D_sigma v, None)`` with the
      ``(S, S)`` policy system, patched in place when the policy changes at a
      few states.
    * ``rounding(v) = gamma_{n+1} (max|r| + max|v|)`` with ``n`` the largest
      number of stored entries in a kernel row: each ``q[s*A + a]`` is a dot
      product of ``n`` terms accumulated left to right (scipy's CSR product)
      plus the reward, exact to ``gamma_{n+1} (|r| + sum_s' D |v|)``
      (:func:`solvers.common.higham_gamma`), and ``sum_s' D(s'|s, a) <= 1``;
      the row maximum is exact.
    * ``evaluate`` solves ``(I - D_sigma) v = r_sigma`` with
      :func:`solvers.iteration.solve_policy_system`.

    Parameters
    ----------
    model : FiniteSMDP

    Examples
    --------
    >>> p = SMDPProblem(FiniteSMDP(reward=[[1.0, 0.0]], kernel=[[0.5], [0.0]]))
    >>> u, q = p.apply(np.zeros(1))
    >>> u.tolist(), p.greedy(u, q).tolist()
    ([1.0], [0])
    """

    def __init__(self, model: FiniteSMDP):
        self.model = model
        self.discount_range = model.discount_range
        self._S, self._A = model.num_states, model.num_actions
        n = int(np.diff(model.kernel.indptr).max(initial=0))
        self._gamma = higham_gamma(n + 1)
        self._reward_scale = float(np.abs(model.reward[model.admissible]).max())
        self._system: tuple[np.ndarray, np.ndarray, sp.csr_array] | None = None

    # ---------------------------------------------------------------- operators
    def start(self, method: str) -> np.ndarray:
        """``v_0 = 0``; for ``"mpi"`` the constant ``c = min r / (1 - g)`` (``g = g_lo`` if
        ``min r >= 0`` else ``g_hi``), so that ``T v_0 >= v_0`` and the iterates increase
        monotonically to ``v*`` (Puterman, Theorem 6.5.5)."""
        if method != "mpi":
            return np.zeros(self._S)
        g_lo, g_hi = self.discount_range
        r_min = float(self.model.reward[self.model.admissible].min())
        return np.full(self._S, r_min / (1.0 - (g_lo if r_min >= 0 else g_hi)))

    def apply(self, v: np.ndarray, policy: np.ndarray | None = None):
        """``(T v, q_flat)`` or ``(T_sigma v, None)``."""
        if policy is not None:
            _, r_s, D_s = self._policy_system(policy)
            w = D_s @ v
            w += r_s
            return w, None
        q = self.model.kernel @ v
        q += self.model._masked_reward
        return _row_max(q, self._S, self._A, out=np.empty(self._S)), q

    def increments(self, new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
        """``(min, max)`` of ``new - old``."""
        d = new - old
        return float(d.min()), float(d.max())

    def rounding(self, v: np.ndarray) -> float:
        """``gamma_{n+1} (max|r| + max|v|)`` (class docstring)."""
        return self._gamma * (self._reward_scale + float(np.max(np.abs(v))))

    def scale(self, v: np.ndarray) -> float:
        """``max |v|``."""
        return float(np.max(np.abs(v)))

    def add(self, v: np.ndarray, c: float) -> np.ndarray:
        """``v + c``."""
        return v + c

    def greedy(self, v: np.ndarray, q_flat: np.ndarray, previous: np.ndarray | None = None
               ) -> np.ndarray:
        """Lowest admissible action within ``TIE_TOL`` of ``max_a q``; ``previous[s]`` where
        that is within ``TIE_TOL`` (so policy iteration cannot cycle on ties)."""
        Q = q_flat.reshape(self._S, self._A)
        if previous is None:
            return greedy(Q, self.model.admissible)
        best = _row_max(q_flat, self._S, self._A, out=np.empty(self._S))
        keep = Q[np.arange(self._S), previous] >= best - TIE_TOL
        if keep.all():
            return previous
        out = previous.copy()
        changed = np.flatnonzero(~keep)
        out[changed] = greedy(Q[changed], self.model.admissible[changed])
        return out

    def evaluate(self, policy: np.ndarray, v0: np.ndarray | None, *, exact_limit: int,
                 rtol: float, method: str = "auto") -> tuple[np.ndarray, str]:
        """Solve ``(I - D_sigma) v = r_sigma`` (:func:`solvers.iteration.solve_policy_system`)."""
        _, r_s, D_s = self._policy_system(policy)
        M = (sp.eye_array(self._S, format="csr") - D_s).tocsr()
        return solve_policy_system(M, r_s, v0, exact_limit=exact_limit, rtol=rtol, method=method)

    def outputs(self, v: np.ndarray, q_flat: np.ndarray):
        """``(q, v, policy)``: ``q`` of shape ``(S, A)`` with ``nan`` where inadmissible."""
        q = q_flat.reshape(self._S, self._A).copy()
        if not self.model._all_admissible:
            q[~self.model.admissible] = np.nan
        return q, v, greedy(q, self.model.admissible)

    # ---------------------------------------------------------------- policy system
    def _policy_system(self, sigma: np.ndarray):
        """``(sigma, r_sigma, D_sigma)``, patched from the previous policy when possible."""
        cached = self._system
        if cached is not None and cached[0] is sigma:
            return cached
        if cached is not None and cached[0].shape == sigma.shape:
            changed = np.flatnonzero(cached[0] != sigma)
            if changed.size == 0:
                return cached
            patched = _patch_policy_system(self.model, cached[1], cached[2], sigma, changed)
            if patched is not None:
                self._system = (sigma.copy(), *patched)
                return self._system
        rows = np.arange(self._S) * self._A + sigma
        self._system = (sigma.copy(), self.model._masked_reward[rows].copy(),
                        self.model.kernel[rows])
        return self._system


def _row_max(q_flat: np.ndarray, S: int, A: int, out: np.ndarray) -> np.ndarray:
    """Row maximum of ``q_flat.reshape(S, A)`` into ``out`` (``-inf`` marks inadmissible)."""
    Q = q_flat.reshape(S, A)
    if A <= 32:  # a loop over strided columns beats a short inner-axis reduction
        np.copyto(out, Q[:, 0])
        for a in range(1, A):
            np.maximum(out, Q[:, a], out=out)
    else:
        Q.max(axis=1, out=out)
    return out


def _patch_policy_system(model: FiniteSMDP, r_sigma: np.ndarray, D_sigma: sp.csr_array,
                         sigma: np.ndarray, changed: np.ndarray):
    """Overwrite the rows ``changed`` of ``(r_sigma, D_sigma)`` in place for the new ``sigma``.

    Possible when every new row has as many stored entries as the row it
    replaces (no reallocation); returns ``None`` otherwise.
    """
    K = model.kernel
    new_rows = changed * model.num_actions + sigma[changed]
    src_start = K.indptr[new_rows]
    lengths = K.indptr[new_rows + 1] - src_start
    dst_start = D_sigma.indptr[changed]
    if not np.array_equal(lengths, D_sigma.indptr[changed + 1] - dst_start):
        return None
    src = _ranges(src_start, lengths)
    dst = _ranges(dst_start, lengths)
    D_sigma.data[dst] = K.data[src]
    D_sigma.indices[dst] = K.indices[src]
    r_sigma[changed] = model._masked_reward[new_rows]
    return r_sigma, D_sigma


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(starts[i], starts[i] + lengths[i])`` over ``i``."""
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - before, lengths) + np.arange(int(lengths.sum()))


# --------------------------------------------------------------------------
# Validation (STYLE 7): one private helper per argument.
# --------------------------------------------------------------------------

def _validate(reward, kernel, admissible):
    reward = _as_float_2d("reward", reward)
    S, A = reward.shape
    adm = _as_admissible(admissible, (S, A))
    bad = adm & ~np.isfinite(reward)
    if bad.any():
        s, a = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidArgumentError(
            f"`reward` must be finite at admissible pairs: state {s}, action {a} "
            f"has {float(reward[s, a])!r}.")
    reward = reward.copy()
    reward.flags.writeable = False
    K = _as_csr("kernel", kernel)
    if K.ndim != 2 or K.shape != (S * A, S):
        hint = (" (a 3-D [num_actions, num_states, num_states] array is an MDP: use "
                "`FiniteSMDP.from_mdp`)" if K.ndim == 3 else "")
        raise InvalidArgumentError(
            f"`kernel` must have shape (num_states*num_actions, num_states) = "
            f"({S * A}, {S}) to match `reward` of shape ({S}, {A}); got {K.shape}{hint}.")
    _check_entries("`kernel`", K, lambda row: "state {}, action {}".format(*divmod(row, A)))
    for arr in (K.data, K.indices, K.indptr):
        arr.flags.writeable = False
    return reward, K, adm


def _as_float_2d(name: str, x) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"`{name}` must be a real array: {exc}.") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidArgumentError(
            f"`{name}` must be a 2-D array of shape (num_states, num_actions) with both "
            f"sizes >= 1; got shape {arr.shape}.")
    return arr


def _as_admissible(admissible, shape: tuple[int, int]) -> np.ndarray:
    if admissible is None:
        adm = np.ones(shape, dtype=bool)
    else:
        adm = np.array(admissible)  # a copy: the model owns its arrays
        if adm.dtype != bool:
            raise InvalidArgumentError(
                f"`admissible` must be a boolean array, got dtype {adm.dtype}.")
        if adm.shape != shape:
            raise InvalidArgumentError(
                f"`admissible` must have shape (num_states, num_actions) = {shape}; "
                f"got {adm.shape}.")
    empty = ~adm.any(axis=1)
    if empty.any():
        raise InvalidArgumentError(
            f"`admissible`: state {int(np.flatnonzero(empty)[0])} has no admissible "
            f"action; every state needs at least one.")
    adm.flags.writeable = False
    return adm


def _as_csr(name: str, x):
    """A float64 CSR copy with sorted, summed indices and no explicit zeros."""
    if sp.issparse(x):
        K = sp.csr_array(x, dtype=float, copy=True)
    else:
        try:
            arr = np.asarray(x, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"`{name}` must be a real (dense or sparse) array: {exc}.") from None
        if arr.ndim != 2:
            return arr  # the caller reports the shape
        K = sp.csr_array(arr)
    K.sum_duplicates()
    K.sort_indices()
    return K


def _check_entries(label: str, K, where) -> None:
    """Finite, nonnegative entries; ``where(row)`` names a row."""
    K = sp.csr_array(K)
    data = K.data
    bad = ~np.isfinite(data) | (data < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(K.indptr, k, side="right") - 1)
        what = "finite" if not np.isfinite(data[k]) else "nonnegative"
        raise InvalidArgumentError(
            f"{label} must be {what}: row for {where(row)} has {float(data[k])!r} at next "
            f"state {int(K.indices[k])}.")


def _mdp_blocks(P, S: int, A: int) -> list:
    """``P`` as a list of ``A`` CSR ``(S, S)`` blocks, shapes checked."""
    if sp.issparse(P) or (not isinstance(P, (list, tuple)) and np.ndim(P) != 3):
        raise InvalidArgumentError(
            f"`P` must be a 3-D array (num_actions, num_states, num_states) = "
            f"({A}, {S}, {S}) or a sequence of {A} matrices of shape ({S}, {S}); "
            f"got {type(P).__name__} of shape {getattr(P, 'shape', np.shape(P))}.")
    if len(P) != A:
        raise InvalidArgumentError(
            f"`P` must hold one matrix per action: {A} to match `R` of shape ({S}, {A}); "
            f"got {len(P)}.")
    blocks = []
    for a, block in enumerate(P):
        K = _as_csr(f"P[{a}]", block)
        if K.ndim != 2 or K.shape != (S, S):
            raise InvalidArgumentError(
                f"`P[{a}]` must have shape (num_states, num_states) = ({S}, {S}) to match "
                f"`R` of shape ({S}, {A}); got {K.shape}.")
        blocks.append(K)
    return blocks
