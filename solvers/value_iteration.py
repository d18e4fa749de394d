r"""Value iteration for a :class:`~solvers.smdp.FiniteSMDP` (SPEC section 3).

Starting from ``v_0 = 0``, each sweep applies the Bellman operator

.. math::

    (T v)(s) = \max_{a \text{ admissible}} \Big[ r(s, a) + \sum_{s'} D(s' | s, a)\, v(s') \Big]

as one sparse product ``kernel @ v`` and a masked row maximum
(:meth:`solvers.smdp.SMDPProblem.apply`). ``T`` is a sup-norm contraction
with modulus ``g_hi`` (the largest admissible row sum of ``D``, ``gamma_bar``
for an IC-SMDP). The loop, its stopping rules (``"sup"``: ``g_hi/(1 - g_hi)
||v_{k+1} - v_k||``; ``"span"``: the MacQueen bounds with the midpoint
correction), the rounding allowance, stagnation detection, the certification
sweep and the message all live in :mod:`solvers.iteration`; this module is the
registration ``solve(ValueIteration(...), FiniteSMDP)``.

The stopping test includes the rounding allowance, so ``status="converged"``
always comes with ``error_bound <= tol`` (issue 10, defect 2).
"""
from __future__ import annotations

import dataclasses
import time

from icsmdp_theory.results import SolveResult
from solvers.api import ValueIteration, register
from solvers.iteration import run_value_iteration
from solvers.smdp import FiniteSMDP, SMDPProblem

__all__ = ["value_iteration"]


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
        ``"stagnated"`` or ``"max_iter"`` (:mod:`solvers.iteration`).

    Examples
    --------
    One state with reward 1 and discount 0.5 has ``v* = 2``:

    >>> from solvers.api import solve
    >>> res = solve(ValueIteration(tol=1e-10), FiniteSMDP(reward=[[1.0]], kernel=[[0.5]]))
    >>> res.success, abs(res.v[0] - 2.0) <= res.error_bound <= 1e-10
    (True, True)
    """
    t0 = time.perf_counter()
    return run_value_iteration(SMDPProblem(model), tol=solver.tol, rule=solver.rule,
                               max_iter=solver.max_iter, settings=dataclasses.asdict(solver),
                               t0=t0)
