r"""Pieces shared by every exact solver: greedy selection, stopping bounds, rounding constants.

Public so that the solvers, the estimators and the learners share one copy
(issue 10): the tie rule :func:`greedy` (lowest admissible index within
:data:`TIE_TOL` of the maximum, SPEC section 3), the MacQueen-type
:func:`increment_bounds`, and Higham's rounding constant :func:`higham_gamma`
used by the certified error bounds of :mod:`solvers.iteration`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TIE_TOL", "UNIT_ROUNDOFF", "greedy", "masked_max", "increment_bounds", "higham_gamma"]

#: Successors within this of the maximum count as tied (SPEC section 3).
TIE_TOL = 1e-10

#: Unit roundoff of IEEE double precision, ``u = eps/2 = 2**-53``.
UNIT_ROUNDOFF = float(np.finfo(float).eps) / 2.0


def higham_gamma(n: int) -> float:
    r"""Higham's constant :math:`\gamma_n = n u / (1 - n u)` with ``u = eps/2``.

    A sum of ``n + 1`` floating-point terms, each a product of two doubles,
    accumulated left to right, satisfies (Higham, *Accuracy and Stability of
    Numerical Algorithms*, 2nd ed., eq. (3.4) and Lemma 3.1)

    .. math::

        |\mathrm{fl}(r + \textstyle\sum_{j=1}^{n} d_j x_j) - (r + \sum_j d_j x_j)|
        \le \gamma_{n+1} \big(|r| + \textstyle\sum_j |d_j|\,|x_j|\big),

    since every product ``d_j x_j`` carries at most ``n + 1`` roundings (its own
    and one per addition after it) and ``r`` at most one.

    >>> higham_gamma(0)
    0.0
    >>> 2.2e-16 < higham_gamma(2) < 2.3e-16
    True
    """
    nu = n * UNIT_ROUNDOFF
    return nu / (1.0 - nu)


def masked_max(q: np.ndarray, admissible: np.ndarray) -> np.ndarray:
    """Row-wise max of ``q`` over admissible entries (every row has one).

    >>> masked_max(np.array([[1., 5.], [2., 0.]]), np.array([[True, False], [True, True]]))
    array([1., 2.])
    """
    return np.where(admissible, q, -np.inf).max(axis=-1)


def greedy(q: np.ndarray, admissible: np.ndarray) -> np.ndarray:
    """Lowest admissible index within ``TIE_TOL`` of the row maximum.

    >>> greedy(np.array([[1., 1. + 1e-12, 0.5]]), np.ones((1, 3), bool))
    array([0])
    """
    qm = np.where(admissible, q, -np.inf)
    best = qm.max(axis=-1, keepdims=True)
    return np.argmax(qm >= best - TIE_TOL, axis=-1)


def increment_bounds(dmin: float, dmax: float, g_lo: float, g_hi: float) -> tuple[float, float]:
    """MacQueen-type bounds on ``v* - v_{k+1}`` from the last increment.

    If ``v_{k+1} - v_k`` lies in ``[dmin, dmax]`` and every admissible
    action's total discount ``g(s, a) = sum_s' D(s'|s, a)`` lies in
    ``[g_lo, g_hi]`` (``g_hi < 1``), then monotonicity of the Bellman operator
    ``T`` and ``T(v + c) <= Tv + h(c)`` with ``h(c) = g_hi c`` for ``c >= 0``
    and ``g_lo c`` for ``c < 0`` give, summing the geometric series,

        lower = dmin * g/(1 - g),  g = g_lo if dmin >= 0 else g_hi,
        upper = dmax * g/(1 - g),  g = g_hi if dmax >= 0 else g_lo,

    and ``lower <= v* - v_{k+1} <= upper`` componentwise. With a constant
    discount ``g_lo = g_hi = gamma`` this is MacQueen's classical bound.

    >>> increment_bounds(-1.0, 1.0, 0.5, 0.5)
    (-1.0, 1.0)
    """
    def h(c, g_if_pos, g_if_neg):
        g = g_if_pos if c >= 0 else g_if_neg
        return c * g / (1.0 - g)
    return h(dmin, g_lo, g_hi), h(dmax, g_hi, g_lo)
