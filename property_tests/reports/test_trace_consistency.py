"""Consistency of gaps estimated from logs (issue 12, "Done when"): on traces of the bundled
``workflow`` instance under the uniform behavior, the maximum-likelihood values approach the
exact values of the instance's export (restricted to the reachable epoch states) as the trace
grows. The truth is computed from the primitive instance by the export, independently of any
trace; seeds are fixed, so the test is deterministic.
"""
from __future__ import annotations

import pytest

from reports.studies.trace_consistency import KEYS, consistency, coverage


@pytest.fixture(scope="module")
def table():
    return consistency([80, 8000], reps=2, reference="stationary", seed=0)


def test_gamma_bar_is_exact(table):
    for row in table["rows"]:
        assert row["error"]["gamma_bar"] <= 1e-12


@pytest.mark.parametrize("key", [k for k in KEYS if k != "gamma_bar"])
def test_error_falls_at_least_like_n_to_the_minus_half(key, table):
    small, large = table["rows"]
    ratio = large["invocations"] / small["invocations"]          # about 100
    assert ratio > 50
    # n^-1/2 over a factor 100 is a factor 10; allow 3x slack for the noise of 2 traces
    assert large["error"][key] <= 3 * ratio ** -0.5 * small["error"][key] + 1e-9, \
        (key, small["error"][key], large["error"][key])


@pytest.fixture(scope="module")
def measured_coverage():
    return coverage(traces=50, episodes=1650, draws=200, jobs=2)["coverage"]["pooled"]


@pytest.mark.slow
def test_coverage_of_the_90_percent_intervals(measured_coverage):
    """50 traces of ~2e4 invocations, the default posterior (README: 1.00, 0.44, 0.44, 0.94,
    0.94, 0.84 for the six keys); seeds are fixed, so the shares are reproducible."""
    for k in ("gamma_bar", "delta_phi", "alpha_tight"):
        assert measured_coverage[k] >= 0.85, (k, measured_coverage)
    assert measured_coverage["policy_loss"] >= 0.8, measured_coverage


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known shortfall (README 'How far to trust the intervals'): "
                   "unseen successors bias v0 down and once-seen rewards push the max up")
def test_v0_and_epsilon_phi_coverage_reach_80_percent(measured_coverage):
    assert measured_coverage["v0"] >= 0.8 and measured_coverage["epsilon_phi"] >= 0.8
