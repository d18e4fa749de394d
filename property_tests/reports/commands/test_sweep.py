"""``icsmdp sweep``: hostile grid files, gap numbers, jobs 1/2 and resume, figures, failures."""
import json
import sys
import types
from pathlib import Path

import pytest

import reports.sweep as sweep_module
from estimators.gaps import gap_report
from icsmdp_theory.families import synthetic_instance
from reports.builder import Section
from reports.campaign import Campaign, Task, square_task
from reports.cli import main
from reports.htmlcheck import check_report

SMALL = ["--fixed", "N=3", "--fixed", "nX=5", "--fixed", "nM=6"]
RHOS = (1.0, 0.5, 0.2)
GAP_KEYS = ("alpha_tight", "alpha_paper", "epsilon_phi", "delta_phi", "max_q_gap",
            "policy_loss")
GOOD = {"format": "icsmdp-sweep/1", "axes": {"rho": [1, 0.5]},
        "fixed": {"N": 3, "nX": 5, "nM": 6}, "seed": 0}


def _report_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _with(**changes):
    doc = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return doc


_DROP = object()

HOSTILE = [
    (_with(format="icsmdp-sweep/2"), "format"),
    (_with(format=_DROP), "format"),
    (_with(axes=_DROP), "axes"),
    (_with(axes=[1, 2]), "axes"),
    (_with(fixed=[1]), "fixed"),
    (_with(seed=-1), "seed"),
    (_with(seed=True), "seed"),
    (_with(extra=1), "extra"),
    (_with(axes__rhoo=[1, 0.5]), "axes.rhoo"),
    (_with(axes__rho=0.5), "axes.rho"),
    (_with(axes__rho=[]), "axes.rho"),
    (_with(axes__rho=[1, 2]), "axes.rho"),
    (_with(axes__rho=[1, 1.0]), "axes.rho"),
    (_with(axes__rho=["0.5"]), "axes.rho"),
    (_with(axes__T=[True, 5]), "axes.T"),
    (_with(axes__T=[1.5]), "axes.T"),
    (_with(axes__learner=["tabular", "transformer"]), "axes.learner"),
    (_with(fixed__N=[3]), "fixed.N"),
    (_with(fixed__N=0), "fixed.N"),
    (_with(fixed__zz=1), "fixed.zz"),
    (_with(fixed__rho=1), "fixed.rho"),
    (_with(axes__mod=[2, 3]), "axes.mod"),
    (_with(axes__rho=_DROP, axes__mod=[2, 7]), "axes.mod"),
    (_with(axes__instance=["workflow"], axes__rho=[1, 0.5]), "fixed.N"),
    (_with(axes__T=list(range(0, 400)), axes__seeds=list(range(1, 400))), "axes.T"),
]


@pytest.mark.parametrize("doc, key", HOSTILE, ids=[f"{k}-{i}" for i, (_, k) in
                                                  enumerate(HOSTILE)])
def test_hostile_grid_file_is_one_line_naming_file_and_key(tmp_path, capsys, doc, key):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(grid) in err and f"key `{key}`" in err, err
    assert not out.exists()


@pytest.mark.parametrize("text", ["{", "[1, 2]", '{"format": "icsmdp-sweep/1", "axes": {}, '
                                               '"axes": {}}', "\xff"])
