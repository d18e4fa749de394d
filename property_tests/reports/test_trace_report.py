"""``icsmdp report --traces T --obs MAP``: the section "Your workflow from its logs" (issue 12, item 6).

The fit numbers and ``gamma_bar`` of the section are held against a direct
count of the trace file (``json`` line by line, Python dicts), the bad
inputs must exit 2 and leave nothing behind, and a report without
``--traces`` must keep exactly its sections.
"""
import json
import math
from collections import defaultdict

import numpy as np
import pytest

from estimators.behavior import uniform_behavior
from estimators.uncertainty import GAP_VALUE_KEYS, MIXING_VALUE_KEYS
from icsmdp_theory.examples import load_example
from icsmdp_theory.traces import simulate_trace
from reports import trace_section
from reports.cli import main
from reports.commands import report as report_cmd
from reports.htmlcheck import check_report
from reports.sections import DEFAULT_SECTIONS, FULL_SECTIONS


@pytest.fixture(scope="module")
def trace_and_map(tmp_path_factory):
    d = tmp_path_factory.mktemp("trace")
    model = load_example("tiny-handoff")
    path = d / "t.jsonl"
    simulate_trace(model, path, episodes=150, behavior=uniform_behavior(model), seed=3)
    obs = d / "map.json"      # every agent sees the interface state m only (position 1)
    obs.write_text(json.dumps({"format": "icsmdp-obs/1",
                               "fields": [[1]] * model.num_agents}), encoding="utf-8")
    return path, obs


