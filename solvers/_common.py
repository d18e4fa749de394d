"""Pieces shared by every exact solver: greedy selection and stopping bounds."""
from __future__ import annotations

import numpy as np

__all__ = ["TIE_TOL", "greedy", "masked_max", "increment_bounds"]

#: Successors within this of the maximum count as tied (SPEC section 3).
TIE_TOL = 1e-10


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
