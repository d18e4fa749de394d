r"""Gaps of a workflow known through its logs, with credible intervals (SPEC section 10).

A fitted epoch model (:func:`estimators.fit.fit_epoch_model`) is the
maximum-likelihood (ML) estimate of the decision-epoch SMDP. Every quantity
of the gap report (SPEC sections 3 to 6: ``gamma_bar``, ``v0 = sum_s rho0(s) V*(s)``,
``epsilon_phi``, ``delta_phi``, ``delta_phi_gamma``, ``L_Q``, ``span_f``, ``eta``,
the three ``alpha`` forms, ``max_q_gap``, ``max_value_gap``, ``policy_loss``,
the minimax gaps and the mixing times) is computed

- on the ML model: the reported value, and
- on ``n`` posterior models (:class:`estimators.posterior.PosteriorSampler`):
  its equal-tailed credible interval at level ``level``
  (:func:`estimators.posterior.equal_tailed_interval`),

by the one implementation of each quantity (:func:`estimators.gaps.gap_report`,
:func:`estimators.mixing.mixing_report`). Also per draw:

- whether the greedy AIS policy equals a greedy full-information policy: at
  every epoch state ``s`` the AIS choice ``sigma(s) = argmax_c' Q_hat*(phi(s), c')``
  is optimal for ``Q*`` (``Q*(s, sigma(s)) >= V*(s) - 1e-9 max(1, |V*(s)|)``); the
  share of draws where it does estimates the posterior probability;
- with a second map (``against``), the same quantities under map B on the
  *same* draw, and their differences ``B - A`` (so the interval of a difference
  is the posterior of the difference, not a difference of intervals).

Draw ``d`` uses the seed ``SeedSequence(seed).spawn(n)[d]``, so the values do not
depend on ``jobs`` or on the order in which workers finish.

Evidence needed (:func:`evidence_needed`): the interval width of each key on
fits of random subsamples (whole episodes) of the trace, the least-squares
fit ``log width = log a + b log n`` over the invocation counts ``n``, and the
projected trace size ``n = (w / a)^(1/b)`` for a target width ``w``
(``b`` near ``-1/2`` when the posterior concentrates at the usual rate).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from joblib import Parallel, delayed, parallel_config

from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch_level import epoch_level
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import Result
from icsmdp_theory.traces import TraceData
from icsmdp_theory.validation import positive_int, unit_interval
from estimators.fit import fit_epoch_model
from estimators.gaps import SCALAR_FIELDS, gap_report
from estimators.mixing import mixing_report
from estimators.posterior import (DEFAULT_SUPPORT, PosteriorSampler, equal_tailed_interval,
                                  subsample_trace)
from solvers.api import ModifiedPolicyIteration, solve
from solvers.common import greedy

__all__ = ["PosteriorGaps", "EvidenceNeeded", "posterior_gaps", "evidence_needed", "draw_values",
           "projected_size",
           "GAP_VALUE_KEYS", "MIXING_VALUE_KEYS"]

#: The gap-report quantities given an interval (``delta_phi_tail_bound`` is 0 on an epoch model).
GAP_VALUE_KEYS = ("v0",) + tuple(k for k in SCALAR_FIELDS if k != "delta_phi_tail_bound")
#: The mixing quantities given an interval (with ``mixing=True``).
MIXING_VALUE_KEYS = ("t_mix", "relaxation_time", "projected_t_mix")
#: Relative tolerance of "the AIS choice is optimal for Q*".
_OPTIMAL_TOL = 1e-9


def _values(model: EpochModel, *, reference: str, minimax: bool, mixing: bool, tol: float,
            oracle) -> tuple[dict, bool]:
    rep = gap_report(model, reference=reference, minimax=minimax, tol=tol, oracle=oracle, workers=1)
    q_star = np.asarray(rep.q_star, dtype=float)
    v_star = np.asarray(oracle.v, dtype=float)
    out = {"v0": float(np.asarray(model.rho0) @ v_star)}
    for k in GAP_VALUE_KEYS[1:]:
        v = getattr(rep, k)
        out[k] = None if v is None else float(v)
    if mixing:
        mix = mixing_report(model)
        for k in MIXING_VALUE_KEYS:
            out[k] = float(getattr(mix, k))
    # the greedy AIS policy, seen from every epoch state, against Q*
    lev = epoch_level(model)
    cells = lev.epoch_cells(cell_offsets(lev.num_observations))
    q_hat = np.asarray(rep.q_hat)
    sigma = greedy(q_hat, np.isfinite(q_hat))[cells]
    chosen = q_star[np.arange(q_star.shape[0]), sigma]
    agree = bool(np.all(chosen >= v_star - _OPTIMAL_TOL * np.maximum(1.0, np.abs(v_star))))
    return out, agree


def draw_values(model: EpochModel, *, against: EpochModel | None = None, reference: str = "uniform",
                minimax: bool = True, mixing: bool = True, tol: float = 1e-9) -> dict:
    """The quantities of one model and of its map-B twin (``Q*`` solved once, shared).

    Returns ``{"a": {key: value}, "agree": bool}`` plus ``"b"``, ``"agree_b"`` with ``against``.
    """
    oracle = solve(ModifiedPolicyIteration(k=10, tol=tol), model)
    a, agree = _values(model, reference=reference, minimax=minimax, mixing=mixing, tol=tol,
                       oracle=oracle)
    out = {"a": a, "agree": agree}
    if against is not None:
        b, agree_b = _values(against, reference=reference, minimax=minimax, mixing=mixing,
                             tol=tol, oracle=oracle)
        out["b"], out["agree_b"] = b, agree_b
    return out


def _chunk(model: EpochModel, against_maps, seeds: list, settings: dict) -> list:
    """Worker task: draws for the given seeds (the sampler is rebuilt in the worker)."""
    sampler = PosteriorSampler(model, alpha0=settings["alpha0"], support=settings["support"],
                               borrow=settings["borrow"])
    out = []
    for seed in seeds:
        draw = sampler.draw(rng=np.random.default_rng(seed))
        twin = None if against_maps is None else draw.with_observation(against_maps)
        out.append(draw_values(draw, against=twin, reference=settings["reference"],
                               minimax=settings["minimax"], mixing=settings["mixing"],
                               tol=settings["tol"]))
    return out


@dataclass(frozen=True, kw_only=True, repr=False)
class PosteriorGaps(Result):
    """Gap report of a fitted model with credible intervals (SPEC section 10).

    Attributes
    ----------
    keys : tuple of str
        The quantities, in report order.
    values : dict
        Each key's value on the maximum-likelihood model.
    intervals : dict
        Each key -> ``[lower, upper]``, the equal-tailed ``level`` credible interval.
    draws : ndarray, shape (posterior_draws, len(keys))
        The posterior values (``nan`` where a quantity is not defined).
    level : float
    posterior_draws : int
    greedy_agreement : float
        Share of posterior draws whose greedy AIS policy is optimal for ``Q*`` at every state.
    greedy_agreement_ml : bool
        The same on the ML model.
    against : dict or None
        With a second map: ``values``, ``intervals`` of map B, ``difference`` (B - A on the ML
        model), ``difference_intervals`` (of B - A over the same draws), ``greedy_agreement``,
        ``prob_b_smaller`` (per key, the share of draws with B < A).
    support, alpha0, seed, reference : settings echoed
    borrow : bool
        Whether the draws complete the declared triples the trace never visited.
    borrowed_pairs : int
        How many triples each draw completes (:attr:`estimators.posterior.PosteriorSampler.borrowed`).
    notes : tuple of str
        The sampler's notes (fallbacks, triples left out).
    """

    keys: tuple
    values: dict
    intervals: dict
    draws: np.ndarray
    level: float
    posterior_draws: int
    greedy_agreement: float
    greedy_agreement_ml: bool
    against: dict | None
    reference: str
    support: str
    alpha0: float
    seed: int
    borrow: bool = True
    borrowed_pairs: int = 0
    notes: tuple = ()

    def to_dict(self) -> dict:
        """JSON-ready: today's keys with ML values, ``intervals``, ``level``, ``posterior_draws``."""
        doc = dict(self.values)
        doc.update(intervals=self.intervals, level=self.level, posterior_draws=self.posterior_draws,
                   greedy_agreement=self.greedy_agreement,
                   greedy_agreement_ml=self.greedy_agreement_ml, reference=self.reference,
                   support=self.support, alpha0=self.alpha0, seed=self.seed, borrow=self.borrow,
                   borrowed_pairs=self.borrowed_pairs, notes=list(self.notes))
        if self.against is not None:
            doc["against"] = self.against
        return doc


