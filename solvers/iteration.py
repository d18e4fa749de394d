r"""One iteration engine for the exact solvers (SPEC section 3; issue 10, section 3).

The exact solvers are short compositions of four named pieces, as in
QuantEcon's ``DiscreteDP``:

* the **Bellman operator** ``x -> T x`` and the **policy operator**
  ``x -> T_sigma x`` (:meth:`IterationProblem.apply`),
* the **greedy step** ``x -> sigma`` (:meth:`IterationProblem.greedy`: the
  lowest admissible index within ``TIE_TOL = 1e-10`` of the maximum, or the
  previous choice when that is within ``TIE_TOL``),
* **policy evaluation**, the solve of ``(I - D_sigma) x = r_sigma``
  (:func:`solve_policy_system`, :func:`evaluate_policy`),
* one **operator iteration** (:func:`operator_iteration`) that owns the
  stopping rules, the certified error bound, stagnation detection, and (with
  :func:`certified_result`) the status words and the message.

Value iteration, modified policy iteration and policy iteration
(:func:`run_value_iteration`, :func:`run_modified_policy_iteration`,
:func:`run_policy_iteration`) are written once against the small problem
protocol :class:`IterationProblem`, implemented by the explicit
:class:`~solvers.smdp.SMDPProblem` (a :class:`~solvers.smdp.FiniteSMDP`) and
by the committed-successor chain of an IC-SMDP
(:class:`~solvers.committed_chain.CommittedChain`).

Stopping rules
--------------
``T`` is monotone, and ``T(x + c) <= T x + h(c)`` with ``h(c) = g_hi c`` for
``c >= 0`` and ``g_lo c`` for ``c < 0``, where ``[g_lo, g_hi]`` holds every
admissible row's total discount (``g_hi < 1``). For ``u = T x`` and the
increments ``d = u - x``:

* ``rule="sup"``: ``||u - x*||_inf <= g_hi/(1 - g_hi) ||d||_inf``;
* ``rule="span"``: with ``d in [dmin, dmax]`` componentwise,
  ``x* - u in [h'(dmin), h'(dmax)]`` with ``h'(c) = c g/(1 - g)`` (MacQueen's
  bound generalized to per-row discounts, :func:`solvers.common.increment_bounds`);
  the candidate is the midpoint ``u + (lower + upper)/2``.

Certified bound and rounding allowance
--------------------------------------
The iterates are computed, not exact: ``fl(T x) = T x + e`` with
``|e| <= delta(x)`` componentwise, where ``delta`` is the problem's rounding
allowance (:meth:`IterationProblem.rounding`; for a kernel row with ``n``
stored entries Higham's ``gamma_{n+1} (|r| + sum |D| |x|)``, see
:func:`solvers.common.higham_gamma`). Carrying ``e`` through the two rules gives
bounds that hold for the computed numbers:

.. math::

    \|u - x^*\|_\infty \le \frac{g_{hi} \|d\|_\infty + \delta}{1 - g_{hi}}
    \quad (\text{sup}), \qquad
    x^* - u \in \big[h'(d_{min} - \delta') - \delta,\; h'(d_{max} + \delta') + \delta\big]
    \quad (\text{span}),

with ``delta' = delta + u_r ||d||`` (the rounding of the subtraction, ``u_r =
eps/2``); the candidate of the span rule adds ``u_r (||u|| + |shift|)`` for its
own rounding. Every bound is multiplied by ``1 + 8 u_r`` for the handful of
roundings in its own evaluation. **The stopping test compares this bound,
allowance included, with** ``tol``; so a ``"converged"`` result always has
``error_bound <= tol``.

Certification (:func:`certify`): one more application ``T x`` of the returned
``x`` gives the Bellman residual ``rho = ||T x - x||`` and the a-posteriori
bound ``(rho (1 + u_r) + delta(x)) / (1 - g_hi)``; the reported
``error_bound`` is the smaller of the a-priori and a-posteriori bounds.

Stagnation
----------
In exact arithmetic the sup bound falls by a factor ``g_hi`` per application
of ``T``, hence by ``e^{-2}`` or more over ``2/(1 - g_hi)`` sweeps. The loop
keeps the smallest bound seen and, every :func:`stagnation_window` iterations
(``10 + ceil(2/(1 - g_hi))``), asks whether that smallest bound fell by at least
1 % over the window; if not, the iterates have stopped improving (rounding
noise dominates the increments, or the allowance itself exceeds ``tol``) and
the loop stops with ``"stagnated"``, reporting the achieved bound honestly.
Independently of the window, every certified bound is at least the rounding
floor ``(1 + 8u) delta(x)/(1 - g_hi)``; when that floor exceeds ``tol`` no
iteration can certify ``tol``, and once the bound is within a factor 2 of the
floor the loop stops with ``"stagnated"`` at once (near ``gamma = 1`` the
window would be astronomically long: ``2/(1 - g_hi)`` is 2e10 sweeps at
``g_hi = 1 - 1e-10``).

Status words
------------
``"converged"``
    The certified ``error_bound`` (allowance included) is ``<= tol``;
    ``success=True``. For policy iteration: the policy is stable and its
    certified values are within ``tol`` (polished by sweeps when the linear
    solve alone did not certify ``tol``).
``"stagnated"``
    The bound stopped decreasing (see above) while still above ``tol``: the
    tolerance is below what double precision resolves for this problem.
    ``error_bound`` is the achieved (valid) bound; ``success=False``.
``"max_iter"``
    The iteration cap was reached first; ``error_bound`` is still a valid
    bound on the returned values; ``success=False``.

Messages have one form: ``"<Method> <converged|stagnated|reached max_iter
...> after <n> <sweeps|improvement steps>[, <how policies were evaluated>];
max |v - v*| <= <bound> (tol <tol>), Bellman residual <rho>."``
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from icsmdp_theory.results import SolveResult
from solvers.common import UNIT_ROUNDOFF, increment_bounds

__all__ = ["IterationProblem", "IterationOutcome", "PolicyValues", "STATUS_WORDS",
           "KRYLOV_TRIAL_ITER", "operator_iteration", "stopping_bound", "stagnation_window",
           "certify", "certified_result", "solve_policy_system", "evaluate_policy",
           "run_value_iteration", "run_modified_policy_iteration", "run_policy_iteration"]

#: The status words of the exact solvers (meanings in the module docstring).
STATUS_WORDS = ("converged", "stagnated", "max_iter")

#: BiCGSTAB iterations of the deterministic trial in :func:`solve_policy_system`.
KRYLOV_TRIAL_ITER = 100

#: Relative decrease of the best bound that counts as progress over a window.
_PROGRESS = 0.01
#: Safety factor for the roundings inside the evaluation of a bound.
_SAFETY = 1.0 + 8.0 * UNIT_ROUNDOFF


class IterationProblem(Protocol):
    """What a problem exposes to the engine (implemented by ``SMDPProblem`` and ``CommittedChain``).

    An iterate ``x`` is whatever the problem iterates on (a value vector for
    a :class:`~solvers.smdp.FiniteSMDP`, the list of ``W`` arrays for the
    committed chain); the engine only passes it back.
    """

    #: ``(g_lo, g_hi)``: bounds on every admissible row's total discount, ``g_hi < 1``.
    discount_range: tuple[float, float]

    def start(self, method: str) -> Any:
        """Initial iterate for ``method`` in ``{"vi", "mpi", "pi"}``."""

    def apply(self, x: Any, policy: Any = None) -> tuple[Any, Any]:
        """``(T x, look)`` (``policy=None``) or ``(T_sigma x, look)``; ``look`` feeds :meth:`greedy`."""

    def increments(self, new: Any, old: Any) -> tuple[float, float]:
        """Smallest and largest entry of ``new - old`` (over the entries that count)."""

    def rounding(self, x: Any) -> float:
        """``delta(x)``: a bound on ``|fl(T x) - T x|`` (and on ``|fl(T_sigma x) - T_sigma x|``)."""

    def scale(self, x: Any) -> float:
        """``max |x|`` over the entries that count."""

    def add(self, x: Any, c: float) -> Any:
        """``x + c`` (a new iterate)."""

    def greedy(self, x: Any, look: Any, previous: Any = None) -> Any:
        """Greedy policy of ``x`` (``look`` from ``apply(x)``), keeping ``previous`` within ``TIE_TOL``."""

    def evaluate(self, policy: Any, x0: Any, *, exact_limit: int, rtol: float,
                 method: str = "auto") -> tuple[Any, str]:
        """Solve ``x = T_sigma x`` by :func:`solve_policy_system`; return ``(x, how)``."""

    def outputs(self, x: Any, look: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, v, policy)`` of a :class:`SolveResult` for the iterate ``x``."""


