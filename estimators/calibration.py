r"""Calibration of the math-reasoning workflow model to the paper's Table 1 (issue 14).

The model (:func:`icsmdp_theory.math_reasoning.math_reasoning`) has per-call
probabilities ``theta`` (:class:`~icsmdp_theory.math_reasoning.MathParams`);
for a dataset with Table 1 accuracies ``T_w`` of the five workflows ``w`` the
fit solves the bounded least-squares problem

    min_theta  sum_w (A_w(theta) - T_w)^2  +  lambda^2 ||theta_abl - theta0_abl||^2,
    0.001 <= every probability <= 0.999,

where ``A_w(theta)`` is the *exact* accuracy of workflow ``w`` (the
undiscounted probability of STOPping with a right answer: a policy evaluation,
not a simulation) and the second term is a weak prior (``lambda =``
:data:`PRIOR_WEIGHT`) centred on
:data:`~icsmdp_theory.math_reasoning.NOMINAL` for the 21 per-call
probabilities (``theta_abl``; the difficulty mixture is free). Five accuracies
cannot pin 23 parameters; the prior picks, among the parameter values that
reproduce Table 1, the one closest to the nominal level structure (the
structural assumptions of the model's docstring), and makes the answer
unique, so a re-run reproduces the shipped
:data:`~icsmdp_theory.math_reasoning.CALIBRATED` values. The mixture is
parametrized by stick breaking, ``mix = (u1, (1 - u1) u2, (1 - u1)(1 - u2))``
with ``u1, u2`` in ``[0, 1]``. The bounds keep every outcome of every call
possible (no LLM is infallible or hopeless), which also makes every loop of
the handoff graph that exits on the checker's approval terminate almost surely.

Inside the optimizer ``A_w`` is computed by forward propagation of the
episode law (:func:`icsmdp_theory.math_reasoning.workflow_totals`); the
reported accuracies and residuals of :class:`CalibrationResult` are those of
:func:`estimators.policy_value.policy_value` on the built epoch model
(:func:`workflow_accuracies`), the two exact methods agreeing to rounding.

``python -m estimators.calibration [DATASET ...]`` prints the fit, its
residuals, the difference to the shipped values and the ``MathParams``
literal to ship.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.math_reasoning import (CALIBRATED, DATASETS, LEVELS, NOMINAL, PAPER_CITATION,
                                          PAPER_TABLE1, WORKFLOW_NAMES, MathParams,
                                          math_reasoning, workflow_policy, workflow_totals)
from icsmdp_theory.results import Result
from icsmdp_theory.validation import is_real
from estimators.policy_value import policy_value

__all__ = ["calibrate", "CalibrationResult", "workflow_accuracies", "level_accuracies",
           "calibration_vector",
           "params_from_vector", "format_params", "FITTED_FIELDS", "PRIOR_WEIGHT",
           "PROBABILITY_BOUNDS", "DEFAULT_TOLERANCE", "main"]

#: The fitted per-call probabilities (after the two stick-breaking coordinates of ``mix``).
FITTED_FIELDS = ("direct", "rationale", "follow_sound", "follow_unsound", "detect",
                 "false_alarm", "repair", "breakage", "relay")
#: ``lambda``: weight of the prior term (module docstring).
PRIOR_WEIGHT = 0.01
#: Bounds of every fitted probability.
PROBABILITY_BOUNDS = (0.001, 0.999)
#: Largest accepted ``|A_w - T_w|`` for a ``"computed"`` result (issue 14: 0.005).
DEFAULT_TOLERANCE = 0.005


@dataclass(frozen=True, kw_only=True, repr=False)
class CalibrationResult(Result):
    """A fit of :class:`~icsmdp_theory.math_reasoning.MathParams` to Table 1 (:func:`calibrate`).

    Attributes
    ----------
    dataset : str
    params : MathParams
        The fitted parameters.
    targets : dict
        Workflow -> Table 1 accuracy.
    accuracies : dict
        Workflow -> exact accuracy of the fitted model (policy evaluation).
    residuals : dict
        Workflow -> ``accuracy - target``.
    max_abs_residual : float
    best_workflow, paper_best_workflow : str
        The most accurate of the five workflows, in the fit and in Table 1.
    cost : float
        Final value of the least-squares objective (half the sum of squares, prior included).
    optimality : float
        First-order optimality of the final point (scipy's ``optimality``).
    num_evaluations : int
        Evaluations of the residual (scipy's ``nfev``).
    """

    dataset: str
    params: MathParams
    targets: dict
    accuracies: dict
    residuals: dict
    max_abs_residual: float
    best_workflow: str
    paper_best_workflow: str
    cost: float
    optimality: float
    num_evaluations: int


def workflow_accuracies(model: EpochModel) -> dict:
    """Exact accuracy of each of the five workflows on ``model`` (undiscounted total of ``correct``).

    Parameters
    ----------
    model : EpochModel
        A :func:`~icsmdp_theory.math_reasoning.math_reasoning` model.

    Returns
    -------
    dict
        Workflow name -> ``policy_value(model, workflow_policy(model, name),
        discounted=False).values["correct"]``, in Table 1's column order.
    """
    return {name: float(policy_value(model, workflow_policy(model, name),
                                     discounted=False).values["correct"])
            for name in WORKFLOW_NAMES}


def level_accuracies(params: MathParams) -> list[dict]:
    """Per difficulty level, the exact accuracy of each workflow (the dataset's is their ``mix`` average).

    Computed with :func:`~icsmdp_theory.math_reasoning.workflow_totals` on ``params``
    with the whole mixture on one level.
    """
    out = []
    for h in range(len(LEVELS)):
        one = params.replace(mix=tuple(float(j == h) for j in range(len(LEVELS))))
        out.append({w: workflow_totals(one, w)["correct"] for w in WORKFLOW_NAMES})
    return out


def calibration_vector(params: MathParams) -> np.ndarray:
    """``params`` as the optimizer's vector: ``(u1, u2)`` of ``mix``, then :data:`FITTED_FIELDS`."""
    w_easy, w_medium, _ = params.mix
    rest = 1.0 - w_easy
    x = [w_easy, w_medium / rest if rest > 0 else 0.5]
    for name in FITTED_FIELDS:
        value = getattr(params, name)
        x.extend(value if isinstance(value, tuple) else [value])
    return np.asarray(x, float)


def params_from_vector(x: Sequence[float], template: MathParams = NOMINAL) -> MathParams:
    """The :class:`MathParams` of an optimizer vector (the inverse of :func:`calibration_vector`).

    Fields that are not fitted (the token costs) are taken from ``template``.
    """
    x = np.asarray(x, float)
    expected = calibration_vector(template).size
    if x.shape != (expected,):
        raise InvalidArgumentError(f"`x` must have shape ({expected},), got {x.shape}.")
    w_easy = float(x[0])
    w_medium = (1.0 - w_easy) * float(x[1])
    changes = {"mix": (w_easy, w_medium, max(1.0 - w_easy - w_medium, 0.0))}
    j = 2
    for name in FITTED_FIELDS:
        value = getattr(template, name)
        n = len(value) if isinstance(value, tuple) else 1
        changes[name] = tuple(float(v) for v in x[j:j + n]) if n > 1 else float(x[j])
        j += n
    return template.replace(**changes)


def format_params(params: MathParams, *, digits: int = 6) -> str:
    """The Python literal ``MathParams(...)`` of ``params``, rounded to ``digits`` decimals."""
    def text(v):
        if isinstance(v, tuple):
            return "(" + ", ".join(text(u) for u in v) + ")"
        return repr(round(float(v), digits))
    w = params.mix
    mix = (round(w[0], digits), round(w[1], digits))
    mix = mix + (round(1.0 - mix[0] - mix[1], digits),)
    body = [f"mix={text(mix)}"]
    body += [f"{name}={text(getattr(params, name))}" for name in FITTED_FIELDS]
    body += [f"tokens_base={text(params.tokens_base)}",
             f"tokens_context={text(params.tokens_context)}"]
    return "MathParams(" + ", ".join(body) + ")"


def _calibrate_iv(dataset, start, prior, prior_weight, tolerance):
    if dataset not in PAPER_TABLE1:
        raise InvalidArgumentError(f"`dataset` must be one of {', '.join(DATASETS)}, got "
                                   f"{dataset!r}.")
    for key, value in (("start", start), ("prior", prior)):
        if value is not None and not isinstance(value, MathParams):
            raise InvalidArgumentError(f"`{key}` must be a MathParams or None, got "
                                       f"{type(value).__name__}.")
    for key, value in (("prior_weight", prior_weight), ("tolerance", tolerance)):
        if not is_real(value) or not value > 0:
            raise InvalidArgumentError(f"`{key}` must be a finite number > 0, got {value!r}.")
    return start or NOMINAL, prior or NOMINAL, float(prior_weight), float(tolerance)


def calibrate(dataset: str, *, start: MathParams | None = None, prior: MathParams | None = None,
              prior_weight: float = PRIOR_WEIGHT, tolerance: float = DEFAULT_TOLERANCE,
              max_nfev: int = 2000) -> CalibrationResult:
    """Fit the model's parameters to Table 1 for ``dataset`` (module docstring).

    Parameters
    ----------
    dataset : str
        One of :data:`~icsmdp_theory.math_reasoning.DATASETS`.
    start : MathParams, optional
        Starting point (default :data:`~icsmdp_theory.math_reasoning.NOMINAL`).
    prior : MathParams, optional
        Centre of the prior term (default ``NOMINAL``).
    prior_weight : float
        ``lambda`` (default :data:`PRIOR_WEIGHT`).
    tolerance : float
        Largest ``|accuracy - target|`` for ``status="computed"``; above it the
        result is ``"inaccurate"`` (``success=False``).
    max_nfev : int
        Passed to :func:`scipy.optimize.least_squares`.

    Returns
    -------
    CalibrationResult
    """
    t0 = time.perf_counter()
    start, prior, lam, tolerance = _calibrate_iv(dataset, start, prior, prior_weight, tolerance)
    targets = np.array([PAPER_TABLE1[dataset][w] for w in WORKFLOW_NAMES])
    centre = calibration_vector(prior)[2:]
    x0 = calibration_vector(start)
    lo, hi = PROBABILITY_BOUNDS
    lower = np.concatenate([[0.0, 0.0], np.full(x0.size - 2, lo)])
    upper = np.concatenate([[1.0, 1.0], np.full(x0.size - 2, hi)])
    x0 = np.clip(x0, lower, upper)

    def residuals(x):
        p = params_from_vector(x, start)
        acc = np.array([workflow_totals(p, w)["correct"] for w in WORKFLOW_NAMES])
        return np.concatenate([acc - targets, lam * (x[2:] - centre)])

    fit = least_squares(residuals, x0, bounds=(lower, upper), xtol=1e-12, ftol=1e-12, gtol=1e-12,
                        max_nfev=max_nfev)
    params = params_from_vector(fit.x, start)
    model = math_reasoning(dataset, params=params)
    acc = workflow_accuracies(model)
    res = {w: acc[w] - PAPER_TABLE1[dataset][w] for w in WORKFLOW_NAMES}
    worst = max(abs(r) for r in res.values())
    best = max(WORKFLOW_NAMES, key=lambda w: acc[w])
    paper_best = max(WORKFLOW_NAMES, key=lambda w: PAPER_TABLE1[dataset][w])
    ok = bool(worst <= tolerance)
    message = (f"{dataset}: max |accuracy - Table 1| = {worst:.2g} "
               f"{'<=' if ok else '>'} {tolerance:g} after {fit.nfev} evaluations ({fit.message})")
    return CalibrationResult(
        success=ok, status="computed" if ok else "inaccurate", message=message,
        iterations=int(fit.nfev), elapsed=time.perf_counter() - t0,
        settings={"prior_weight": lam, "tolerance": tolerance, "bounds": PROBABILITY_BOUNDS,
                  "max_nfev": max_nfev, "source": PAPER_CITATION},
        dataset=dataset, params=params, targets=dict(PAPER_TABLE1[dataset]), accuracies=acc,
        residuals=res, max_abs_residual=float(worst), best_workflow=best,
        paper_best_workflow=paper_best, cost=float(fit.cost), optimality=float(fit.optimality),
        num_evaluations=int(fit.nfev))


def _parameter_distance(a: MathParams, b: MathParams) -> float:
    return float(np.max(np.abs(calibration_vector(a) - calibration_vector(b))))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m estimators.calibration [DATASET ...]``: fit, residuals, the values to ship."""
    parser = argparse.ArgumentParser(prog="python -m estimators.calibration",
                                     description="Calibrate the math-reasoning workflow model "
                                                 "to the paper's Table 1.")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help=f"any of {', '.join(DATASETS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r} (choose from {', '.join(DATASETS)})")
    datasets = args.datasets or list(DATASETS)
    print(f"Calibrated model, not a rerun of the LLM experiment. Targets: {PAPER_CITATION}.")
    literals = []
    for ds in datasets:
        r = calibrate(ds)
        print(f"\n{ds}: {r.status} ({r.elapsed:.1f} s, {r.num_evaluations} evaluations, "
              f"cost {r.cost:.3g})")
        print(f"  {'workflow':<8} {'Table 1':>8} {'model':>8} {'residual':>9}")
        for w in WORKFLOW_NAMES:
            print(f"  {w:<8} {r.targets[w]:8.3f} {r.accuracies[w]:8.4f} {r.residuals[w]:+9.5f}")
        print(f"  best workflow: {r.best_workflow} (Table 1: {r.paper_best_workflow})")
        print(f"  mix (easy, medium, hard): {', '.join(f'{w:.3f}' for w in r.params.mix)}")
        for h, acc in enumerate(level_accuracies(r.params)):
            print(f"  {LEVELS[h]:<6} " + " ".join(f"{w} {acc[w]:.3f}" for w in WORKFLOW_NAMES)
                  + f"   Comb-E - CoT {acc['Comb-E'] - acc['CoT']:+.3f}")
        print(f"  max |parameter - shipped| = {_parameter_distance(r.params, CALIBRATED[ds]):.2g}")
        literals.append(f'    "{ds}": {format_params(r.params)},')
    print("\nCALIBRATED = {\n" + "\n".join(literals) + "\n}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
