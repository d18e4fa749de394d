r"""Policy iteration and modified policy iteration for a :class:`~solvers.smdp.FiniteSMDP`.

Both work with the policy system of a deterministic policy ``sigma``: the
reward vector ``r_sigma[s] = r(s, sigma[s])`` and the ``(S, S)`` CSR matrix
``D_sigma`` made of the kernel rows ``s * num_actions + sigma[s]``, whose
value solves

.. math::

    (I - D_\sigma)\, v_\sigma = r_\sigma .

**Policy iteration** (SPEC section 3, Howard) starts from the policy greedy for
the one-step reward, evaluates each policy by
:func:`solvers.iteration.solve_policy_system` (a deterministic BiCGSTAB trial
warm-started at the previous values, sparse LU only when the trial does not
converge and ``num_states <= exact_limit``, else GMRES), and improves it
greedily, keeping the current action wherever it is within ``1e-10`` of the
maximum. It stops when the policy is stable and certifies the result by the
Bellman residual ``rho = ||T v - v||_inf``: ``||v - v*||_inf <= rho / (1 - g_hi)``
plus the rounding allowance.

**Modified policy iteration** (Puterman 1994, section 6.5) alternates one full
Bellman step ``u = T v`` (which yields the greedy ``sigma``) with ``k``
partial-evaluation sweeps ``u <- r_sigma + D_sigma u``, from the constant
``v_0 = c`` with ``T v_0 >= v_0`` (:meth:`solvers.smdp.SMDPProblem.start`). The
stopping rule is checked on ``T v - v`` exactly as for value iteration.

Both are compositions in :mod:`solvers.iteration`; this module registers them.
"""
from __future__ import annotations

import dataclasses
import time

from icsmdp_theory.results import SolveResult
from solvers.api import ModifiedPolicyIteration, PolicyIteration, register
from solvers.iteration import run_modified_policy_iteration, run_policy_iteration
from solvers.smdp import FiniteSMDP, SMDPProblem

__all__ = ["policy_iteration", "modified_policy_iteration"]


@register(PolicyIteration, FiniteSMDP)
def policy_iteration(solver: PolicyIteration, model: FiniteSMDP) -> SolveResult:
    """Solve ``model`` by policy iteration (SPEC section 3).

    Parameters
    ----------
    solver : PolicyIteration
        ``max_iter`` (improvement steps), ``eval_tol`` and ``exact_limit``
        (the evaluation, :func:`solvers.iteration.solve_policy_system`) and
        ``tol`` (certification target).
    model : FiniteSMDP

    Returns
    -------
    SolveResult
        ``method="pi"``; ``iterations`` counts policy evaluations; ``status``
        is ``"converged"``, ``"stagnated"`` or ``"max_iter"``. The message says
        how policies were evaluated.

    Examples
    --------
    Two states: action 0 stays put (reward 0, discount 0.5), action 1 ends
    the episode (an all-zero kernel row) with reward 1 in state 0 and 0 in
    state 1. So ``v* = (1, 0)``; in state 1 both actions are worth 0 and the
    tie goes to the lowest index:

    >>> from solvers.api import solve
    >>> m = FiniteSMDP(reward=[[0., 1.], [0., 0.]],
    ...                kernel=[[.5, 0.], [0., 0.], [0., .5], [0., 0.]])
    >>> res = solve(PolicyIteration(), m)
    >>> res.policy.tolist(), res.v.round(12).tolist()
    ([1, 0], [1.0, 0.0])
    """
    t0 = time.perf_counter()
    return run_policy_iteration(SMDPProblem(model), tol=solver.tol, max_iter=solver.max_iter,
                                exact_limit=solver.exact_limit, rtol=solver.eval_tol,
                                settings=dataclasses.asdict(solver), t0=t0,
                                evaluation=solver.evaluation)


@register(ModifiedPolicyIteration, FiniteSMDP)
def modified_policy_iteration(solver: ModifiedPolicyIteration, model: FiniteSMDP) -> SolveResult:
    """Solve ``model`` by modified policy iteration (Puterman section 6.5; SPEC section 3).

    Parameters
    ----------
    solver : ModifiedPolicyIteration
        ``k`` partial sweeps per improvement, ``tol``, ``max_iter``
        (improvement steps) and the stopping ``rule``.
    model : FiniteSMDP

    Returns
    -------
    SolveResult
        ``method="mpi"``; ``iterations`` counts full Bellman steps.

    Examples
    --------
    >>> from solvers.api import solve
    >>> res = solve(ModifiedPolicyIteration(k=5, tol=1e-10),
    ...             FiniteSMDP(reward=[[1.0]], kernel=[[0.5]]))
    >>> res.success, abs(res.v[0] - 2.0) <= res.error_bound <= 1e-10
    (True, True)
    """
    t0 = time.perf_counter()
    return run_modified_policy_iteration(
        SMDPProblem(model), k=solver.k, tol=solver.tol, rule=solver.rule,
        max_iter=solver.max_iter, settings=dataclasses.asdict(solver), t0=t0)