@dataclass(frozen=True)
class IterationOutcome:
    """What :func:`operator_iteration` returns.

    Attributes
    ----------
    x : object
        The candidate iterate (span rule: with the MacQueen correction applied).
    bound : float
        Certified bound on ``||x - x*||_inf`` (rounding allowance included).
    status : str
        ``"converged"``, ``"stagnated"`` or ``"max_iter"``.
    iterations : int
        Applications of the operator (improvement steps for MPI).
    """

    x: Any
    bound: float
    status: str
    iterations: int


@dataclass(frozen=True)
class PolicyValues:
    """What :func:`evaluate_policy` returns: ``x = x_sigma`` within ``error_bound``.

    Attributes
    ----------
    x : object
        The values of the policy, in the problem's layout.
    error_bound : float
        Certified bound on ``||x - x_sigma||_inf`` (``inf`` when not certified).
    how : str
        How the linear system was solved (``"BiCGSTAB"``, ``"sparse LU"``, ``"GMRES"``),
        plus ``" + k sweeps"`` when it was polished.
    """

    x: Any
    error_bound: float
    how: str


def stagnation_window(g_hi: float) -> int:
    """Iterations over which the best bound must fall by 1 %: ``10 + ceil(2 / (1 - g_hi))``.

    >>> stagnation_window(0.5), stagnation_window(0.99)
    (14, 210)
    """
    return 10 + int(math.ceil(2.0 / (1.0 - g_hi) - 1e-9))


