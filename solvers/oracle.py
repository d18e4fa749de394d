"""The centralized oracle ``Q*_lat`` and its summary (SPEC section 3).

``Q*(s, c') = R_i(y, c') + [c' != STOP] sum_{s'} D_i(y'|y) max_{c''} Q*(s', c'')``
over full epoch states ``s = (x, m, l_0..l_{N-1}, i)``, flattened ``s = f*N + i``
(:mod:`icsmdp_theory.epoch`). It is computed by the exact solvers of
:mod:`solvers` through the committed-successor chain; this module adds the
instance-level summary: ``gamma_bar`` and ``v0 = E_{rho0} V*``.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> res = centralized_oracle(load_example("tiny-handoff"))
>>> round(res.v0, 6)   # planner at m0 hands to checker: 0.580645*0.9 + 0.261290*1
0.783871
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import gamma_bar, option_reduction
from icsmdp_theory.results import Result, SolveResult
from solvers.api import ModifiedPolicyIteration, PolicyIteration, ValueIteration, solve

__all__ = ["OracleResult", "centralized_oracle", "METHODS", "make_solver", "bellman_operator"]

#: CLI method names -> solver classes (see :func:`make_solver`).
METHODS = ("vi", "pi", "mpi")


def make_solver(method: str = "mpi", tol: float = 1e-8):
    """The solver object for a method name in :data:`METHODS`."""
    if method == "vi":
        return ValueIteration(tol=tol)
    if method == "pi":
        return PolicyIteration(tol=tol)
    if method == "mpi":
        return ModifiedPolicyIteration(tol=tol)
    raise InvalidArgumentError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}.")


@dataclass(frozen=True, kw_only=True, repr=False)
class OracleResult(Result):
    """``Q*_lat`` with the instance-level numbers reported by ``icsmdp solve``.

    Attributes
    ----------
    solution : SolveResult
        ``q[s, c']`` over epoch states (``nan`` where inadmissible), ``v``, ``policy``.
    gamma_bar : float
        ``max_{i, y} E[gamma^tau | y]`` (SPEC section 2).
    v0 : float
        ``sum_s rho0(s) V*(s)``.
    num_epoch_states : int
    """

    solution: SolveResult
    gamma_bar: float
    v0: float
    num_epoch_states: int


def centralized_oracle(model: ICSMDP, *, solver: Any = None) -> OracleResult:
    """Solve for ``Q*_lat`` (SPEC section 3) and summarize it.

    Parameters
    ----------
    model : ICSMDP
    solver : ValueIteration, PolicyIteration or ModifiedPolicyIteration, optional
        Default: modified policy iteration with ``tol=1e-8`` (:func:`make_solver`).

    Returns
    -------
    OracleResult
        ``solution`` (the :class:`SolveResult` over epoch states), ``gamma_bar``,
        ``v0 = sum_s rho0(s) V*(s)``.
    """
    t0 = time.perf_counter()
    solver = make_solver() if solver is None else solver
    sol = solve(solver, model)
    rho0 = initial_epoch_law(model).reshape(-1)
    v0 = float(rho0 @ sol.v)
    return OracleResult(success=sol.success, status=sol.status, message=sol.message,
                        iterations=sol.iterations, settings=sol.settings,
                        elapsed=time.perf_counter() - t0, solution=sol,
                        gamma_bar=gamma_bar(model), v0=v0,
                        num_epoch_states=model.num_epoch_states)


def bellman_operator(model: ICSMDP, q: np.ndarray) -> np.ndarray:
    """The decision-epoch Bellman operator on ``q[s, c']`` (SPEC section 3).

    ``(T q)(s, c') = R_i(y, c') + [c' != STOP] sum_{y'} D_i(y'|y) max_{c''} q(s', c'')``
    with ``s = (f, i)``, ``s'`` carrying ``y'`` into ``f`` and active agent ``c'``.
    Computed with products ``D_i v`` (sparse solves with ``I - G_i``), independent
    of the committed-chain solvers; it is a ``gamma_bar``-contraction in the sup
    norm. Inadmissible entries of ``q`` are ignored and ``nan`` in the output.
    """
    space = EpochSpace(model)
    N, S = model.num_agents, model.num_successors
    adm = model.admissible
    q3 = np.asarray(q, dtype=float).reshape(space.num_full_states, N, S)
    V = np.where(adm[None], q3, -np.inf).max(axis=2)
    out = np.empty_like(q3)
    for i in range(N):
        red = option_reduction(model, i)
        nxt = space.to_agent_view(i, V)  # (nY, nR, N)
        nY, nR, _ = nxt.shape
        cont = red.apply_end_kernel(nxt.reshape(nY, nR * N)).reshape(nY, nR, N)
        Ti = np.repeat(red.option_reward()[:, None, :], nR, axis=1)
        Ti[:, :, :N] += cont
        out[:, i, :] = space.from_agent_view(i, Ti)
    out[:, ~adm] = np.nan
    return out.reshape(space.num_epoch_states, S)
