"""Study T1 (reports.studies.synthetic_t1): rho sweep, correlations, rendering."""
import numpy as np
import pytest
from scipy import stats

import reports.studies.synthetic_t1 as t1
from reports.builder import ReportContext, build_report
from reports.htmlcheck import check_report
from reports.studies.synthetic_t1 import (PAPER_T1_CORRELATION, T1Data, checkpoint_grid, pearson,
                                          render_t1, synthetic_t1)
from reports.studies.workers import worker_processes


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return ReportContext(workdir=tmp_path_factory.mktemp("t1"), seed=0, quick=True)


def test_reduced_t1_correlation_positive(ctx):
    sec = synthetic_t1(ctx)
    d = sec.data
    assert ctx.seeds_used["synthetic"] == 0
    assert d["paper_pearson"] == PAPER_T1_CORRELATION
    assert d["pearson_alpha_tight"] > 0
    rows = d["rows"]
    assert [r["rho"] for r in rows][0] == 1.0 and rows[0]["value_gap"] == 0.0
    alphas = [r["alpha_tight"] for r in rows]
    assert alphas[0] == min(alphas)  # rho = 1 retains the most
    assert all(r["optimal_gap"] > -1e-6 for r in rows)  # no policy beats V*
    # the reported correlation is the one of the reported rows (scipy, independently)
    gaps = [r["value_gap"] for r in rows]
    assert d["pearson_alpha_tight"] == pytest.approx(stats.pearsonr(gaps, alphas)[0], abs=1e-12)
    assert (ctx.workdir / "synthetic_t1.png").is_file()
    assert list(d["timings_seconds"]) == ["study", "oracle", "section"]
    assert d["timings_seconds"]["study"] < 180  # ~15-20 s unloaded


def test_checkpoint_grid_doubles_after_3300():
    assert checkpoint_grid(100_000) == (50, 100, 200, 400, 800, 1600, 3300, 6600, 13200, 26400,
                                        52800)
    assert checkpoint_grid(60) == (50,)


def test_pearson_matches_scipy_and_is_nan_without_spread():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=9), rng.normal(size=9)
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert np.isnan(pearson([1.0], [2.0])) and np.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_render_t1_draws_and_reports_given_numbers(tmp_path):
    """Rendering needs no study: hand-made numbers come out unchanged, with the figure."""
    rows = [dict(rho=rho, n_bins=nb, alpha_tight=a, alpha_paper=2 * a, v0_mean=v, value_gap=g,
                 value_gap_per_seed=[g, g], optimal_gap=0.5 + g)
            for rho, nb, a, v, g in [(1.0, 4, 0.1, 3.0, 0.0), (0.5, 2, 0.4, 2.5, 0.5)]]
    data = T1Data(seed=5, config=dict(sizes=dict(num_agents=2, num_latent=3, num_interface=4),
                                      rhos=[1.0, 0.5], seeds=2, updates=100,
                                      reference="uniform"),
                  rows=rows, pearson_alpha_tight=1.0, pearson_alpha_paper=1.0, optimal_v0=3.5,
                  workers=1, timings={"study": 1.0, "oracle": 0.5}, started=0.0)
    sec = render_t1(ReportContext(workdir=tmp_path), data)
    assert sec.key == "synthetic_t1" and sec.data["rows"] is rows
    assert sec.data["optimal_v0"] == 3.5 and sec.data["pearson_alpha_tight"] == 1.0
    table = next(b for b in sec.blocks if b[0] == "table")
    assert table[2] == [[1.0, 4, 0.1, 0.2, 3.0, 0.0, 0.5], [0.5, 2, 0.4, 0.8, 2.5, 0.5, 1.0]]
    assert "seed 5" in sec.blocks[0][1]
    assert (tmp_path / "synthetic_t1.png").is_file()
    # every alpha names its reference; the page passes the whole report check
    assert table[1][2:4] == ["alpha_tight (uniform reference)", "alpha_paper (uniform reference)"]
    path = build_report([lambda ctx: render_t1(ctx, data)], out_root=tmp_path / "out",
                        progress=False)
    assert check_report(path) == []


def test_full_rho_sweep_in_worker_processes_equals_the_serial_one(monkeypatch):
    """The full study's process pool returns the same numbers as the serial (quick) path."""
    tiny = dict(sizes=dict(num_agents=2, num_latent=3, num_interface=6),
                rhos=(1.0, 0.5, 0.2), seeds=2, updates=400, reference="uniform")
    monkeypatch.setattr(t1, "t1_config", lambda quick: dict(tiny))
    t1._t1_base.cache_clear()
    t1.synthetic_rho_study.cache_clear()
    try:
        par = t1.synthetic_rho_study(3, False)
        ser = t1.synthetic_rho_study(3, True)
    finally:
        t1._t1_base.cache_clear()
        t1.synthetic_rho_study.cache_clear()
    assert par.workers == worker_processes(3)
    assert [r.rho for r in par.rows] == [r.rho for r in ser.rows]
    for a, b in zip(par.rows, ser.rows):
        if par.workers > 1:
            assert a.record is None and a.model is None
        assert b.record is not None
        for k in t1.T1_REPORT_KEYS:
            assert getattr(a.report, k) == getattr(b.report, k), k
        np.testing.assert_array_equal(a.evaluation.v0, b.evaluation.v0)


@pytest.mark.slow
def test_full_synthetic_t1(tmp_path):
    """Paper scale T1 (about 6 minutes on 2 cores): positive correlation."""
    sec = synthetic_t1(ReportContext(workdir=tmp_path, seed=0, quick=False))
    assert sec.data["pearson_alpha_tight"] > 0
