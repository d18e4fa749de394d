r"""Value iteration for a :class:`~solvers.smdp.FiniteSMDP` (SPEC section 3).

Starting from ``v_0 = 0``, each sweep applies the Bellman operator

.. math::

    (T v)(s) = \max_{a \text{ admissible}} \Big[ r(s, a) + \sum_{s'} D(s' | s, a)\, v(s') \Big]

as one sparse product ``kernel @ v`` reshaped to ``(num_states, num_actions)``
and a masked row maximum. ``T`` is a sup-norm contraction with modulus
``g_hi`` (the largest admissible row sum of ``D``, ``gamma_bar`` for an
IC-SMDP), so with ``d = v_{k+1} - v_k``:

* ``rule="sup"`` stops when ``||d||_inf <= tol (1 - g_hi) / g_hi``, since then
  ``||v_{k+1} - v*||_inf <= g_hi/(1 - g_hi) ||d||_inf <= tol``; ``g_hi = 0``
  is exact after one sweep.
* ``rule="span"`` uses the MacQueen-type bounds of
  :func:`solvers._common.increment_bounds`, ``lower <= v* - v_{k+1} <= upper``,
  stops when ``upper - lower <= 2 tol`` and returns the corrected values
  ``v_{k+1} + (upper + lower)/2``, within ``(upper - lower)/2`` of ``v*``.

When the threshold is below what double precision resolves (the increments
are at rounding level, ``max|d| <= 4 eps max|v|``, or the bound has not
improved for 10 sweeps while the increments are within ``1e6 eps max|v|``),
iteration stops with status ``"stagnated"`` and reports the achieved bound.

Certification (shared with policy iteration): one more sweep on the returned
``v`` gives ``q = r + D v`` and the Bellman residual ``rho = ||T v - v||_inf``;
``rho / (1 - g_hi)`` is a second valid bound on ``||v - v*||_inf`` and the
reported ``error_bound`` is the smaller of the two plus a floating-point
allowance ``(n + 2) eps (max|r| + max|v|) / (1 - g_hi)`` (``n`` the largest
number of entries in a kernel row), which covers the rounding of the sweeps
that produced ``v`` and of the residual itself, so the bound holds for the
computed numbers, not just in exact arithmetic. It also bounds
``|q - q*| = |D (v - v*)| <= g_hi ||v - v*||``. Note that ``max_a q[s, a] =
(T v)(s)`` is within ``bellman_residual`` of ``v[s]``.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from icsmdp_theory.results import SolveResult
from solvers._common import greedy, increment_bounds
from solvers.api import ValueIteration, register
from solvers.smdp import FiniteSMDP, _lookahead, _q_output

__all__ = ["value_iteration"]

_EPS = float(np.finfo(float).eps)
#: Increments at or below ``_FLOOR * eps * max|v|`` are rounding noise.
_FLOOR = 4.0
#: Sweeps without improvement of the bound that signal stagnation ...
_PATIENCE = 10
#: ... once the increments are within ``_NEAR_FLOOR * eps * max|v|``.
_NEAR_FLOOR = 1e6


@register(ValueIteration, FiniteSMDP)
def value_iteration(solver: ValueIteration, model: FiniteSMDP) -> SolveResult:
    """Solve ``model`` by value iteration from ``v_0 = 0`` (SPEC section 3).

    Parameters
    ----------
    solver : ValueIteration
        ``tol``, ``max_iter`` (sweeps) and the stopping ``rule``.
    model : FiniteSMDP

    Returns
    -------
    SolveResult
        ``method="vi"``; ``iterations`` counts Bellman sweeps (the
        certification sweep excluded); ``status`` is ``"converged"``,
        ``"stagnated"`` or ``"max_iter"``.

    Examples
    --------
    One state with reward 1 and discount 0.5 has ``v* = 2``:

    >>> from solvers.api import solve
    >>> res = solve(ValueIteration(tol=1e-10), FiniteSMDP(reward=[[1.0]], kernel=[[0.5]]))
    >>> res.success, abs(res.v[0] - 2.0) <= res.error_bound <= 1e-10
    (True, True)
    """
    t0 = time.perf_counter()
    S, A = model.num_states, model.num_actions
    stopper = _Stopper(solver.rule, solver.tol, *model.discount_range)
    v = np.zeros(S)
    u = np.empty(S)
    status, shift, bound, it = "", 0.0, np.inf, 0
    for it in range(1, solver.max_iter + 1):
        _row_max(_lookahead(model, v), S, A, out=u)
        status, shift, bound = stopper.check(u, v)
        v, u = u, v
        if status:
            break
    status = status or "max_iter"
    candidate = v + shift if shift else v
    return _certified_result(
        model, candidate, bound, status=status, iterations=it, tol=solver.tol,
        settings=dataclasses.asdict(solver), method="vi", t0=t0,
        what=f"value iteration ({solver.rule} rule)", unit="sweep")


# --------------------------------------------------------------------------
# Pieces shared with policy_iteration.py
# --------------------------------------------------------------------------

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


class _Stopper:
    """The ``"sup"`` / ``"span"`` stopping rule and stagnation detector.

    :meth:`check` receives ``u = T v`` and ``v`` and returns the triple
    ``(status, shift, bound)``: the candidate answer is ``u + shift``
    and ``bound`` is a guaranteed bound on its sup-norm distance to ``v*``;
    ``status`` is ``"converged"``, ``"stagnated"`` or ``""`` (keep going; the
    triple then describes the current iterate, for a ``max_iter`` stop).
    """

    def __init__(self, rule: str, tol: float, g_lo: float, g_hi: float):
        self.rule, self.tol, self.g_lo, self.g_hi = rule, tol, g_lo, g_hi
        self.best = np.inf
        self.since_best = 0

    def check(self, u: np.ndarray, v: np.ndarray):
        d = u - v
        dmin, dmax = float(d.min()), float(d.max())
        step = max(dmax, -dmin)
        if self.rule == "sup":
            g = self.g_hi
            bound = g / (1.0 - g) * step
            shift = 0.0
            spread = step
        else:
            lower, upper = increment_bounds(dmin, dmax, self.g_lo, self.g_hi)
            bound = 0.5 * (upper - lower)
            shift = 0.5 * (upper + lower)
            spread = dmax - dmin
        if bound <= self.tol:
            return "converged", shift, bound
        scale = float(max(u.max(), -u.min()))
        if step <= _FLOOR * _EPS * scale:
            return "stagnated", shift, bound
        if bound < self.best:
            self.best, self.since_best = bound, 0
        else:
            self.since_best += 1
            if self.since_best >= _PATIENCE and spread <= _NEAR_FLOOR * _EPS * scale:
                return "stagnated", shift, bound
        return "", shift, bound


def _certified_result(model: FiniteSMDP, v: np.ndarray, bound: float, *, status: str,
                      iterations: int, tol: float, settings: dict, method: str,
                      t0: float, what: str, unit: str, q_flat: np.ndarray | None = None,
                      note: str = "") -> SolveResult:
    """Certify ``v`` with one more sweep and package the :class:`SolveResult`.

    ``bound`` is an a-priori bound on ``||v - v*||_inf`` (``inf`` if none);
    ``q_flat`` may pass an already computed ``r + D v``.
    """
    S, A = model.num_states, model.num_actions
    if q_flat is None:
        q_flat = _lookahead(model, v)
    Tv = _row_max(q_flat, S, A, out=np.empty(S))
    residual = float(np.max(np.abs(Tv - v)))
    g_hi = model.discount_range[1]
    # Floating-point allowance: the iterates and the residual are computed, not exact.
    rounding = model._rounding_unit * (model._reward_scale + float(np.max(np.abs(v)))) / (1.0 - g_hi)
    bound = float(min(bound, residual / (1.0 - g_hi)) + rounding)
    if status == "converged" and not bound <= tol:
        status = "stagnated"  # e.g. an evaluation that is only approximately exact
    success = status == "converged" or (status == "stagnated" and bound <= tol)
    q = _q_output(model, q_flat)
    policy = greedy(q, model.admissible)
    plural = "" if iterations == 1 else "s"
    head = {
        "converged": f"{what} converged after {iterations} {unit}{plural}",
        "stagnated": (f"{what} stagnated after {iterations} {unit}{plural}: the "
                      f"tolerance is below what double precision resolves here"),
        "max_iter": f"{what} reached max_iter = {iterations} {unit}{plural}",
    }[status]
    message = (f"{head}{note}; max |v - v*| <= {bound:.3g} (tol {tol:g}), "
               f"Bellman residual {residual:.3g}.")
    message = message[0].upper() + message[1:]
    return SolveResult(
        success=bool(success), status=status, message=message, iterations=int(iterations),
        settings=settings, elapsed=time.perf_counter() - t0, q=q, v=v, policy=policy,
        bellman_residual=residual, error_bound=bound, method=method)
