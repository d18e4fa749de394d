r"""Policy iteration and modified policy iteration for a :class:`~solvers.smdp.FiniteSMDP`.

Both work with the policy system of a deterministic policy ``sigma``: the
reward vector ``r_sigma[s] = r(s, sigma[s])`` and the ``(S, S)`` CSR matrix
``D_sigma`` made of the kernel rows ``s * num_actions + sigma[s]`` (one
vectorized CSR row selection), whose value is the solution of

.. math::

    (I - D_\sigma)\, v_\sigma = r_\sigma .

**Policy iteration** (SPEC section 3, Howard) starts from the policy greedy for
the one-step reward, evaluates each policy exactly (sparse LU through
``scipy.sparse.linalg.spsolve`` when ``num_states <= direct_limit``, else
GMRES warm-started at the previous values with relative tolerance
``eval_tol``), and improves it greedily, keeping the current action wherever it
is within ``1e-10`` of the maximum (so ties cannot make it cycle). It stops
when the policy is stable and certifies the result by the Bellman residual
``rho = ||T v - v||_inf``: ``||v - v*||_inf <= rho / (1 - g_hi)``.

**Modified policy iteration** (Puterman 1994, section 6.5) alternates one full
Bellman step ``u = T v = T_sigma v`` (which yields the greedy ``sigma``) with
``k`` partial-evaluation sweeps ``u <- r_sigma + D_sigma u``. The stopping rule
is checked on ``u - v`` exactly as in :mod:`solvers.value_iteration`
(``"span"`` with the MacQueen correction, or ``"sup"``). It starts from the
constant ``v_0 = c`` with ``c = min r / (1 - g_lo)`` if ``min r >= 0`` and
``min r / (1 - g_hi)`` otherwise (``min`` over admissible pairs), so that
``T v_0 >= v_0`` and the iterates increase monotonically to ``v*``
(Puterman, Theorem 6.5.5).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from icsmdp_theory.results import SolveResult
from solvers._common import TIE_TOL, greedy
from solvers.api import ModifiedPolicyIteration, PolicyIteration, register
from solvers.smdp import FiniteSMDP, _lookahead, _patch_policy_system, _policy_system
from solvers.value_iteration import _certified_result, _row_max, _Stopper

__all__ = ["policy_iteration", "modified_policy_iteration"]


@register(PolicyIteration, FiniteSMDP)
def policy_iteration(solver: PolicyIteration, model: FiniteSMDP) -> SolveResult:
    """Solve ``model`` by policy iteration with exact evaluation (SPEC section 3).

    Parameters
    ----------
    solver : PolicyIteration
        ``max_iter`` (improvement steps), ``eval_tol`` and ``direct_limit``
        (the evaluation method) and ``tol`` (certification target).
    model : FiniteSMDP

    Returns
    -------
    SolveResult
        ``method="pi"``; ``iterations`` counts policy evaluations; ``status``
        is ``"converged"`` (stable policy, ``error_bound <= tol``),
        ``"stagnated"`` (stable policy whose evaluation is not accurate to
        ``tol``) or ``"max_iter"``. The message says how policies were evaluated.

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
    S, A = model.num_states, model.num_actions
    direct = S <= solver.direct_limit
    sigma = greedy(model.reward, model.admissible)
    rows_idx = np.arange(S)
    v = None
    krylov_failures = 0
    status, it = "max_iter", 0
    for it in range(1, solver.max_iter + 1):
        r_s, D_s = _policy_system(model, sigma)
        M = sp.eye_array(S, format="csr") - D_s
        if direct:
            v = np.asarray(spla.spsolve(M.tocsc(), r_s), dtype=float).reshape(S)
        else:
            x0 = r_s if v is None else v
            v, info = spla.gmres(M, r_s, x0=x0, rtol=solver.eval_tol, atol=0.0)
            krylov_failures += info != 0
        q_flat = _lookahead(model, v)
        Q = q_flat.reshape(S, A)
        best = _row_max(q_flat, S, A, out=np.empty(S))
        keep = Q[rows_idx, sigma] >= best - TIE_TOL
        if keep.all():
            status = "converged"
            break
        changed = np.flatnonzero(~keep)
        sigma = sigma.copy()
        sigma[changed] = greedy(Q[changed], model.admissible[changed])
    if direct:
        note = ", evaluating policies by sparse LU (scipy.sparse.linalg.spsolve)"
    else:
        note = (f", evaluating policies by warm-started GMRES (rtol {solver.eval_tol:g}"
                + (f"; not reached in {krylov_failures} evaluation"
                   f"{'s' if krylov_failures != 1 else ''}" if krylov_failures else "")
                + ")")
    return _certified_result(
        model, v, np.inf, status=status, iterations=it, tol=solver.tol,
        settings=dataclasses.asdict(solver), method="pi", t0=t0,
        what="policy iteration", unit="improvement step", q_flat=q_flat, note=note)


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
    S, A = model.num_states, model.num_actions
    g_lo, g_hi = model.discount_range
    stopper = _Stopper(solver.rule, solver.tol, g_lo, g_hi)
    r_min = float(model.reward[model.admissible].min())
    v = np.full(S, r_min / (1.0 - (g_lo if r_min >= 0 else g_hi)))
    rows_idx = np.arange(S)
    sigma = None
    r_s = D_s = None
    status, shift, bound, it = "", 0.0, np.inf, 0
    for it in range(1, solver.max_iter + 1):
        q_flat = _lookahead(model, v)
        u = _row_max(q_flat, S, A, out=np.empty(S))
        status, shift, bound = stopper.check(u, v)
        if status or it == solver.max_iter:
            break
        # Greedy policy of v: keep each previous action that still attains the max.
        Q = q_flat.reshape(S, A)
        if sigma is None:
            sigma = Q.argmax(axis=1)
            r_s, D_s = _policy_system(model, sigma)
        else:
            changed = np.flatnonzero(Q[rows_idx, sigma] < u)
            if changed.size:
                sigma[changed] = Q[changed].argmax(axis=1)
                r_s, D_s = _patch_policy_system(model, r_s, D_s, sigma, changed)
        for _ in range(solver.k):
            w = D_s @ u
            w += r_s
            u = w
        v = u
    status = status or "max_iter"
    candidate = u + shift if shift else u
    return _certified_result(
        model, candidate, bound, status=status, iterations=it, tol=solver.tol,
        settings=dataclasses.asdict(solver), method="mpi", t0=t0,
        what=f"modified policy iteration (k={solver.k}, {solver.rule} rule)",
        unit="improvement step")
