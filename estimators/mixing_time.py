"""Mixing of a finite chain given as a matrix: exact ``t_mix``, relaxation time, spectral bounds
(SPEC section 6).

Definitions (``T`` a transition matrix, e.g. the epoch chain of
:mod:`estimators.epoch_chain`, ``pi`` its long-run occupancy, TV ``= 0.5 L1``):

- ``d(t) = max_s TV(T^t(s, .), pi)`` over *every* state, and
  ``t_mix(eps) = min{t : d(t) <= eps}``;
- relaxation time ``t_rel = 1/(1 - lambda_*)``, ``lambda_*`` the largest
  modulus of an eigenvalue of ``T`` other than one copy of 1;
- projected: ``d_proj(t) = max_s TV(T^t(s, .) Pi, pi Pi)`` for a row-stochastic
  ``Pi`` that pushes a law on states to cells (for the epoch chain see
  :func:`estimators.mixing.observation_projection`). The projected process is
  not Markov; this is the mixing of its marginal.

Exact algorithm. ``d`` is non-increasing: ``T^{t+1}(s, .) = sum_z T(s, z) T^t(z, .)``
is a mixture of rows of ``T^t`` and TV is convex (the same argument holds
after any ``Pi``). So repeated squaring finds the first power of two ``2^k``
with ``d(2^k) <= eps``, and a binary search on ``(2^{k-1}, 2^k]`` using the stored
powers ``T^{2^j}`` finds ``t_mix`` with about ``2 log2 t_mix`` dense products
(``n^3`` each: about 0.5 s for 2,000 states on 2 cores; ``8 n^2`` bytes stored each). The
full and projected distances are evaluated on the same powers and searched
jointly (:func:`search_mixing_times`). A product with ``T`` itself may use a
block stepper (:class:`~estimators.epoch_chain.EpochStepper` for the epoch
chain), chosen when cheaper by a static cost model (:class:`MatrixPowers`).

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

Relaxation time (:func:`relaxation_time`). Several closed classes or a periodic
class give ``lambda_* = 1`` exactly. Otherwise a *reversible* chain (detailed
balance checked in log space, :func:`~estimators.markov_chain.detailed_balance`)
is symmetrized, ``S[s, s'] = sqrt(T[s, s'] T[s', s]) = (D^{1/2} T D^{-1/2})[s, s']``,
and ``S`` goes to a symmetric eigen-solver: :func:`scipy.linalg.eigh_tridiagonal`
when ``S`` is tridiagonal (birth-death chains), dense ``eigvalsh`` up to
:data:`DENSE_SYMMETRIC_EIG_LIMIT` states, Lanczos (``eigsh``) beyond. Symmetric
eigenvalues are perfectly conditioned; the eigenvalues of the non-normal ``T``
itself are not (for a birth-death chain with drift, ``T = D^{-1/2} S D^{1/2}``
with ``D`` spanning ``(p/q)^n``, and a general eigen-solver on ``T`` is off by a
factor of 2 already at ``n = 200``). A non-reversible chain uses LAPACK's
``geev`` up to :data:`DENSE_EIG_LIMIT` states and ARPACK (``eigs``) beyond. Every
ARPACK call (``eigs``, ``eigsh``, ``svds``) starts from a vector seeded by
:data:`ARPACK_SEED`, so results are reproducible.

Bounds (:func:`mixing_time_bounds`; used beyond ``exact_limit`` epoch states,
where no power of ``T`` is formed): ``t_mix(eps) >= (t_rel - 1) log(1/(2 eps))``
holds for every chain (the proof of Levin-Peres-Wilmer Theorem 12.5 only uses
an eigenvector ``T f = lambda f``: ``pi f = 0`` and
``|lambda|^t ||f||_inf <= 2 d(t) ||f||_inf``). The upper bound
``t_mix(eps) <= t_rel log(1/(eps pi_min))`` (LPW Theorem 12.4) needs a
*reversible* irreducible chain (``log pi_min`` is taken from the detailed-balance
potential, so it stays finite where ``pi_min`` underflows); for a
non-reversible chain the valid bound used instead is
``d(t) <= 0.5 sigma_2^t sqrt((1 - pi_min)/pi_min)``, with ``sigma_2`` the second
singular value of ``D^{1/2} T D^{-1/2}``, ``D = diag(pi)`` (the ``L2(pi)``
contraction of mean-zero signed measures). With transient states
(``pi_min = 0``) neither upper bound applies and ``inf`` is reported. A bound is
never ``nan``: when an eigen-solve does not converge, the trivially valid
bounds ``0`` and ``inf`` are returned with ``success=False`` and the message
names what could not be computed.

Examples
--------
A lazy two-state chain: ``d(t) = 0.5 * 0.5^t``, so ``t_mix(1/4) = 1``.

>>> T = np.array([[0.75, 0.25], [0.25, 0.75]])
>>> res = mixing_time(T, np.array([0.5, 0.5]), eps=0.25)
>>> res.t_mix, res.status
(1.0, 'exact')
>>> round(relaxation_time(T).relaxation_time, 12)   # lambda_2 = 1/2
2.0
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import Result
from estimators.epoch_chain import SplitChain
from estimators.markov_chain import (ChainClasses, DetailedBalance, chain_classes,
                                     detailed_balance, symmetrized_chain, validate_chain)

__all__ = ["MixingTimeResult", "MixingBounds", "RelaxationTime", "MatrixPowers", "mixing_time",
           "projected_mixing_time", "relaxation_time", "mixing_time_bounds",
           "search_mixing_times", "arpack_start_vector", "arpack_stationary_law", "validate_eps", "validate_search",
           "DEFAULT_EPS", "DENSE_EIG_LIMIT", "DENSE_SYMMETRIC_EIG_LIMIT", "DEFAULT_MAX_DOUBLINGS",
           "DEFAULT_MEMORY_LIMIT", "ARPACK_SEED", "UNIT_TOL"]

#: Default ``eps`` of ``t_mix(eps)`` (SPEC section 6).
DEFAULT_EPS = 0.25
#: Up to this many states a non-reversible chain's eigenvalues come from LAPACK; beyond, ARPACK.
DENSE_EIG_LIMIT = 250
#: Up to this many states a reversible chain's symmetrized matrix is diagonalized densely
#: (unless tridiagonal); beyond, Lanczos (``eigsh``).
DENSE_SYMMETRIC_EIG_LIMIT = 2000
#: Default cap on squarings: ``t_mix`` is searched up to ``2^30``.
DEFAULT_MAX_DOUBLINGS = 30
#: Default memory budget (bytes) for the stored powers ``T^{2^j}``.
DEFAULT_MEMORY_LIMIT = 4e9
#: Seed of the start vector of every ARPACK call.
ARPACK_SEED = 0
#: For an operator (no graph), ``|lambda|`` within this of 1 is counted as ``|lambda_2| = 1``.
UNIT_TOL = 1e-9
#: A limit distance within this of ``eps`` is reported as undetermined.
_LIMIT_TOL = 1e-10
#: Statuses of a settled mixing time (``success=True``).
_SETTLED = ("exact", "periodic", "multiple_closed_classes", "limit_above_eps")


# ====================================================================== results
@dataclass(frozen=True, kw_only=True, repr=False)
class MixingTimeResult(Result):
    """Result of :func:`mixing_time` / :func:`projected_mixing_time`.

    Attributes
    ----------
    t_mix : float
        The exact ``t_mix(eps)`` (an integer value), or ``inf`` (see ``status``/``message``).
    t_mix_lower : float
        A lower bound on ``t_mix``: ``t_mix`` itself when settled; one more than the
        largest ``t`` seen with ``d(t) > eps`` when the search stopped (``"cap"``,
        ``"memory"``); ``0`` when undetermined.
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
    t_mix_lower: float
    distance: float
    eps: float
    num_products: int


