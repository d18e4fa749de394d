"""The typed result family shared by solvers, estimators, learners and the checker.

Every result is a frozen dataclass deriving from :class:`Result`, so a report
reads the same fields (``success``, ``status``, ``message``, ``iterations``,
``settings``, ``elapsed``) from every stage (STYLE 5). Non-convergence is a
result with ``success=False``; invalid input raises (STYLE 6).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Result", "SolveResult", "to_jsonable"]


@dataclass(frozen=True, kw_only=True)
class Result:
    """Common fields of every result.

    Attributes
    ----------
    success : bool
        Whether the computation met its promise (tolerance, bound, ...).
    status : str
        Short machine-readable status, e.g. ``"converged"``, ``"max_iter"``.
    message : str
        One human-readable sentence about the status.
    iterations : int
        Iterations (sweeps, improvement steps, updates) performed.
    settings : dict
        The settings of the solver/estimator that produced the result.
    elapsed : float
        Wall-clock seconds.
    """

    success: bool
    status: str
    message: str
    iterations: int = 0
    settings: dict = field(default_factory=dict)
    elapsed: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SolveResult(Result):
    """Result of an exact SMDP solver (SPEC section 3).

    Attributes
    ----------
    q : ndarray, shape (num_states, num_actions)
        Action values; ``nan`` where an action is inadmissible.
    v : ndarray, shape (num_states,)
        ``v[s] = max_a q[s, a]`` over admissible actions.
    policy : ndarray of int, shape (num_states,)
        Greedy policy: the lowest admissible index within ``1e-10`` of the max.
    bellman_residual : float
        ``max_s |(T v)(s) - v(s)|`` for the returned ``v``.
    error_bound : float
        A guaranteed bound on ``max |v - v*|`` (and on ``max |q - q*|``).
    method : str
        ``"vi"``, ``"pi"`` or ``"mpi"``.
    """

    q: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    bellman_residual: float
    error_bound: float
    method: str


def to_jsonable(obj: Any) -> Any:
    """Convert results, arrays and numpy scalars to JSON-serializable data.

    Non-finite floats become ``None`` (JSON has no NaN); ``inf`` becomes the
    string ``"inf"`` so that an infinite mixing time stays distinguishable.

    >>> to_jsonable({"a": np.array([1.0, np.nan]), "b": np.float64(np.inf)})
    {'a': [1.0, None], 'b': 'inf'}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if np.isnan(x):
            return None
        if np.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return obj
