"""The centralized oracle ``Q*_lat`` and its summary (SPEC section 3).

``Q*(s, c') = R_i(y, c') + [c' != STOP] sum_{s'} D_i(y'|y) max_{c''} Q*(s', c'')``
over full epoch states ``s = (x, m, l_0..l_{N-1}, i)``, flattened ``s = f*N + i``
(:mod:`icsmdp_theory.epoch`). With adaptable agents (issue 15) the action is
the choice ``j = a*(N+1) + c'`` (mode ``a``, successor ``c'``):

``Q*(s, (a, c')) = R_{i,a}(y, c') + [c' != STOP] sum_{s'} D_{i,a}(y'|y) max_{(a'', c'')} Q*(s', (a'', c''))``

with mode ``a``'s option reduction, over ``J = max_i K_i (N+1)`` columns
(``nan`` at ``a >= K_i``); a one-mode model has ``J = N+1`` and the equation
above. It is computed by the exact solvers of
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

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import gamma_bar, option_reduction
from icsmdp_theory.results import Result, SolveResult
from solvers.api import ModifiedPolicyIteration, PolicyIteration, ValueIteration, register, solve
from solvers.committed_chain import committed_chain

__all__ = ["OracleResult", "centralized_oracle", "METHODS", "make_solver", "bellman_operator",
           "AutoSolver", "AUTO_VI_SWEEPS", "vi_sweep_estimate"]

#: CLI method names (see :func:`make_solver`); ``"auto"`` is the default.
METHODS = ("auto", "vi", "pi", "mpi")

#: :class:`AutoSolver` uses modified policy iteration up to this estimated VI sweep count.
AUTO_VI_SWEEPS = 10_000


def vi_sweep_estimate(g: float, tol: float, scale: float) -> float:
    r"""Sweeps value iteration from ``v_0 = 0`` needs to certify ``tol`` (sup rule), a priori.

    ``||v_{n+1} - v_n|| <= g^n ||T 0|| = g^n scale`` and the sup rule stops when
    ``g/(1 - g) ||v_{n+1} - v_n|| <= tol``, so

    .. math::  n = \left\lceil \frac{\log(tol\,(1 - g)/(g\, scale))}{\log g} \right\rceil .

    Parameters
    ----------
    g : float
        Contraction modulus in ``[0, 1)``.
    tol : float
        Target sup-norm error ``> 0``.
    scale : float
        ``max |r|`` (one-step rewards), ``>= 0``.

    Returns
    -------
    float
        ``>= 1`` (``inf`` when ``g >= 1``).

    Examples
    --------
    >>> vi_sweep_estimate(0.5, 1e-3, 1.0)   # 0.5^n <= 1e-3: n = 10
    10.0
    >>> vi_sweep_estimate(1 - 1e-10, 1e-8, 1.0) > 1e11
    True
    """
    if g >= 1.0:
        return math.inf
    if g <= 0.0 or scale <= 0.0:
        return 1.0
    ratio = tol * (1.0 - g) / (g * scale)
    if ratio >= 1.0:
        return 1.0
    return float(max(1.0, math.ceil(math.log(ratio) / math.log(g) - 1e-9)))


@dataclass(frozen=True, kw_only=True)
class AutoSolver:
    """Pick the exact method that finishes fast on this instance (issue 11, section 3).

    Value iteration needs about :func:`vi_sweep_estimate` sweeps, which grows
    like ``1/(1 - gamma)``: 2.3e11 at ``gamma = 1 - 1e-10``. Up to
    ``vi_sweeps`` estimated sweeps the instance is solved by
    :class:`~solvers.api.ModifiedPolicyIteration` (whose span rule is faster
    still); above, by policy iteration, whose cost does not depend on
    ``gamma`` (a handful of linear solves). When the rounding floor
    ``delta(x)/(1 - g_hi)`` of the certified bound (:mod:`solvers.iteration`)
    alone exceeds ``tol``, no sweep can certify ``tol``: the engine stops with
    ``"stagnated"`` at once and reports the achieved bound.

    Parameters
    ----------
    tol : float
        Target sup-norm error.
    max_iter : int or None
        Improvement steps of the chosen method (``None``: its default).
    vi_sweeps : int
        Estimated sweep count above which policy iteration is used.

    Notes
    -----
    The result's ``method`` is the method used (``"mpi"`` or ``"pi"``); its
    ``settings["auto"]`` records ``chosen``, ``vi_sweeps_estimate``,
    ``contraction`` and ``reason``.
    """

    tol: float = 1e-8
    max_iter: int | None = None
    vi_sweeps: int = AUTO_VI_SWEEPS

    def __post_init__(self):
        for name in ("tol", "vi_sweeps") + (("max_iter",) if self.max_iter
                                                              is not None else ()):
            v = getattr(self, name)
            if name != "tol" and (not isinstance(v, int) or isinstance(v, bool)):
                raise InvalidArgumentError(f"`{name}` must be an integer, got {v!r}.")
            if not v > 0:
                raise InvalidArgumentError(f"`{name}` must be > 0, got {v!r}.")


def make_solver(method: str = "auto", tol: float = 1e-8, max_iter: int | None = None):
    """The solver object for a method name in :data:`METHODS`.

    ``max_iter`` (sweeps for ``"vi"``, improvement steps otherwise) keeps the
    solver's default when ``None``.

    >>> make_solver("vi", 1e-6, max_iter=50)
    ValueIteration(tol=1e-06, max_iter=50, rule='sup')
    """
    kw = {} if max_iter is None else {"max_iter": max_iter}
    if method == "auto":
        return AutoSolver(tol=tol, **kw)
    if method == "vi":
        return ValueIteration(tol=tol, **kw)
    if method == "pi":
        return PolicyIteration(tol=tol, **kw)
    if method == "mpi":
        return ModifiedPolicyIteration(tol=tol, **kw)
    raise InvalidArgumentError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}.")


def _reward_scale(model: ICSMDP) -> float:
    """``max |R_{i,a}(y, c')|`` over agents and modes (the size of ``T 0``)."""
    return max(float(np.max(np.abs(option_reduction(model, i, a).option_reward())))
               for i in range(model.num_agents) for a in range(model.num_modes[i]))


@register(AutoSolver, ICSMDP)
def _auto(solver: AutoSolver, model: ICSMDP) -> SolveResult:
    """MPI when value iteration would be short, else policy iteration with the floor check."""
    t0 = time.perf_counter()
    chain = committed_chain(model)
    g_hi = float(chain.discount_range[1])
    n_vi = vi_sweep_estimate(g_hi, solver.tol, _reward_scale(model))
    auto = {"contraction": g_hi, "vi_sweeps_estimate": n_vi, "vi_sweeps_limit": solver.vi_sweeps}
    kw = {} if solver.max_iter is None else {"max_iter": solver.max_iter}
    if n_vi <= solver.vi_sweeps:
        res = solve(ModifiedPolicyIteration(tol=solver.tol, **kw), model)
        auto.update(chosen="mpi", reason=(f"value iteration would need about {n_vi:.3g} sweeps "
                                          f"(<= {solver.vi_sweeps}): modified policy iteration"))
    else:
        res = solve(PolicyIteration(tol=solver.tol, **kw), model)
        auto.update(chosen="pi", reason=(f"value iteration would need about {n_vi:.3g} sweeps "
                                         f"(contraction {g_hi:.12g}): policy iteration"))
    settings = {"method": "auto", **dataclasses.asdict(solver), "auto": auto,
                "solver": dict(res.settings)}
    return dataclasses.replace(res, settings=settings, elapsed=time.perf_counter() - t0)


@dataclass(frozen=True, kw_only=True, repr=False)
class OracleResult(Result):
    """``Q*_lat`` with the instance-level numbers reported by ``icsmdp solve``.

    Attributes
    ----------
    solution : SolveResult
        ``q[s, j]`` over epoch states and choices ``j = a*(N+1) + c'`` (``j = c'``
        for a one-mode model; ``nan`` where inadmissible), ``v``, ``policy``
        (a choice index per epoch state).
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
    solver : AutoSolver, ValueIteration, PolicyIteration or ModifiedPolicyIteration, optional
        Default: ``AutoSolver(tol=1e-8)`` (:func:`make_solver`): modified policy
        iteration, or policy iteration when ``gamma`` is so close to 1 that
        value iteration would need more than :data:`AUTO_VI_SWEEPS` sweeps.

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
    """The decision-epoch Bellman operator on ``q[s, j]`` (SPEC section 3; ``j = c'`` without modes).

    ``(T q)(s, (a, c')) = R_{i,a}(y, c') + [c' != STOP] sum_{y'} D_{i,a}(y'|y) max_j q(s', j)``
    with ``s = (f, i)``, ``s'`` carrying ``y'`` into ``f`` and active agent ``c'``,
    ``j = a*(N+1) + c'`` and mode ``a``'s reduction (one mode: ``a = 0``, ``j = c'``).
    Computed with products ``D_{i,a} v`` (sparse solves with ``I - G_{i,a}``),
    independent of the committed-chain solvers; it is a ``gamma_bar``-contraction in
    the sup norm. Inadmissible entries of ``q`` are ignored and ``nan`` in the output.
    """
    space = EpochSpace(model)
    N, S, J = model.num_agents, model.num_successors, model.num_choices
    adm = model.choice_admissible
    q3 = np.asarray(q, dtype=float).reshape(space.num_full_states, N, J)
    V = np.where(adm[None], q3, -np.inf).max(axis=2)
    out = np.empty_like(q3)
    for i in range(N):
        for a in range(model.num_modes[i]):
            red = option_reduction(model, i, a)
            nxt = space.to_agent_view(i, V)  # (nY, nR, N)
            nY, nR, _ = nxt.shape
            cont = red.apply_end_kernel(nxt.reshape(nY, nR * N)).reshape(nY, nR, N)
            Ti = np.repeat(red.option_reward()[:, None, :], nR, axis=1)
            Ti[:, :, :N] += cont
            out[:, i, a * S:(a + 1) * S] = space.from_agent_view(i, Ti)
    out[:, ~adm] = np.nan
    return out.reshape(space.num_epoch_states, J)
