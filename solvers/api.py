"""``solve(solver, problem)``: one entry point, dispatched on both types.

A solver is a small frozen dataclass of settings that never stores a model
(STYLE 3). Implementations register themselves for a ``(solver type, problem
type)`` pair with :func:`register`; :func:`solve` refuses an unsupported pair
before any work, naming the problem types the solver does support (STYLE 4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from icsmdp_theory.errors import InvalidArgumentError

__all__ = ["solve", "register", "ValueIteration", "PolicyIteration",
           "ModifiedPolicyIteration"]

_REGISTRY: dict[tuple[type, type], Callable[[Any, Any], Any]] = {}


def register(solver_type: type, problem_type: type):
    """Register ``func(solver, problem)`` as the implementation for a pair."""
    def deco(func):
        _REGISTRY[(solver_type, problem_type)] = func
        return func
    return deco


def solve(solver: Any, problem: Any) -> Any:
    """Run ``solver`` on ``problem`` and return its typed result.

    Raises
    ------
    InvalidArgumentError
        If no implementation exists for this solver and problem type.
    """
    for ptype in type(problem).__mro__:
        impl = _REGISTRY.get((type(solver), ptype))
        if impl is not None:
            return impl(solver, problem)
    supported = sorted(p.__name__ for (s, p) in _REGISTRY if s is type(solver))
    raise InvalidArgumentError(
        f"`solve`: {type(solver).__name__} does not accept a "
        f"{type(problem).__name__}; it accepts: {', '.join(supported) or 'nothing'}.")


def _check_positive(name: str, value: float, *, integer: bool = False) -> None:
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidArgumentError(f"`{name}` must be an integer, got {value!r}.")
    if not (value > 0):
        raise InvalidArgumentError(f"`{name}` must be > 0, got {value!r}.")


_RULES = ("sup", "span")
_EVALUATIONS = ("auto", "lu", "krylov")


@dataclass(frozen=True, kw_only=True)
class ValueIteration:
    """Value iteration settings (SPEC section 3).

    Parameters
    ----------
    tol : float
        Target sup-norm error of the returned values.
    max_iter : int
        Sweep cap; hitting it gives ``success=False``.
    rule : {"sup", "span"}
        ``"sup"``: stop when ``||v_{k+1} - v_k||_inf <= tol (1 - g)/g`` with
        ``g`` the contraction modulus (``gamma_bar`` for an SMDP).
        ``"span"``: MacQueen bounds from the smallest and largest increment,
        stop when their width is ``<= 2 tol`` and return the corrected values.
    """

    tol: float = 1e-8
    max_iter: int = 100_000
    rule: str = "sup"

    def __post_init__(self):
        _check_positive("tol", self.tol)
        _check_positive("max_iter", self.max_iter, integer=True)
        if self.rule not in _RULES:
            raise InvalidArgumentError(
                f"`rule` must be one of {_RULES}, got {self.rule!r}.")


@dataclass(frozen=True, kw_only=True)
class PolicyIteration:
    """Policy iteration settings (SPEC section 3).

    Parameters
    ----------
    max_iter : int
        Cap on improvement steps.
    eval_tol : float
        Relative residual tolerance ``||r_sigma - (I - D_sigma) v||_2 <= eval_tol
        ||r_sigma||_2`` of the Krylov evaluation.
    exact_limit : int
        Largest linear system solved by sparse LU. LU is used only when a
        deterministic BiCGSTAB trial of ``KRYLOV_TRIAL_ITER`` iterations does
        not converge (:func:`solvers.iteration.solve_policy_system`): random
        sparse kernels converge in a few dozen products while their LU fills in
        (21 s per policy iteration at 5,000 states before this rule, issue 10);
        slowly mixing, banded kernels fail the trial and their LU stays sparse.
        Above the limit GMRES continues from the trial's iterate.
    tol : float
        Target sup-norm error used to certify the final values.
    evaluation : {"auto", "lu", "krylov"}
        ``"auto"``: the rule above; ``"lu"`` / ``"krylov"`` force one method
        (benchmarks and cross-checks).
    """

    max_iter: int = 1000
    eval_tol: float = 1e-12
    exact_limit: int = 5_000
    tol: float = 1e-8
    evaluation: str = "auto"

    def __post_init__(self):
        _check_positive("max_iter", self.max_iter, integer=True)
        _check_positive("eval_tol", self.eval_tol)
        _check_positive("exact_limit", self.exact_limit, integer=True)
        _check_positive("tol", self.tol)
        if self.evaluation not in _EVALUATIONS:
            raise InvalidArgumentError(
                f"`evaluation` must be one of {_EVALUATIONS}, got {self.evaluation!r}.")


@dataclass(frozen=True, kw_only=True)
class ModifiedPolicyIteration:
    """Modified policy iteration settings (Puterman section 6.5).

    Parameters
    ----------
    k : int
        Partial-evaluation sweeps of the fixed policy per improvement step.
    tol : float
        Target sup-norm error; the stopping rule is ``rule`` as in
        :class:`ValueIteration`.
    max_iter : int
        Cap on improvement steps.
    rule : {"span", "sup"}
    """

    k: int = 20
    tol: float = 1e-8
    max_iter: int = 100_000
    rule: str = "span"

    def __post_init__(self):
        _check_positive("k", self.k, integer=True)
        _check_positive("tol", self.tol)
        _check_positive("max_iter", self.max_iter, integer=True)
        if self.rule not in _RULES:
            raise InvalidArgumentError(
                f"`rule` must be one of {_RULES}, got {self.rule!r}.")