def _direct_counts(path):
    """Fit summary numbers and gamma_bar straight from the JSON lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    gamma = head["gamma"]
    recs = [json.loads(x) for x in lines[1:] if x.strip()]
    by_ep = defaultdict(list)
    for r in recs:
        by_ep[r["episode"]].append(r)
    truncated = sum(1 for ep in by_ep.values() if ep[-1]["successor"] != "STOP")
    labels = {json.dumps(r["state"], separators=(",", ":")) for r in recs}
    # invocations with an outcome: STOP lines and lines followed by one of their episode
    disc = defaultdict(list)
    states = set()
    for ep in by_ep.values():
        for j, r in enumerate(ep):
            if r["successor"] == "STOP" or j + 1 < len(ep):
                key = (json.dumps(r["state"], separators=(",", ":")), r["agent"])
                states.add(key)
                disc[key + (r["successor"],)].append(gamma ** r["tau"])
    return {"invocations": len(recs), "episodes": len(by_ep), "truncated_episodes": truncated,
            "labels_seen": len(labels), "states_seen": len(states), "triples_seen": len(disc),
            "gamma_bar": max(sum(v) / len(v) for v in disc.values())}


@pytest.fixture(scope="module")
def built(trace_and_map, tmp_path_factory):
    path, obs = trace_and_map
    out = tmp_path_factory.mktemp("reports")
    rc = main(["report", "--out", str(out), "--traces", str(path), "--obs", str(obs),
               "--posterior", "6", "--target-width", "0.05", "--traces-only", "--no-minimax",
               "--json"])
    assert rc == 0
    (rep,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return rep, json.loads((rep / "report.json").read_text(encoding="utf-8"))


def test_fit_summary_matches_a_direct_count_of_the_trace(built, trace_and_map):
    _, doc = built
    sec = doc["sections"]["traces"]
    want = _direct_counts(trace_and_map[0])
    for k in ("invocations", "episodes", "truncated_episodes", "labels_seen", "states_seen",
              "triples_seen"):
        assert sec["fit"][k] == want[k], k
    assert sec["posterior"]["gamma_bar"] == pytest.approx(want["gamma_bar"], abs=1e-12)
    assert sec["posterior"]["posterior_draws"] == 6
    lo, hi = sec["posterior"]["intervals"]["alpha_tight"]
    assert lo <= hi


def test_report_passes_every_check_and_has_its_figures_and_verdicts(built):
    rep, doc = built
    assert check_report(rep, prose=True) == []
    assert {"trace_forest.png", "trace_evidence.png"} <= set(doc["figures"])
    html = (rep / "index.html").read_text(encoding="utf-8")
    assert "Your workflow from its logs" in html and "Assumption checks" in html
    rows = [r for r in doc["summary"]["rows"] if r["section"] == "traces"]
    assert len(rows) == 4
    post = doc["sections"]["traces"]["posterior"]
    gap = [r for r in rows if "max_q_gap" in r["claim"]][0]
    assert gap["verdict"] == ("holds" if post["max_q_gap"] <= post["alpha_tight"] + 1e-9
                              else "fails")
    ev = doc["sections"]["traces"]["posterior"]["evidence"]
    assert ev["target_width"] == 0.05 and len(ev["invocations"]) == 4
    # every key with a value is in the forest plot
    drawn = set(doc["sections"]["traces"]["forest_keys"])
    assert {k for k in post["intervals"] if post.get(k) is not None} <= drawn


def test_forest_groups_cover_every_quantity_once():
    keys = [k for _, ks in trace_section.FOREST_GROUPS for k in ks]
    assert len(keys) == len(set(keys))
    assert set(GAP_VALUE_KEYS) | set(MIXING_VALUE_KEYS) <= set(keys)


def test_halving_projection_is_the_closed_form():
    # width = 2 n^-1/2 exactly: today's width at n = 1600 is 0.05; half of it needs n = 6400
    n = np.array([100, 400, 1600])
    ev = {"widths": {"k": list(2 * n ** -0.5), "z": [0.0, 0.0, 0.0]}, "slope": {"k": -0.5, "z": None},
          "scale": {"k": 2.0, "z": None}}
    out = trace_section._halving(ev)
    assert out["k"] == pytest.approx(6400.0, rel=1e-12)
    assert out["z"] is None


def test_without_traces_the_report_keeps_its_sections(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(report_cmd, "build_report",
                        lambda sections, **kw: (seen.append(list(sections)), tmp_path)[1])
    (tmp_path / "report.json").write_text("{}", encoding="utf-8")
    assert main(["report", "--out", str(tmp_path / "o")]) == 0
    assert main(["report", "--out", str(tmp_path / "o"), "--full"]) == 0
    assert seen == [list(DEFAULT_SECTIONS), list(FULL_SECTIONS)]


@pytest.mark.parametrize("bad", ["missing-trace", "tau0", "missing-map", "map-agents",
                                 "obs-alone", "posterior", "level"])
def test_bad_inputs_exit_2_and_write_nothing(bad, trace_and_map, tmp_path, capsys):
    path, obs = trace_and_map
    out = tmp_path / "out"
    args = ["report", "--out", str(out), "--traces", str(path), "--obs", str(obs),
            "--traces-only"]
    if bad == "missing-trace":
        args[4] = str(tmp_path / "nope.jsonl")
    elif bad == "tau0":
        lines = path.read_text(encoding="utf-8").splitlines()
        rec = json.loads(lines[3])
        rec["tau"] = 0
        lines[3] = json.dumps(rec)
        t = tmp_path / "bad.jsonl"
        t.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args[4] = str(t)
    elif bad == "missing-map":
        args[6] = str(tmp_path / "nope.json")
    elif bad == "map-agents":
        m = tmp_path / "m.json"
        m.write_text(json.dumps({"format": "icsmdp-obs/1", "fields": [[1]]}), encoding="utf-8")
        args[6] = str(m)
    elif bad == "obs-alone":
        args = ["report", "--out", str(out), "--obs", str(obs)]
    elif bad == "posterior":
        args += ["--posterior", "-1"]
    elif bad == "level":
        args += ["--level", "1.5"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("icsmdp report: error:")
    if bad == "tau0":
        assert "line 4" in err[0] and "tau" in err[0]
    assert not out.exists() or not any(out.iterdir())
