"""estimators.calibration: the shipped parameters are what the calibration gives, and fit Table 1.

Table 1 is the paper's (external) data; the accuracies are checked with two exact
methods (policy evaluation of the epoch model, forward propagation of the episode law).
"""
from __future__ import annotations

import numpy as np
import pytest

import estimators.calibration as calibration
from estimators.calibration import (CalibrationResult, calibrate, calibration_vector,
                                    format_params, level_accuracies, params_from_vector,
                                    workflow_accuracies)
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.math_reasoning import (CALIBRATED, DATASETS, NOMINAL, PAPER_TABLE1,
                                          WORKFLOW_NAMES, MathParams, math_reasoning,
                                          workflow_totals)


@pytest.fixture(scope="module")
def hs_fit():
    return calibrate("MMLU-HS")


def _check_fit(r: CalibrationResult):
    shipped = CALIBRATED[r.dataset]
    assert r.status == "computed" and r.success
    assert np.max(np.abs(calibration_vector(r.params) - calibration_vector(shipped))) < 1e-4
    assert r.max_abs_residual <= 0.005
    for w in WORKFLOW_NAMES:
        assert r.residuals[w] == pytest.approx(r.accuracies[w] - PAPER_TABLE1[r.dataset][w],
                                               abs=1e-15)
        # the reported accuracy (policy evaluation) against the forward propagation
        assert r.accuracies[w] == pytest.approx(workflow_totals(r.params, w)["correct"],
                                                abs=1e-12)
    assert r.best_workflow == r.paper_best_workflow


def test_recalibration_reproduces_the_shipped_values(hs_fit):
    _check_fit(hs_fit)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
def test_recalibration_reproduces_the_shipped_values_all(dataset):
    _check_fit(calibrate(dataset))


def test_shipped_values_are_a_stationary_point_of_the_fit():
    """Starting at the shipped values, the least squares stays there (fast, every dataset)."""
    for ds in DATASETS:
        r = calibrate(ds, start=CALIBRATED[ds], max_nfev=60)
        assert np.max(np.abs(calibration_vector(r.params) - calibration_vector(CALIBRATED[ds]))) \
            < 2e-4, ds
        assert r.max_abs_residual < 5e-4


def test_workflow_accuracies_by_policy_evaluation():
    for ds in DATASETS:
        acc = workflow_accuracies(math_reasoning(ds))
        assert list(acc) == list(WORKFLOW_NAMES)
        for w, a in acc.items():
            assert abs(a - PAPER_TABLE1[ds][w]) <= 0.005
            assert a == pytest.approx(workflow_totals(CALIBRATED[ds], w)["correct"], abs=1e-12)


def test_level_accuracies_average_to_the_dataset():
    p = CALIBRATED["MathQA"]
    levels = level_accuracies(p)
    for w in WORKFLOW_NAMES:
        assert sum(m * lv[w] for m, lv in zip(p.mix, levels)) == pytest.approx(
            workflow_totals(p, w)["correct"], abs=1e-12)


def test_vector_round_trip_and_literal():
    for p in list(CALIBRATED.values()) + [NOMINAL]:
        q = params_from_vector(calibration_vector(p), p)
        assert np.allclose(calibration_vector(q), calibration_vector(p), atol=1e-12)
        assert np.allclose(q.mix, p.mix, atol=1e-12)
        literal = format_params(p)
        again = eval(literal, {"MathParams": MathParams})
        assert np.allclose(calibration_vector(again), calibration_vector(p), atol=1e-6)
    with pytest.raises(InvalidArgumentError, match=r"`x` must have shape \(23,\)"):
        params_from_vector(np.zeros(3))


def test_a_stopped_fit_is_inaccurate():
    r = calibrate("MathQA", max_nfev=1)          # stays at the nominal values
    assert r.status == "inaccurate" and not r.success
    assert r.max_abs_residual > 0.005
    assert "> 0.005" in r.message


def test_arguments_are_checked():
    with pytest.raises(InvalidArgumentError, match=r"`dataset` must be one of MathQA"):
        calibrate("GSM8K")
    with pytest.raises(InvalidArgumentError, match=r"`prior_weight` must be a finite number > 0"):
        calibrate("MathQA", prior_weight=0)
    with pytest.raises(InvalidArgumentError, match=r"`start` must be a MathParams"):
        calibrate("MathQA", start={"mix": (1, 0, 0)})


def test_main_prints_the_fit_and_the_literal(hs_fit, monkeypatch, capsys):
    monkeypatch.setattr(calibration, "calibrate", lambda ds: hs_fit)
    assert calibration.main(["MMLU-HS"]) == 0
    out = capsys.readouterr().out
    assert "not a rerun of the LLM experiment" in out
    assert "Comb-E      0.881" in out and "best workflow: Comb-E (Table 1: Comb-E)" in out
    assert '"MMLU-HS": MathParams(mix=' in out
    with pytest.raises(SystemExit):
        calibration.main(["GSM8K"])