def stopping_bound(rule: str, dmin: float, dmax: float, delta: float, scale: float,
                   g_lo: float, g_hi: float) -> tuple[float, float]:
    r"""Certified bound and shift of the candidate ``u + shift`` from one step's increments.

    Parameters
    ----------
    rule : {"sup", "span"}
    dmin, dmax : float
        Smallest and largest computed increment ``fl(u - x)``, ``u = fl(T x)``.
    delta : float
        Rounding allowance ``delta(x) >= |fl(T x) - T x|``.
    scale : float
        ``max |u|`` (for the rounding of ``u + shift``).
    g_lo, g_hi : float
        Discount range.

    Returns
    -------
    bound, shift : float
        ``||u + shift - x*||_inf <= bound`` (``shift = 0`` for the sup rule); see
        the module docstring for the formulas.

    Examples
    --------
    With no rounding the sup bound is ``g/(1-g) ||d||`` (times ``1 + 8 u``):

    >>> bound, shift = stopping_bound("sup", -1.0, 0.5, 0.0, 1.0, 0.5, 0.5)
    >>> 1.0 < bound < 1.0 + 1e-14, shift
    (True, 0.0)
    """
    u_r = UNIT_ROUNDOFF
    step = max(dmax, -dmin) / (1.0 - u_r)
    if rule == "sup":
        return _SAFETY * (g_hi * step + delta) / (1.0 - g_hi), 0.0
    dd = delta + u_r * step
    lower, upper = increment_bounds(dmin - dd, dmax + dd, g_lo, g_hi)
    lower, upper = lower - delta, upper + delta
    shift = 0.5 * (lower + upper)
    half = max(upper - shift, shift - lower) + u_r * (scale + abs(shift))
    return _SAFETY * half, shift


