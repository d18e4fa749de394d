"""``icsmdp verify`` as a campaign (issue 13): the same summary for any way of running it.

The expected tallies are recomputed here by the sequential loop ``verify`` had
before it became a campaign (``check_instance`` called in this process, instance
by instance), independently of the campaign layer and of the results file.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import reports.verify
from reports.cli import main
from estimators.gaps import gap_report
from icsmdp_theory.io import instance_to_dict, load_instance
from reports.verify import (PROPERTIES, SLACK, alpha_paper_ratio, check_instance,
                            draw_verification_instance, verify)

ROOT = Path(__file__).resolve().parents[3]
N, SEED, STATES = 16, 4, 8


def _expected(n: int, seed: int, max_states: int) -> tuple[dict, dict]:
    """The tallies by the pre-campaign loop, in this process."""
    tally = {p: {"checked": 0, "violations": 0, "worst_ratio": 0.0, "worst_instance": None}
             for p in PROPERTIES}
    ap = {"checked": 0, "violations_q": 0, "violations_value": 0, "worst_ratio": 0.0,
          "worst_instance": None}
    for k in range(n):
        props, rep = check_instance(draw_verification_instance(seed, k, max_states=max_states),
                                    index=k, rng=[seed, k, 1])
        for name, val in props.items():
            if val is None:
                continue
            lhs, rhs = float(val[0]), float(val[1])
            r = lhs / rhs if rhs > 1e-12 else (0.0 if lhs <= SLACK else np.inf)
            t = tally[name]
            t["checked"] += 1
            if r > t["worst_ratio"] or t["worst_instance"] is None:
                t["worst_ratio"], t["worst_instance"] = r, k
            t["violations"] += int(lhs > rhs + SLACK)
        ap["checked"] += 1
        ap["violations_q"] += int(rep.max_q_gap > rep.alpha_paper + SLACK)
        ap["violations_value"] += int(rep.max_value_gap > rep.alpha_paper + SLACK)
        r = alpha_paper_ratio(rep)
        if r > ap["worst_ratio"] or ap["worst_instance"] is None:
            ap["worst_ratio"], ap["worst_instance"] = r, k
    return tally, ap


@pytest.fixture(scope="module")
def expected():
    return _expected(N, SEED, STATES)


def _summary(res) -> str:
    ap = {k: v for k, v in res.alpha_paper.items() if k != "counterexample"}
    return json.dumps({"properties": res.properties, "alpha_paper": ap,
                       "failed": res.failed_tasks, "status": res.status}, sort_keys=True)


def test_jobs_1_jobs_2_and_dask_give_the_sequential_tallies(tmp_path, expected):
    tally, ap = expected
    want = json.dumps({"properties": tally, "alpha_paper": ap, "failed": {}, "status": "ok"},
                      sort_keys=True)
    one = verify(N, seed=SEED, max_states=STATES, out=tmp_path / "one", jobs=1)
    two = verify(N, seed=SEED, max_states=STATES, out=tmp_path / "two", jobs=2)
    assert _summary(one) == want and _summary(two) == want
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dask = verify(N, seed=SEED, max_states=STATES, out=tmp_path / "dask", scheduler=client)
    assert _summary(dask) == want
    # the results files hold every instance once, whatever the completion order
    for d in ("one", "two", "dask"):
        lines = (tmp_path / d / f"verify-seed{SEED}-n{N}-states{STATES}.jsonl").read_text()
        ids = [json.loads(x)["id"] for x in lines.splitlines()[1:]]
        assert sorted(ids) == [f"instance-{k:07d}" for k in range(N)]


def test_task_numbers_match_check_instance(tmp_path):
    """The numbers in the results file are check_instance's, for a few instances."""
    verify(4, seed=7, max_states=STATES, out=tmp_path, jobs=2)
    lines = (tmp_path / f"verify-seed7-n4-states{STATES}.jsonl").read_text().splitlines()
    got = {json.loads(x)["id"]: json.loads(x)["result"] for x in lines[1:]}
    for k in range(4):
        props, rep = check_instance(draw_verification_instance(7, k, max_states=STATES),
                                    index=k, rng=[7, k, 1])
        res = got[f"instance-{k:07d}"]
        for name, val in props.items():
            assert res["properties"][name] == (None if val is None else [val[0], val[1]])
        assert res["max_q_gap"] == rep.max_q_gap and res["alpha_paper"] == rep.alpha_paper
        assert res["max_value_gap"] == rep.max_value_gap


