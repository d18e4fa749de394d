"""JSON documents shared by the commands and the report sections.

:func:`gaps_document` is what ``icsmdp gaps --json`` prints and what the
report's gap section shows: the gap report of SPEC section 5 plus the mixing
of SPEC section 6, as JSON-ready data.

For a workflow known through its logs (SPEC section 10):

- :func:`fit_document` is the fit report of ``icsmdp fit`` (invocations,
  episodes, truncated episodes, states and triples seen, unvisited declared
  triples, dangling invocations, the Markov and successor-dependence checks
  with their p-values);
- :func:`posterior_document` is the gap report of a fitted model with
  credible intervals (``icsmdp gaps TRACE|MODEL --json``): today's keys hold
  the values on the maximum-likelihood model, ``intervals`` maps each key to
  its equal-tailed ``[lower, upper]`` at ``level`` from ``posterior_draws``
  posterior models (:func:`estimators.uncertainty.posterior_gaps`), beside
  the probability that the greedy AIS policy is optimal, the per-cell
  attribution on the ML model, the comparison with a second map and the
  evidence-needed table.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from estimators.fit import FitResult
from estimators.gaps import gap_report
from estimators.mixing import mixing_report
from estimators.posterior import DEFAULT_SUPPORT as POSTERIOR_DEFAULT_SUPPORT, SUPPORT_CHOICES
from estimators.uncertainty import draw_values, evidence_needed, posterior_gaps
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import to_jsonable
from icsmdp_theory.traces import TraceData

__all__ = ["GAP_KEYS", "MIXING_KEYS", "DEFAULT_SUPPORT", "FITTED_REFERENCE", "EVIDENCE_DRAWS", "gaps_document",
           "fit_document", "posterior_document"]

#: Scalar keys of the gap report printed and exported (in this order).
GAP_KEYS = ("epsilon_phi", "delta_phi", "delta_phi_tail_bound", "delta_phi_gamma", "gamma_bar",
            "L_Q", "span_f", "eta", "alpha_paper", "alpha_tv", "alpha_tight", "max_q_gap",
            "max_value_gap", "policy_loss", "minimax_epsilon", "minimax_delta")
MIXING_KEYS = ("t_mix", "t_mix_is_exact", "t_mix_lower", "t_mix_upper", "relaxation_time",
                "projected_t_mix", "projected_t_mix_decision", "eps")


def gaps_document(model: ICSMDP | EpochModel, *, reference: str = "uniform", minimax: bool = True,
                  mixing: bool = True, eps: float = 0.25) -> dict:
    """Gap report plus mixing of ``model`` (with its current observation maps) as a JSON-ready dict.

    ``model`` is a primitive instance or an explicit epoch model (SPEC section 10);
    ``cell_rule`` and ``cells_differing`` say how cells whose states admit
    different successors are treated (:class:`estimators.gaps.GapReport`).
    """
    rep = gap_report(model, reference=reference, minimax=minimax)
    doc: dict[str, Any] = {"instance": model.name, "reference": rep.reference}
    for k in GAP_KEYS:
        doc[k] = getattr(rep, k)
    doc["fallback_cells"] = rep.fallback_cells
    if mixing:
        mix = mixing_report(model, eps=eps)
        for k in MIXING_KEYS:
            doc[k] = getattr(mix, k)
        doc["mixing_message"] = mix.message
    else:
        for k in MIXING_KEYS:
            doc[k] = None
    doc["cells"] = rep.cells
    doc["cell_rule"] = rep.cell_rule
    doc["cells_differing"] = rep.cells_differing
    doc["success"] = rep.success
    doc["message"] = rep.message
    return to_jsonable(doc)


#: The default reference law for a trace or a fitted model: ``stationary`` (uniform weights on a
#: cell's states make ``R_hat`` depend on which rare states a trace reached; README, semantic choices).
FITTED_REFERENCE = "stationary"
#: The posterior prior of the draws (:data:`estimators.posterior.DEFAULT_SUPPORT`).
DEFAULT_SUPPORT = POSTERIOR_DEFAULT_SUPPORT
#: Posterior models per subsample of the evidence-needed study (at most this, at most ``posterior``).
EVIDENCE_DRAWS = 50


def fit_document(fit: FitResult, *, trace_path: str) -> dict:
    """The fit report of a trace (``icsmdp fit --json``) as a JSON-ready dict (SPEC section 10).

    Keys: ``trace`` (the path read) and every field of
    :meth:`estimators.fit.FitResult.to_dict`: ``invocations``, ``invocations_used``,
    ``episodes``, ``truncated_episodes``, ``states_seen``, ``labels_seen``,
    ``triples_seen``, ``unvisited_declared``, ``dangling``, ``starts_dropped``,
    ``pairs_without_outcome``, ``markov_test`` and ``successor_test`` (each with
    ``statistic``, ``dof``, ``p_value``, ``verdict``, ...), ``alpha0``,
    ``admissible``, ``model`` (a summary) and the result fields
    (``success``, ``message``, ``elapsed``, ...). Non-finite numbers become ``None``.
    """
    if not isinstance(fit, FitResult):
        raise InvalidArgumentError(f"`fit` must be a FitResult (estimators.fit.fit_epoch_model), "
                                   f"got {type(fit).__name__}.")
    doc: dict[str, Any] = {"trace": str(trace_path)}
    doc.update(fit.to_dict())
    return to_jsonable(doc)


def _posterior_document_iv(model, against, trace, apply_maps, posterior, support):
    if not isinstance(model, EpochModel) or model.counts is None:
        raise InvalidArgumentError("`model` must be a fitted EpochModel carrying its counts "
                                   "(estimators.fit.fit_epoch_model or a saved fitted model).")
    if against is not None and not isinstance(against, EpochModel):
        raise InvalidArgumentError(f"`against` must be an EpochModel, got {type(against).__name__}.")
    if trace is not None and not isinstance(trace, TraceData):
        raise InvalidArgumentError(f"`trace` must be a TraceData, got {type(trace).__name__}.")
    if apply_maps is not None and not callable(apply_maps):
        raise InvalidArgumentError("`apply_maps` must be callable (fitted model -> model with the map).")
    if isinstance(posterior, bool) or not isinstance(posterior, (int, np.integer)) or posterior < 0:
        raise InvalidArgumentError(f"`posterior` must be an integer >= 0, got {posterior!r}.")
    if support not in SUPPORT_CHOICES:
        raise InvalidArgumentError(f"`support` must be one of {', '.join(SUPPORT_CHOICES)}, "
                                   f"got {support!r}.")
    return int(posterior)


def posterior_document(model: EpochModel, *, against: EpochModel | None = None,
                       trace: TraceData | None = None,
                       apply_maps: Callable[[EpochModel], EpochModel] | None = None,
                       reference: str = "uniform", posterior: int = 200, level: float = 0.9,
                       support: str = DEFAULT_SUPPORT, seed: int = 0, jobs: int = 1,
                       target_width: float | None = None, minimax: bool = True,
                       mixing: bool = True, progress: Callable[[int], None] | None = None,
                       evidence: bool = False, alpha0: float | None = None,
                       admissible: str = "observed", eps: float = 0.25,
                       evidence_progress: Callable[[int], None] | None = None,
                       borrow: bool = True) -> dict:
    r"""Gap report of a fitted epoch model with credible intervals, as a JSON-ready dict (SPEC 10).

    Today's keys of :func:`gaps_document` (:data:`GAP_KEYS`, :data:`MIXING_KEYS`,
    ``cells``, ``fallback_cells``, ...) plus ``v0 = sum_s rho0(s) V*(s)`` hold the
    values on the maximum-likelihood model ``model``; with ``posterior = n > 0``
    posterior models (:func:`estimators.uncertainty.posterior_gaps`, draw ``d``
    seeded by ``SeedSequence(seed).spawn(n)[d]``, so ``jobs`` does not change the
    numbers):

    - ``intervals``: key -> ``[lower, upper]``, the equal-tailed ``level`` credible
      interval (``None`` for keys without one, and every key with ``posterior = 0``);
    - ``level``, ``posterior_draws`` (``n``), ``greedy_agreement`` (share of draws whose
      greedy AIS policy is optimal for ``Q*`` at every state; ``None`` with ``n = 0``)
      and ``greedy_agreement_ml``;
    - ``cells`` (per-cell attribution of :func:`estimators.gaps.gap_report` on the ML
      model, ranked by ``(epsilon + eta)/(1 - gamma_bar)``), ``cells_differing`` and
      ``cell_rule`` (``"union"`` for a fitted model);
    - with ``against`` (the same fitted model under map B): ``against`` =
      ``values`` (B on the ML model), ``intervals``, ``difference`` (B - A),
      ``difference_intervals`` (of B - A over the same draws), ``prob_b_smaller``,
      ``greedy_agreement``;
    - with ``trace`` and ``apply_maps`` and (``target_width`` given or ``evidence``):
      ``evidence`` (:meth:`estimators.uncertainty.EvidenceNeeded.to_dict`: interval
      widths on subsamples of the trace, ``width = a n^b``, the projected
      invocations for ``target_width``), else ``None``.

    Parameters
    ----------
    model : EpochModel
        A fitted model (with ``counts``) carrying the map under study.
    against : EpochModel, optional
        ``model`` with a second map B (``label_maps_from_dict`` on the same model).
    trace : TraceData, optional
        The trace ``model`` was fitted on (for the evidence-needed study).
    apply_maps : callable, optional
        Fitted model of a subsample -> that model with the map under study.
    reference : {"uniform", "stationary"}
    posterior : int
        Posterior models (``0``: the ML values only).
    level : float
        Credible level in (0, 1).
    support : {"state", "pooled", "successor", "observed"}
        Dirichlet prior of the posterior (:class:`estimators.posterior.PosteriorSampler`).
    borrow : bool
        Posterior draws complete the declared triples the trace never visited (the output's
        ``borrow``, ``borrowed_pairs`` and ``posterior_notes`` say what was done).
    seed, jobs : int
        Seed of the draws, worker processes (the values do not depend on ``jobs``).
    target_width : float, optional
        Requested interval width; implies the evidence-needed study.
    minimax, mixing : bool
        Include the minimax gaps and the mixing times.
    progress : callable, optional
        Called with the number of posterior draws finished.
    evidence : bool
        Run the evidence-needed study even without ``target_width``.
    alpha0 : float, optional
        Prior concentration (default: the one stored in the counts).
    admissible : {"observed", "declared"}
        How subsamples are fitted in the evidence study (as ``model`` was).
    eps : float
        Mixing-time threshold.
    evidence_progress : callable, optional
        Called with 1 after each subsample of the evidence study.

    Returns
    -------
    dict
    """
    posterior = _posterior_document_iv(model, against, trace, apply_maps, posterior, support)
    doc = gaps_document(model, reference=reference, minimax=minimax, mixing=mixing, eps=eps)
    if posterior > 0:
        res = posterior_gaps(model, against=against, reference=reference, draws=posterior,
                             level=level, alpha0=alpha0, support=support, seed=seed,
                             minimax=minimax, mixing=mixing, jobs=jobs, progress=progress,
                             borrow=borrow)
        values, intervals = dict(res.values), dict(res.intervals)
        borrowed, notes = res.borrowed_pairs, list(res.notes)
        agreement, agreement_ml = res.greedy_agreement, res.greedy_agreement_ml
        cmp = res.against
        used_alpha0 = res.alpha0
    else:
        ml = draw_values(model, against=against, reference=reference, minimax=minimax,
                         mixing=mixing)
        values, intervals = dict(ml["a"]), {k: None for k in ml["a"]}
        agreement, agreement_ml = None, ml["agree"]
        cmp = None
        if against is not None:
            b = ml["b"]
            cmp = {"values": b, "intervals": {k: None for k in b},
                   "difference": {k: None if values[k] is None or b[k] is None else b[k] - values[k]
                                  for k in b},
                   "difference_intervals": {k: None for k in b},
                   "prob_b_smaller": {k: None for k in b}, "greedy_agreement": None,
                   "greedy_agreement_ml": ml["agree_b"]}
        used_alpha0 = alpha0 if alpha0 is not None else model.counts.get("alpha0")
        borrowed, notes = None, []
    out: dict[str, Any] = {"instance": doc["instance"], "reference": doc["reference"],
                           "v0": values.get("v0")}
    for k in GAP_KEYS + MIXING_KEYS:
        out[k] = values[k] if k in values else doc.get(k)
    for k in ("fallback_cells", "mixing_message", "success", "message"):
        if k in doc:
            out[k] = doc[k]
    out["intervals"] = {k: intervals.get(k) for k in values}
    out["level"] = float(level)
    out["posterior_draws"] = posterior
    out["greedy_agreement"] = agreement
    out["greedy_agreement_ml"] = agreement_ml
    out["cells"] = doc["cells"]
    out["cells_differing"] = doc["cells_differing"]
    out["cell_rule"] = doc["cell_rule"]
    out["alpha0"] = used_alpha0
    out["support"] = support
    out["borrow"] = bool(borrow)
    out["borrowed_pairs"] = borrowed
    out["posterior_notes"] = notes
    out["seed"] = int(seed)
    if cmp is not None:
        out["against"] = {"instance": against.name, **cmp}
    out["evidence"] = None
    if trace is not None and apply_maps is not None and (target_width is not None or evidence):
        ev = evidence_needed(trace, apply_maps, draws=min(EVIDENCE_DRAWS, posterior or EVIDENCE_DRAWS),
                             level=level, target_width=target_width, admissible=admissible,
                             alpha0=used_alpha0 if used_alpha0 is not None else 0.5,
                             support=support, reference=reference, seed=seed, jobs=jobs,
                             progress=evidence_progress, borrow=borrow)
        out["evidence"] = ev.to_dict()
    return to_jsonable(out)
