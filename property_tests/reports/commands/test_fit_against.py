"""``icsmdp fit NEW.jsonl --against OLD.jsonl``: the drift report after the fit report (SPEC 10).

Independent truths: the planted change of the traces (a hand-written
outcome law that differs in one triple), a hand count of the triples seen in
one trace only, and exit status 2 with one line for every refused input.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from estimators.policy_value import policy_value
from icsmdp_theory.math_reasoning import WORKFLOW_NAMES, math_reasoning, workflow_policy
from icsmdp_theory.traces import TraceWriter, simulate_epoch_trace
from reports.cli import main


def _write(path, *, gamma=0.9, agents=("a", "b"), p_two=0.2, n=300, seed=0, extra=()):
    """Episodes: a at x hands to b (tau 1 or 2, P(tau=2) = p_two), b at y STOPs (tau 1)."""
    rng = np.random.default_rng(seed)
    with TraceWriter(path, gamma=gamma, agents=list(agents)) as w:
        for e in range(n):
            w.write(e, agents[0], "x", agents[1], 2 if rng.random() < p_two else 1, reward=0.0)
            w.write(e, agents[1], "y", "STOP", 1, reward=1.0)
        for e, (ag, st) in enumerate(extra, start=n):
            w.write(e, ag, st, "STOP", 1, reward=0.0)
    return str(path)


def test_against_prints_the_drift_report_and_names_the_changed_triple(tmp_path, capsys):
    new = _write(tmp_path / "new.jsonl", p_two=0.6, seed=1, extra=[("a", "z")])
    old = _write(tmp_path / "old.jsonl", p_two=0.2, seed=2)
    assert main(["fit", new, "--against", old, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    d = doc["drift"]
    assert doc["trace"] == new and "path" not in doc                 # no --out: nothing written
    assert d["against"] == old and d["drift_found"] and d["correction"] == "holm"
    assert [(c["label"], c["agent"], c["successor"]) for c in d["changed"]] == [('"x"', "a", "b")]
    (c,) = d["changed"]
    assert c["adjusted"] <= 0.05 and 0.25 < c["tv"] < 0.55           # planted: |0.6 - 0.2| = 0.4
    assert d["only_new"] == [{"label": '"z"', "agent": "a", "successor": "STOP", "count": 1}]
    assert d["only_old"] == [] and not list(tmp_path.glob("*.json"))
    # text: the fit report, then the drift report
    assert main(["fit", new, "--against", old, "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert out.index("assumption checks:") < out.index("drift against") < out.index("wrote ")
    assert "1 of 2 shared triples changed" in out and '"x"' in out and (tmp_path / "m.json").is_file()


def test_correction_bh_adjusts_by_benjamini_hochberg(tmp_path, capsys):
    new = _write(tmp_path / "new.jsonl", p_two=0.6, seed=1)
    old = _write(tmp_path / "old.jsonl", p_two=0.2, seed=2)
    assert main(["fit", new, "--against", old, "--correction", "bh", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["drift"]
    assert d["correction"] == "bh"
    (c,) = d["changed"]
    # one test (the other triple's law and the rewards are degenerate): BH and Holm leave p as is
    assert d["num_tests"] == 1 and c["adjusted"] == c["law"]["p_value"] < 1e-10
    assert "bh, false discovery rate" in d["verdict"]
    assert main(["fit", new, "--correction", "bh", "--out", str(tmp_path / "m.json")]) == 2


def test_no_drift_between_two_traces_of_one_workflow(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", seed=3)
    b = _write(tmp_path / "b.jsonl", seed=4)
    assert main(["fit", a, "--against", b, "--level", "0.01", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["drift"]
    assert not d["drift_found"] and d["changed"] == [] and d["level"] == 0.01
    assert not d["policy_changed"] and d["policy"]["shared_states"] == 2


def test_obs_map_compares_the_ais_greedy_policies(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", seed=3)
    b = _write(tmp_path / "b.jsonl", seed=4)
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"format": "icsmdp-obs/1", "by_label": [{'"x"': 0, '"y"': 0},
                                                                       {'"x"': 0, '"y"': 0}]}))
    assert main(["fit", a, "--against", b, "--obs", str(obs), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["drift"]
    assert d["obs"] == str(obs) and d["ais_policy"]["shared_cells"] == 2
    assert not d["ais_policy"]["policy_changed"]


def _math_trace(path, dataset, episodes, seed):
    m = math_reasoning(dataset)
    behavior = []
    for i in range(m.num_agents):
        mask = m.state_agent == i
        ok = np.ones((m.num_observations[i], m.num_agents + 1), bool)
        np.logical_and.at(ok, m.state_observation[mask], m.admissible[mask])
        behavior.append(ok / ok.sum(1, keepdims=True))
    simulate_epoch_trace(m, path, episodes=episodes, behavior=behavior, seed=seed, max_invocations=60)
    return str(path)


def test_obs_map_reports_the_decentralized_optimum_of_math_traces(tmp_path, capsys):
    """Two math-reasoning traces and the 4-bit map: the ``decentralized`` entry under ``drift``.

    Independent checks: the optimum's accuracy is at least every named workflow's (its
    fitted accuracy where the trace has data) and, for the trace of a workflow run alone
    (CoT deployed, so only CoT's branches have data), it is CoT's exact accuracy in the
    true model up to the Monte Carlo error of 2,000 episodes (4 standard deviations).
    """
    new = _math_trace(tmp_path / "new.jsonl", "MathQA", 800, 0)
    old = _math_trace(tmp_path / "old.jsonl", "MMLU-Elem", 800, 1)
    obs = tmp_path / "bits.json"
    obs.write_text(json.dumps({"format": "icsmdp-obs/1",
                               "fields": [["given", "modified", "checked", "judged"]] * 4}))
    assert main(["fit", new, "--against", old, "--obs", str(obs), "--json"]) == 0
    dec = json.loads(capsys.readouterr().out)["drift"]["decentralized"]
    assert dec["computed"] and dec["objective"] == "correct" and dec["discounted"] is False
    for side in ("new", "old"):
        s = dec[side]
        assert s["num_policies"] >= 1 and 0 < s["value"] <= 1
        named = [v for v in s["workflow_values"].values() if v is not None]
        assert all(s["value"] >= v - 1e-12 for v in named)
        if s["best_workflow"] is not None:
            assert s["best_workflow_gap"] == pytest.approx(s["value"] - max(named), abs=1e-12)
    assert main(["fit", new, "--against", old, "--obs", str(obs)]) == 0
    out = capsys.readouterr().out
    assert "decentralized optimum on the map (accuracy (undiscounted correct))" in out
    assert "keeping the old recommendation loses" in out
    # one workflow deployed: its trace's fitted optimum is that workflow, with its true accuracy
    m = math_reasoning("MathQA")
    cot = workflow_policy(m, "CoT")
    behavior = []
    for i in range(m.num_agents):
        b = np.zeros((m.num_observations[i], m.num_agents + 1))
        mask = m.state_agent == i
        b[m.state_observation[mask], cot[mask]] = 1.0
        behavior.append(b)
    for name, seed in (("a", 2), ("b", 3)):
        simulate_epoch_trace(m, tmp_path / f"{name}.jsonl", episodes=2000, behavior=behavior, seed=seed)
    assert main(["fit", str(tmp_path / "a.jsonl"), "--against", str(tmp_path / "b.jsonl"), "--obs",
                 str(obs), "--json"]) == 0
    dec = json.loads(capsys.readouterr().out)["drift"]["decentralized"]
    exact = policy_value(m, cot, discounted=False).values["correct"]
    sd = np.sqrt(exact * (1 - exact) / 2000)
    for side in ("new", "old"):
        assert dec[side]["workflow"] == "CoT" and dec[side]["num_policies"] == 1
        assert abs(dec[side]["value"] - exact) <= 4 * sd
    assert not dec["policy_changed"] and dec["changed"] == [] and dec["loss_new"] == 0.0


@pytest.mark.parametrize("case, fragment", [
    ("gamma", "different gamma: new 0.9, old 0.95"),
    ("agents", "different agents: new ['a', 'b'], old ['a', 'c']"),
])
def test_traces_of_different_workflows_exit_2_with_one_line(tmp_path, capsys, case, fragment):
    new = _write(tmp_path / "new.jsonl")
    old = _write(tmp_path / "old.jsonl", **({"gamma": 0.95} if case == "gamma" else {"agents": ("a", "c")}))
    out_path = tmp_path / "m.json"
    assert main(["fit", new, "--against", old, "--out", str(out_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1
    assert not out_path.exists()                                       # nothing written on error


@pytest.mark.parametrize("argv, fragment", [
    (["--level", "0.05"], "`--level` applies with `--against OLD.jsonl` only"),
    (["--obs", "m.json"], "`--obs` applies with `--against OLD.jsonl` only"),
    ([], "`--out` is required"),
])
def test_options_without_against_exit_2(tmp_path, capsys, argv, fragment):
    new = _write(tmp_path / "new.jsonl")
    assert main(["fit", new, *argv]) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("level", ["0", "1", "1.5", "x"])
def test_bad_level_exits_2(tmp_path, capsys, level):
    new, old = _write(tmp_path / "n.jsonl"), _write(tmp_path / "o.jsonl", seed=5)
    assert main(["fit", new, "--against", old, "--level", level]) == 2
    assert "`--level` must be a number in (0" in capsys.readouterr().err


def test_missing_or_bad_map_exits_2_naming_the_file(tmp_path, capsys):
    new, old = _write(tmp_path / "n.jsonl"), _write(tmp_path / "o.jsonl", seed=5)
    assert main(["fit", new, "--against", old, "--obs", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such observation-map file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "icsmdp-obs/1", "by_label": [{'"x"': 0}, {'"x"': 0}]}))
    assert main(["fit", new, "--against", old, "--obs", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.json" in err