def _posterior_gaps_iv(model, against, draws, level, jobs):
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(
            f"`model` must be a fitted EpochModel, got {type(model).__name__}.")
    if against is not None:
        if not isinstance(against, EpochModel) or against.num_epoch_states != model.num_epoch_states \
                or not np.array_equal(against.trans_prob, model.trans_prob):
            raise InvalidArgumentError("`against` must be the same fitted model with other "
                                       "observation maps (`model.with_observation(...)`).")
    return positive_int("draws", draws), unit_interval("level", level, open_low=True,
                                                        open_high=True), positive_int("jobs", jobs)


def posterior_gaps(model: EpochModel, *, against: EpochModel | None = None,
                   reference: str = "uniform", draws: int = 200, level: float = 0.9,
                   alpha0: float | None = None, support: str = DEFAULT_SUPPORT, seed: int = 0,
                   minimax: bool = True, mixing: bool = True, tol: float = 1e-9, jobs: int = 1,
                   progress: Callable[[int], None] | None = None,
                   borrow: bool = True) -> PosteriorGaps:
    """Gaps of ``model``'s observation maps with credible intervals from posterior models.

    Parameters
    ----------
    model : EpochModel
        A fitted model carrying its counts, with the map under study (``with_observation``
        or :func:`icsmdp_theory.epoch_io.load_label_maps`).
    against : EpochModel, optional
        The same fitted model with a second map B.
    reference : {"uniform", "stationary"}
    draws : int
        Posterior models (SPEC default 200).
    level : float
        Credible level of the equal-tailed intervals (default 0.9).
    alpha0, support, borrow
        The posterior prior, and whether draws complete the declared triples the trace never
        visited (:class:`~estimators.posterior.PosteriorSampler`).
    seed : int
        Draw ``d`` uses ``SeedSequence(seed).spawn(draws)[d]``.
    minimax, mixing : bool
        Include the minimax gaps (LPs) and the mixing times, on the ML model and every draw.
    tol : float
        Accuracy of the exact solves.
    jobs : int
        Worker processes (joblib, loky backend); the values do not depend on it.
    progress : callable, optional
        Called with the number of draws finished each time a batch completes.

    Returns
    -------
    PosteriorGaps
    """
    draws, level, jobs = _posterior_gaps_iv(model, against, draws, level, jobs)
    t0 = time.perf_counter()
    settings = {"alpha0": alpha0, "support": support, "reference": reference,
                "minimax": bool(minimax), "mixing": bool(mixing), "tol": float(tol),
                "borrow": bool(borrow)}
    sampler = PosteriorSampler(model, alpha0=alpha0, support=support,
                               borrow=bool(borrow))                     # validates the counts
    ml = draw_values(model, against=against, reference=reference, minimax=minimax, mixing=mixing,
                     tol=tol)
    seeds = np.random.SeedSequence(seed).spawn(draws)
    against_maps = None if against is None else [np.asarray(o) for o in against.observation]
    results = _run_draws(model, against_maps, seeds, settings, jobs, progress)
    keys = tuple(ml["a"])
    A = np.array([[np.nan if r["a"][k] is None else r["a"][k] for k in keys] for r in results])
    intervals = {k: list(equal_tailed_interval(A[:, j], level)) if np.isfinite(A[:, j]).any()
                 else None for j, k in enumerate(keys)}
    agree = float(np.mean([r["agree"] for r in results]))
    cmp = None
    if against is not None:
        B = np.array([[np.nan if r["b"][k] is None else r["b"][k] for k in keys] for r in results])
        diff = B - A
        cmp = {"values": ml["b"],
               "intervals": {k: list(equal_tailed_interval(B[:, j], level))
                             if np.isfinite(B[:, j]).any() else None for j, k in enumerate(keys)},
               "difference": {k: None if ml["a"][k] is None or ml["b"][k] is None
                              else ml["b"][k] - ml["a"][k] for k in keys},
               "difference_intervals": {k: list(equal_tailed_interval(diff[:, j], level))
                                        if np.isfinite(diff[:, j]).any() else None
                                        for j, k in enumerate(keys)},
               "prob_b_smaller": {k: float(np.mean(diff[:, j] < 0)) if np.isfinite(diff[:, j]).any()
                                  else None for j, k in enumerate(keys)},
               "greedy_agreement": float(np.mean([r["agree_b"] for r in results])),
               "greedy_agreement_ml": ml["agree_b"]}
    a = ml["a"]
    msg = (f"alpha_tight {a['alpha_tight']:.6g} in [{intervals['alpha_tight'][0]:.6g}, "
           f"{intervals['alpha_tight'][1]:.6g}] ({level:g} credible, {draws} posterior models); "
           f"greedy AIS policy optimal in {agree:.0%} of draws.")
    return PosteriorGaps(success=True, status="computed", message=msg, iterations=draws,
                         settings={**settings, "draws": draws, "level": level, "seed": seed,
                                   "jobs": jobs},
                         elapsed=time.perf_counter() - t0, keys=keys, values=a,
                         intervals=intervals, draws=A, level=level, posterior_draws=draws,
                         greedy_agreement=agree, greedy_agreement_ml=ml["agree"], against=cmp,
                         reference=reference, support=support, alpha0=float(sampler.alpha0),
                         seed=int(seed), borrow=bool(borrow), borrowed_pairs=int(sampler.borrowed),
                         notes=tuple(sampler.notes))


