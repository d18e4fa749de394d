"""Mixing of the epoch chain: exact ``t_mix``, relaxation time, bounds, projected mixing (SPEC section 6).

Definitions (``T`` the epoch chain of :mod:`estimators.stationary`, ``pi`` its
long-run occupancy, TV ``= 0.5 L1``):

- ``d(t) = max_s TV(T^t(s, .), pi)`` over *every* state, and
  ``t_mix(eps) = min{t : d(t) <= eps}``;
- relaxation time ``t_rel = 1/(1 - lambda_*)``, ``lambda_*`` the largest
  modulus of an eigenvalue of ``T`` other than one copy of 1;
- projected: ``d_proj(t) = max_s TV(T^t(s, .) Pi, pi Pi)`` for a row-stochastic
  ``Pi`` that pushes a law on epoch states to cells, e.g. ``(agent i, observation o)``
  (:func:`observation_projection`) or ``(i, o, c')`` with weight ``b_i(c'|o)``
  (:func:`decision_projection`). The projected process is not Markov; this is
  the mixing of its marginal. Because ``b`` depends on a state only through its
  cell ``(i, o)``, both projections give the same distance at every ``t``
  (``TV(mu b, nu b) = TV(mu, nu)`` for laws on cells pushed through one kernel).

Exact algorithm. ``d`` is non-increasing: ``T^{t+1}(s, .) = sum_z T(s, z) T^t(z, .)``
is a mixture of rows of ``T^t`` and TV is convex (the same argument holds
after any ``Pi``). So repeated squaring finds the first power of two ``2^k``
with ``d(2^k) <= eps``, and a binary search on ``(2^{k-1}, 2^k]`` using the stored
powers ``T^{2^j}`` finds ``t_mix`` with about ``2 log2 t_mix`` dense products
(``n^3`` each: about 0.5 s for 2,000 states on 2 cores; ``8 n^2`` bytes stored each). The
full and projected distances are evaluated on the same powers and searched
jointly. For the epoch chain, a product with ``T`` itself uses its block
structure (:class:`estimators.stationary._EpochStepper`), which is cheaper than a
dense product when agents have private states; the search uses whichever is
cheaper by a static cost model.

``inf`` is returned, with the reason, when

- the chain has more than one closed class, or its closed class is periodic:
  then ``d(t) >= 1/2 > eps`` for every ``t`` (from a closed class ``C`` the law
  stays in ``C``, and in a class of period ``p`` it sits on one cyclic subclass
  of mass ``1/p``), which is why ``eps`` must lie in ``(0, 1/2)``;
- for a projected distance of such a chain, when its limit
  ``L = lim d_proj(t)`` (computed on ``lim_q T^{pq}``, ``p`` the lcm of the
  periods) exceeds ``eps`` (the projection may still mix when ``L < eps``);
- ``d`` has not reached ``eps`` after ``max_doublings`` squarings or within the
  memory budget (then ``success=False``).

Bounds (used beyond ``exact_limit`` epoch states, where no power of ``T`` is
formed): ``t_mix(eps) >= (t_rel - 1) log(1/(2 eps))`` holds for every chain
(the proof of Levin-Peres-Wilmer Theorem 12.5 only uses an eigenvector
``T f = lambda f``: ``pi f = 0`` and ``|lambda|^t ||f||_inf <= 2 d(t) ||f||_inf``).
The upper bound ``t_mix(eps) <= t_rel log(1/(eps pi_min))`` (LPW Theorem 12.4)
needs a *reversible* irreducible chain; the epoch chain is usually not
reversible, and then the valid bound used instead is
``d(t) <= 0.5 sigma_2^t sqrt((1 - pi_min)/pi_min)``, with ``sigma_2`` the second
singular value of ``D^{1/2} T D^{-1/2}``, ``D = diag(pi)`` (the ``L2(pi)``
contraction of mean-zero signed measures). With transient states
(``pi_min = 0``) neither upper bound applies and ``inf`` is reported.

Examples
--------
A lazy two-state chain: ``d(t) = 0.5 * 0.5^t``, so ``t_mix(1/4) = 1``.

>>> T = np.array([[0.75, 0.25], [0.25, 0.75]])
>>> res = mixing_time(T, np.array([0.5, 0.5]), 0.25)
>>> res.t_mix, res.status
(1.0, 'exact')
>>> relaxation_time(T)
2.0
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result
from estimators.behavior import validate_behavior
from icsmdp_theory.cells import cell_offsets, epoch_observations
from estimators.stationary import (ChainClasses, SplitChain, _EpochStepper, _chain_iv,
                                   chain_classes, epoch_chain_operator, epoch_chain_split,
                                   long_run_occupancy)

__all__ = ["MixingTimeResult", "MixingBounds", "MixingResult", "mixing_time",
           "projected_mixing_time", "relaxation_time", "mixing_time_bounds",
           "observation_projection", "decision_projection", "mixing_report",
           "DEFAULT_EPS", "DENSE_EIG_LIMIT", "DEFAULT_MAX_DOUBLINGS", "DEFAULT_MEMORY_LIMIT"]

#: Default ``eps`` of ``t_mix(eps)`` (SPEC section 6).
DEFAULT_EPS = 0.25
#: Up to this many states ``relaxation_time`` uses a dense eigen-decomposition; beyond, ARPACK.
DENSE_EIG_LIMIT = 250
#: Default cap on squarings: ``t_mix`` is searched up to ``2^30``.
DEFAULT_MAX_DOUBLINGS = 30
#: Default memory budget (bytes) for the stored powers ``T^{2^j}``.
DEFAULT_MEMORY_LIMIT = 4e9
#: A limit distance within this of ``eps`` is reported as undetermined.
_LIMIT_TOL = 1e-10
#: ``|lambda|`` of a numerically computed eigenvalue counted as 1.
_UNIT_TOL = 1e-9


# ====================================================================== results
@dataclass(frozen=True, kw_only=True, repr=False)
class MixingTimeResult(Result):
    """Result of :func:`mixing_time` / :func:`projected_mixing_time`.

    Attributes
    ----------
    t_mix : float
        The exact ``t_mix(eps)`` (an integer value), or ``inf`` (see ``status``/``message``).
    distance : float
        ``d(t_mix)`` when finite; otherwise the last (or limit) distance computed.
    eps : float
    num_products : int
        Dense products and block steps performed (also in ``iterations``).

    ``status`` is one of ``"exact"``, ``"periodic"``, ``"multiple_closed_classes"``,
    ``"limit_above_eps"`` (all with ``success=True``), ``"cap"``, ``"memory"``,
    ``"undetermined"`` (``success=False``).
    """

    t_mix: float
    distance: float
    eps: float
    num_products: int


@dataclass(frozen=True)
class MixingBounds:
    """Bounds on ``t_mix(eps)`` from spectral quantities (see the module docstring).

    Attributes
    ----------
    lower : float
        ``max(0, (t_rel - 1) log(1/(2 eps)))``; valid for every chain.
    upper : float
        ``t_rel log(1/(eps pi_min))`` for a reversible chain (``upper_method="reversible"``),
        the singular-value bound otherwise (``"singular_value"``), ``inf`` when none applies.
    upper_method : str
    relaxation_time, second_eigenvalue_modulus : float
    second_singular_value : float
        ``sigma_2`` of ``D^{1/2} T D^{-1/2}`` (``nan`` when not needed).
    is_reversible : bool
    pi_min : float
    message : str
    """

    lower: float
    upper: float
    upper_method: str
    relaxation_time: float
    second_eigenvalue_modulus: float
    second_singular_value: float
    is_reversible: bool
    pi_min: float
    message: str


@dataclass(frozen=True, kw_only=True, repr=False)
class MixingResult(Result):
    """Mixing report of the epoch chain (SPEC section 6), from :func:`mixing_report`.

    Attributes
    ----------
    eps : float
    num_epoch_states : int
    t_mix : float
        Exact ``t_mix(eps)`` (or ``inf`` with the reason) when ``t_mix_is_exact``;
        ``nan`` beyond ``exact_limit``.
    t_mix_is_exact : bool
    t_mix_lower, t_mix_upper : float
        Equal to ``t_mix`` when exact; otherwise the spectral bounds.
    upper_bound_method : str
        ``"exact"``, ``"reversible"``, ``"singular_value"`` or ``"none"``.
    relaxation_time, second_eigenvalue_modulus : float
    projected_t_mix : float
        Mixing of the marginal on ``(agent, observation)`` cells (``nan`` beyond ``exact_limit``).
    projected_t_mix_decision : float
        The same on ``(agent, observation, successor)`` cells weighted by ``b``;
        it equals ``projected_t_mix`` because ``b`` depends on a state only through its cell.
    num_closed_classes : int
        ``-1`` when unknown (beyond ``exact_limit``).
    period : int
        Period of the closed class (``0`` when unknown or several classes).
    pi_min : float
    notes : tuple of str
        One sentence per quantity explaining its value.
    """

    eps: float
    num_epoch_states: int
    t_mix: float
    t_mix_is_exact: bool
    t_mix_lower: float
    t_mix_upper: float
    upper_bound_method: str
    relaxation_time: float
    second_eigenvalue_modulus: float
    projected_t_mix: float
    projected_t_mix_decision: float
    num_closed_classes: int
    period: int
    pi_min: float
    notes: tuple


# ====================================================================== validation
def _eps_iv(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"`eps` must be a number in (0, 0.5), got {eps!r}.")
    eps = float(eps)
    if not 0.0 < eps < 0.5:
        raise InvalidArgumentError(
            f"`eps` must lie in (0, 0.5) (for eps >= 1/2 a periodic or reducible chain could "
            f"count as mixed), got {eps!r}.")
    return eps


def _search_iv(max_doublings, memory_limit):
    if isinstance(max_doublings, bool) or not isinstance(max_doublings, (int, np.integer)) \
            or not 1 <= max_doublings <= 62:
        raise InvalidArgumentError(f"`max_doublings` must be an integer in 1..62, got {max_doublings!r}.")
    if not (isinstance(memory_limit, (int, float, np.integer, np.floating))
            and not isinstance(memory_limit, bool) and memory_limit > 0):
        raise InvalidArgumentError(f"`memory_limit` must be a positive number of bytes, got {memory_limit!r}.")
    return int(max_doublings), float(memory_limit)


def _pi_iv(pi, n, T=None, name="pi"):
    try:
        p = np.asarray(pi, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a numeric probability vector.") from None
    if p.size != n:
        raise InvalidArgumentError(f"`{name}` must hold {n} probabilities (one per state), got {p.size}.")
    if not np.all(np.isfinite(p)) or np.any(p < -1e-12) or abs(p.sum() - 1.0) > 1e-9:
        raise InvalidArgumentError(
            f"`{name}` must be a probability vector (non-negative, summing to 1); its minimum is "
            f"{float(p.min())!r} and it sums to {float(p.sum())!r}.")
    p = np.clip(p, 0.0, None)  # round-off below -1e-12 is rejected above
    if T is not None:
        resid = float(np.abs(_left(T, p) - p).sum())
        if resid > 1e-8:
            raise InvalidArgumentError(
                f"`{name}` must be stationary for `T`: ||pi T - pi||_1 = {resid:.3g} > 1e-8.")
    return p


def _left(T, p):
    """``p T`` for a dense, sparse or split chain."""
    if isinstance(T, SplitChain):
        return np.asarray(T.continuation.T @ p) + T.restart * (p @ T.stop)
    return np.asarray(T.T @ p).reshape(-1)


def _matrix_iv(T):
    """``(T as given, T as a validated ndarray or CSR)``; a SplitChain is checked through its CSR."""
    if isinstance(T, SplitChain):
        return T, _chain_iv(T.tocsr(), "T")
    A = _chain_iv(T, "T")
    return A, A


# ====================================================================== projections
def observation_projection(model: ICSMDP) -> sp.csr_array:
    """``Pi[s, cell]`` with ``cell = offset_i + phi_i(m, l_i)`` for ``s = f*N + i``: shape
    ``(num_epoch_states, sum_i nO_i)``, one 1 per row (cells of agent ``i`` start at
    ``offset_i = nO_0 + ... + nO_{i-1}``)."""
    obs = epoch_observations(model)
    offsets = cell_offsets(model.num_observations)
    cells = (obs + offsets[:-1][None, :]).reshape(-1)
    n = cells.size
    return sp.csr_array((np.ones(n), (np.arange(n), cells)), shape=(n, int(offsets[-1])))


def decision_projection(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None) -> sp.csr_array:
    """``Pi[s, (cell, c')] = b_i(c' | o)``, column ``cell*(N+1) + c'``: pushes a law on epoch
    states to ``(agent, observation, successor)``; shape ``(n, sum_i nO_i * (N+1))``."""
    behavior = validate_behavior(model, behavior)
    obs = epoch_observations(model)
    N1 = model.num_successors
    offsets = cell_offsets(model.num_observations)
    cells = (obs + offsets[:-1][None, :]).reshape(-1)
    w = np.stack([behavior[i][obs[:, i]] for i in range(model.num_agents)], axis=1).reshape(-1, N1)
    n = cells.size
    rows = np.repeat(np.arange(n), N1)
    cols = (cells[:, None] * N1 + np.arange(N1)[None, :]).reshape(-1)
    out = sp.csr_array((w.reshape(-1), (rows, cols)), shape=(n, int(offsets[-1]) * N1))
    out.eliminate_zeros()
    return out


def _projection_iv(projection, n):
    if sp.issparse(projection):
        P = sp.csr_array(projection, dtype=float)
    else:
        try:
            P = sp.csr_array(np.asarray(projection, dtype=float))
        except (TypeError, ValueError):
            raise InvalidArgumentError("`projection` must be a numeric (n, k) matrix.") from None
    if P.ndim != 2 or P.shape[0] != n:
        raise InvalidArgumentError(f"`projection` must have {n} rows (one per state), got shape {list(P.shape)}.")
    if np.any(P.data < 0) or not np.all(np.isfinite(P.data)):
        raise InvalidArgumentError("`projection` must be finite and non-negative.")
    sums = np.asarray(P.sum(axis=1)).ravel()
    bad = np.abs(sums - 1.0) > 1e-9
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(f"rows of `projection` must sum to 1: row {s} sums to {float(sums[s])!r}.")
    return P


# ====================================================================== the search engine
class _Quantity:
    """One distance ``d_q(t)`` being searched: full (``proj is None``) or projected."""

    def __init__(self, name, pi, proj=None):
        self.name = name
        self.proj = proj
        self.projT = None if proj is None else sp.csr_array(proj.T)
        self.target = pi if proj is None else np.asarray(proj.T @ pi).ravel()
        self.lo, self.hi = 0, None
        self.d_lo, self.d_hi = np.nan, np.nan
        self.t, self.status, self.message, self.active = np.nan, "", "", True

    def distance(self, X: np.ndarray) -> float:
        """``max_s 0.5 ||(X Pi)(s, .) - target||_1`` for ``X = T^t``."""
        Y = X if self.proj is None else (self.projT @ X.T).T
        return 0.5 * float(np.abs(Y - self.target).sum(axis=1).max())

    def distance_at_zero(self) -> float:
        if self.proj is None:
            return float(1.0 - self.target.min())
        P = self.proj
        rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
        excess = np.abs(P.data - self.target[P.indices]) - self.target[P.indices]
        per_row = self.target.sum() + np.bincount(rows, weights=excess, minlength=P.shape[0])
        return 0.5 * float(per_row.max())

    def finish(self, t, status, message, distance=None):
        self.t, self.status, self.message, self.active = float(t), status, message, False
        if distance is not None:
            self.d_hi = distance


class _Powers:
    """Dense powers of ``T`` with a cost model choosing between block steps and products."""

    def __init__(self, T_dense: np.ndarray, stepper=None, stepper_cost_per_column=None):
        self.T = T_dense
        self.n = T_dense.shape[0]
        self.stepper = stepper
        self.product_cost = 2.0 * self.n ** 3 / 2.5e10
        self.step_cost = (np.inf if stepper is None else stepper_cost_per_column * self.n)
        self.count = 0

    def advance(self, X: np.ndarray, m: int, Tm: np.ndarray) -> np.ndarray:
        """``X T^m`` (``= T^m X`` for a power ``X`` of ``T``), ``Tm = T^m`` given."""
        if m * self.step_cost < self.product_cost:
            for _ in range(m):
                X = self.stepper(X)
                self.count += 1
            return X
        self.count += 1
        return X @ Tm

    def power(self, p: int) -> np.ndarray:
        """``T^p`` (``p >= 1``) by binary powering."""
        result, base = None, self.T
        while True:
            if p & 1:
                if result is None:
                    result = base
                else:
                    result = result @ base
                    self.count += 1
            p >>= 1
            if not p:
                return result
            base = base @ base
            self.count += 1


def _search(powers: _Powers, quantities: list[_Quantity], eps: float, max_doublings: int,
            memory_limit: float) -> None:
    """Doubling then joint binary search for every active quantity (module docstring)."""
    n = powers.n
    active = [q for q in quantities if q.active]
    for q in active:
        d0 = q.distance_at_zero()
        if d0 <= eps:
            q.finish(0, "exact", f"d(0) = {d0:.6g} <= eps.", d0)
        else:
            q.d_lo = d0
    active = [q for q in active if q.active]
    if not active:
        return
    pw = [powers.T]  # pw[j] = T^(2^j)
    mats: dict[int, np.ndarray] = {}

    def record(t, X):
        for q in active:
            if q.hi is None or q.lo < t < q.hi:
                d = q.distance(X)
                if d <= eps:
                    q.hi, q.d_hi = t, d
                else:
                    q.lo, q.d_lo = t, d

    record(1, pw[0])
    bytes_per = 8.0 * n * n
    while any(q.hi is None for q in active):
        j = len(pw) - 1
        if j + 1 > max_doublings or (len(pw) + 4) * bytes_per > memory_limit:
            why = ("cap" if j + 1 > max_doublings else "memory")
            for q in active:
                if q.hi is None:
                    q.finish(np.inf, why,
                             f"d(2^{j}) = {q.d_lo:.6g} > eps after {j} squarings; stopped at the "
                             + (f"cap max_doublings={max_doublings}." if why == "cap" else
                                f"memory budget ({memory_limit:.3g} bytes for the stored powers)."),
                             q.d_lo)
            active = [q for q in active if q.active]
            break
        pw.append(powers.advance(pw[j], 2 ** j, pw[j]))
        record(2 ** (j + 1), pw[-1])
    # binary search: hi - lo shrinks; mid = lo + largest power of two < hi - lo
    while True:
        open_q = [q for q in active if q.hi is not None and q.hi - q.lo > 1]
        if not open_q:
            break
        q = open_q[0]
        step = 1 << ((q.hi - q.lo - 1).bit_length() - 1)
        jstep = step.bit_length() - 1
        mid = q.lo + step
        if q.lo == 0:
            X = pw[jstep]
        else:
            base = pw[q.lo.bit_length() - 1] if (q.lo & (q.lo - 1)) == 0 else mats[q.lo]
            X = powers.advance(base, step, pw[jstep])
        record(mid, X)
        los = {p.lo for p in active}
        if mid in los and (mid & (mid - 1)) != 0:
            mats[mid] = X
        for key in list(mats):
            if key not in los:
                del mats[key]
    for q in active:
        if q.active:
            q.finish(q.hi, "exact", f"d({q.hi}) = {q.d_hi:.6g} <= eps < d({q.lo}) = {q.d_lo:.6g}.")


def _limit_distances(powers: _Powers, quantities, classes: ChainClasses, max_doublings: int):
    """``L_q = lim_t d_q(t)`` via ``Q = lim_k (T^p)^(2^k)``, ``p`` the lcm of the periods.

    Returns ``(list of L_q or None, note)``; ``None`` when ``Q`` did not converge."""
    p = 1
    for per in classes.periods:
        p = p * per // math.gcd(p, per)
    A = powers.power(p)
    for _ in range(max_doublings):
        B = A @ A
        powers.count += 1
        if np.abs(B - A).max() <= 1e-13:
            return [q.distance(B) for q in quantities], f"limit of T^(p 2^k), p = {p}"
        A = B
    return [None for _ in quantities], f"T^(p 2^k) (p = {p}) did not converge in {max_doublings} squarings"


def _run(T_dense, pi, eps, projections, *, include_full, classes, stepper=None,
         stepper_cost=None, max_doublings, memory_limit):
    """Shared driver: returns (quantities, powers)."""
    powers = _Powers(T_dense, stepper, stepper_cost)
    qs = []
    if include_full:
        qs.append(_Quantity("full", pi))
    for name, P in projections:
        qs.append(_Quantity(name, pi, P))
    if not classes.is_ergodic_unichain:
        if classes.num_closed > 1:
            status, reason = "multiple_closed_classes", (
                f"the chain has {classes.num_closed} closed classes, so d(t) >= 1/2 > eps for all t")
        else:
            status, reason = "periodic", (
                f"the closed class has period {classes.periods[0]}, so d(t) >= 1 - 1/"
                f"{classes.periods[0]} >= 1/2 > eps for all t")
        for q in qs:
            if q.proj is None:
                q.finish(np.inf, status, f"t_mix = inf: {reason}.", np.nan)
        proj_qs = [q for q in qs if q.active]
        if proj_qs:
            limits, how = _limit_distances(powers, proj_qs, classes, max_doublings)
            for q, L in zip(proj_qs, limits):
                if L is None:
                    q.finish(np.nan, "undetermined", f"projected t_mix undetermined: {how}.")
                elif L > eps + _LIMIT_TOL:
                    q.finish(np.inf, "limit_above_eps",
                             f"projected t_mix = inf: {reason.split(',')[0]} and the projected "
                             f"distance decreases to its limit {L:.6g} > eps ({how}).", L)
                elif L > eps - _LIMIT_TOL:
                    q.finish(np.nan, "undetermined",
                             f"projected t_mix undetermined: the projected distance tends to "
                             f"{L:.6g}, within {_LIMIT_TOL:g} of eps.", L)
    _search(powers, qs, eps, max_doublings, memory_limit)
    return qs, powers


def _as_result(q: _Quantity, eps, count, t0, settings) -> MixingTimeResult:
    ok = q.status in ("exact", "periodic", "multiple_closed_classes", "limit_above_eps")
    return MixingTimeResult(success=ok, status=q.status, message=q.message, iterations=count,
                            settings=settings, elapsed=time.perf_counter() - t0, t_mix=q.t,
                            distance=float(q.d_hi), eps=eps, num_products=count)


def _dense_of(T):
    if isinstance(T, SplitChain):
        return T.toarray()
    return T.toarray() if sp.issparse(T) else np.ascontiguousarray(T, dtype=float)


def mixing_time(T, pi, eps: float = DEFAULT_EPS, *, max_doublings: int = DEFAULT_MAX_DOUBLINGS,
                memory_limit: float = DEFAULT_MEMORY_LIMIT) -> MixingTimeResult:
    """Exact worst-case ``t_mix(eps) = min{t : max_s TV(T^t(s, .), pi) <= eps}``.

    Parameters
    ----------
    T : ndarray, sparse matrix or SplitChain, shape (n, n)
        Transition matrix (dense powers are formed: ``n`` up to a few thousand).
    pi : array_like, ``n`` entries
        A stationary law of ``T`` (``||pi T - pi||_1 <= 1e-8`` is checked).
    eps : float in ``(0, 1/2)``
    max_doublings : int
        Search ``t`` up to ``2^max_doublings``.
    memory_limit : float
        Bytes allowed for the stored powers ``T^{2^j}`` (8 n^2 bytes each).

    Returns
    -------
    MixingTimeResult
        ``t_mix`` exact, or ``inf`` with the reason in ``message``.

    Examples
    --------
    >>> mixing_time(np.array([[0., 1.], [1., 0.]]), [0.5, 0.5]).status
    'periodic'
    """
    t0 = time.perf_counter()
    eps = _eps_iv(eps)
    max_doublings, memory_limit = _search_iv(max_doublings, memory_limit)
    T, A = _matrix_iv(T)
    pi = _pi_iv(pi, A.shape[0], A)
    classes = chain_classes(A)
    qs, powers = _run(_dense_of(T), pi, eps, [], include_full=True, classes=classes,
                      max_doublings=max_doublings, memory_limit=memory_limit)
    return _as_result(qs[0], eps, powers.count, t0,
                      {"eps": eps, "max_doublings": max_doublings, "memory_limit": memory_limit})


def projected_mixing_time(T, pi, projection, eps: float = DEFAULT_EPS, *,
                          max_doublings: int = DEFAULT_MAX_DOUBLINGS,
                          memory_limit: float = DEFAULT_MEMORY_LIMIT) -> MixingTimeResult:
    """``min{t : max_s TV(T^t(s, .) Pi, pi Pi) <= eps}`` for a row-stochastic ``Pi`` (n x k).

    The projected process is not Markov; this is the mixing of its marginal.
    ``d_proj`` is non-increasing in ``t`` (module docstring), so the same
    doubling and binary search apply. See :func:`observation_projection` and
    :func:`decision_projection` for the epoch chain's cells.
    """
    t0 = time.perf_counter()
    eps = _eps_iv(eps)
    max_doublings, memory_limit = _search_iv(max_doublings, memory_limit)
    T, A = _matrix_iv(T)
    n = A.shape[0]
    pi = _pi_iv(pi, n, A)
    P = _projection_iv(projection, n)
    qs, powers = _run(_dense_of(T), pi, eps, [("projected", P)], include_full=False,
                      classes=chain_classes(A), max_doublings=max_doublings,
                      memory_limit=memory_limit)
    return _as_result(qs[0], eps, powers.count, t0,
                      {"eps": eps, "max_doublings": max_doublings, "memory_limit": memory_limit})


# ====================================================================== spectra
def _arpack(op, n, k, which="LM", tol=1e-8, ncv=40, vectors=True):
    k = max(1, min(k, n - 2))
    ncv = min(n, max(2 * k + 1, ncv))
    try:
        out = spl.eigs(op, k=k, which=which, ncv=ncv, tol=tol, maxiter=3000,
                       return_eigenvectors=vectors)
        return out if vectors else (out, None)
    except spl.ArpackNoConvergence as err:  # keep what converged
        return err.eigenvalues, err.eigenvectors


def _lambda_star_from(vals: np.ndarray) -> float:
    """Largest modulus among ``vals`` after removing one copy of the eigenvalue closest to 1."""
    vals = np.asarray(vals)
    if vals.size <= 1:
        return 0.0
    one = int(np.argmin(np.abs(vals - 1.0)))
    return float(np.abs(np.delete(vals, one)).max())


def _lambda_star(T, classes: ChainClasses | None) -> tuple[float, str]:
    """``(lambda_*, how)`` for an explicit matrix or a LinearOperator."""
    if classes is not None and not classes.is_ergodic_unichain:
        why = (f"{classes.num_closed} closed classes" if classes.num_closed > 1
               else f"period {classes.periods[0]}")
        return 1.0, f"|lambda_2| = 1 exactly ({why})"
    n = T.shape[0]
    if n <= 2 or (n <= DENSE_EIG_LIMIT and not isinstance(T, spl.LinearOperator)):
        dense = _dense_of(T) if not isinstance(T, spl.LinearOperator) else T @ np.eye(n)
        return _lambda_star_from(sla.eigvals(dense)), "dense eigenvalues"
    op = spl.aslinearoperator(T) if not isinstance(T, spl.LinearOperator) else T
    vals, _ = _arpack(op, n, 2)
    if len(vals) < 2:
        return np.nan, "ARPACK did not converge"
    return _lambda_star_from(vals), f"ARPACK ({len(vals)} eigenvalues of largest modulus)"


def relaxation_time(T) -> float:
    """``t_rel = 1/(1 - lambda_*)``, ``lambda_*`` the second largest eigenvalue modulus.

    Parameters
    ----------
    T : ndarray, sparse matrix, SplitChain or LinearOperator (n, n)
        Dense eigenvalues up to :data:`DENSE_EIG_LIMIT` states, else
        :func:`scipy.sparse.linalg.eigs` (which only needs products ``T v``).
        For an explicit matrix with several closed classes or a periodic
        class, ``lambda_* = 1`` exactly and the result is ``inf``.

    Returns
    -------
    float
        ``inf`` when ``lambda_* >= 1``; ``nan`` if ARPACK failed.

    Examples
    --------
    >>> a, b = 0.3, 0.1   # two states, flip probabilities a and b: lambda_2 = 1 - a - b
    >>> round(relaxation_time(np.array([[1 - a, a], [b, 1 - b]])), 12)
    2.5
    """
    if isinstance(T, spl.LinearOperator):
        lam, _ = _lambda_star(T, None)
    else:
        _, A = _matrix_iv(T)
        lam, _ = _lambda_star(A, chain_classes(A))
    return _t_rel(lam)


def _t_rel(lam: float) -> float:
    if np.isnan(lam):
        return np.nan
    return np.inf if lam >= 1.0 - 1e-15 else 1.0 / (1.0 - lam)


def _reversibility(T, pi: np.ndarray, explicit: bool) -> tuple[bool, float]:
    """Whether ``pi_s T[s, s'] = pi_s' T[s', s]`` (relative violation returned)."""
    if explicit:
        A = sp.csr_array(T) if sp.issparse(T) else None
        F = (sp.diags_array(pi) @ A) if A is not None else pi[:, None] * T
        D = F - F.T
        viol = float(abs(D).max()) if A is not None else float(np.abs(D).max())
        scale = float(abs(F).max()) if A is not None else float(np.abs(F).max())
        rel = viol / scale if scale > 0 else 0.0
        return rel <= 1e-9, rel
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(3):
        u, v = rng.standard_normal(pi.size), rng.standard_normal(pi.size)
        a, b = (pi * u) @ T.matvec(v), (pi * v) @ T.matvec(u)
        worst = max(worst, abs(a - b) / max(abs(a) + abs(b), 1e-300))
    return worst <= 1e-6, worst


def _second_singular_value(T, pi: np.ndarray, explicit: bool) -> float:
    """``sigma_2`` of ``D^{1/2} T D^{-1/2}`` (its top singular pair is ``sqrt(pi)``, value 1)."""
    r = np.sqrt(pi)
    n = pi.size
    if explicit and n <= DENSE_EIG_LIMIT:
        dense = _dense_of(T)
        A = r[:, None] * dense / r[None, :] - np.outer(r, r)
        return float(sla.svdvals(A)[0])
    Top = spl.aslinearoperator(T) if explicit else T

    def mv(x):
        x = np.asarray(x).reshape(-1)
        x = x - r * (r @ x)
        return r * Top.matvec(x / r)

    def rmv(x):
        x = np.asarray(x).reshape(-1)
        y = Top.rmatvec(r * x) / r
        return y - r * (r @ y)

    op = spl.LinearOperator((n, n), matvec=mv, rmatvec=rmv, dtype=float)
    # svds runs Lanczos on X^T X: the Ritz value theta = s^2 is within tol*theta of an
    # eigenvalue, so s sqrt(1 + tol) bounds sigma_2 from above (keeps the mixing bound valid).
    tol = 1e-8
    s = spl.svds(op, k=1, which="LM", return_singular_vectors=False, tol=tol,
                 rng=np.random.default_rng(0))
    return float(min(1.0, s[0] * math.sqrt(1.0 + tol)))


def _bounds(T, pi, eps, lam, explicit, how) -> MixingBounds:
    t_rel = _t_rel(lam)
    pi_min = float(pi.min())
    if np.isnan(t_rel):
        return MixingBounds(np.nan, np.nan, "none", np.nan, lam, np.nan, False, pi_min,
                            f"no bounds: {how}.")
    lower = max(0.0, (t_rel - 1.0) * math.log(1.0 / (2.0 * eps))) if np.isfinite(t_rel) else np.inf
    if not np.isfinite(t_rel):
        why = ("" if explicit else f"; an eigenvalue other than 1 lies within {_UNIT_TOL:g} of "
               f"the unit circle: several closed classes or a periodic class (or mixing too slow "
               f"to resolve)")
        return MixingBounds(lower, np.inf, "none", t_rel, lam, np.nan, False, pi_min,
                            f"t_rel = inf ({how}{why}): t_mix = inf.")
    tiny = 0.0 if explicit else 1e-10
    if pi_min <= tiny:
        return MixingBounds(lower, np.inf, "none", t_rel, lam, np.nan, False, pi_min,
                            f"lower bound from t_rel ({how}); no upper bound: some states have "
                            f"pi = {pi_min:.3g} (transient states), and the spectral upper bounds "
                            f"need an irreducible chain.")
    rev, viol = _reversibility(T, pi, explicit)
    if rev:
        upper = t_rel * math.log(1.0 / (eps * pi_min))
        return MixingBounds(lower, upper, "reversible", t_rel, lam, lam, True, pi_min,
                            f"reversible chain: (t_rel - 1) log(1/(2 eps)) <= t_mix <= "
                            f"t_rel log(1/(eps pi_min)); t_rel from {how}.")
    sigma = _second_singular_value(T, pi, explicit)
    if sigma >= 1.0 - 1e-12:
        upper = np.inf
    else:
        arg = math.sqrt((1.0 - pi_min) / pi_min) / (2.0 * eps)
        upper = 0.0 if arg <= 1.0 else math.ceil(math.log(arg) / math.log(1.0 / sigma))
    return MixingBounds(lower, float(upper), "singular_value", t_rel, lam, sigma, False, pi_min,
                        f"not reversible (detailed balance off by {viol:.2g} relative), so "
                        f"t_rel log(1/(eps pi_min)) is no bound; upper bound from "
                        f"d(t) <= 0.5 sigma_2^t sqrt((1 - pi_min)/pi_min), sigma_2 = {sigma:.6g}; "
                        f"t_rel from {how}.")


def mixing_time_bounds(T, pi, eps: float = DEFAULT_EPS) -> MixingBounds:
    """Spectral bounds ``t_mix_lower <= t_mix(eps) <= t_mix_upper`` (module docstring).

    Parameters
    ----------
    T : ndarray, sparse matrix, SplitChain, or LinearOperator with ``matvec`` and ``rmatvec``
    pi : array_like
        The stationary law of ``T``.
    eps : float in ``(0, 1/2)``
    """
    eps = _eps_iv(eps)
    if isinstance(T, spl.LinearOperator):
        pi = _pi_iv(pi, T.shape[0])
        lam, how = _lambda_star(T, None)
        return _bounds(T, pi, eps, lam, False, how)
    T, A = _matrix_iv(T)
    pi = _pi_iv(pi, A.shape[0], A)
    lam, how = _lambda_star(A, chain_classes(A))
    return _bounds(A, pi, eps, lam, True, how)


# ====================================================================== the report
def _mixing_report_iv(model, eps, exact_limit):
    if not isinstance(model, ICSMDP):
        raise InvalidArgumentError(f"`model` must be an ICSMDP, got {type(model).__name__}.")
    eps = _eps_iv(eps)
    if isinstance(exact_limit, bool) or not isinstance(exact_limit, (int, np.integer)) or exact_limit < 1:
        raise InvalidArgumentError(f"`exact_limit` must be an integer >= 1, got {exact_limit!r}.")
    return eps, int(exact_limit)


def mixing_report(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None,
                  eps: float = DEFAULT_EPS, exact_limit: int = 5000, *,
                  max_doublings: int = DEFAULT_MAX_DOUBLINGS,
                  memory_limit: float = DEFAULT_MEMORY_LIMIT) -> MixingResult:
    """Mixing of the epoch chain under ``behavior`` (SPEC section 6).

    Up to ``exact_limit`` epoch states: exact ``t_mix(eps)`` and projected
    mixing times by doubling and binary search (:func:`mixing_time`), the
    relaxation time (dense eigenvalues or ARPACK on the dense ``T``), and
    ``t_mix_lower = t_mix_upper = t_mix``.

    Beyond ``exact_limit``: no power of ``T`` and no dense ``n x n`` array is
    formed. ``T`` is applied through end-law solves
    (:func:`~estimators.stationary.epoch_chain_operator`); ARPACK on ``T^T``
    gives ``lambda_*`` and ``pi`` (the eigenvector of eigenvalue 1), and the
    result carries ``t_mix = nan``, ``t_mix_is_exact = False`` and the bounds of
    :func:`mixing_time_bounds` in ``t_mix_lower``/``t_mix_upper``. Eigenvalues
    within ``1e-9`` of the unit circle count as ``|lambda_2| = 1`` there (several
    closed classes or a periodic class cannot be told apart from slow mixing
    without the chain's graph).

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, N+1)`` or None (uniform)
    eps : float in ``(0, 1/2)``
    exact_limit : int
        Largest number of epoch states for the exact computation (dense
        ``n x n`` powers: ``8 n^2`` bytes each).

    Returns
    -------
    MixingResult
    """
    t0 = time.perf_counter()
    eps, exact_limit = _mixing_report_iv(model, eps, exact_limit)
    max_doublings, memory_limit = _search_iv(max_doublings, memory_limit)
    behavior = validate_behavior(model, behavior)
    n = model.num_epoch_states
    settings = {"eps": eps, "exact_limit": exact_limit, "max_doublings": max_doublings,
                "memory_limit": memory_limit}
    if n > exact_limit:
        return _report_bounds(model, behavior, eps, settings, t0)
    split = epoch_chain_split(model, behavior)
    T = split.toarray()
    classes = chain_classes(T)
    rho0 = initial_epoch_law(model).reshape(-1)
    pi = np.asarray(long_run_occupancy(T, rho0, classes=classes).law)
    stepper = _EpochStepper(model, behavior)
    qs, powers = _run(T, pi, eps, [("observation", observation_projection(model)),
                                   ("decision", decision_projection(model, behavior))],
                      include_full=True, classes=classes, stepper=stepper,
                      stepper_cost=stepper.cost_per_column, max_doublings=max_doublings,
                      memory_limit=memory_limit)
    full, proj, proj_dec = qs
    lower = upper = full.t
    if full.status in ("cap", "memory"):
        lower = float(full.lo + 1)  # d(full.lo) > eps was observed
    lam, how = _lambda_star(T, classes)
    t_rel = _t_rel(lam)
    ok = all(q.status in ("exact", "periodic", "multiple_closed_classes", "limit_above_eps")
             for q in qs) and not np.isnan(t_rel)
    period = classes.periods[0] if classes.num_closed == 1 else 0
    notes = (f"t_mix: {full.message}", f"projected to (agent, observation): {proj.message}",
             f"projected to (agent, observation, successor): {proj_dec.message}",
             f"relaxation time: {how}.")
    return MixingResult(
        success=ok, status=full.status, message=full.message, iterations=powers.count,
        settings=settings, elapsed=time.perf_counter() - t0, eps=eps, num_epoch_states=n,
        t_mix=full.t, t_mix_is_exact=full.status in ("exact", "periodic", "multiple_closed_classes"),
        t_mix_lower=lower, t_mix_upper=upper, upper_bound_method="exact",
        relaxation_time=t_rel, second_eigenvalue_modulus=lam, projected_t_mix=proj.t,
        projected_t_mix_decision=proj_dec.t, num_closed_classes=classes.num_closed,
        period=int(period), pi_min=float(pi.min()), notes=notes)


def _report_bounds(model, behavior, eps, settings, t0) -> MixingResult:
    """The operator path beyond ``exact_limit`` (see :func:`mixing_report`).

    ``pi`` is the renewal occupancy of :func:`~estimators.stationary.stationary_law`
    (GMRES, cached and shared with the gap report); when that route does not
    apply (a state never reaches STOP) it is ARPACK's eigenvector of
    eigenvalue 1 of ``T^T``. ``lambda_*`` comes from ARPACK (2 eigenvalues of
    largest modulus, 20 Arnoldi vectors, tolerance ``1e-8``).
    """
    from estimators.stationary import stationary_law
    from icsmdp_theory.errors import StateSpaceTooLargeError
    n = model.num_epoch_states
    op = epoch_chain_operator(model, behavior)
    notes = []
    try:
        pi = np.asarray(stationary_law(model, behavior, max_states=settings["exact_limit"]).law,
                        dtype=float).reshape(-1)
        vals, vecs = _arpack(op.T, n, 2, ncv=20, vectors=False)
        pi_how = "pi: renewal occupancy (GMRES)"
    except StateSpaceTooLargeError:
        vals, vecs = _arpack(op.T, n, 2, ncv=20)
        pi = None
        pi_how = "pi: ARPACK eigenvector of eigenvalue 1"
    if len(vals) < 2:
        b = MixingBounds(np.nan, np.nan, "none", np.nan, np.nan, np.nan, False, np.nan,
                         "ARPACK did not converge.")
        pi_min = np.nan
    else:
        if pi is None:
            one = int(np.argmin(np.abs(vals - 1.0)))
            pi = np.real(vecs[:, one])
            pi = pi / pi.sum()
            pi = np.clip(pi, 0.0, None)
            pi /= pi.sum()
        lam = _lambda_star_from(vals)
        if lam >= 1.0 - _UNIT_TOL:
            lam = 1.0
        how = f"ARPACK on the operator T^T ({len(vals)} eigenvalues of largest modulus); {pi_how}"
        b = _bounds(op, pi, eps, lam, False, how)
        pi_min = float(pi.min())
    notes.append(b.message)
    notes.append("projected mixing times need powers of T: not computed beyond exact_limit.")
    ok = not np.isnan(b.lower)
    msg = (f"{n:,} epoch states > exact_limit = {settings['exact_limit']:,}: t_mix not computed; "
           f"bounds {b.lower:.6g} <= t_mix({eps:g}) <= {b.upper:.6g} ({b.upper_method}).")
    return MixingResult(
        success=bool(ok), status="bounds", message=msg, iterations=0, settings=settings,
        elapsed=time.perf_counter() - t0, eps=eps, num_epoch_states=n, t_mix=np.nan,
        t_mix_is_exact=False, t_mix_lower=float(b.lower), t_mix_upper=float(b.upper),
        upper_bound_method=b.upper_method, relaxation_time=float(b.relaxation_time),
        second_eigenvalue_modulus=float(b.second_eigenvalue_modulus), projected_t_mix=np.nan,
        projected_t_mix_decision=np.nan, num_closed_classes=-1, period=0, pi_min=float(pi_min),
        notes=tuple(notes))