def _raise_on_index_3(real):
    def check(model, *, index=0, rng=None):
        if index == 3:
            raise ValueError("instance 3 cannot be checked")
        return real(model, index=index, rng=rng)
    return check


def test_a_raising_instance_is_listed_and_exits_1_then_resume_reruns_it(tmp_path, capsys,
                                                                        monkeypatch, expected):
    """In-process tasks (--jobs 1), so the patched check runs inside the campaign's worker
    wrapper: the error is recorded in the results file and the campaign goes on."""
    argv = ["verify", "--instances", str(N), "--seed", str(SEED), "--max-states", str(STATES),
            "--jobs", "1", "--json", "--out", str(tmp_path)]
    monkeypatch.setattr(reports.verify, "check_instance", _raise_on_index_3(check_instance))
    assert main(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["failed_tasks"] == {"instance-0000003": "ValueError: instance 3 cannot be checked"}
    assert doc["success"] is False and doc["alpha_paper"]["checked"] == N - 1
    assert doc["properties"]["contraction"]["checked"] == N - 1
    monkeypatch.undo()
    assert main(argv + ["--resume"]) == 0  # only the failed instance runs again
    doc = json.loads(capsys.readouterr().out)
    tally, ap = expected
    assert doc["failed_tasks"] == {} and doc["properties"] == json.loads(json.dumps(tally))
    assert {k: v for k, v in doc["alpha_paper"].items() if k != "counterexample"} == ap
    lines = (tmp_path / f"verify-seed{SEED}-n{N}-states{STATES}.jsonl").read_text().splitlines()
    assert len(lines) == 1 + N + 1  # header, N tasks, and the one rerun


def test_a_raising_instance_on_dask(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(reports.verify, "check_instance", _raise_on_index_3(check_instance))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = verify(6, seed=SEED, max_states=STATES, out=tmp_path, scheduler=client)
    assert res.status == "task_errors" and not res.success
    assert list(res.failed_tasks) == ["instance-0000003"]
    assert res.alpha_paper["checked"] == 5


def _base(n, states):
    return [sys.executable, "-m", "reports.cli", "verify", "--instances", str(n),
            "--max-states", str(states), "--json"]


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _interrupt_then_resume(out: Path, n: int, states: int, sig, after_lines: int) -> str:
    """Run `verify --jobs 1`, send `sig` once the results file has `after_lines` task lines,
    check the exit status and the one line, resume; return the resumed run's stdout."""
    results = out / f"verify-seed0-n{n}-states{states}.jsonl"
    proc = subprocess.Popen(_base(n, states) + ["--jobs", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=ENV)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_text().count("\n") > after_lines:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), stderr
    assert stdout == ""
    line = stderr.strip().splitlines()
    assert len(line) == 1 and "--resume" in line[0] and "Traceback" not in stderr
    kept = results.read_text().count("\n") - 1
    assert after_lines <= kept < n and f" {kept} of {n} tasks are kept" in line[0]
    resumed = subprocess.run(_base(n, states) + ["--jobs", "1", "--out", str(out), "--resume"],
                             capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert results.read_text().count("\n") == 1 + n  # the kept tasks did not run again
    return resumed.stdout


def _uninterrupted(out: Path, n: int, states: int) -> str:
    whole = subprocess.run(_base(n, states) + ["--jobs", "2", "--out", str(out)],
                           capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=900)
    assert whole.returncode == 0, whole.stderr
    return whole.stdout


def test_sigint_then_resume_is_byte_identical_small(tmp_path):
    resumed = _interrupt_then_resume(tmp_path / "cut", 24, 8, signal.SIGINT, after_lines=4)
    whole = _uninterrupted(tmp_path / "whole", 24, 8)
    assert resumed == whole.replace(str(tmp_path / "whole"), str(tmp_path / "cut"))


def test_sigterm_keeps_the_finished_instances_too(tmp_path):
    resumed = _interrupt_then_resume(tmp_path, 12, 8, signal.SIGTERM, after_lines=2)
    assert json.loads(resumed)["alpha_paper"]["checked"] == 12


@pytest.mark.slow
def test_sigint_then_resume_is_byte_identical_400(tmp_path):
    """The SIGINT-resume test of issue 13: `verify --instances 400 --jobs 1`, SIGINT after
    50 instances, `--resume`: the JSON is the uninterrupted run's, byte for byte."""
    resumed = _interrupt_then_resume(tmp_path / "cut", 400, 64, signal.SIGINT, after_lines=50)
    whole = _uninterrupted(tmp_path / "whole", 400, 64)
    assert resumed == whole.replace(str(tmp_path / "whole"), str(tmp_path / "cut"))


def test_search_campaign_saves_a_counterexample_the_gap_report_confirms(tmp_path, capsys):
    """`--search` runs the search campaign after the instances; the saved case violates
    alpha_paper when reloaded, and --jobs 1 and --jobs 2 save the same instance."""
    pytest.importorskip("hypothesis")
    docs = []
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        argv = ["verify", "--instances", "2", "--max-states", "8", "--search",
                "--search-budget", "30", "--jobs", jobs, "--json", "--out", str(out)]
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        path = Path(doc["alpha_paper"]["counterexample"])
        assert path == out / "alpha-paper-shrunk-0.json" and doc["counterexamples"] == [str(path)]
        assert (out / "search-seed0-budget30.jsonl").is_file() and doc["failed_tasks"] == {}
        rep = gap_report(load_instance(path), tol=1e-12)
        assert max(rep.max_q_gap, rep.max_value_gap) > rep.alpha_paper + 1e-6
        gaps = json.loads(path.with_suffix(".gaps.json").read_text())
        assert gaps["alpha_paper_ratio"] > 1 and gaps["seed"] == 0
        docs.append((path.read_bytes(), gaps["attempt"], gaps["alpha_paper_ratio"]))
    assert docs[0] == docs[1]  # (the gap report's `elapsed` differs, not the instance)


def test_summary_by_hand():
    """Three hand-made task results (as read back: `inf` is written "inf")."""
    props = {p: None for p in PROPERTIES}
    results = {
        "instance-0000000": {"properties": {**props, "contraction": [0.5, 1.0]},
                             "max_q_gap": 0.1, "max_value_gap": 0.1, "alpha_paper": 0.2,
                             "ratio": 0.5},
        "instance-0000001": {"properties": {**props, "contraction": [2.0, 1.0]},
                             "max_q_gap": 0.3, "max_value_gap": 0.1, "alpha_paper": 0.2,
                             "ratio": 1.5},
        "instance-0000002": {"properties": {**props, "contraction": [1e-3, 0.0]},
                             "max_q_gap": 0.0, "max_value_gap": 0.0, "alpha_paper": 0.0,
                             "ratio": 0.0},
    }
    s = reports.verify.summarize_verification(results)
    assert s["properties"]["contraction"] == {"checked": 3, "violations": 2,
                                              "worst_ratio": np.inf, "worst_instance": 2}
    assert s["properties"]["vi_equals_pi"]["checked"] == 0
    assert s["violating"] == [(1, ["contraction"]), (2, ["contraction"])]
    assert s["alpha_paper"] == {"checked": 3, "violations_q": 1, "violations_value": 0,
                                "worst_ratio": 1.5, "worst_instance": 1, "counterexample": None}
    assert s["worst_alpha_paper"] == 1


def test_a_violated_property_saves_the_redrawn_instance(tmp_path, capsys, monkeypatch):
    """The main process redraws a violating instance from (seed, k) and saves it."""
    real = check_instance

    def check(model, *, index=0, rng=None):
        props, rep = real(model, index=index, rng=rng)
        if index == 2:
            props["contraction"] = (1.0, 0.5)
        return props, rep
    monkeypatch.setattr(reports.verify, "check_instance", check)
    argv = ["verify", "--instances", "4", "--seed", "9", "--max-states", "8", "--jobs", "1",
            "--json", "--out", str(tmp_path)]
    assert main(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["message"] == "provable properties violated: contraction"
    assert doc["properties"]["contraction"]["violations"] == 1
    assert doc["counterexamples"] == [str(tmp_path / "violation-9-2.json")]
    assert instance_to_dict(load_instance(tmp_path / "violation-9-2.json")) == \
        instance_to_dict(draw_verification_instance(9, 2, max_states=8))
    gaps = json.loads((tmp_path / "violation-9-2.gaps.json").read_text())
    assert gaps["violated"] == ["contraction"] and gaps["index"] == 2