def _run_draws(model, against_maps, seeds, settings, jobs, progress) -> list:
    """Run the draws in batches (in order); ``jobs > 1`` through joblib's loky workers."""
    # a worker rebuilds the sampler once per batch (about 1 s on 2,000 states): batches of up to
    # 25 draws keep that small while the progress bar still moves a few times per worker
    batch = max(1, min(25, len(seeds) // max(1, 4 * jobs)))
    chunks = [seeds[i:i + batch] for i in range(0, len(seeds), batch)]
    results: list = []
    if jobs == 1:
        for ch in chunks:
            results.extend(_chunk(model, against_maps, ch, settings))
            if progress is not None:
                progress(len(ch))
        return results
    # one BLAS thread per worker: ``jobs`` workers already use the cores, and oversubscribed
    # BLAS made the dense eigen-solves of the mixing analysis ~30x slower on two cores
    with parallel_config(backend="loky", inner_max_num_threads=1):
        par = Parallel(n_jobs=jobs, return_as="generator")
        for ch, out in zip(chunks, par(delayed(_chunk)(model, against_maps, ch, settings)
                                       for ch in chunks)):
            results.extend(out)
            if progress is not None:
                progress(len(ch))
    return results


def projected_size(width: float, scale: float, slope: float) -> float | None:
    """``n`` with ``scale * n^slope = width`` (``None`` unless ``slope < 0`` and ``n`` is finite).

    >>> round(projected_size(0.1, 1.0, -0.5))
    100
    """
    if not (slope < 0 and scale > 0 and width > 0):
        return None
    log_n = (np.log(width) - np.log(scale)) / slope
    return float(np.exp(log_n)) if log_n < 700 else None


@dataclass(frozen=True, kw_only=True, repr=False)
class EvidenceNeeded(Result):
    """Interval width against trace size (SPEC section 10, "Evidence needed").

    Attributes
    ----------
    invocations : ndarray of int
        Invocations in each subsample (the last is the whole trace).
    fractions : ndarray
        Share of episodes kept.
    widths : dict
        Key -> widths of its interval on each subsample (``nan`` if undefined).
    slope, scale : dict
        Key -> ``b`` and ``a`` of ``width = a n^b`` (least squares in logs; ``None``
        with fewer than two positive widths).
    target_width : float or None
    projected_invocations : dict
        Key -> ``(target_width / a)^(1/b)`` when ``b < 0``, else ``None``.
    """

    invocations: np.ndarray
    fractions: np.ndarray
    widths: dict
    slope: dict
    scale: dict
    target_width: float | None
    projected_invocations: dict

    def to_dict(self) -> dict:
        return {"invocations": [int(v) for v in self.invocations],
                "fractions": [float(v) for v in self.fractions],
                "widths": {k: [None if not np.isfinite(w) else float(w) for w in v]
                           for k, v in self.widths.items()},
                "slope": self.slope, "scale": self.scale, "target_width": self.target_width,
                "projected_invocations": self.projected_invocations}


def evidence_needed(trace: TraceData, apply_maps: Callable[[EpochModel], EpochModel], *,
                    keys: Sequence[str] = ("epsilon_phi", "delta_phi", "alpha_tight",
                                           "policy_loss"),
                    fractions: Sequence[float] = (0.125, 0.25, 0.5, 1.0), draws: int = 50,
                    level: float = 0.9, target_width: float | None = None,
                    admissible: str = "observed", alpha0: float = 0.5,
                    support: str = DEFAULT_SUPPORT, reference: str = "uniform", seed: int = 0,
                    borrow: bool = True,
                    tol: float = 1e-9, jobs: int = 1, progress=None) -> EvidenceNeeded:
    """Interval widths on subsamples of ``trace`` and the projected size for ``target_width``.

    Parameters
    ----------
    trace : TraceData
    apply_maps : callable
        ``fitted model -> the model with the map under study`` (e.g. re-reading the
        ``icsmdp-obs/1`` document for the subsample's labels).
    keys : sequence of str
        Quantities (of :data:`GAP_VALUE_KEYS`) whose widths are studied.
    fractions : sequence of float in (0, 1]
        Shares of whole episodes kept (subsample ``d`` seeded from ``seed``).
    draws : int
        Posterior models per subsample.
    """
    t0 = time.perf_counter()
    unknown = [k for k in keys if k not in GAP_VALUE_KEYS]
    if unknown:
        raise InvalidArgumentError(f"`keys`: unknown quantities {unknown}; choose from "
                                   f"{', '.join(GAP_VALUE_KEYS)}.")
    fractions = np.array(sorted(float(f) for f in fractions))
    if fractions.size == 0 or fractions[0] <= 0 or fractions[-1] > 1:
        raise InvalidArgumentError(f"`fractions` must lie in (0, 1], got {fractions.tolist()}.")
    seq = np.random.SeedSequence([seed, 1])
    sub_seeds = seq.spawn(len(fractions))
    widths = {k: [] for k in keys}
    n_inv = []
    for f, ss in zip(fractions, sub_seeds):
        sub = trace if f >= 1.0 else subsample_trace(trace, f, np.random.default_rng(ss))
        fit = fit_epoch_model(sub, admissible=admissible, alpha0=alpha0)
        n_inv.append(int(sub.num_invocations))
        res = posterior_gaps(apply_maps(fit.model), reference=reference, draws=draws, level=level,
                             alpha0=alpha0, support=support, borrow=borrow,
                             seed=int(ss.generate_state(1)[0]), minimax=False, mixing=False,
                             tol=tol, jobs=jobs)
        for k in keys:
            iv = res.intervals.get(k)
            widths[k].append(np.nan if iv is None else float(iv[1] - iv[0]))
        if progress is not None:
            progress(1)
    n = np.array(n_inv, dtype=float)
    slope, scale, proj = {}, {}, {}
    for k in keys:
        w = np.array(widths[k])
        ok = np.isfinite(w) & (w > 0)
        if ok.sum() >= 2 and np.ptp(np.log(n[ok])) > 0:
            b, loga = np.polyfit(np.log(n[ok]), np.log(w[ok]), 1)
            slope[k], scale[k] = float(b), float(np.exp(loga))
            proj[k] = (projected_size(target_width, scale[k], b)
                       if target_width is not None else None)
        else:
            slope[k] = scale[k] = proj[k] = None
    msg = "; ".join(f"{k}: width ~ n^{slope[k]:.2f}" for k in keys if slope[k] is not None) + "."
    return EvidenceNeeded(success=True, status="computed", message=msg, iterations=len(fractions),
                          settings={"draws": draws, "level": level, "seed": seed,
                                    "fractions": fractions.tolist(), "support": support},
                          elapsed=time.perf_counter() - t0, invocations=np.array(n_inv),
                          fractions=fractions, widths={k: np.array(v) for k, v in widths.items()},
                          slope=slope, scale=scale, target_width=target_width,
                          projected_invocations=proj)
