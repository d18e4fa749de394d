"""Theorem 1's bound and verdict logic against hand formulas and known-answer records."""
import math

import numpy as np
import pytest

from estimators import theorem as th

T = np.array([50, 100, 200, 400, 800, 1600, 3300.0])


def test_terms_match_the_written_formula():
    v = th.evaluate_terms(alpha=0.3, eps_app=0.01, eps_0=0.02, lambda_max=2.0, C1=3.0, C0=4.0,
                          t_mix=5.0, T=T)
    assert v["interface"] == pytest.approx(2 * 0.3**2)
    assert v["approximation"] == pytest.approx(6 * 0.01 + 6 * 0.02 + 6 * 2.0 * 3.0 * 0.02)
    hand = 6 * 2.0 * 4.0 * 6.0 * (1 + np.log(T + 1)) / T
    np.testing.assert_allclose(v["mixing"], hand, rtol=1e-14)


def test_latex_renders_every_term():
    tex = th.bound_latex()
    for piece in (r"\alpha^{2}", r"\epsilon_{app}", r"\log{\left(T + 1 \right)}", "C_{0}"):
        assert piece in tex


def test_smallest_c0_is_tight_by_bisection():
    rng = np.random.default_rng(0)
    lhs = 0.2 + rng.uniform(0, 3, T.size) / T
    floor, lam, tmix = 0.2, 1.5, 4.0
    c0 = th.smallest_c0(T, lhs, floor=floor, lambda_max=lam, t_mix=tmix)
    ok = lambda c: np.all(lhs <= floor + c * 6 * lam * (1 + tmix) * (1 + np.log(T + 1)) / T + 1e-15)  # noqa
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    assert c0 == pytest.approx(hi, rel=1e-9)
    assert ok(c0) and not ok(c0 * (1 - 1e-6))


def test_smallest_c0_zero_below_floor_and_inf_without_mixing_factor():
    assert th.smallest_c0(T, np.full(T.size, 0.1), floor=0.2, lambda_max=1, t_mix=1) == 0.0
    assert th.smallest_c0(T, np.full(T.size, 0.3), floor=0.2, lambda_max=0, t_mix=1) == math.inf


def test_predicted_slope_by_finite_differences():
    f = lambda t: (1 + np.log(t + 1)) / t  # noqa: E731
    a, b = 100.0, 100.0 * (1 + 1e-7)
    local = (np.log(f(b)) - np.log(f(a))) / (np.log(b) - np.log(a))
    assert th.predicted_slope(a, b) == pytest.approx(local, rel=1e-5)
    assert local == pytest.approx(-1 + (100 / 101) / (1 + np.log(101)), rel=1e-5)


def test_floor_plus_c_over_T_gives_exponent_minus_one_and_holds():
    rng = np.random.default_rng(1)
    seeds = 0.1 + (5.0 + rng.normal(0, 0.2, size=(16, 1))) / T[None, :]
    fit = th.fit_decay(T, seeds, floor=0.1, rng=0)
    assert fit.exponent == pytest.approx(-1.0, abs=1e-9)
    assert fit.lower <= -1.0 <= fit.upper
    assert th.verdict_mixing(fit) == "holds"


def test_record_that_stalls_above_the_floor_is_violated():
    rng = np.random.default_rng(2)
    seeds = 0.1 + 0.5 + rng.normal(0, 0.01, size=(16, T.size))  # no decay at all
    fit = th.fit_decay(T, seeds, floor=0.1, rng=0)
    assert abs(fit.exponent) < 0.05
    assert th.verdict_mixing(fit) == "violated"


def test_record_below_the_floor_is_inconclusive_for_the_rate():
    fit = th.fit_decay(T, np.full((4, T.size), 0.05), floor=0.1, rng=0)
    assert fit.points == 0 and th.verdict_mixing(fit) == "inconclusive"


def test_interface_verdict():
    assert th.verdict_interface(0.01, 2 * 0.1**2) == "holds"
    assert th.verdict_interface(0.03, 2 * 0.1**2) == "violated"


def test_bootstrap_interval_covers_mean_and_shrinks_with_seeds():
    rng = np.random.default_rng(3)
    few = rng.normal(1.0, 1.0, size=(8, 1))
    many = rng.normal(1.0, 1.0, size=(800, 1))
    m1, lo1, hi1 = th.bootstrap_mean(few, rng=0)
    m2, lo2, hi2 = th.bootstrap_mean(many, rng=0)
    assert lo1 <= m1 <= hi1 and lo2 <= m2 <= hi2
    assert (hi2 - lo2) < (hi1 - lo1)
    # the interval width follows the normal theory 2*1.96*sd/sqrt(n) within 20 %
    assert (hi2 - lo2)[0] == pytest.approx(2 * 1.96 * many.std() / np.sqrt(800), rel=0.2)
