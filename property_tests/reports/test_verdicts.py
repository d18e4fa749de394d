"""The verdict summary's rules (reports.verdicts), on hand-made section data.

Each rule is fed numbers whose verdict and ratio are known by hand; the
ratios are recomputed here from the same numbers, independently of the code.
"""
import pytest

from reports.verdicts import SECTION_LABELS, VERDICTS, verdict_counts, verdict_rows


def one(rows, start):
    (r,) = [r for r in rows if r["claim"].startswith(start)]
    return r


def test_gap_bounds_and_their_tightness():
    d = dict(instance="w", reference="uniform", alpha_tight=20.0, alpha_tv=25.0,
             alpha_paper=0.5, max_q_gap=1.0, max_value_gap=2.0, policy_loss=4.0)
    rows = verdict_rows({"gaps": d})
    r = one(rows, "On w: max_q_gap <= alpha_tight (uniform reference)")
    assert (r["verdict"], r["ratio"], r["section"]) == ("holds", 1 / 20, "gaps")
    assert one(rows, "On w: policy_loss")["ratio"] == pytest.approx(4 / 40)
    # the paper's form: max(1, 2) = 2 > 0.5 on this instance
    r = one(rows, "On w: the gaps stay below alpha_paper")
    assert r["verdict"] == "fails" and r["ratio"] == pytest.approx(4.0)


def test_verify_counterexample_fails_and_absence_is_inconclusive():
    props = {"q_gap_le_alpha_tight": dict(checked=9, violations=0, worst_ratio=0.7),
             "policy_loss_le_2alpha": dict(checked=9, violations=0, worst_ratio=0.4),
             "invalid_rejected": dict(checked=9, violations=2, worst_ratio="inf")}
    found = dict(checked=9, violations_q=1, violations_value=0, worst_ratio=1.3)
    none = dict(checked=9, violations_q=0, violations_value=0, worst_ratio=0.86)
    rows = verdict_rows({"verify": dict(instances=9, properties=props, alpha_paper=found)})
    r = one(rows, "Every provable property")
    assert r["verdict"] == "fails" and "invalid_rejected (2 of 9)" in r["detail"]
    assert r["ratio"] == 0.7  # the worst of the gap bounds, not the "inf" of another property
    assert one(rows, "alpha_paper")["verdict"] == "fails"
    rows = verdict_rows({"verify": dict(instances=9, properties={}, alpha_paper=none)})
    r = one(rows, "alpha_paper")
    assert r["verdict"] == "inconclusive" and r["ratio"] == 0.86
    assert one(rows, "Every provable property")["verdict"] == "holds"


def test_theorem_verdict_words_and_interface_ratio():
    d = {"alpha": {"alpha_tight": 3.0},
         "verdicts": {"interface:alpha_tight": dict(verdict="holds", floor=1.0, term=18.0),
                      "mixing": dict(verdict="violated", reason="slow"),
                      "approximation": dict(verdict="inconclusive", reason="?"),
                      "overall": dict(verdict="violated", reason="combined")}}
    rows = verdict_rows({"theorem": d})
    assert [r["verdict"] for r in rows] == ["holds", "fails", "inconclusive", "fails"]
    assert rows[0]["ratio"] == pytest.approx(1 / 18) and "(stationary reference)" in rows[0]["claim"]
    assert rows[-1]["claim"] == "Theorem 1 on the IC-Q run, all terms"


def test_t1_gap_above_alpha_fails_and_nan_correlation_is_inconclusive():
    rows_ = [dict(rho=1.0, alpha_tight=2.0, max_q_gap=1.0), dict(rho=0.5, alpha_tight=2.0,
                                                                   max_q_gap=3.0)]
    rows = verdict_rows({"synthetic_t1": dict(rows=rows_, config={"reference": "uniform"},
                                              pearson_alpha_tight=None, paper_pearson=0.916)})
    r = one(rows, "T1: max_q_gap <= alpha_tight (uniform reference)")
    assert r["verdict"] == "fails" and r["ratio"] == 1.5 and "rho = 0.5" in r["detail"]
    r = one(rows, "T1: the value gap grows")
    assert r["verdict"] == "inconclusive" and "n/a" in r["detail"] and "nan" not in r["detail"]


def test_t2_lhs_below_its_floor_is_inconclusive():
    """Issue 11, section 5: the verdict says the runs have not reached the floor."""
    rho = [dict(rho=1.0, floor=0.01, interface_term=5.0, lhs_mean=0.3, updates=6600),
           dict(rho=0.5, floor=4.0, interface_term=100.0, lhs_mean=0.5, updates=6600),
           dict(rho=0.1, floor=4.0, interface_term=100.0, lhs_mean=2.2, updates=6600)]
    fit = dict(exponent=-1.0, lower=-1.1, upper=-0.9, points=5, predicted=-0.85)
    rows = verdict_rows({"synthetic_t2": dict(rho=rho, budget=dict(fit=fit))})
    r = one(rows, "T2: IC-Q has reached its exact floor at T = 6600")
    assert r["verdict"] == "inconclusive" and "rho = 0.1, 0.5" in r["detail"]
    r = one(rows, "T2: the exact floor <= 2 alpha_tight^2")
    assert r["verdict"] == "holds" and r["ratio"] == pytest.approx(4.0 / 100.0)
    # the fit decays faster than predicted (upper -0.9 < -0.85) and is narrow: holds
    assert one(rows, "T2: on this run")["verdict"] == "holds"
    slow = dict(fit, lower=-0.8, upper=-0.7)  # the whole interval above the predicted slope
    rows = verdict_rows({"synthetic_t2": dict(rho=rho[:1], budget=dict(fit=slow))})
    assert one(rows, "T2: on this run")["verdict"] == "fails"
    assert one(rows, "T2: IC-Q has reached")["verdict"] == "holds"


def test_routing_short_of_100_percent_is_inconclusive():
    fams = {"chain": dict(oracle_accuracy=1.0, accuracy_min=0.9),
            "ring": dict(oracle_accuracy=1.0, accuracy_min=1.0)}
    rows = verdict_rows({"routing": dict(num_routers=100, families=fams)})
    assert one(rows, "Routing, N = 100: the exact Q*")["verdict"] == "holds"
    r = one(rows, "Routing, N = 100: IC-Q")
    assert r["verdict"] == "inconclusive" and r["ratio"] == 0.9 and "chain" in r["detail"]


def test_unknown_sections_give_no_rows_and_counts_cover_every_verdict():
    assert verdict_rows({"demo": {"x": 1}}) == []
    assert verdict_counts([]) == {v: 0 for v in VERDICTS}
    assert set(SECTION_LABELS) >= {"gaps", "verify", "theorem", "synthetic_t1", "synthetic_t2"}