@dataclass(frozen=True, kw_only=True, repr=False)
class RelaxationTime(Result):
    """Result of :func:`relaxation_time`: ``t_rel = 1/(1 - lambda_*)``.

    Attributes
    ----------
    relaxation_time : float
        ``inf`` when ``lambda_* = 1``; ``nan`` when the eigen-solver did not converge
        (``status="max_iter"``, ``success=False``).
    second_eigenvalue_modulus : float
        ``lambda_*``, the largest modulus of an eigenvalue other than one copy of 1.
    method : str
        ``"class_structure"`` (several closed classes or a periodic class: ``lambda_* = 1``
        exactly), ``"symmetric_tridiagonal"``, ``"symmetric_dense"``, ``"symmetric_lanczos"``
        (reversible chains), ``"dense_eigenvalues"`` or ``"arnoldi"`` (non-reversible chains
        and operators).
    is_reversible : bool
        Whether detailed balance holds (``False`` when not checked: an operator, or a chain
        whose classes settle ``lambda_*``).

    ``status``: ``"computed"`` (direct methods), ``"converged"`` (ARPACK),
    ``"periodic"`` / ``"multiple_closed_classes"`` (``lambda_* = 1``),
    ``"max_iter"`` (ARPACK did not converge).
    """

    relaxation_time: float
    second_eigenvalue_modulus: float
    method: str
    is_reversible: bool


