"""The smallest instance found where the paper's ``alpha_paper`` fails (SPEC section 5).

Found by ``icsmdp verify --instances 300 --seed 1 --search`` (``hypothesis.find``
with ``target`` on the violation ratio). Here ``V_hat*`` is constant, so
``L_Q = 0`` and ``alpha_paper = epsilon_phi/(1 - gamma_bar)``, yet the
aliased states' total discounted end mass differs, so ``eta > 0``: the
provable ``alpha_tight = (epsilon_phi + eta)/(1 - gamma_bar)`` is attained
by ``max_q_gap`` and exceeds ``alpha_paper``.
"""
from pathlib import Path

import pytest

from icsmdp_theory.io import load_instance
from reports.verify import SLACK, alpha_paper_violated

CASE = Path(__file__).with_name("alpha_paper_counterexample.json")


@pytest.fixture(scope="module")
def report():
    from estimators.gaps import gap_report
    return gap_report(load_instance(CASE), tol=1e-12)


def test_alpha_paper_is_violated(report):
    assert report.max_q_gap > report.alpha_paper + 1e-3
    assert report.alpha_paper == pytest.approx(report.epsilon_phi / (1 - report.gamma_bar), rel=1e-9)
    assert report.L_Q == pytest.approx(0.0, abs=1e-12)
    assert alpha_paper_violated(report)


def test_provable_forms_still_hold(report):
    assert report.max_q_gap <= report.alpha_tight + SLACK
    assert report.alpha_tight <= report.alpha_tv + SLACK
    assert report.eta > 1e-3


def test_verify_reports_the_violation():
    from reports.verify import check_instance
    props, rep = check_instance(load_instance(CASE))
    assert alpha_paper_violated(rep)
    assert props["q_gap_le_alpha_tight"][0] <= props["q_gap_le_alpha_tight"][1] + SLACK