def operator_iteration(problem: IterationProblem, x0: Any, *, tol: float, rule: str = "sup",
                       max_iter: int, policy: Any = None,
                       between: Callable[[Any, Any], Any] | None = None) -> IterationOutcome:
    r"""Iterate ``x <- T x`` (or ``T_sigma x``) until the certified bound meets ``tol``.

    Parameters
    ----------
    problem : IterationProblem
    x0 : object
        Starting iterate.
    tol : float
        Target for the certified bound on ``||x - x*||_inf``, rounding allowance included.
    rule : {"sup", "span"}
        Stopping rule (module docstring).
    max_iter : int
        Cap on applications of the operator.
    policy : object, optional
        Iterate the policy operator ``T_sigma`` instead of ``T`` (policy evaluation by sweeps).
    between : callable ``(u, look) -> x``, optional
        Applied to ``u = T x`` when the rule is not met, to produce the next
        iterate (modified policy iteration's partial evaluation); default ``x = u``.

    Returns
    -------
    IterationOutcome
        ``status`` is ``"converged"`` (bound ``<= tol``), ``"stagnated"`` (the
        best bound fell by less than 1 % over a :func:`stagnation_window`) or
        ``"max_iter"``; ``bound`` is valid in every case.

    Examples
    --------
    >>> from solvers.smdp import FiniteSMDP, SMDPProblem
    >>> p = SMDPProblem(FiniteSMDP(reward=[[1.0]], kernel=[[0.5]]))
    >>> out = operator_iteration(p, p.start("vi"), tol=1e-12, max_iter=1000)
    >>> out.status, abs(out.x[0] - 2.0) <= out.bound <= 1e-12
    ('converged', True)
    """
    g_lo, g_hi = problem.discount_range
    window = stagnation_window(g_hi)
    x = x0
    best, mark_best, mark_it = np.inf, np.inf, 0
    candidate, bound, status, it = x0, np.inf, "max_iter", 0
    for it in range(1, max_iter + 1):
        u, look = problem.apply(x, policy)
        dmin, dmax = problem.increments(u, x)
        bound, shift = stopping_bound(rule, dmin, dmax, problem.rounding(x), problem.scale(u),
                                      g_lo, g_hi)
        candidate = problem.add(u, shift) if shift else u
        if bound <= tol:
            status = "converged"
            break
        floor = _SAFETY * problem.rounding(x) / (1.0 - g_hi)
        if floor > tol and bound <= 2.0 * floor:   # double precision cannot certify tol
            status = "stagnated"
            break
        best = min(best, bound)
        if it - mark_it >= window:  # the first window always counts as progress
            if not best < (1.0 - _PROGRESS) * mark_best:
                status = "stagnated"
                break
            mark_best, mark_it = best, it
        if it == max_iter:
            break
        x = u if between is None else between(u, look)
    return IterationOutcome(x=candidate, bound=float(bound), status=status, iterations=it)


def certify(problem: IterationProblem, x: Any, bound: float = np.inf
            ) -> tuple[float, float, Any]:
    r"""One more application of ``T`` at ``x``: ``(error_bound, bellman_residual, look)``.

    ``error_bound = min(bound, (rho (1 + u_r) + delta(x)) / (1 - g_hi))`` with
    ``rho = ||T x - x||_inf`` computed, ``delta`` the rounding allowance: both
    terms hold for the computed numbers (module docstring).
    """
    g_hi = problem.discount_range[1]
    u, look = problem.apply(x)
    dmin, dmax = problem.increments(u, x)
    residual = float(max(dmax, -dmin))
    post = _SAFETY * (residual * (1.0 + UNIT_ROUNDOFF) + problem.rounding(x)) / (1.0 - g_hi)
    return float(min(bound, post)), residual, look


def certified_result(problem: IterationProblem, x: Any, bound: float, *, status: str,
                     iterations: int, tol: float, settings: dict, method: str, t0: float,
                     what: str, unit: str, note: str = "") -> SolveResult:
    """Certify ``x`` (:func:`certify`) and package the :class:`SolveResult` with the one message form."""
    bound, residual, look = certify(problem, x, bound)
    if status == "converged" and not bound <= tol:  # cannot happen: the rule includes the allowance
        status = "stagnated"
    q, v, policy = problem.outputs(x, look)
    plural = "" if iterations == 1 else "s"
    head = {
        "converged": f"{what} converged after {iterations} {unit}{plural}",
        "stagnated": (f"{what} stagnated after {iterations} {unit}{plural} (the error bound "
                      f"stopped decreasing: the tolerance is below what double precision "
                      f"resolves here)"),
        "max_iter": f"{what} reached max_iter = {iterations} {unit}{plural}",
    }[status]
    message = (f"{head}{note}; max |v - v*| <= {bound:.3g} (tol {tol:g}), "
               f"Bellman residual {residual:.3g}.")
    message = message[0].upper() + message[1:]
    return SolveResult(
        success=status == "converged", status=status, message=message,
        iterations=int(iterations), settings=settings, elapsed=time.perf_counter() - t0,
        q=q, v=v, policy=policy, bellman_residual=residual, error_bound=float(bound),
        method=method)


