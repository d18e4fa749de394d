"""Mixing of a model's epoch chain under a behavior policy: the report of SPEC section 6.

The matrix-level quantities (``t_mix``, relaxation time, spectral bounds) are
defined and computed in :mod:`estimators.mixing_time`; this module applies
them to the epoch chain ``T`` of :mod:`estimators.epoch_chain` with ``pi`` its
long-run occupancy (:mod:`estimators.stationary`) and adds the cells of the
epoch chain:

Adaptable agents (issue 15): the behavior is over the choices ``j = a*(N+1) + c'``
and the chain moves with the chosen mode's option reduction
(:mod:`estimators.epoch_chain`); the decision projection's columns are
``(i, o, j)``.

- projected mixing ``d_proj(t) = max_s TV(T^t(s, .) Pi, pi Pi)`` with ``Pi``
  pushing a law on epoch states to ``(agent i, observation o)`` cells
  (:func:`observation_projection`) or to ``(i, o, c')`` with weight
  ``b_i(c'|o)`` (:func:`decision_projection`). Because ``b`` depends on a state
  only through its cell ``(i, o)``, both give the same distance at every ``t``
  (``TV(mu b, nu b) = TV(mu, nu)`` for laws on cells pushed through one kernel).

Up to ``exact_limit`` epoch states :func:`mixing_report` computes exact
``t_mix`` and projected mixing times (powers of the dense ``T``, block steps
through :class:`~estimators.epoch_chain.EpochStepper` when cheaper) and the
relaxation time; beyond, it forms no ``n x n`` array and reports spectral
bounds from the matrix-free operator.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> rep = mixing_report(load_example("tiny-handoff"))
>>> rep.t_mix, rep.relaxation_time, rep.t_mix_is_exact
(2.0, 2.0, True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.cells import cell_offsets, epoch_observations
from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.epoch_level import epoch_level
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result
from icsmdp_theory.validation import positive_int
from estimators.behavior import state_behavior, validate_behavior
from estimators.epoch_chain import (DENSE_CHAIN_LIMIT, EpochStepper, epoch_chain_operator,
                                    explicit_epoch_chain,
                                    epoch_chain_split)
from estimators.markov_chain import chain_classes, long_run_occupancy
from estimators.mixing_time import (DEFAULT_EPS, DEFAULT_MAX_DOUBLINGS, DEFAULT_MEMORY_LIMIT,
                                    arpack_stationary_law, mixing_time_bounds, relaxation_time,
                                    search_mixing_times, validate_eps, validate_search)
from estimators.stationary import stationary_law

__all__ = ["MixingResult", "mixing_report", "observation_projection", "decision_projection"]

@dataclass(frozen=True, kw_only=True, repr=False)
class MixingResult(Result):
    """Mixing report of the epoch chain (SPEC section 6), from :func:`mixing_report`.

    Attributes
    ----------
    eps : float
    num_epoch_states : int
    t_mix : float
        Exact ``t_mix(eps)`` (or ``inf`` with the reason) when ``t_mix_is_exact``;
        ``nan`` beyond ``exact_limit``.
    t_mix_is_exact : bool
    t_mix_lower, t_mix_upper : float
        Equal to ``t_mix`` when exact; otherwise the spectral bounds.
    upper_bound_method : str
        ``"exact"``, ``"reversible"``, ``"singular_value"`` or ``"none"``.
    relaxation_time, second_eigenvalue_modulus : float
    projected_t_mix : float
        Mixing of the marginal on ``(agent, observation)`` cells (``nan`` beyond ``exact_limit``).
    projected_t_mix_decision : float
        The same on ``(agent, observation, successor)`` cells weighted by ``b``;
        it equals ``projected_t_mix`` because ``b`` depends on a state only through its cell.
    num_closed_classes : int
        ``-1`` when unknown (beyond ``exact_limit``).
    period : int
        Period of the closed class (``0`` when unknown or several classes).
    pi_min : float
    notes : tuple of str
        One sentence per quantity explaining its value.
    """

    eps: float
    num_epoch_states: int
    t_mix: float
    t_mix_is_exact: bool
    t_mix_lower: float
    t_mix_upper: float
    upper_bound_method: str
    relaxation_time: float
    second_eigenvalue_modulus: float
    projected_t_mix: float
    projected_t_mix_decision: float
    num_closed_classes: int
    period: int
    pi_min: float
    notes: tuple



# ====================================================================== projections
def observation_projection(model: ICSMDP) -> sp.csr_array:
    """``Pi[s, cell]`` with ``cell = offset_i + phi_i(m, l_i)`` for ``s = f*N + i``: shape
    ``(num_epoch_states, sum_i nO_i)``, one 1 per row (cells of agent ``i`` start at
    ``offset_i = nO_0 + ... + nO_{i-1}``)."""
    obs = epoch_observations(model)
    offsets = cell_offsets(model.num_observations)
    cells = (obs + offsets[:-1][None, :]).reshape(-1)
    n = cells.size
    return sp.csr_array((np.ones(n), (np.arange(n), cells)), shape=(n, int(offsets[-1])))


def decision_projection(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None
                        ) -> sp.csr_array:
    """``Pi[s, (cell, c')] = b_i(c' | o)``, column ``cell*(N+1) + c'``: pushes a law on epoch
    states to ``(agent, observation, successor)``; shape ``(n, sum_i nO_i * (N+1))``.
    With modes the columns are ``cell*J + j`` over the choices ``j = a*(N+1) + c'``."""
    behavior = validate_behavior(model, behavior)
    obs = epoch_observations(model)
    N1 = model.num_choices
    offsets = cell_offsets(model.num_observations)
    cells = (obs + offsets[:-1][None, :]).reshape(-1)
    w = np.stack([behavior[i][obs[:, i]] for i in range(model.num_agents)], axis=1).reshape(-1, N1)
    n = cells.size
    rows = np.repeat(np.arange(n), N1)
    cols = (cells[:, None] * N1 + np.arange(N1)[None, :]).reshape(-1)
    out = sp.csr_array((w.reshape(-1), (rows, cols)), shape=(n, int(offsets[-1]) * N1))
    out.eliminate_zeros()
    return out




def _cell_projection(cells: np.ndarray, b: np.ndarray | None) -> sp.csr_array:
    """``Pi[s, cell]`` (``b`` None) or ``Pi[s, cell*(N+1) + c'] = b(c'|s)`` from flat cells."""
    n = cells.size
    nC = int(cells.max(initial=-1)) + 1
    if b is None:
        return sp.csr_array((np.ones(n), (np.arange(n), cells)), shape=(n, nC))
    N1 = b.shape[1]
    rows = np.repeat(np.arange(n), N1)
    cols = (cells[:, None] * N1 + np.arange(N1)[None, :]).reshape(-1)
    out = sp.csr_array((b.reshape(-1), (rows, cols)), shape=(n, nC * N1))
    out.eliminate_zeros()
    return out


# ====================================================================== the report
def _mixing_report_iv(model, eps, exact_limit):
    if not isinstance(model, (ICSMDP, EpochModel)):
        raise InvalidArgumentError(
            f"`model` must be an ICSMDP or an EpochModel, got {type(model).__name__}.")
    return validate_eps(eps), positive_int("exact_limit", exact_limit)


def mixing_report(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None,
                  eps: float = DEFAULT_EPS, exact_limit: int = DENSE_CHAIN_LIMIT,
                  max_doublings: int = DEFAULT_MAX_DOUBLINGS,
                  memory_limit: float = DEFAULT_MEMORY_LIMIT) -> MixingResult:
    """Mixing of the epoch chain under ``behavior`` (SPEC section 6).

    Up to ``exact_limit`` epoch states: exact ``t_mix(eps)`` and projected
    mixing times by doubling and binary search
    (:func:`~estimators.mixing_time.search_mixing_times`), the relaxation time
    (:func:`~estimators.mixing_time.relaxation_time` on the dense ``T``), and
    ``t_mix_lower = t_mix_upper = t_mix``.

    Beyond ``exact_limit``: no power of ``T`` and no dense ``n x n`` array is
    formed. ``T`` is applied through end-law solves
    (:func:`~estimators.epoch_chain.epoch_chain_operator`); ``pi`` is the
    renewal occupancy of :func:`~estimators.stationary.stationary_law` (cached
    and shared with the gap report) or, when that route does not apply (a
    state never reaches STOP), ARPACK's eigenvector of eigenvalue 1 of ``T^T``
    (:func:`~estimators.mixing_time.arpack_stationary_law`). The result
    carries ``t_mix = nan``, ``t_mix_is_exact = False`` and the bounds of
    :func:`~estimators.mixing_time.mixing_time_bounds` in
    ``t_mix_lower``/``t_mix_upper`` (never ``nan``: ``0``/``inf`` with the
    reason when an eigen-solve fails). Eigenvalues within ``1e-9`` of the unit
    circle count as ``|lambda_2| = 1`` there (several closed classes or a
    periodic class cannot be told apart from slow mixing without the chain's graph).

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, J)`` (``J = N+1`` without modes) or None (uniform)
    eps : float in ``(0, 1/2)``
    exact_limit : int
        Largest number of epoch states for the exact computation (dense
        ``n x n`` powers: ``8 n^2`` bytes each).
    max_doublings, memory_limit
        See :func:`~estimators.mixing_time.mixing_time`.

    Returns
    -------
    MixingResult
    """
    t0 = time.perf_counter()
    eps, exact_limit = _mixing_report_iv(model, eps, exact_limit)
    max_doublings, memory_limit = validate_search(max_doublings, memory_limit)
    n = model.num_epoch_states
    settings = {"eps": eps, "exact_limit": exact_limit, "max_doublings": max_doublings,
                "memory_limit": memory_limit}
    if isinstance(model, EpochModel):
        if n > exact_limit:
            raise StateSpaceTooLargeError(
                f"the mixing of an explicit epoch model needs at most {exact_limit:,} epoch "
                f"states (`exact_limit`); this model has {n:,}.")
        b = state_behavior(model, behavior)
        T = explicit_epoch_chain(model, behavior=b)
        rho0 = np.asarray(model.rho0, dtype=float)
        stepper = None
        lev = epoch_level(model)
        cells = lev.epoch_cells(cell_offsets(lev.num_observations))
        projections = [("observation", _cell_projection(cells, None)),
                       ("decision", _cell_projection(cells, b))]
    else:
        behavior = validate_behavior(model, behavior)
        if n > exact_limit:
            return _report_bounds(model, behavior, eps, settings, t0)
        T = epoch_chain_split(model, behavior=behavior).toarray()
        rho0 = initial_epoch_law(model).reshape(-1)
        stepper = EpochStepper(model, behavior=behavior)
        projections = [("observation", observation_projection(model)),
                       ("decision", decision_projection(model, behavior=behavior))]
    classes = chain_classes(T)
    pi = np.asarray(long_run_occupancy(T, rho0, classes=classes).law)
    (full, proj, proj_dec), count = search_mixing_times(
        T, pi, projections, eps=eps, classes=classes, include_full=True, stepper=stepper,
        max_doublings=max_doublings, memory_limit=memory_limit, settings=settings)
    rt = relaxation_time(T, classes=classes)
    ok = full.success and proj.success and proj_dec.success and rt.success
    period = classes.periods[0] if classes.num_closed == 1 else 0
    notes = (f"t_mix: {full.message}", f"projected to (agent, observation): {proj.message}",
             f"projected to (agent, observation, successor): {proj_dec.message}",
             f"relaxation time: {rt.message}")
    return MixingResult(
        success=ok, status=full.status, message=full.message, iterations=count,
        settings=settings, elapsed=time.perf_counter() - t0, eps=eps, num_epoch_states=n,
        t_mix=full.t_mix, t_mix_is_exact=full.status in ("exact", "periodic",
                                                          "multiple_closed_classes"),
        t_mix_lower=full.t_mix_lower, t_mix_upper=full.t_mix, upper_bound_method="exact",
        relaxation_time=rt.relaxation_time, second_eigenvalue_modulus=rt.second_eigenvalue_modulus,
        projected_t_mix=proj.t_mix, projected_t_mix_decision=proj_dec.t_mix,
        num_closed_classes=classes.num_closed, period=int(period), pi_min=float(pi.min()),
        notes=notes)


def _report_bounds(model, behavior, eps, settings, t0) -> MixingResult:
    """The operator path beyond ``exact_limit`` (see :func:`mixing_report`)."""
    n = model.num_epoch_states
    op = epoch_chain_operator(model, behavior=behavior)
    try:
        law = stationary_law(model, behavior=behavior, exact_limit=settings["exact_limit"]).law
        pi = np.asarray(law, dtype=float).reshape(-1)
        pi_how = "pi: renewal occupancy (GMRES)"
    except StateSpaceTooLargeError:
        pi = arpack_stationary_law(op)
        pi_how = "pi: ARPACK eigenvector of eigenvalue 1"
    if pi is None:
        lower, upper, method, t_rel, lam, pi_min, ok = 0.0, np.inf, "none", np.nan, np.nan, \
            np.nan, False
        notes = ["ARPACK did not converge for the eigenvector of eigenvalue 1 of T^T (pi), so "
                 "only the trivially valid bounds 0 <= t_mix <= inf are reported."]
    else:
        b = mixing_time_bounds(op, pi, eps=eps)
        lower, upper, method, t_rel, lam, pi_min, ok = (
            b.lower, b.upper, b.upper_method, b.relaxation_time, b.second_eigenvalue_modulus,
            b.pi_min, b.success)
        notes = [f"{b.message} {pi_how}."]
    notes.append("projected mixing times need powers of T: not computed beyond exact_limit.")
    msg = (f"{n:,} epoch states > exact_limit = {settings['exact_limit']:,}: t_mix not computed; "
           f"bounds {lower:.6g} <= t_mix({eps:g}) <= {upper:.6g} ({method}).")
    return MixingResult(
        success=bool(ok), status="bounds", message=msg, iterations=0, settings=settings,
        elapsed=time.perf_counter() - t0, eps=eps, num_epoch_states=n, t_mix=np.nan,
        t_mix_is_exact=False, t_mix_lower=float(lower), t_mix_upper=float(upper),
        upper_bound_method=method, relaxation_time=float(t_rel),
        second_eigenvalue_modulus=float(lam), projected_t_mix=np.nan,
        projected_t_mix_decision=np.nan, num_closed_classes=-1, period=0, pi_min=float(pi_min),
        notes=tuple(notes))
