"""``icsmdp simulate``: the table, --json, the figure, exit statuses, the policies it accepts.

The numbers are held against independent computations: the exact values of
:func:`estimators.policy_value.policy_value` (tested against power series) for the
policy named on the command line, rebuilt here from its definition.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import estimators.validation as validation
from estimators.policy_value import PolicyValue, policy_value
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_io import save_epoch_model
from icsmdp_theory.examples import load_example
from icsmdp_theory.math_reasoning import math_reasoning, workflow_policy
from property_tests.estimators.test_validation import geometric_model
from reports.cli import main
import reports.commands.simulate as simulate_cmd
from reports.commands.simulate import simulation_document
from solvers import ICQ, PolicyIteration, solve
from solvers.records import save_run


def _json(capsys, argv):
    code = main(argv + ["--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out.strip() else None, out.err


def test_bundled_workflow_greedy_json_and_figure(capsys, tmp_path):
    code, doc, _ = _json(capsys, ["simulate", "workflow", "--policy", "greedy", "--episodes",
                                  "20000", "--seed", "3", "--out", str(tmp_path / "figs")])
    assert code == 0 and doc["status"] == "ok" and doc["episodes"] == 20000
    e = export_epoch(load_example("workflow"))
    sigma = np.asarray(solve(PolicyIteration(tol=1e-10), e).policy)
    exact = policy_value(e, sigma).values["reward"]
    row = next(r for r in doc["rows"] if r["name"] == "reward" and r["discounted"])
    assert abs(row["exact"] - exact) < 1e-12
    assert row["lower"] <= exact <= row["upper"] and row["check"] == "pass"
    assert {r["name"] for r in doc["rows"]} == {"reward"} and len(doc["rows"]) == 2
    png = tmp_path / "figs" / "simulate-workflow-greedy.png"
    assert doc["figure"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same seed gives the same numbers
    code, again, _ = _json(capsys, ["simulate", "workflow", "--policy", "greedy", "--episodes",
                                    "20000", "--seed", "3"])
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in doc["rows"]]
    assert again["figure"] is None


def test_math_reasoning_cot_table(capsys):
    assert main(["simulate", "math-reasoning:MathQA", "--policy", "workflow:CoT",
                 "--episodes", "50000"]) == 0
    out = capsys.readouterr().out
    m = math_reasoning("MathQA")
    acc = policy_value(m, workflow_policy(m, "CoT"), discounted=False).values["correct"]
    line = next(l for l in out.splitlines() if l.split()[:2] == ["correct", "total"])
    assert abs(float(line.split()[2]) - acc) < 5e-5          # the exact column (5 digits)
    assert out.splitlines()[-1].startswith("ok:")
    for name in ("reward", "correct", "tokens", "calls"):
        assert sum(l.split()[:1] == [name] and l.split()[1] in ("disc", "total")
                   for l in out.splitlines()) == 2


def test_ais_greedy_and_a_run_record(capsys, tmp_path):
    inst = load_example("tiny-handoff")
    rec = solve(ICQ(seeds=[5, 9], updates=300, checkpoints=(300,), progress=False), inst)
    save_run(rec, tmp_path / "rec.npz")
    code, doc, _ = _json(capsys, ["simulate", "tiny-handoff", "--policy", str(tmp_path / "rec.npz"),
                                  "--run-seed", "9", "--episodes", "5000"])
    assert code == 0 and doc["status"] == "ok"
    sigma = validation.run_greedy_policy(inst, rec, seed_index=1)
    exact = policy_value(export_epoch(inst), sigma).values["reward"]
    assert abs(doc["rows"][0]["exact"] - exact) < 1e-12
    code, doc, _ = _json(capsys, ["simulate", "tiny-handoff", "--policy", "ais-greedy",
                                  "--episodes", "5000"])
    assert code == 0 and doc["status"] == "ok"
    code, _, err = _json(capsys, ["simulate", "tiny-handoff", "--policy", str(tmp_path / "rec.npz"),
                                  "--run-seed", "4", "--episodes", "50"])
    assert code == 2 and "`--run-seed` must be one of the record's seeds [5, 9]" in err


def test_a_failed_check_exits_1(capsys, monkeypatch):
    real = validation.policy_value

    def shifted(model, policy, *, discounted=True):
        v = real(model, policy, discounted=discounted)
        return PolicyValue(success=True, status="computed", message="shifted", names=v.names,
                           values={k: x + 0.5 for k, x in v.values.items()},
                           per_state=v.per_state, discounted=v.discounted,
                           terminates=v.terminates, trapped=v.trapped)

    monkeypatch.setattr(validation, "policy_value", shifted)
    assert main(["simulate", "workflow", "--policy", "greedy", "--episodes", "2000"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("violated:") and "fail" in out


def test_an_epoch_model_file_and_cut_episodes(capsys, tmp_path):
    e = export_epoch(load_example("workflow"))
    save_epoch_model(e, tmp_path / "w.json")
    code, doc, _ = _json(capsys, ["simulate", str(tmp_path / "w.json"), "--policy", "greedy",
                                  "--episodes", "500", "--horizon", "2"])
    # every invocation of the workflow example takes steps: all episodes are cut after 2
    assert code == 0 and doc["truncated"] > 0 and doc["status"] == "inconclusive"
    assert any(r["check"] == "inconclusive" and r["truncation_bias"] for r in doc["rows"])


@pytest.mark.parametrize("argv,message", [
    (["workflow", "--policy", "workflow:CoT"], "needs a math-reasoning model"),
    (["math-reasoning:Nope", "--policy", "greedy"], "names no dataset"),
    (["workflow", "--policy", "bogus"], "`--policy` must be greedy, ais-greedy"),
    (["workflow", "--policy", "missing.npz"], "run record 'missing.npz' not found"),
    (["math-reasoning:MathQA", "--policy", "workflow:Nope"], "unknown workflow 'Nope'"),
    (["workflow", "--policy", "greedy", "--obs", "x.json"], "`--obs` applies"),
    (["workflow", "--policy", "greedy", "--run-seed", "1"], "`--run-seed` applies"),
    (["workflow", "--policy", "greedy", "--horizon", "0"], "`--horizon` must be an integer >= 1"),
])
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, argv, message):
    out = tmp_path / "figs"
    assert main(["simulate"] + argv + ["--episodes", "10", "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.strip().splitlines()) == 1 and message in cap.err
    assert not out.exists()


def test_unwritable_out_is_refused_before_work(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["simulate", "workflow", "--policy", "greedy", "--episodes", "10",
                 "--out", str(blocker)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_json_has_no_nan():
    """A policy that never stops: its undiscounted total is undefined (NaN), written as null."""
    m = geometric_model(p=0.0)
    res = validation.simulate_policy(m, np.array([0, 1]), episodes=20, seed=0, horizon=30)
    doc = simulation_document(res, model=m.name, policy="loop", figure=None)
    text = json.dumps(doc, allow_nan=False)
    row = next(r for r in json.loads(text)["rows"] if r["name"] == "reward" and not r["discounted"])
    assert row["exact"] is None and row["check"] == "inconclusive" and doc["truncated"] == 20


def test_progress_bar_on_long_runs_only(capsys, monkeypatch):
    monkeypatch.setattr(simulate_cmd, "show_progress", lambda args: not args.json)
    assert main(["simulate", "math-reasoning:MathQA", "--policy", "workflow:CoT",
                 "--episodes", str(validation.CHUNK_EPISODES + 10)]) == 0
    err = capsys.readouterr().err
    assert "simulate: 100%" in err and f"{validation.CHUNK_EPISODES + 10}/" in err
    assert main(["simulate", "math-reasoning:MathQA", "--policy", "workflow:CoT",
                 "--episodes", "1000"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["simulate", "math-reasoning:MathQA", "--policy", "workflow:CoT", "--json",
                 "--episodes", str(validation.CHUNK_EPISODES + 10)]) == 0
    assert capsys.readouterr().err == ""