@dataclass(frozen=True, kw_only=True, repr=False)
class MixingBounds(Result):
    """Bounds on ``t_mix(eps)`` from spectral quantities (module docstring), never ``nan``.

    Attributes
    ----------
    lower : float
        ``max(0, (t_rel - 1) log(1/(2 eps)))``; valid for every chain (``0`` when ``t_rel``
        could not be computed).
    upper : float
        ``t_rel log(1/(eps pi_min))`` for a reversible chain (``upper_method="reversible"``),
        the singular-value bound otherwise (``"singular_value"``), ``inf`` when none applies
        or a needed quantity could not be computed (``"none"``).
    upper_method : str
    relaxation_time, second_eigenvalue_modulus : float
        As in :class:`RelaxationTime` (``nan`` when not computed).
    second_singular_value : float
        ``sigma_2`` of ``D^{1/2} T D^{-1/2}`` (``nan`` when not needed or not computed).
    is_reversible : bool
    pi_min : float

    ``status``: ``"computed"``, or ``"max_iter"`` (``success=False``) when an eigen-solve
    did not converge and a trivial bound was returned in its place.
    """

    lower: float
    upper: float
    upper_method: str
    relaxation_time: float
    second_eigenvalue_modulus: float
    second_singular_value: float
    is_reversible: bool
    pi_min: float


