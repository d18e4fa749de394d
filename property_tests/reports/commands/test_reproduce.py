"""``icsmdp reproduce``: destination checked before any work, absolute path, bars, campaigns
(Ctrl-C keeps the finished tasks and exits 130; --resume finishes; a failed task exits 1)."""
import json
import sys
from pathlib import Path

import pytest

import reports.commands.reproduce as reproduce_cmd
import reports.studies.routing as routing_module
from icsmdp_theory.families import GRAPH_KINDS
from reports.campaign import read_results
from reports.cli import main


def _fake(calls):
    def reproduce(kind, *, quick, out, seed, argv, progress, jobs, scheduler, resume):
        calls.append({"out": out, "progress": progress, "jobs": jobs, "resume": resume})
        d = Path(out) / "r"
        d.mkdir(parents=True)
        (d / "report.json").write_text(json.dumps({"sections": {"t1": {}}}))
        return d
    return reproduce


def test_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce_cmd, "reproduce", _fake(calls))
    (tmp_path / "file.txt").write_text("x")
    assert main(["reproduce", "synthetic", "--out", str(tmp_path / "file.txt" / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "`--out`" in err and calls == []


def test_relative_out_printed_absolute_and_no_bar_when_redirected(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce_cmd, "reproduce", _fake(calls))
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "synthetic", "--out", "o"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "o" / "r")
    assert calls[0]["progress"] is False  # capsys: not a terminal
    assert calls[0]["jobs"] is None and calls[0]["resume"] is False  # every core, start over
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["reproduce", "synthetic", "--out", "o2", "--json", "--jobs", "3",
                 "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == str(tmp_path / "o2" / "r")
    assert calls[1]["progress"] is False and calls[1]["jobs"] == 3 and calls[1]["resume"] is True


def test_bad_jobs_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce_cmd, "reproduce", _fake(calls))
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "routing", "--out", str(tmp_path), "--jobs", "0"])
    assert exc.value.code == 2 and calls == [] and not any(tmp_path.iterdir())


_TINY = dict(n=5, seeds=1, default=dict(updates=600, epsilon=0.3, step=None))
_REAL_TASK = routing_module.routing_task


def _interrupt_at(kind, ran):
    def task(params, seed):
        ran.append(params["kind"])
        if params["kind"] == kind:
            raise KeyboardInterrupt  # Ctrl-C while this task runs (jobs=1: in this process)
        return _REAL_TASK(params, seed)
    return task


def _families(out: Path) -> dict:
    [report] = [p for p in out.iterdir() if p.name != "campaigns"]
    doc = json.loads((report / "report.json").read_text(encoding="utf-8"))
    fams = doc["sections"]["routing"]["families"]
    return {k: {a: b for a, b in f.items() if a != "seconds"} for k, f in fams.items()}


def test_ctrl_c_keeps_finished_tasks_exits_130_and_resume_finishes(tmp_path, capsys,
                                                                    monkeypatch):
    """Ctrl-C in the third task (order: chain first): exit 130, no report, two tasks kept
    and a line telling to rerun with --resume; the rerun runs only the two left and gives
    the families of an uninterrupted run."""
    monkeypatch.setattr(routing_module, "_routing_config", lambda quick: _TINY)
    order = ["chain"] + [k for k in GRAPH_KINDS if k != "chain"]
    ran = []
    monkeypatch.setattr(routing_module, "routing_task", _interrupt_at(order[2], ran))
    out = tmp_path / "o"
    assert main(["reproduce", "routing", "--out", str(out), "--jobs", "1"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    results = out / "campaigns" / "routing-seed0-quick.jsonl"
    assert len(err) == 1 and "2 of 4 tasks are kept" in err[0] and str(results) in err[0]
    assert "--resume" in err[0]
    assert ran == order[:3] and [p.name for p in out.iterdir()] == ["campaigns"]
    lines = results.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines[1:]] == [f"family={k}" for k in order[:2]]
    ran.clear()
    monkeypatch.setattr(routing_module, "routing_task", _interrupt_at(None, ran))
    assert main(["reproduce", "routing", "--out", str(out), "--jobs", "1", "--resume"]) == 0
    assert ran == order[2:]  # the finished tasks did not run again
    fresh = tmp_path / "fresh"
    assert main(["reproduce", "routing", "--out", str(fresh), "--jobs", "1"]) == 0
    assert _families(out) == _families(fresh)


def _fail_chain(params, seed):
    if params["kind"] == "chain":
        raise ValueError("chain task broke")
    return _REAL_TASK(params, seed)


def test_a_failed_task_is_named_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(routing_module, "_routing_config", lambda quick: _TINY)
    monkeypatch.setattr(routing_module, "routing_task", _fail_chain)
    out = tmp_path / "o"
    assert main(["reproduce", "routing", "--out", str(out), "--jobs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "family=chain: ValueError: chain task broke" in err[0]
    assert "--resume" in err[0] and [p.name for p in out.iterdir()] == ["campaigns"]
    # the other three families finished and are kept
    _, records, _ = read_results(out / "campaigns" / "routing-seed0-quick.jsonl")
    assert sorted("error" if "error" in r else "ok" for r in records.values()) == [
        "error", "ok", "ok", "ok"]
    assert "result" not in records["family=chain"]