# ---------------------------------------------------------------- policy evaluation
def solve_policy_system(operator: Any, rhs: np.ndarray, x0: np.ndarray | None, *,
                        exact_limit: int, rtol: float,
                        matrix: Callable[[], sp.sparray] | None = None,
                        method: str = "auto") -> tuple[np.ndarray, str]:
    r"""Solve ``(I - D_sigma) x = r_sigma``: a Krylov trial first, sparse LU only if it fails.

    Parameters
    ----------
    operator : sparse matrix or LinearOperator
        ``A = I - D_sigma`` (``n x n``).
    rhs : ndarray, shape (n,)
        ``r_sigma``.
    x0 : ndarray or None
        Warm start (the previous policy's values); default ``rhs``.
    exact_limit : int
        Largest ``n`` solved by sparse LU when the trial fails.
    rtol : float
        Relative residual target ``||r_sigma - A x||_2 <= rtol ||r_sigma||_2``.
    matrix : callable, optional
        Returns ``A`` as a sparse matrix (for LU); default ``operator`` itself.
    method : {"auto", "lu", "krylov"}
        ``"auto"`` as below; ``"lu"`` forces sparse LU and ``"krylov"`` the
        Krylov path (BiCGSTAB, then GMRES), whatever the size (benchmarks, tests).

    Returns
    -------
    x, how : ndarray, str
        ``how`` is ``"BiCGSTAB"``, ``"sparse LU"`` or ``"GMRES"`` (with ``info`` if not converged).

    Notes
    -----
    The choice is deterministic (no timing): BiCGSTAB runs from ``x0`` for at
    most :data:`KRYLOV_TRIAL_ITER` iterations and its answer is kept when the
    *true* residual is within ``10 rtol ||r_sigma||`` (BiCGSTAB's recursive
    residual drifts from the true one). ``A = I - D_sigma`` with
    ``||D_sigma||_inf <= g_hi < 1`` is well conditioned, and on kernels that mix
    (random sparse rows) the trial converges in a few dozen products, where
    sparse LU fills in almost completely (5,000 states, 8 entries per row:
    ``python -m reports.bench pi-eval``). Slowly mixing kernels (long chains,
    ``g_hi`` near 1) exhaust the trial; they are banded, so their LU stays
    sparse and is used up to ``exact_limit`` unknowns; beyond it GMRES(60)
    restarts from the trial's iterate.
    """
    n = rhs.shape[0]
    norm = float(np.linalg.norm(rhs))
    if norm == 0.0:
        return np.zeros(n), "exact (zero right-hand side)"
    start = rhs if x0 is None else x0
    if method == "lu":
        A = (operator if matrix is None else matrix())
        return np.asarray(spla.spsolve(sp.csc_array(A), rhs), dtype=float).reshape(n), "sparse LU"
    z, info = spla.bicgstab(operator, rhs, x0=start, rtol=rtol, atol=0.0,
                            maxiter=KRYLOV_TRIAL_ITER)
    finite = bool(np.all(np.isfinite(z)))
    if info == 0 and finite and \
            float(np.linalg.norm(rhs - operator @ z)) <= 10.0 * rtol * norm:
        return z, "BiCGSTAB"
    if method == "auto" and n <= exact_limit:
        A = (operator if matrix is None else matrix())
        return np.asarray(spla.spsolve(sp.csc_array(A), rhs), dtype=float).reshape(n), "sparse LU"
    z, info = spla.gmres(operator, rhs, x0=z if finite else start, rtol=rtol, atol=0.0,
                         restart=60, maxiter=1000)
    return z, "GMRES" + ("" if info == 0 else f" (info={info})")


def evaluate_policy(problem: IterationProblem, policy: Any, x0: Any = None, *,
                    tol: float = np.inf, exact_limit: int = 5_000, rtol: float = 1e-12,
                    method: str = "auto", max_sweeps: int = 100_000) -> PolicyValues:
    r"""Values ``x_sigma`` of a fixed policy, certified: ``x_sigma = T_sigma x_sigma``.

    Solves the linear system (:meth:`IterationProblem.evaluate`, which calls
    :func:`solve_policy_system`), then certifies ``x`` by one application of
    ``T_sigma``: ``||x - x_sigma|| <= (rho (1 + u_r) + delta(x)) / (1 - g_hi)``
    with ``rho = ||T_sigma x - x||``. When that exceeds ``tol``, polishes by
    :func:`operator_iteration` on ``T_sigma`` (sup rule) to ``tol`` or stagnation.

    Parameters
    ----------
    problem : IterationProblem
    policy : object
        The policy in the problem's layout.
    x0 : object, optional
        Warm start.
    tol : float
        Target certified accuracy (default ``inf``: no polishing).
    exact_limit, rtol, method : see :func:`solve_policy_system`.
    max_sweeps : int
        Cap on polishing sweeps.

    Returns
    -------
    PolicyValues
    """
    x, how = problem.evaluate(policy, x0, exact_limit=exact_limit, rtol=rtol, method=method)
    g_hi = problem.discount_range[1]
    u, _ = problem.apply(x, policy)
    dmin, dmax = problem.increments(u, x)
    rho = max(dmax, -dmin)
    bound = _SAFETY * (rho * (1.0 + UNIT_ROUNDOFF) + problem.rounding(x)) / (1.0 - g_hi)
    if bound > tol:
        out = operator_iteration(problem, x, tol=tol, rule="sup", max_iter=max_sweeps,
                                 policy=policy)
        if out.bound < bound:
            x, bound = out.x, out.bound
            how = f"{how} + {out.iterations} sweeps"
    return PolicyValues(x=x, error_bound=float(bound), how=how)


