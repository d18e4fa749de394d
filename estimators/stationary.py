"""The long-run occupancy ``pi`` of a model's epoch chain and ``mu = pi b`` (SPEC sections 4 and 6).

``pi`` is the Cesaro limit ``lim_n (1/n) sum_{t<n} rho0 T^t`` of the epoch
chain ``T`` (:mod:`estimators.epoch_chain`) under a behavior policy ``b``,
started from the initial epoch law ``rho0``; it is unique even for a
reducible chain (:func:`estimators.markov_chain.long_run_occupancy`: closed
classes, GTH on each, absorption weights).

Up to ``exact_limit`` epoch states :func:`stationary_law` forms ``T`` and uses
that exact route. Beyond, it uses the matrix-free renewal occupancy
(:func:`renewal_occupancy`): with ``T = A + u rho0^T`` (``u`` the STOP
probabilities) and every state reachable from ``rho0`` reaching STOP, the
chain is a renewal process restarted from ``rho0``, and its long-run occupancy
is the normalized expected number of visits before STOP,

    ``pi ∝ z = rho0^T (I - A)^{-1}``, i.e. ``(I - A^T) z = rho0``,

with ``A^T z = T^T z - rho0 (u . z)`` applied through
:func:`~estimators.epoch_chain.epoch_chain_operator`.

``mu[f, i, c'] = pi(f, i) b_i(c' | phi_i(f))`` (:func:`mu`) is the law of the
(epoch state, successor) pairs a learner following ``b`` visits (SPEC section 6).

Adaptable agents (issue 15): ``b`` is over the choices ``j = a*(N+1) + c'``
(default: uniform over the admissible pairs ``(a, c')``, :mod:`estimators.behavior`),
the chain moves with the chosen mode's option reduction
(:mod:`estimators.epoch_chain`), and ``mu`` has ``J`` columns.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> model = load_example("tiny-handoff")
>>> res = stationary_law(model)
>>> res.num_closed_classes, res.law.shape
(1, (3, 2))
>>> bool(abs(res.law.sum() - 1.0) < 1e-12)
True
>>> mu(model, res.law).shape
(3, 2, 3)
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import scipy.sparse.linalg as spl

from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.validation import positive_int
from estimators.behavior import epoch_behavior, state_behavior, validate_behavior
from estimators.epoch_chain import (DENSE_CHAIN_LIMIT, epoch_chain, epoch_chain_operator,
                                    explicit_epoch_chain, stop_and_restart)
from icsmdp_theory.epoch_model import EpochModel
from estimators.markov_chain import StationaryResult, long_run_occupancy

__all__ = ["stationary_law", "renewal_occupancy", "mu", "RENEWAL_METHODS"]

#: Methods of :func:`renewal_occupancy`.
RENEWAL_METHODS = ("auto", "gmres", "renewal_sum")


def _behavior_key(behavior: list[np.ndarray]) -> tuple:
    return tuple((b.shape, b.tobytes()) for b in behavior)


def _stationary_law_iv(model, exact_limit):
    if not isinstance(model, (ICSMDP, EpochModel)):
        raise InvalidArgumentError(
            f"`model` must be an ICSMDP or an EpochModel, got {type(model).__name__}.")
    return positive_int("exact_limit", exact_limit)


def stationary_law(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None,
                   exact_limit: int = DENSE_CHAIN_LIMIT) -> StationaryResult:
    """Long-run average occupancy ``pi[f, i]`` of the epoch chain from ``rho0`` (SPEC sections 4, 6).

    The epoch chain restarts from ``rho0`` after STOP
    (:func:`~estimators.epoch_chain.epoch_chain`); ``pi`` is unique even when
    the chain is reducible (module docstring). Cached on the model per
    behavior policy and ``exact_limit`` (the route), in the model's
    observation-dependent store (``b_i(c'|o)`` is read through the maps).

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, J)`` or None
        ``None``: uniform over admissible choices (``J = N+1`` without modes).
    exact_limit : int
        Largest number of epoch states for the exact route (dense chain and ``O(n^3)`` GTH);
        beyond it, :func:`renewal_occupancy`.

    Returns
    -------
    StationaryResult
        ``law`` of shape ``(num_full_states, N)``.

    Raises
    ------
    StateSpaceTooLargeError
        Above ``exact_limit`` when some state reachable from ``rho0`` never reaches STOP.
    """
    exact_limit = _stationary_law_iv(model, exact_limit)
    if isinstance(model, EpochModel):
        b = state_behavior(model, behavior)
        key = ("stationary", b.shape, b.tobytes(), exact_limit)
        return model.derived.get(key, lambda: _explicit_stationary_law(model, b, exact_limit),
                                 observation=True)
    behavior = validate_behavior(model, behavior)
    key = ("stationary", _behavior_key(behavior), exact_limit)
    return model.derived.get(key, lambda: _stationary_law(model, behavior, exact_limit),
                             observation=True)


def _explicit_stationary_law(model: EpochModel, b: np.ndarray, exact_limit: int) -> StationaryResult:
    """The exact route on the dense chain of an explicit epoch model (law over ``s``)."""
    t0 = time.perf_counter()
    if model.num_epoch_states > exact_limit:
        raise StateSpaceTooLargeError(
            f"the stationary law of an explicit epoch model needs at most {exact_limit:,} epoch "
            f"states (`exact_limit`); this model has {model.num_epoch_states:,}.")
    T = explicit_epoch_chain(model, behavior=b)
    res = long_run_occupancy(T, np.asarray(model.rho0, dtype=float))
    settings = {"behavior": "given", "exact_limit": exact_limit}
    return StationaryResult(**{**res.__dict__, "settings": settings,
                               "elapsed": time.perf_counter() - t0})


def _stationary_law(model: ICSMDP, behavior: list, exact_limit: int) -> StationaryResult:
    t0 = time.perf_counter()
    if model.num_epoch_states > exact_limit:
        res = renewal_occupancy(model, behavior=behavior)
        settings = {"behavior": "given", "exact_limit": exact_limit, "method": "operator"}
        return StationaryResult(**{**res.__dict__, "settings": settings,
                                   "elapsed": time.perf_counter() - t0})
    T = epoch_chain(model, behavior=behavior, exact_limit=exact_limit)
    rho0 = initial_epoch_law(model)
    res = long_run_occupancy(T, rho0)
    settings = {"behavior": "given", "exact_limit": exact_limit}
    return StationaryResult(**{**res.__dict__, "settings": settings,
                               "elapsed": time.perf_counter() - t0})


def _renewal_iv(method, rtol, rel_tol, max_epochs):
    if method not in RENEWAL_METHODS:
        raise InvalidArgumentError(
            f"`method` must be one of {', '.join(map(repr, RENEWAL_METHODS))}, got {method!r}.")
    for name, value in (("rtol", rtol), ("rel_tol", rel_tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not 0.0 < value < 1.0:
            raise InvalidArgumentError(f"`{name}` must lie in (0, 1), got {value!r}.")
    return method, float(rtol), float(rel_tol), positive_int("max_epochs", max_epochs)


def renewal_occupancy(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None,
                      method: str = "auto", rtol: float = 1e-12, rel_tol: float = 1e-14,
                      max_epochs: int = 100_000) -> StationaryResult:
    """Long-run occupancy of the epoch chain without forming it (matrix-free; module docstring).

    Requires every state reachable from ``rho0`` to reach STOP. Not cached
    (:func:`stationary_law` caches it beyond ``exact_limit``).

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, J)`` (``J = N+1`` without modes) or None (uniform)
    method : {"auto", "gmres", "renewal_sum"}
        ``"gmres"``: GMRES (restart 40) on ``(I - A^T) z = rho0`` to relative
        residual ``rtol`` in the 2-norm (about 25 operator applications on the
        60,000-state benchmark where the renewal sum needs over 200); accepted
        when ``||rho0 - (I - A^T) z||_1 <= 1e-10`` and ``z >= -1e-12 max z``
        (negative round-off is then set to 0), otherwise it raises.
        ``"renewal_sum"``: ``z = sum_k rho0^T A^k``, whose terms are
        non-negative with mass ``P(no STOP in the first k epochs)``; it stops
        when that mass is below ``rel_tol`` times the total. ``"auto"``: GMRES,
        and the renewal sum when GMRES is not accepted (it stalls when
        ``I - A`` is singular, i.e. some state never reaches STOP; the renewal
        sum then raises, naming the dense method).
    rtol, rel_tol : float in (0, 1)
    max_epochs : int
        Cap on the terms of the renewal sum.

    Returns
    -------
    StationaryResult
        ``law`` of shape ``(num_full_states, N)``; the reachable states form one class
        (its period is not computed: ``class_periods == (0,)``).

    Raises
    ------
    StateSpaceTooLargeError
        When a state reachable from ``rho0`` never reaches STOP (the renewal sum stalls or
        exceeds ``max_epochs``; for ``"gmres"``, when GMRES is not accepted).
    """
    t0 = time.perf_counter()
    method, rtol, rel_tol, max_epochs = _renewal_iv(method, rtol, rel_tol, max_epochs)
    behavior = validate_behavior(model, behavior)
    op = epoch_chain_operator(model, behavior=behavior)
    stop, rho = stop_and_restart(model, behavior=behavior)
    n = rho.size
    ok = False
    if method in ("auto", "gmres"):
        applications = [0]

        def lhs(z):
            applications[0] += 1
            z = np.asarray(z).reshape(-1)
            return z - (op.rmatvec(z) - rho * (stop @ z))

        L = spl.LinearOperator((n, n), matvec=lhs, dtype=float)
        z, _ = spl.gmres(L, rho, x0=rho.copy(), rtol=rtol, atol=0.0, restart=40, maxiter=10)
        residual = float(np.abs(rho - lhs(z)).sum())
        ok = bool(np.all(np.isfinite(z))) and residual <= 1e-10 and z.min() >= -1e-12 * z.max()
        if ok:
            z = np.maximum(z, 0.0)
            k = applications[0]
            how = (f"renewal occupancy from rho0 by GMRES on (I - A^T) z = rho0 ({k} operator "
                   f"applications, residual {residual:.2g} in the 1-norm; matrix-free)")
        elif method == "gmres":
            raise StateSpaceTooLargeError(
                f"GMRES on (I - A^T) z = rho0 for the epoch chain of {n:,} states was not "
                f"accepted (residual {residual:.3g} in the 1-norm, or negative entries): some "
                f"state reachable from rho0 may never reach STOP. Use `method='renewal_sum'` "
                f"or the dense route of stationary_law.")
    if not ok:
        z, k = _renewal_sum(op, stop, rho, model, rel_tol, max_epochs)
        how = f"renewal occupancy from rho0, {k} epochs summed (matrix-free)"
    law = z / z.sum()
    support = law > 0
    shape = (model.num_full_states, model.num_agents)
    return StationaryResult(
        success=True, status="converged",
        message=f"{how}; the states reachable from rho0 form one closed class (period not computed).",
        iterations=k, settings={"method": method, "rtol": rtol, "rel_tol": rel_tol,
                                "max_epochs": max_epochs},
        elapsed=time.perf_counter() - t0, law=law.reshape(shape), num_closed_classes=1,
        closed_class_sizes=(int(support.sum()),), class_weights=(1.0,), class_periods=(0,),
        class_labels=np.where(support, 0, -1).reshape(shape),
        num_transient_states=int(n - support.sum()))


def _renewal_sum(op, stop, rho, model, rel_tol, max_epochs) -> tuple[np.ndarray, int]:
    """``z = sum_k rho0^T A^k`` (see :func:`renewal_occupancy`); raises if the mass stalls."""
    z = rho.astype(float).copy()
    term = z.copy()
    checkpoint_mass = 1.0
    stalled = False
    for k in range(1, max_epochs + 1):
        term = op.rmatvec(term) - rho * (stop @ term)
        np.maximum(term, 0.0, out=term)  # round-off only: A is non-negative
        z += term
        mass = term.sum()
        if mass <= rel_tol * z.sum():
            break
        if k % 1000 == 0:  # a closed class without STOP keeps its mass exactly
            stalled = mass >= (1 - 1e-9) * checkpoint_mass
            checkpoint_mass = mass
            if stalled:
                break
    if stalled or k == max_epochs:
        raise StateSpaceTooLargeError(
            f"the epoch chain of {model.num_epoch_states:,} states does not reach STOP from "
            f"every state reachable from rho0 within {max_epochs} epochs; its long-run law "
            f"needs the dense method (raise `exact_limit` if memory allows).")
    return z, k


def mu(model: ICSMDP, law: np.ndarray, *, behavior: Sequence[np.ndarray] | None = None
       ) -> np.ndarray:
    """``mu[f, i, c'] = pi(f, i) b_i(c' | phi_i(f))`` (SPEC section 6).

    Parameters
    ----------
    model : ICSMDP
    law : ndarray, shape (num_full_states, N) or (num_epoch_states,)
        A law on epoch states, e.g. ``stationary_law(model).law``.
    behavior : list of ndarray ``(nO_i, J)`` (``J = N+1`` without modes) or None (uniform)

    Returns
    -------
    ndarray, shape (num_full_states, N, J) (``J = N+1`` without modes)
    """
    law = np.asarray(law, dtype=float)
    if isinstance(model, EpochModel):
        if law.size != model.num_epoch_states:
            raise InvalidArgumentError(
                f"`law` must hold {model.num_epoch_states} values (one per epoch state), got {law.size}.")
        return law.reshape(-1)[:, None] * state_behavior(model, behavior)
    beh = epoch_behavior(model, behavior)
    if law.size != model.num_epoch_states:
        raise InvalidArgumentError(
            f"`law` must hold {model.num_epoch_states} values (one per epoch state), got {law.size}.")
    return law.reshape(beh.shape[:2])[:, :, None] * beh
