r"""The TV Chebyshev radius of a finite set of laws, by linear programming (SPEC section 5).

For laws ``p_s`` on a finite support the radius is

      r = min_{q in Delta} max_s TV(p_s, q),

the smallest ``delta`` any single law ``q`` achieves against all of them;
:mod:`estimators.minimax` applies it to each observation cell.

The radius is a linear program (``scipy.optimize.linprog``, HiGHS). Since
``sum_k q_k = 1``, ``TV(p, q) = sum_k (p_k - q_k)^+ + (1 - sum_k p_k)/2``, which
gives the form solved here (half the rows of ``u_k >= |p_k - q_k|``; ``w`` is
needed only where ``p_sk > 0``):

    minimize t  over q >= 0, w >= 0, t
    subject to  w_sk >= p_sk - q_k,   sum_k w_sk + (1 - m_s)/2 <= t,   sum_k q_k <= 1

(``sum q <= 1`` loses nothing: adding mass to ``q`` never increases a ``w``).
The LP is reduced before it is solved:

1. identical laws are merged (rows rounded to ``1e-13``); a single distinct law
   has radius 0;
2. support points where every law is 0 are dropped (moving centre mass off
   them never hurts);
3. *states* are added lazily: the LP runs on an active subset and the laws
   whose TV to the centre exceeds its value are added (cutting planes);
4. for long supports (more than 64 points), *support points* are merged into
   blocks (per ``o'``: single durations up to 8, then blocks of doubling
   length) and blocks are split where the lifted centre loses most;
5. once no law violates the merged LP, the dual weights ``lambda`` fix the
   centre by complementary slackness on every column except a few "free"
   ones, and a small LP over those gives a centre on the full support
   (``_polish``); with optimal weights it is an optimal centre.

Each round yields a certified bracket ``lower <= r <= radius`` computed in
exact arithmetic from the LP output, whatever the solver's tolerances:
``radius = max_s TV(p_s, q)`` for an explicit probability law ``q`` (the LP
centre lifted to the full support, the polished centre, or the cell mean),
and ``lower = g(lambda)``
with ``lambda`` the LP's dual weights on the states and

    g(lambda) = sum_s lambda_s (1 - m_s)/2
                + min_{q >= 0, sum q <= 1} sum_k sum_s lambda_s (p_sk - q_k)^+

(weak duality; the inner minimum is a greedy water-filling over the
piecewise-linear columns). Merging support points can only lower TV, so the
merged LP never overstates the radius. Iteration stops when
``radius - lower <= tol``.

Cost: a cell of 600 laws on 780 support points (the benchmark of
:mod:`estimators.gaps`) takes about 4-5 LP solves of ~15-20 laws by ~100 blocks,
~0.4 s of CPU.

Examples
--------
Two laws at TV distance 1 have radius 1/2 (their midpoint):

>>> res = tv_chebyshev_radius([[1.0, 0.0], [0.0, 1.0]])
>>> round(res.radius, 12), round(res.lower_bound, 12), res.center.round(6).tolist()
(0.5, 0.5, [0.5, 0.5])
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import Result

__all__ = ["ChebyshevRadius", "tv_chebyshev_radius", "MINIMAX_TOL", "EXACT_SUPPORT"]

#: Default width of the certified bracket on each radius.
MINIMAX_TOL = 1e-9
#: HiGHS tolerances (the bracket is certified independently of them).
_HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
#: Supports up to this size are solved without merging support points.
EXACT_SUPPORT = 64


@dataclass(frozen=True, kw_only=True, repr=False)
class ChebyshevRadius(Result):
    """TV Chebyshev radius of a finite set of laws, with a certified bracket.

    Attributes
    ----------
    radius : float
        ``max_s TV(p_s, center)``: achieved by :attr:`center`, an upper bound on the radius.
    lower_bound : float
        A certified lower bound on the radius (dual weights, weak duality).
    center : ndarray, shape (K,)
        A probability law on the input support achieving :attr:`radius`.
    num_laws, num_distinct_laws : int
        Rows given, and rows left after merging identical laws.
    support_size : int
        Support points where some law is positive.
    lp_solves : int
        Linear programs solved.
    """

    radius: float
    lower_bound: float
    center: np.ndarray
    num_laws: int
    num_distinct_laws: int
    support_size: int
    lp_solves: int


def _tv_rows(P: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(P - q).sum(axis=1)


def _lp(Pc: np.ndarray, c: np.ndarray):
    """Solve the merged LP on active laws ``Pc`` (n, K'): returns (q, lambda, value)."""
    n, K = Pc.shape
    s_idx, k_idx = np.nonzero(Pc > 0)
    nw = s_idx.size
    nv = K + nw + 1
    r = np.arange(nw)
    rows = np.concatenate([r, r, nw + s_idx, nw + np.arange(n), np.full(K, nw + n)])
    cols = np.concatenate([k_idx, K + r, K + r, np.full(n, nv - 1), np.arange(K)])
    vals = np.concatenate([-np.ones(2 * nw), np.ones(nw), -np.ones(n), np.ones(K)])
    A = sp.csr_array((vals, (rows, cols)), shape=(nw + n + 1, nv))
    b = np.concatenate([-Pc[s_idx, k_idx], -c, [1.0]])
    cost = np.zeros(nv)
    cost[-1] = 1.0
    res = linprog(cost, A_ub=A, b_ub=b, bounds=(0, None), method="highs", options=_HIGHS_OPTIONS)
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        raise RuntimeError(f"linprog failed on the Chebyshev-radius LP: {res.message}")
    q = np.maximum(res.x[:K], 0.0)
    lam = np.maximum(-np.asarray(res.ineqlin.marginals[nw:nw + n]), 0.0)
    if lam.sum() <= 0:
        lam = np.full(n, 1.0 / n)
    return q, lam / lam.sum(), float(res.fun)


def _dual_bound(P: np.ndarray, c: np.ndarray, lam: np.ndarray) -> float:
    """``g(lambda)``: a lower bound on the radius for any weights ``lambda`` on the rows."""
    sel = lam > 0
    P, c, lam = P[sel], c[sel], lam[sel] / lam[sel].sum()
    K = P.shape[1]
    order = np.argsort(-P, axis=0, kind="stable")
    v = np.take_along_axis(P, order, axis=0)             # column values, descending
    marginal = np.cumsum(lam[order], axis=0)              # value of mass on [v_{j+1}, v_j]
    length = v - np.vstack([v[1:], np.zeros((1, K))])
    length, marginal = length.ravel(), marginal.ravel()
    keep = length > 0
    length, marginal = length[keep], marginal[keep]
    o = np.argsort(-marginal, kind="stable")
    length, marginal = length[o], marginal[o]
    before = np.cumsum(length) - length
    filled = np.clip(1.0 - before, 0.0, length)
    return float(lam @ c + lam @ P.sum(axis=1) - filled @ marginal)


def _polish(P: np.ndarray, c: np.ndarray, lam: np.ndarray, *, eps: float = 1e-7):
    """A centre on the full support from dual weights ``lam`` (complementary slackness).

    If ``lam`` is optimal, every optimal centre minimizes ``sum_s lam_s TV(p_s, q)``:
    the water-filling fixes ``q_k`` on every column except those whose marginal
    value ``Lambda_k`` equals the threshold ``theta`` on an interval ("free"
    columns). A small LP over the free columns (and the laws ``P``) finishes the
    centre. Returns ``None`` when there is nothing to polish.
    """
    n, K = P.shape
    order = np.argsort(-P, axis=0, kind="stable")
    v = np.take_along_axis(P, order, axis=0)
    lam_sorted = lam[order]
    marginal = np.cumsum(lam_sorted, axis=0)             # piece j: x in [v[j+1], v[j]]
    below = np.vstack([v[1:], np.zeros((1, K))])
    length = (v - below).ravel()
    mvals = marginal.ravel()
    o = np.argsort(-mvals, kind="stable")
    cum = np.cumsum(length[o])
    if cum[-1] <= 1.0:
        return None                                       # max_s p_s fits in the budget
    theta = float(mvals[o][np.searchsorted(cum, 1.0)])
    filled = marginal > theta + eps                      # pieces filled for sure
    free = np.abs(marginal - theta) <= eps
    # q_lo[k] = top of the filled pieces; q_hi[k] = top of the free pieces (pieces are nested)
    q_lo = np.where(filled, v, 0.0).max(axis=0)
    q_hi = np.maximum(np.where(free, v, 0.0).max(axis=0), q_lo)
    F = np.flatnonzero(q_hi > q_lo)
    if F.size == 0:
        return None
    base = np.maximum(P - q_lo, 0.0)
    const = c + base.sum(axis=1) - base[:, F].sum(axis=1)
    PF = P[:, F]
    s_idx, f_idx = np.nonzero(PF > q_lo[F])
    nw, nF = s_idx.size, F.size
    nv = nF + nw + 1
    r = np.arange(nw)
    rows = np.concatenate([r, r, nw + s_idx, nw + np.arange(n), np.full(nF, nw + n)])
    cols = np.concatenate([f_idx, nF + r, nF + r, np.full(n, nv - 1), np.arange(nF)])
    vals = np.concatenate([-np.ones(2 * nw), np.ones(nw), -np.ones(n), np.ones(nF)])
    A = sp.csr_array((vals, (rows, cols)), shape=(nw + n + 1, nv))
    budget = 1.0 - (q_lo.sum() - q_lo[F].sum())
    b = np.concatenate([-PF[s_idx, f_idx], -const, [budget]])
    cost = np.zeros(nv)
    cost[-1] = 1.0
    bounds = np.zeros((nv, 2))
    bounds[:, 1] = np.inf
    bounds[:nF, 0], bounds[:nF, 1] = q_lo[F], q_hi[F]
    res = linprog(cost, A_ub=A, b_ub=b, bounds=bounds, method="highs", options=_HIGHS_OPTIONS)
    if res.status != 0:
        return None
    q = q_lo.copy()
    q[F] = np.clip(res.x[:nF], q_lo[F], q_hi[F])
    return q


def _probability(q: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``q`` clipped to ``>= 0`` and completed to total mass 1 along ``fill`` (a law)."""
    q = np.maximum(q, 0.0)
    s = q.sum()
    if s > 1.0:
        return q / s
    return q + (1.0 - s) * fill


def _cuts_of_labels(lab: np.ndarray) -> np.ndarray:
    """Boundaries of the runs of equal labels."""
    return np.concatenate([[0], np.flatnonzero(np.diff(lab)) + 1, [lab.size]]).astype(np.int64)


def _tv_chebyshev_radius_iv(laws, tol, blocks):
    try:
        P = np.array(laws, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("`laws` must be a numeric array of shape (num_laws, K).") from None
    if P.ndim != 2 or P.shape[0] < 1 or P.shape[1] < 1:
        raise InvalidArgumentError(f"`laws` must have shape (num_laws, K) with both >= 1, got {P.shape}.")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise InvalidArgumentError("`laws` must be finite and non-negative.")
    if np.any(P.sum(axis=1) > 1 + 1e-9):
        s = int(np.argmax(P.sum(axis=1)))
        raise InvalidArgumentError(
            f"rows of `laws` must have total mass <= 1 (sub-probability laws on a truncated "
            f"support): row {s} sums to {float(P[s].sum())!r}.")
    if not (tol > 0):
        raise InvalidArgumentError(f"`tol` must be > 0, got {tol!r}.")
    if blocks is not None:
        blocks = np.asarray(blocks)
        if (blocks.shape != (P.shape[1],) or blocks.dtype.kind not in "iu"
                or np.any(np.diff(blocks) < 0)):
            raise InvalidArgumentError(
                f"`blocks` must hold {P.shape[1]} non-decreasing integer labels (contiguous "
                f"blocks of support points).")
    return P, blocks


def tv_chebyshev_radius(laws, *, tol: float = MINIMAX_TOL, blocks=None,
                        max_rounds: int = 1000, seeds: int = 16,
                        add_per_round: int = 16) -> ChebyshevRadius:
    """TV Chebyshev radius ``min_{q in Delta} max_s TV(p_s, q)`` of a set of laws (SPEC section 5).

    Parameters
    ----------
    laws : array_like, shape (num_laws, K)
        ``laws[s, k] = p_s(k)``: probability laws, or sub-probability laws of a
        truncated support (total mass ``m_s <= 1``; TV counts the missing mass,
        ``TV(p, q) = 0.5 sum_k |p_k - q_k| + ...`` with ``q`` a law on the ``K`` points).
    tol : float
        Stop when the certified bracket ``radius - lower_bound <= tol``.
    blocks : array_like of int, shape (K,), optional
        Non-decreasing labels grouping support points into contiguous blocks
        that are merged at first and split on demand. Default: no merging for
        ``K <= 64``, dyadic blocks otherwise.
    max_rounds : int
        Cap on LP solves; when hit, the bracket is returned with ``success=False``.
    seeds, add_per_round : int
        Initial active laws (farthest-point seeding) and laws added per round.

    Returns
    -------
    ChebyshevRadius

    Examples
    --------
    For two laws the radius is half their TV distance:

    >>> p, q = [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]
    >>> round(tv_chebyshev_radius([p, q]).radius, 12)  # TV(p, q) = 0.6
    0.3
    """
    t0 = time.perf_counter()
    P0, blocks = _tv_chebyshev_radius_iv(laws, tol, blocks)
    n0, K0 = P0.shape
    support = np.flatnonzero(P0.max(axis=0) > 0)
    P = P0[_distinct_rows(P0[:, support])][:, support]
    n, K = P.shape
    settings = {"tol": tol, "max_rounds": max_rounds, "seeds": seeds, "add_per_round": add_per_round}

    def done(radius, lower, center_support, lp_solves, status, success, message):
        center = np.zeros(K0)
        center[support] = center_support
        return ChebyshevRadius(success=success, status=status, message=message,
                               iterations=lp_solves, settings=settings,
                               elapsed=time.perf_counter() - t0, radius=float(radius),
                               lower_bound=float(lower), center=center, num_laws=n0,
                               num_distinct_laws=n, support_size=K, lp_solves=lp_solves)

    if n == 1:
        m0 = P[0].sum() if K else 0.0
        center = P[0] / m0 if m0 > 0 else np.full(K, 1.0 / max(K, 1))
        return done(0.0, 0.0, center, 0, "converged", True, "a single distinct law: radius 0.")
    c = 0.5 * (1.0 - P.sum(axis=1))
    mean = P.mean(axis=0)
    fill = mean / mean.sum()
    best_q = _probability(mean, fill)
    upper = float(_tv_rows(P, best_q).max())
    lower = 0.0
    # farthest-point seeding
    act = [int(np.argmax(_tv_rows(P, mean)))]
    dmin = _tv_rows(P, P[act[0]])
    lower = max(lower, 0.5 * float(dmin.max()))  # TV(p_a, p_b)/2 is a lower bound
    for _ in range(max(seeds, 2) - 1):
        a = int(np.argmax(dmin))
        if dmin[a] <= 0:
            break
        act.append(a)
        dmin = np.minimum(dmin, _tv_rows(P, P[a]))
    if blocks is None:
        cuts = np.arange(K + 1) if K <= EXACT_SUPPORT else _dyadic_cuts(K)
    else:
        cuts = _cuts_of_labels(blocks[support])
    solves = 0
    dropped: set = set()
    status, success, message = "max_rounds", False, ""
    while solves < max_rounds:
        nb = len(cuts) - 1
        lab = np.repeat(np.arange(nb), np.diff(cuts))
        Pc = np.add.reduceat(P, cuts[:-1], axis=1)
        q_c, lam, t_lp = _lp(Pc[act], c[act])
        solves += 1
        lam_full = np.zeros(n)
        lam_full[act] = lam
        lower = max(lower, _dual_bound(P, c, lam_full))
        # lift the merged centre: within each block, proportionally to the lambda-weighted laws
        ref = lam_full @ P
        ref_b = np.add.reduceat(ref, cuts[:-1])
        share = np.where(ref_b > 0, q_c / np.where(ref_b > 0, ref_b, 1.0), 0.0)
        q = ref * share[lab]
        lost = q_c.sum() - q.sum()  # blocks where ref is 0: spread uniformly
        if lost > 0:
            empty = ref_b <= 0
            q += np.where(empty[lab], (q_c / np.diff(cuts))[lab], 0.0)
        q = _probability(q, fill)
        tv_q = _tv_rows(P, q)
        if tv_q.max() < upper:
            upper, best_q = float(tv_q.max()), q
        if upper - lower <= tol:
            status, success = "converged", True
            message = f"bracket {upper - lower:.2g} <= tol after {solves} LP solves."
            break
        # more laws: those violating the merged LP's value; keep the tight laws only
        tv_c = np.maximum(Pc - q_c, 0.0).sum(axis=1) + c
        viol = np.flatnonzero(tv_c > t_lp + tol / 4)
        viol = viol[~np.isin(viol, act)]
        if viol.size:
            # drop slack laws (a law dropped once and needed again stays: no cycling)
            keep = [s for s, w in zip(act, lam) if w > 0 or s in dropped or tv_c[s] >= t_lp - tol]
            dropped.update(set(act) - set(keep))
            act = keep + [int(s) for s in viol[np.argsort(-tv_c[viol])][:add_per_round]]
            continue
        # complementary slackness with the dual weights: a centre on the full support
        qp = _polish(P[act], c[act], lam)
        if qp is not None:
            qp = _probability(qp, fill)
            tv_p = _tv_rows(P, qp)
            if tv_p.max() < upper:
                upper, best_q = float(tv_p.max()), qp
            if upper - lower <= tol:
                status, success = "converged", True
                message = f"bracket {upper - lower:.2g} <= tol after {solves} LP solves."
                break
        # finer support: split blocks where the lift loses most on the worst laws
        sizes = np.diff(cuts)
        if np.all(sizes == 1):
            status, success = "inaccurate", upper - lower <= max(tol, 1e-8)
            message = (f"LP accuracy limit: bracket {upper - lower:.2g} with the full support "
                       f"after {solves} LP solves.")
            break
        worst = tv_q >= tv_q.max() - 0.5 * (tv_q.max() - lower)
        Pw = P[worst]
        loss = np.add.reduceat(np.abs(Pw - q), cuts[:-1], axis=1) - np.abs(
            np.add.reduceat(Pw, cuts[:-1], axis=1) - np.add.reduceat(q, cuts[:-1]))
        gain = loss.max(axis=0)
        cand = np.flatnonzero((sizes > 1) & (gain > 0))
        if cand.size == 0:
            cand = np.flatnonzero(sizes > 1)
            gain = sizes.astype(float)
        pick = cand[np.argsort(-gain[cand])][:max(1, cand.size // 4)]
        cuts = np.union1d(cuts, cuts[pick] + sizes[pick] // 2)
    else:
        message = f"hit max_rounds={max_rounds} with bracket {upper - lower:.2g}."
    return done(upper, lower, best_q, solves, status, success, message)


def _distinct_rows(P: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row (rows rounded to ``1e-13``)."""
    rounded = np.ascontiguousarray(np.round(P, 13) + 0.0)   # + 0.0 merges -0.0 and 0.0
    seen: dict = {}
    for idx, row in enumerate(rounded):
        seen.setdefault(row.tobytes(), idx)
    return np.fromiter(seen.values(), dtype=np.int64)


def _dyadic_cuts(K: int) -> np.ndarray:
    """Block boundaries ``0, 1, 2, 4, 8, ...`` over ``K`` points."""
    cuts = [0]
    b = 1
    while b < K:
        cuts.append(b)
        b *= 2
    cuts.append(K)
    return np.array(cuts)