# ====================================================================== validation
def validate_eps(eps) -> float:
    """``eps`` of ``t_mix(eps)`` as a float in ``(0, 1/2)``; raises :class:`InvalidArgumentError`."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"`eps` must be a number in (0, 0.5), got {eps!r}.")
    eps = float(eps)
    if not 0.0 < eps < 0.5:
        raise InvalidArgumentError(
            f"`eps` must lie in (0, 0.5) (for eps >= 1/2 a periodic or reducible chain could "
            f"count as mixed), got {eps!r}.")
    return eps


def validate_search(max_doublings, memory_limit) -> tuple[int, float]:
    """``(max_doublings, memory_limit)`` of the mixing-time search, validated."""
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
        return T, validate_chain(T.tocsr(), "T")
    A = validate_chain(T, "T")
    return A, A

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


class MatrixPowers:
    """Dense powers of ``T`` with a cost model choosing between block steps and products.

    Parameters
    ----------
    T_dense : ndarray, shape (n, n)
    stepper : callable ``X -> T @ X`` or None
        E.g. :class:`~estimators.epoch_chain.EpochStepper`.
    stepper_cost_per_column : float or None
        Estimated seconds of one step per column of ``X``; a dense product is
        estimated at ``2 n^3 / 2.5e10`` seconds.

    Attributes
    ----------
    count : int
        Dense products and block steps performed so far.
    """

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


def _search(powers: MatrixPowers, quantities: list[_Quantity], eps: float, max_doublings: int,
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


def _limit_distances(powers: MatrixPowers, quantities, classes: ChainClasses, max_doublings: int):
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


def search_mixing_times(T_dense: np.ndarray, pi: np.ndarray, projections=(), *, eps: float,
                        classes: ChainClasses, include_full: bool = True, stepper=None,
                        max_doublings: int = DEFAULT_MAX_DOUBLINGS,
                        memory_limit: float = DEFAULT_MEMORY_LIMIT, settings: dict | None = None
                        ) -> tuple[list[MixingTimeResult], int]:
    """The joint doubling and binary search of the module docstring, on validated inputs.

    Parameters
    ----------
    T_dense : ndarray, shape (n, n)
        The chain (validated); ``pi`` a stationary law of it (validated).
    projections : sequence of ``(name, Pi)``
        Row-stochastic CSR projections ``Pi`` (n x k) searched with the same powers.
    eps : float in ``(0, 1/2)``
    classes : ChainClasses
        :func:`~estimators.markov_chain.chain_classes` of ``T``.
    include_full : bool
        Search the full distance ``d(t)`` too (first in the returned list).
    stepper : callable ``X -> T @ X`` with attribute ``cost_per_column``, optional
        Block steps (:class:`~estimators.epoch_chain.EpochStepper`) used when cheaper.
    max_doublings, memory_limit
        See :func:`mixing_time`.
    settings : dict, optional
        Stored in the results.

    Returns
    -------
    (list of MixingTimeResult, int)
        One result per quantity (full first, then the projections in order) and the
        number of dense products and block steps performed.
    """
    t0 = time.perf_counter()
    settings = {} if settings is None else settings
    powers = MatrixPowers(T_dense, stepper, None if stepper is None else stepper.cost_per_column)
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
    return [_as_result(q, eps, powers.count, t0, settings) for q in qs], powers.count


def _as_result(q: _Quantity, eps, count, t0, settings) -> MixingTimeResult:
    ok = q.status in _SETTLED
    if ok:
        lower = q.t
    elif q.status in ("cap", "memory"):
        lower = float(q.lo + 1)  # d(q.lo) > eps was observed
    else:
        lower = 0.0
    return MixingTimeResult(success=ok, status=q.status, message=q.message, iterations=count,
                            settings=settings, elapsed=time.perf_counter() - t0, t_mix=q.t,
                            t_mix_lower=lower, distance=float(q.d_hi), eps=eps,
                            num_products=count)


def _dense_of(T):
    if isinstance(T, SplitChain):
        return T.toarray()
    return T.toarray() if sp.issparse(T) else np.ascontiguousarray(T, dtype=float)


def mixing_time(T, pi, *, eps: float = DEFAULT_EPS, max_doublings: int = DEFAULT_MAX_DOUBLINGS,
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
    eps = validate_eps(eps)
    max_doublings, memory_limit = validate_search(max_doublings, memory_limit)
    T, A = _matrix_iv(T)
    pi = _pi_iv(pi, A.shape[0], A)
    classes = chain_classes(A)
    settings = {"eps": eps, "max_doublings": max_doublings, "memory_limit": memory_limit}
    (res,), _ = search_mixing_times(_dense_of(T), pi, eps=eps, classes=classes,
                                    max_doublings=max_doublings, memory_limit=memory_limit,
                                    settings=settings)
    return replace(res, elapsed=time.perf_counter() - t0)


def projected_mixing_time(T, pi, projection, *, eps: float = DEFAULT_EPS,
                          max_doublings: int = DEFAULT_MAX_DOUBLINGS,
                          memory_limit: float = DEFAULT_MEMORY_LIMIT) -> MixingTimeResult:
    """``min{t : max_s TV(T^t(s, .) Pi, pi Pi) <= eps}`` for a row-stochastic ``Pi`` (n x k).

    The projected process is not Markov; this is the mixing of its marginal.
    ``d_proj`` is non-increasing in ``t`` (module docstring), so the same
    doubling and binary search apply. See :func:`estimators.mixing.observation_projection` and
    :func:`estimators.mixing.decision_projection` for the epoch chain's cells.
    """
    t0 = time.perf_counter()
    eps = validate_eps(eps)
    max_doublings, memory_limit = validate_search(max_doublings, memory_limit)
    T, A = _matrix_iv(T)
    n = A.shape[0]
    pi = _pi_iv(pi, n, A)
    P = _projection_iv(projection, n)
    settings = {"eps": eps, "max_doublings": max_doublings, "memory_limit": memory_limit}
    (res,), _ = search_mixing_times(_dense_of(T), pi, [("projected", P)], eps=eps,
                                    classes=chain_classes(A), include_full=False,
                                    max_doublings=max_doublings, memory_limit=memory_limit,
                                    settings=settings)
    return replace(res, elapsed=time.perf_counter() - t0)




# ====================================================================== spectra
def arpack_start_vector(n: int) -> np.ndarray:
    """The start vector ``v0`` of every ARPACK call here: ``n`` standard normals drawn from
    ``numpy.random.default_rng(ARPACK_SEED)`` (ARPACK's own start is random per call)."""
    return np.random.default_rng(ARPACK_SEED).standard_normal(n)


def _arpack(op, n, k, which="LM", tol=1e-8, ncv=40, vectors=True):
    """``eigs`` with a seeded start; on non-convergence, whatever converged."""
    k = max(1, min(k, n - 2))
    ncv = min(n, max(2 * k + 1, ncv))
    try:
        out = spl.eigs(op, k=k, which=which, ncv=ncv, tol=tol, maxiter=3000,
                       v0=arpack_start_vector(n), return_eigenvectors=vectors)
        return out if vectors else (out, None)
    except spl.ArpackNoConvergence as err:  # keep what converged
        return err.eigenvalues, err.eigenvectors


def _lanczos(op, n, k=2, tol=1e-12):
    """``eigsh`` (largest modulus) with a seeded start; on non-convergence, what converged."""
    k = max(1, min(k, n - 1))
    try:
        return spl.eigsh(op, k=k, which="LM", ncv=min(n, 40), tol=tol, maxiter=max(3000, 10 * n),
                         v0=arpack_start_vector(n), return_eigenvectors=False)
    except spl.ArpackNoConvergence as err:
        return err.eigenvalues


def arpack_stationary_law(op: spl.LinearOperator) -> np.ndarray | None:
    """``pi`` from ARPACK's eigenvector of eigenvalue 1 of ``T^T`` (``op`` applies ``T``, with
    ``rmatvec``); negative round-off clipped, normalized. ``None`` when ARPACK did not converge.

    Used when no exact or renewal route to ``pi`` applies; ``pi`` of a chain with several
    closed classes is not unique and this returns one of them.
    """
    n = op.shape[0]
    vals, vecs = _arpack(op.T, n, 2, ncv=20)
    if vecs is None or len(vals) < 1:
        return None
    one = int(np.argmin(np.abs(vals - 1.0)))
    pi = np.real(vecs[:, one])
    pi = pi / pi.sum()
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _lambda_star_from(vals: np.ndarray) -> float:
    """Largest modulus among ``vals`` after removing one copy of the eigenvalue closest to 1."""
    vals = np.asarray(vals)
    if vals.size <= 1:
        return 0.0
    one = int(np.argmin(np.abs(vals - 1.0)))
    return float(np.abs(np.delete(vals, one)).max())


def _t_rel(lam: float) -> float:
    if np.isnan(lam):
        return np.nan
    return np.inf if lam >= 1.0 - 1e-15 else 1.0 / (1.0 - lam)


def _symmetric_spectrum(A) -> tuple[float, str, str, str]:
    """``(lambda_*, method, how, status)`` of a reversible chain through ``S = D^{1/2} T D^{-1/2}``."""
    n = A.shape[0]
    S = symmetrized_chain(A)
    if sp.issparse(S):
        coo = S.tocoo()
        tridiagonal = bool(np.all(np.abs(coo.row - coo.col) <= 1))
    else:
        tridiagonal = not np.triu(S, 2).any()
    if tridiagonal:
        d = np.asarray(S.diagonal(), dtype=float)
        e = np.asarray(S.diagonal(1) if sp.issparse(S) else np.diag(S, 1), dtype=float)
        vals = sla.eigh_tridiagonal(d, e, eigvals_only=True) if n > 1 else d
        return (_lambda_star_from(vals), "symmetric_tridiagonal",
                "eigh_tridiagonal on S = D^{1/2} T D^{-1/2} (reversible, tridiagonal)", "computed")
    if n <= DENSE_SYMMETRIC_EIG_LIMIT:
        vals = sla.eigvalsh(S.toarray() if sp.issparse(S) else S)
        return (_lambda_star_from(vals), "symmetric_dense",
                "dense eigvalsh on S = D^{1/2} T D^{-1/2} (reversible)", "computed")
    vals = _lanczos(sp.csr_array(S), n)
    if len(vals) < 2:
        return np.nan, "symmetric_lanczos", "Lanczos (eigsh) on S did not converge", "max_iter"
    return (_lambda_star_from(vals), "symmetric_lanczos",
            f"Lanczos (eigsh, {len(vals)} eigenvalues of largest modulus) on "
            f"S = D^{{1/2}} T D^{{-1/2}} (reversible)", "converged")


def _general_spectrum(T) -> tuple[float, str, str, str]:
    """``(lambda_*, method, how, status)`` of an explicit non-reversible matrix or an operator."""
    n = T.shape[0]
    if n <= 2 or (n <= DENSE_EIG_LIMIT and not isinstance(T, spl.LinearOperator)):
        dense = _dense_of(T) if not isinstance(T, spl.LinearOperator) else T @ np.eye(n)
        return _lambda_star_from(sla.eigvals(dense)), "dense_eigenvalues", "dense eigenvalues", \
            "computed"
    op = spl.aslinearoperator(T) if not isinstance(T, spl.LinearOperator) else T
    vals, _ = _arpack(op, n, 2, vectors=False)
    if len(vals) < 2:
        return np.nan, "arnoldi", "ARPACK did not converge", "max_iter"
    return (_lambda_star_from(vals), "arnoldi",
            f"ARPACK ({len(vals)} eigenvalues of largest modulus)", "converged")


def _relaxation_result(lam, method, how, status, reversible, t0) -> RelaxationTime:
    t_rel = _t_rel(lam)
    if np.isnan(t_rel):
        msg = f"relaxation time not computed: {how}."
    else:
        msg = f"t_rel = {t_rel:.6g} from {how}."
    return RelaxationTime(success=status != "max_iter", status=status, message=msg,
                          elapsed=time.perf_counter() - t0, relaxation_time=t_rel,
                          second_eigenvalue_modulus=float(lam), method=method,
                          is_reversible=bool(reversible))


def _explicit_relaxation(A, classes: ChainClasses, t0: float
                         ) -> tuple[RelaxationTime, DetailedBalance | None]:
    if not classes.is_ergodic_unichain:
        several = classes.num_closed > 1
        why = f"{classes.num_closed} closed classes" if several else f"period {classes.periods[0]}"
        status = "multiple_closed_classes" if several else "periodic"
        return _relaxation_result(1.0, "class_structure", f"|lambda_2| = 1 exactly ({why})",
                                  status, False, t0), None
    db = detailed_balance(A)
    if db.is_reversible:
        lam, method, how, status = _symmetric_spectrum(A)
    else:
        lam, method, how, status = _general_spectrum(A)
    return _relaxation_result(lam, method, how, status, db.is_reversible, t0), db


def _operator_relaxation(op: spl.LinearOperator, t0: float, pi: np.ndarray | None = None
                         ) -> RelaxationTime:
    """ARPACK on ``op``; Lanczos on ``x -> r T(x / r)``, ``r = sqrt(pi)``, when ``pi`` is given
    (the chain then passed the randomized detailed-balance check and ``pi > 0``)."""
    n = op.shape[0]
    if pi is not None and n > 2:
        r = np.sqrt(pi)

        def mv(x):
            x = np.asarray(x).reshape(-1)
            return r * op.matvec(x / r)

        vals = _lanczos(spl.LinearOperator((n, n), matvec=mv, rmatvec=mv, dtype=float), n)
        if len(vals) < 2:
            lam, method, how, status = (np.nan, "symmetric_lanczos",
                                        "Lanczos (eigsh) on D^{1/2} T D^{-1/2} did not converge",
                                        "max_iter")
        else:
            lam, method, status = _lambda_star_from(vals), "symmetric_lanczos", "converged"
            how = (f"Lanczos (eigsh, {len(vals)} eigenvalues of largest modulus) on the "
                   f"operator D^{{1/2}} T D^{{-1/2}} (reversible)")
    else:
        lam, method, how, status = _general_spectrum(op)
    if lam >= 1.0 - UNIT_TOL:
        lam = 1.0
    return _relaxation_result(lam, method, how, status, pi is not None, t0)


def relaxation_time(T, *, classes: ChainClasses | None = None) -> RelaxationTime:
    """``t_rel = 1/(1 - lambda_*)``, ``lambda_*`` the second largest eigenvalue modulus.

    Parameters
    ----------
    T : ndarray, sparse matrix, SplitChain or LinearOperator (n, n)
        For an explicit matrix: ``lambda_* = 1`` exactly with several closed
        classes or a periodic class; a reversible chain (detailed balance in log
        space) goes to a symmetric eigen-solver on ``D^{1/2} T D^{-1/2}``
        (tridiagonal, dense, or Lanczos beyond :data:`DENSE_SYMMETRIC_EIG_LIMIT`);
        a non-reversible one to dense eigenvalues up to :data:`DENSE_EIG_LIMIT`
        states, else :func:`scipy.sparse.linalg.eigs` (module docstring). An
        operator goes to ``eigs`` (products ``T v`` only); eigenvalues within
        :data:`UNIT_TOL` of the unit circle then count as ``|lambda_2| = 1``.
        Every ARPACK call is seeded.
    classes : ChainClasses, optional
        Precomputed :func:`~estimators.markov_chain.chain_classes` of ``T``.

    Returns
    -------
    RelaxationTime
        ``relaxation_time = inf`` when ``lambda_* >= 1``; ``nan`` with
        ``status="max_iter"`` if ARPACK did not converge.

    Examples
    --------
    >>> a, b = 0.3, 0.1   # two states, flip probabilities a and b: lambda_2 = 1 - a - b
    >>> round(relaxation_time(np.array([[1 - a, a], [b, 1 - b]])).relaxation_time, 12)
    2.5
    >>> n, p, q = 200, 0.1, 0.4   # birth-death chain with drift: 1 - p - q + 2 sqrt(pq) cos(pi/n)
    >>> T = np.diag(np.full(n - 1, p), 1) + np.diag(np.full(n - 1, q), -1)
    >>> T += np.diag(1.0 - T.sum(axis=1))
    >>> res = relaxation_time(T)
    >>> res.method, round(res.relaxation_time, 6)
    ('symmetric_tridiagonal', 9.995068)
    """
    t0 = time.perf_counter()
    if isinstance(T, spl.LinearOperator):
        return _operator_relaxation(T, t0)
    _, A = _matrix_iv(T)
    classes = chain_classes(A) if classes is None else classes
    return _explicit_relaxation(A, classes, t0)[0]


def _operator_reversibility(op, pi: np.ndarray) -> tuple[bool, float]:
    """Randomized detailed-balance check ``(pi u) . T v = (pi v) . T u`` on 3 seeded pairs."""
    rng = np.random.default_rng(ARPACK_SEED)
    worst = 0.0
    for _ in range(3):
        u, v = rng.standard_normal(pi.size), rng.standard_normal(pi.size)
        a, b = (pi * u) @ op.matvec(v), (pi * v) @ op.matvec(u)
        worst = max(worst, abs(a - b) / max(abs(a) + abs(b), 1e-300))
    return worst <= 1e-6, worst


def _second_singular_value(T, pi: np.ndarray, explicit: bool) -> float:
    """``sigma_2`` of ``D^{1/2} T D^{-1/2}`` (its top singular pair is ``sqrt(pi)``, value 1);
    ``nan`` when ARPACK does not converge."""
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
    try:
        s = spl.svds(op, k=1, which="LM", return_singular_vectors=False, tol=tol,
                     rng=np.random.default_rng(ARPACK_SEED))
    except spl.ArpackNoConvergence:
        return np.nan
    return float(min(1.0, s[0] * math.sqrt(1.0 + tol)))


def _bounds(T, pi, eps, rt: RelaxationTime, db: DetailedBalance | None, explicit: bool,
            settings: dict, t0: float, operator_violation: float = np.nan) -> MixingBounds:
    """The bounds of the module docstring from ``t_rel`` (``rt``) and, if needed, ``sigma_2``."""
    t_rel, lam, how = rt.relaxation_time, rt.second_eigenvalue_modulus, rt.message.rstrip(".")
    pi_min = float(pi.min())

    def out(lower, upper, method, sigma, rev, message, status="computed", pm=pi_min):
        return MixingBounds(success=status == "computed", status=status, message=message,
                            settings=settings, elapsed=time.perf_counter() - t0,
                            lower=float(lower), upper=float(upper), upper_method=method,
                            relaxation_time=float(t_rel), second_eigenvalue_modulus=float(lam),
                            second_singular_value=float(sigma), is_reversible=bool(rev),
                            pi_min=float(pm))

    if np.isnan(t_rel):
        return out(0.0, np.inf, "none", np.nan, rt.is_reversible,
                   f"{how}, so only the trivially valid bounds 0 <= t_mix <= inf are "
                   f"reported.", "max_iter")
    lower = max(0.0, (t_rel - 1.0) * math.log(1.0 / (2.0 * eps))) if np.isfinite(t_rel) else np.inf
    if not np.isfinite(t_rel):
        why = ("" if explicit else f"; an eigenvalue other than 1 lies within {UNIT_TOL:g} of "
               f"the unit circle: several closed classes or a periodic class (or mixing too slow "
               f"to resolve)")
        return out(lower, np.inf, "none", np.nan, False, f"{how}{why}: t_mix = inf.")
    if explicit and db is not None and db.is_reversible and db.log_pi is not None:
        log_pi_min = float(db.log_pi.min())
        upper = t_rel * (math.log(1.0 / eps) - log_pi_min)
        note = ("" if pi_min > 0 else f" (log pi_min = {log_pi_min:.6g} from the detailed-balance "
                f"potential; pi_min itself underflows)")
        return out(lower, upper, "reversible", lam, True,
                   f"reversible chain: (t_rel - 1) log(1/(2 eps)) <= t_mix <= "
                   f"t_rel log(1/(eps pi_min)){note}; {how}.", pm=math.exp(log_pi_min))
    tiny = 0.0 if explicit else 1e-10
    if pi_min <= tiny:
        return out(lower, np.inf, "none", np.nan, rt.is_reversible,
                   f"lower bound from {how}; no upper bound: some states have "
                   f"pi = {pi_min:.3g} (transient states), and the spectral upper bounds "
                   f"need an irreducible chain.")
    if not explicit and rt.is_reversible:
        upper = t_rel * math.log(1.0 / (eps * pi_min))
        return out(lower, upper, "reversible", lam, True,
                   f"reversible chain: (t_rel - 1) log(1/(2 eps)) <= t_mix <= "
                   f"t_rel log(1/(eps pi_min)); {how}.")
    if explicit:
        viol = f"detailed balance fails: {db.reason}" if db is not None else "not checked"
    else:
        viol = f"detailed balance off by {operator_violation:.2g} relative"
    sigma = _second_singular_value(T, pi, explicit)
    if np.isnan(sigma):
        return out(lower, np.inf, "none", np.nan, False,
                   f"not reversible ({viol}); the second singular value of D^{{1/2}} T D^{{-1/2}} "
                   f"could not be computed (ARPACK did not converge), so no upper bound; "
                   f"{how}.", "max_iter")
    if sigma >= 1.0 - 1e-12:
        upper = np.inf
    else:
        arg = math.sqrt((1.0 - pi_min) / pi_min) / (2.0 * eps)
        upper = 0.0 if arg <= 1.0 else math.ceil(math.log(arg) / math.log(1.0 / sigma))
    return out(lower, upper, "singular_value", sigma, False,
               f"not reversible ({viol}), so t_rel log(1/(eps pi_min)) is no bound; upper bound "
               f"from d(t) <= 0.5 sigma_2^t sqrt((1 - pi_min)/pi_min), sigma_2 = {sigma:.6g}; "
               f"{how}.")


def mixing_time_bounds(T, pi, *, eps: float = DEFAULT_EPS,
                       relaxation: RelaxationTime | None = None) -> MixingBounds:
    """Spectral bounds ``lower <= t_mix(eps) <= upper`` (module docstring); never ``nan``.

    Parameters
    ----------
    T : ndarray, sparse matrix, SplitChain, or LinearOperator with ``matvec`` and ``rmatvec``
    pi : array_like
        The stationary law of ``T`` (checked for an explicit matrix).
    eps : float in ``(0, 1/2)``
    relaxation : RelaxationTime, optional
        A precomputed :func:`relaxation_time` of an operator ``T`` (ignored for explicit matrices,
        whose spectrum and detailed balance are computed here).

    Returns
    -------
    MixingBounds
        ``success=False`` (``status="max_iter"``) when an eigen-solve did not converge; the
        bounds are then the trivially valid ``0`` / ``inf`` and the message says which.

    Examples
    --------
    >>> b = mixing_time_bounds(np.array([[0.75, 0.25], [0.25, 0.75]]), [0.5, 0.5])
    >>> b.upper_method, round(b.lower, 6), round(b.upper, 6)
    ('reversible', 0.693147, 4.158883)
    """
    t0 = time.perf_counter()
    eps = validate_eps(eps)
    settings = {"eps": eps}
    if isinstance(T, spl.LinearOperator):
        pi = _pi_iv(pi, T.shape[0])
        rev, viol = _operator_reversibility(T, pi)
        if relaxation is None:
            relaxation = _operator_relaxation(T, t0, pi if rev and pi.min() > 1e-10 else None)
        return _bounds(T, pi, eps, relaxation, None, False, settings, t0, viol)
    T, A = _matrix_iv(T)
    pi = _pi_iv(pi, A.shape[0], A)
    rt, db = _explicit_relaxation(A, chain_classes(A), t0)
    return _bounds(A, pi, eps, rt, db, True, settings, t0)
