"""``python -m reports.bench fit`` at tiny sizes: its counts against a direct count of the traces."""
import json

import pytest

from icsmdp_theory.traces import write_synthetic_trace
from reports.bench import bench_fit, main

SIZES = dict(invocations=3000, agents=3, labels=30, posterior_invocations=2000,
             posterior_labels=12, draws=3, jobs=1, seed=5)


def _pairs(path):
    """Distinct (state, agent) pairs and line count, read with json line by line."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    recs = [json.loads(x) for x in lines]
    return len(recs), len({(json.dumps(r["state"]), r["agent"]) for r in recs})


@pytest.fixture(scope="module")
def report():
    return bench_fit(**SIZES)


def test_counts_match_the_traces_written_with_the_same_seeds(report, tmp_path):
    # every synthetic episode ends with STOP, so every line has an outcome
    a = tmp_path / "a.jsonl"
    write_synthetic_trace(a, invocations=3000, agents=3, labels=30, seed=5)
    n, pairs = _pairs(a)
    assert report["read_fit"]["invocations"] == n == 3000
    assert report["read_fit"]["states_seen"] == pairs
    b = tmp_path / "b.jsonl"
    write_synthetic_trace(b, invocations=2000, agents=3, labels=12, seed=6)
    assert report["posterior"]["epoch_states"] == _pairs(b)[1]


def test_timings_memory_and_runs_are_reported(report):
    a = report["read_fit"]
    assert 0 < a["read_s"] and 0 < a["fit_s"]
    assert a["read_fit_s"] == pytest.approx(a["read_s"] + a["fit_s"], rel=1e-6)
    assert 10 < a["peak_rss_mb"] < 4096           # a python process with numpy, in MB
    runs = report["posterior"]["runs"]
    assert set(runs) == {"state", "pooled", "observed"}
    for r in runs.values():
        lo, hi = r["alpha_tight_interval"]
        assert lo <= hi and r["seconds"] > 0 and 0 <= r["greedy_agreement"] <= 1


def test_command_line_prints_a_table_or_json(capsys):
    argv = ["fit", "--invocations", "500", "--agents", "2", "--labels", "5",
            "--posterior-invocations", "500", "--posterior-labels", "5", "--draws", "2",
            "--jobs", "1", "--support", "observed"]
    assert main(argv + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "fit" and list(doc["posterior"]["runs"]) == ["observed"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "read+fit s" in text and "peak MB" in text and "observed" in text