def test_unreadable_grid_file_is_one_line_naming_the_file(tmp_path, capsys, text):
    grid = tmp_path / "grid.json"
    grid.write_bytes(text.encode("latin-1"))
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(grid) in err, err
    assert not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["--set", "rho=2"], "`--set rho=2`"),
    (["--set", "colour=red"], "unknown axis 'colour'"),
    (["--fixed", "T=1,2"], "`--fixed` takes one value"),
    ([], "nothing to sweep"),
    (["--full", "--set", "rho=1,0.5"], "`--full`"),
    (["--named", "t9"], "`--named` must be one of"),
    (["--named", "t1", "--set", "rho=1,0.5"], "`--named` runs a study"),
    (["--set", "rho=1,0.5", "--seed", "-3"], "`--seed`"),
    (["--set", "rho=1,0.5", "--jobs", "0"], "--jobs"),
    (["--set", "rho=1,0.5", "--bogus"], "unrecognized arguments"),
])
def test_bad_command_lines_exit_2_and_write_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    try:
        status = main(["sweep", *argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own errors (one line too)
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_out_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["sweep", "--set", "rho=1,0.5", *SMALL, "--out", str(tmp_path / "f" / "o")]) == 2
    assert "`--out`" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_gaps_only_sweep_equals_independent_gap_reports_and_draws_one_figure_per_axis(
        tmp_path, capsys):
    out = tmp_path / "out"
    rhos = ",".join(map(str, RHOS))
    assert main(["sweep", "--set", f"rho={rhos}", "--set", "reference=uniform,stationary",
                 *SMALL, "--out", str(out), "--jobs", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["failed"] == {} and len(doc["points"]) == 6
    for p in doc["points"]:
        rho, ref = p["values"]["rho"], p["values"]["reference"]
        model = synthetic_instance(rho=rho, num_agents=3, num_latent=5, num_interface=6, seed=0)
        want = gap_report(model, reference=ref, minimax=False)
        for k in GAP_KEYS:
            assert p["metrics"][k] == pytest.approx(getattr(want, k), rel=1e-7, abs=1e-9), \
                (p["id"], k)
        assert p["metrics"]["v0"] is None  # T = 0: gaps only
    # results file named by the grid's digest, summary, report with a figure per swept axis
    assert Path(doc["results"]).parent == out and Path(doc["results"]).name.startswith("sweep-")
    summary = json.loads((out / "sweep.json").read_text())
    assert [p["id"] for p in summary["points"]] == [p["id"] for p in doc["points"]]
    report = Path(doc["report"])
    assert report.parent == out
    for axis in ("rho", "reference"):
        png = report / f"sweep_{axis}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((report / "report.json").read_text())["figures"] == \
        ["sweep_rho.png", "sweep_reference.png"]
    assert check_report(report, prose=True) == []
    # the grid printed by --json is a grid file that runs the same sweep (same results file)
    (tmp_path / "grid.json").write_text(json.dumps(doc["grid"]))
    assert main(["sweep", str(tmp_path / "grid.json"), "--out", str(out), "--resume",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == doc["results"]


def _sweep(out, *extra):
    return main(["sweep", "--set", "rho=1,0.5", "--set", "T=0,30", "--fixed", "seeds=2",
                 *SMALL, "--out", str(out), "--json", *extra])


def test_summary_is_byte_identical_for_jobs_1_jobs_2_and_an_interrupted_then_resumed_run(
        tmp_path, capsys, monkeypatch):
    assert _sweep(tmp_path / "a", "--jobs", "1") == 0
    assert _sweep(tmp_path / "b", "--jobs", "2") == 0
    a = (tmp_path / "a" / "sweep.json").read_bytes()
    assert (tmp_path / "b" / "sweep.json").read_bytes() == a
    # the IC-Q points ran (T = 30) and their values are exact evaluations <= V*
    points = json.loads(a)["points"]
    ran = [p for p in points if p["values"]["T"] == 30]
    assert all(len(p["metrics"]["v0"]) == 2 for p in ran)
    assert all(v <= p["metrics"]["optimal_v0"] + 1e-9 for p in ran for v in p["metrics"]["v0"])
    # Ctrl-C during the third point: 130, points kept, hint to resume
    real = sweep_module.sweep_point
    calls = []

    def interrupted(params, seed):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(params, seed)
    monkeypatch.setattr(sweep_module, "sweep_point", interrupted)
    capsys.readouterr()
    assert _sweep(tmp_path / "c", "--jobs", "1") == 130
    captured = capsys.readouterr()
    assert "2 of 4 tasks are kept" in captured.err and "--resume" in captured.err
    assert json.loads(captured.out)["status"] == "interrupted"
    assert not (tmp_path / "c" / "sweep.json").exists()
    monkeypatch.setattr(sweep_module, "sweep_point", real)
    assert _sweep(tmp_path / "c", "--jobs", "1", "--resume") == 0
    assert (tmp_path / "c" / "sweep.json").read_bytes() == a


def test_a_failing_point_is_listed_and_exits_1(tmp_path, capsys, monkeypatch):
    real = sweep_module.sweep_point

    def fails_at_half(params, seed):
        if params["rho"] == 0.5:
            raise ValueError("bad point: got nan and `x`")
        return real(params, seed)
    monkeypatch.setattr(sweep_module, "sweep_point", fails_at_half)
    out = tmp_path / "out"
    assert main(["sweep", "--set", "rho=1,0.5", *SMALL, "--out", str(out), "--jobs", "1",
                 "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["failed"]) == ["rho=0.5"] and "ValueError: bad point" in doc["failed"]["rho=0.5"]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["counts"] == {"points": 2, "ok": 1, "failed": 1, "missing": 0}
    assert [p["status"] for p in summary["points"]] == ["ok", "error"]
    assert check_report(Path(doc["report"]), prose=True) == []


def test_named_sweep_runs_the_study_campaign(tmp_path, capsys, monkeypatch):
    calls = {}

    def t1_campaign(seed, quick):
        calls["campaign"] = (seed, quick)
        return Campaign("t1", square_task, tuple(Task(f"x{k}", {"x": k}) for k in range(3)),
                        seed=seed, settings={"quick": quick})

    def t1_data(seed, quick, results):
        return {"squares": [r["square"] for r in results.values()], "started": 12.5,
                "rows": [{"x": 1, "seconds": 0.1}], "results_file": "/somewhere"}

    def render_t1(ctx, data):
        return Section(key="t1", title="T1", blocks=[("p", "Squares.")], data=data)
    study = types.ModuleType("fake_t1_study")
    study.t1_campaign, study.t1_data, study.render_t1 = t1_campaign, t1_data, render_t1
    monkeypatch.setitem(sys.modules, "fake_t1_study", study)
    monkeypatch.setitem(sweep_module.NAMED_SWEEPS, "t1",
                        sweep_module.NamedSweep("t1", "fake_t1_study", "t1_campaign", "t1_data",
                                                "render_t1"))
    out = tmp_path / "out"
    assert main(["sweep", "--named", "t1", "--seed", "4", "--out", str(out), "--jobs", "1",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # timings and paths of the study's data are left out (byte-identical summaries)
    want = {"squares": [0, 1, 4], "rows": [{"x": 1}]}
    assert calls["campaign"] == (4, True) and doc["data"] == want
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["named"] == "t1" and summary["data"] == want
    assert summary["counts"] == {"points": 3, "ok": 3, "failed": 0, "missing": 0}
    assert (_report_dir(out) / "index.html").exists()


def test_named_sweep_without_the_study_functions_is_one_line(tmp_path, capsys, monkeypatch):
    study = types.ModuleType("empty_study")
    monkeypatch.setitem(sys.modules, "empty_study", study)
    monkeypatch.setitem(sweep_module.NAMED_SWEEPS, "t2",
                        sweep_module.NamedSweep("t2", "empty_study", "t2_campaign", "t2_data",
                                                "render_t2"))
    assert main(["sweep", "--named", "t2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "t2_campaign" in err
    assert not (tmp_path / "o").exists()