# ---------------------------------------------------------------- the three solvers
def run_value_iteration(problem: IterationProblem, *, tol: float, rule: str, max_iter: int,
                        settings: dict, t0: float) -> SolveResult:
    """Value iteration from ``problem.start("vi")``: :func:`operator_iteration` on ``T``, certified."""
    out = operator_iteration(problem, problem.start("vi"), tol=tol, rule=rule, max_iter=max_iter)
    return certified_result(problem, out.x, out.bound, status=out.status,
                            iterations=out.iterations, tol=tol, settings=settings, method="vi",
                            t0=t0, what=f"value iteration ({rule} rule)", unit="sweep")


def run_modified_policy_iteration(problem: IterationProblem, *, k: int, tol: float, rule: str,
                                  max_iter: int, settings: dict, t0: float) -> SolveResult:
    r"""Modified policy iteration (Puterman section 6.5): ``u = T x``, then ``k`` sweeps of ``T_sigma``.

    ``sigma`` is greedy for the look-ahead of ``u`` (keeping the previous
    action within ``TIE_TOL``); the stopping rule is checked on ``T x - x``.
    """
    state = {"policy": None}

    def between(u, look):
        state["policy"] = problem.greedy(u, look, previous=state["policy"])
        for _ in range(k):
            u, _ = problem.apply(u, state["policy"])
        return u

    out = operator_iteration(problem, problem.start("mpi"), tol=tol, rule=rule,
                             max_iter=max_iter, between=between)
    return certified_result(problem, out.x, out.bound, status=out.status,
                            iterations=out.iterations, tol=tol, settings=settings, method="mpi",
                            t0=t0, what=f"modified policy iteration (k={k}, {rule} rule)",
                            unit="improvement step")


def run_policy_iteration(problem: IterationProblem, *, tol: float, max_iter: int,
                         exact_limit: int, rtol: float, settings: dict, t0: float,
                         evaluation: str = "auto") -> SolveResult:
    r"""Policy iteration (Howard; SPEC section 3) from the policy greedy for ``T`` at the start.

    Each policy is evaluated by :func:`solve_policy_system` (warm-started at the
    previous values) and improved greedily, keeping the current action wherever
    it is within ``TIE_TOL`` of the maximum (so ties cannot make it cycle). On
    a stable policy the values are certified (:func:`certify`); when the
    evaluation alone does not certify ``tol`` they are polished by
    :func:`operator_iteration` on ``T`` (sup rule), which ends ``"converged"``
    or ``"stagnated"``.
    """
    x = problem.start("pi")
    u, look = problem.apply(x)
    policy = problem.greedy(u, look)
    hows: dict[str, int] = {}
    status, it, x = "max_iter", 0, None
    for it in range(1, max_iter + 1):
        x, how = problem.evaluate(policy, x, exact_limit=exact_limit, rtol=rtol,
                                  method=evaluation)
        hows[how] = hows.get(how, 0) + 1
        _, look = problem.apply(x)
        new = problem.greedy(x, look, previous=policy)
        if np.array_equal(new, policy):
            status = "converged"
            break
        policy = new
    note = ", evaluating policies by " + ", ".join(
        f"{h} ({c}x)" if len(hows) > 1 else h for h, c in hows.items())
    bound = np.inf
    if status == "converged":
        bound, _, _ = certify(problem, x)
        if bound > tol:
            out = operator_iteration(problem, x, tol=tol, rule="sup", max_iter=100_000)
            x, bound, status = out.x, out.bound, out.status
            note += f", polished by {out.iterations} sweeps"
    return certified_result(problem, x, bound, status=status, iterations=it, tol=tol,
                            settings=settings, method="pi", t0=t0, what="policy iteration",
                            unit="improvement step", note=note)
