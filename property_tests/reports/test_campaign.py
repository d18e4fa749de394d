"""The campaign layer (reports/campaign.py): seeds, backends, failures, interruption, resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from reports.campaign import (CAMPAIGN_FORMAT, Campaign, Task, dask_client, read_results,
                              resolve_jobs, run_campaign, square_task, task_seed)


def seeded_task(params: dict, seed: int) -> dict:
    """Raises for ``fail``; sleeps 50 ms for ``sleep``; dies (``os._exit``) for ``die``; else a draw from its seed."""
    if params.get("fail"):
        raise ValueError(f"task asked to fail (x={params['x']})")
    if params.get("die"):
        os._exit(3)
    if params.get("sleep"):
        time.sleep(0.05)
    rng = np.random.default_rng(seed)
    return {"x": params["x"], "draw": rng.normal(), "seed": seed, "vec": rng.random(3)}


def _campaign(n=40, seed=5, **flags):
    tasks = tuple(Task(f"t{k:03d}", {"x": k, **{f: True for f, ks in flags.items() if k in ks}})
                  for k in range(n))
    return Campaign("test", seeded_task, tasks, seed=seed, settings={"n": n})


def _summary(run) -> str:
    return json.dumps({"results": run.results, "failed": run.failed}, sort_keys=True)


# ---------------------------------------------------------------- seeds
def test_task_seed_depends_only_on_campaign_seed_and_id():
    a = _campaign(10)
    b = Campaign("other name", seeded_task, tuple(reversed(a.tasks)) + (Task("extra", {"x": 0}),),
                 seed=5)
    assert all(a.seed_of(t) == b.seed_of(t) for t in a.tasks)
    seeds = [a.seed_of(t) for t in a.tasks]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2 ** 63 for s in seeds)
    assert task_seed(6, "t000") != task_seed(5, "t000")
    assert Campaign("x", seeded_task, (Task("a", {}, seed=17),)).seed_of(Task("a", {}, seed=17)) == 17


def test_task_seed_independent_recomputation():
    import hashlib
    words = [int.from_bytes(hashlib.sha256(b"t007").digest()[4 * k:4 * k + 4], "little")
             for k in range(4)]
    state = np.random.SeedSequence([5] + words).generate_state(2, np.uint64)
    assert task_seed(5, "t007") == int(state[0]) // 2


def test_duplicate_task_ids_are_refused():
    with pytest.raises(InvalidArgumentError, match="'a' is not unique"):
        Campaign("c", square_task, (Task("a", {"x": 1}), Task("a", {"x": 2})))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_resolve_jobs_refuses(bad):
    with pytest.raises(InvalidArgumentError, match="--jobs"):
        resolve_jobs(bad)


def test_resolve_jobs_default_is_every_core():
    assert resolve_jobs(None) == max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------- backends agree
def test_serial_loky_and_dask_give_the_same_results(tmp_path):
    c = _campaign(40, fail={7})
    runs = [run_campaign(c, tmp_path / "serial.jsonl", jobs=1),
            run_campaign(c, tmp_path / "loky.jsonl", jobs=2)]
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        runs.append(run_campaign(c, tmp_path / "dask.jsonl", scheduler=client))
    assert [r.backend for r in runs] == ["serial", "loky", "dask"]
    assert len({_summary(r) for r in runs}) == 1
    r = runs[0]
    assert r.status == "task_errors" and not r.success and r.done == 39
    assert r.failed == {"t007": "ValueError: task asked to fail (x=7)"}
    # each result is the task's own seeded draw (independent recomputation)
    for t in c.tasks:
        if t.id != "t007":
            assert r.results[t.id]["draw"] == np.random.default_rng(c.seed_of(t)).normal()
    assert list(r.results) == [t.id for t in c.tasks if t.id != "t007"]  # task order


def test_every_finished_task_is_one_line_after_the_header(tmp_path):
    c = _campaign(12, fail={3})
    run_campaign(c, tmp_path / "r.jsonl", jobs=2)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == CAMPAIGN_FORMAT and header["tasks"] == 12
    assert header["settings"] == {"n": 12} and header["seed"] == 5
    body = [json.loads(s) for s in lines[1:]]
    assert sorted(d["id"] for d in body) == [t.id for t in c.tasks]
    assert {d["outcome"] for d in body} == {"ok", "error"}


def test_scheduler_without_distributed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InvalidArgumentError, match=r"pip install -e '\.\[dask\]'"):
        dask_client("tcp://127.0.0.1:1")


def test_unreachable_scheduler_is_one_line(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("reports.campaign.CONNECT_TIMEOUT", 1.0)
    with pytest.raises(InvalidArgumentError, match="cannot reach a Dask scheduler"):
        dask_client("tcp://127.0.0.1:9")


def test_scheduler_from_environment(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "")
    assert dask_client(None) == (None, False)


# ---------------------------------------------------------------- resume
def test_resume_skips_finished_tasks_and_reruns_failed_ones(tmp_path):
    full = run_campaign(_campaign(30), tmp_path / "full.jsonl", jobs=1)
    path = tmp_path / "part.jsonl"
    c = _campaign(30, fail={4, 20})
    first = run_campaign(c, path, jobs=1)
    assert first.status == "task_errors" and set(first.failed) == {"t004", "t020"}
    lines = path.read_text().splitlines()
    # keep the header and 10 finished lines, cut the 11th in the middle (a kill while writing)
    path.write_text("\n".join(lines[:11]) + "\n" + lines[11][:7])
    fixed = Campaign(c.name, seeded_task, _campaign(30).tasks, seed=c.seed, settings=c.settings)
    with pytest.raises(InvalidInstanceError, match="tasks_sha256"):
        run_campaign(fixed, path, jobs=1, resume=True)  # another campaign's file
    again = run_campaign(c, path, jobs=2, resume=True)
    assert again.skipped == sum(1 for s in lines[1:11] if '"outcome":"ok"' in s)
    assert again.failed == first.failed
    assert _summary(again) == _summary(first)
    for t, v in again.results.items():
        assert v == full.results[t]
    assert all(s.endswith("}") for s in path.read_text().splitlines())  # the cut line is gone


def test_read_results_is_strict_and_located(tmp_path):
    c = _campaign(3)
    p = tmp_path / "r.jsonl"
    run_campaign(c, p, jobs=1)
    good = p.read_text().splitlines()
    cases = {
        "not JSON": good[:2] + ["{nope"] + good[2:],
        "must be a JSON object": good[:2] + ["[1]"] + good[2:],
        "'outcome' must be": good[:1] + [good[1].replace('"ok"', '"done"')] + good[2:],
        "'result' must be an object": good[:1] + [json.dumps({"id": "t000", "outcome": "ok",
                                                              "result": 3})] + good[2:],
        "'format' must be": [good[0].replace(CAMPAIGN_FORMAT, "other/1")] + good[1:],
        "'id' must be a string": good + [json.dumps({"id": 3, "outcome": "ok", "result": {}})],
    }
    for why, lines in cases.items():
        p.write_text("\n".join(lines) + "\n")
        with pytest.raises(InvalidInstanceError, match=why) as exc:
            read_results(p, c)
        assert str(p) in str(exc.value) and "\n" not in str(exc.value)
    p.write_text("\n".join(good + [json.dumps({"id": "zzz", "outcome": "ok", "result": {}})]) + "\n")
    with pytest.raises(InvalidInstanceError, match="'zzz' is not a task"):
        read_results(p, c)
    p.write_text("")
    with pytest.raises(InvalidInstanceError, match="no header"):
        read_results(p, c)


def test_a_dead_worker_keeps_what_finished_and_resume_completes(tmp_path):
    path = tmp_path / "r.jsonl"
    c = _campaign(16, die={15}, sleep=set(range(15)))
    run = run_campaign(c, path, jobs=2)
    assert run.interrupted and run.status == "interrupted" and "--resume" in run.message
    assert run.done < 16
    body = [json.loads(s) for s in path.read_text().splitlines()[1:]]
    assert len(body) == run.done and all(d["outcome"] == "ok" and d["id"] != "t015" for d in body)
    fresh = run_campaign(_campaign(16), tmp_path / "fresh.jsonl", jobs=1)
    for t, v in run.results.items():
        assert v == fresh.results[t]


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from property_tests.reports.test_campaign import _campaign
    from reports.arguments import TerminationSignals
    from reports.campaign import run_campaign
    c = _campaign(60, sleep=set(range(60)))
    with TerminationSignals():
        run = run_campaign(c, Path(sys.argv[1]), jobs=int(sys.argv[2]), resume=sys.argv[3] == "1")
    print(run.status, run.done, flush=True)
    sys.exit(130 if run.interrupted else 0)
""")


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigint_then_resume_gives_the_uninterrupted_results(tmp_path, jobs):
    path = tmp_path / "r.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # a terminal's Ctrl-C reaches the whole process group, workers included
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(jobs), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in err and "leaked" not in err, err
    status, done = out.split()
    assert status == "interrupted" and 7 <= int(done) < 60
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(jobs), "1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["finished", "60"], proc.stderr
    resumed = read_results(path, _campaign(60, sleep=set(range(60))))[1]
    full = run_campaign(_campaign(60, sleep=set()), tmp_path / "full.jsonl", jobs=1)
    assert {t: r["result"] for t, r in resumed.items()} == full.results
