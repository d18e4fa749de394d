"""``icsmdp check``: interrupted records and runs outside Theorem 1's assumptions (issue 11, 4 and 6)."""
import json

import numpy as np
import pytest

import solvers.icq
from estimators.checker import run_assumptions
from estimators.stationary import mu, stationary_law
from icsmdp_theory.cells import cell_of_epoch_states
from icsmdp_theory.examples import load_example
from reports.cli import main
from solvers.api import PolicyIteration, solve
from solvers.icq import ICQ, FixedBehavior, StepSize
from solvers.records import save_run

CHECKPOINTS = (10, 100, 400, 1500, 3000)


def _interrupted_record(monkeypatch, steps: int):
    """A real run stopped by KeyboardInterrupt after ``steps`` batch steps (as Ctrl-C/SIGTERM do)."""
    real_step = solvers.icq.BatchRun.step
    count = {"n": 0}

    def step(self):
        count["n"] += 1
        if count["n"] > steps:
            raise KeyboardInterrupt
        return real_step(self)
    monkeypatch.setattr(solvers.icq.BatchRun, "step", step)
    rec = solve(ICQ(updates=3000, seeds=4, checkpoints=CHECKPOINTS, seed=3, engine="numpy"),
                load_example("tiny-handoff"))  # the batched loop, whose steps are patched
    monkeypatch.setattr(solvers.icq.BatchRun, "step", real_step)
    return rec


def test_interrupted_record_is_checked_on_the_checkpoints_every_seed_reached(
        tmp_path, capsys, monkeypatch):
    """Issue 11 section 4: `no seed reached every checkpoint` refused the record."""
    rec = _interrupted_record(monkeypatch, steps=1200)
    assert rec.status == "interrupted"
    common = int(rec.reached.all(axis=1).sum())
    assert 1 <= common < len(CHECKPOINTS)
    assert rec.reached[:common].all() and not rec.reached[common:].all(axis=1).any()
    path = save_run(rec, tmp_path / "rec")[0]
    code = main(["check", "tiny-handoff", str(path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["checkpoints_used"] == common
    assert doc["checkpoints_dropped"] == len(CHECKPOINTS) - common
    assert doc["checkpoints"] == [float(t) for t in CHECKPOINTS[:common]]
    assert f"{common} of {len(CHECKPOINTS)} checkpoints used" in doc["message"]
    # lhs at the used checkpoints, recomputed here from the snapshots and Q* by brute force
    model = load_example("tiny-handoff")
    q_star = solve(PolicyIteration(tol=1e-12), model).q.reshape(-1, 2, 3)
    w = mu(model, stationary_law(model).law).reshape(-1, 2, 3)
    cells = cell_of_epoch_states(model)
    for k in range(common):
        per_seed = []
        for s in range(rec.num_seeds):
            tot = 0.0
            for f in range(cells.shape[0]):
                for i in range(2):
                    for c in range(3):
                        if model.admissible[i, c]:
                            d = rec.q[k, s, cells[f, i], c] - q_star[f, i, c]
                            tot += w[f, i, c] * d * d
            per_seed.append(tot)
        assert doc["lhs_mean"][k] == pytest.approx(np.mean(per_seed), rel=1e-9, abs=1e-15)
    code = main(["check", "tiny-handoff", str(path)])
    out = capsys.readouterr().out
    assert f"using {common} of {len(CHECKPOINTS)} checkpoints" in out


def test_record_with_no_common_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    rec = _interrupted_record(monkeypatch, steps=2)
    assert not rec.reached.all(axis=1).any()
    path = save_run(rec, tmp_path / "rec")[0]
    code = main(["check", "tiny-handoff", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no checkpoint was reached by every seed" in err


def test_epsilon_greedy_harmonic_run_is_not_silently_a_theorem_holds(tmp_path, capsys):
    """Issue 11 section 6: "holds" printed without noting the unmet assumptions."""
    rec = solve(ICQ(updates=2000, seeds=3), load_example("tiny-handoff"))
    path = save_run(rec, tmp_path / "rec")[0]
    assert main(["check", "tiny-handoff", str(path)]) == 0
    out = capsys.readouterr().out
    overall = next(l for l in out.splitlines() if l.strip().startswith("overall"))
    assert "does not meet Theorem 1's assumptions" in overall
    assert "harmonic" in overall and "epsilon-greedy" in overall
    assert main(["check", "tiny-handoff", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["assumptions"]["met"] is False
    assert all(v["assumptions_met"] is False for v in doc["verdicts"].values())


def test_paper_step_and_fixed_uniform_behavior_meet_the_assumptions(tmp_path, capsys):
    rec = solve(ICQ(updates=2000, seeds=3, behavior=FixedBehavior(),
                    step=StepSize(rule="paper", nu=1.0, lambda0=0.1)),
                load_example("tiny-handoff"))
    path = save_run(rec, tmp_path / "rec")[0]
    main(["check", "tiny-handoff", str(path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["assumptions"] == {"met": True, "step_size": "paper", "behavior": "fixed uniform",
                                  "reasons": []}
    assert all(v["assumptions_met"] is True for v in doc["verdicts"].values())
    assert "assumptions" not in doc["message"]


@pytest.mark.parametrize("settings,met,fragment", [
    ({}, None, "does not state"),
    ({"step": {"rule": "paper"}, "behavior": {"kind": "FixedBehavior", "probabilities": None}},
     True, None),
    ({"step": {"rule": "constant"}, "behavior": {"kind": "FixedBehavior", "probabilities": None}},
     False, "step size 'constant'"),
    ({"step": {"rule": "paper"}, "behavior": {"kind": "EpsilonGreedy", "epsilon": 0.3}},
     False, "epsilon-greedy (epsilon 0.3)"),
    ({"step": {"rule": "paper"}, "behavior": {"kind": "FixedBehavior", "probabilities": [[1]]}},
     False, "differs from the law that defines mu"),
])
def test_run_assumptions_table(settings, met, fragment):
    class Rec:
        pass
    r = Rec()
    r.settings = settings
    got = run_assumptions(r)
    assert got["met"] is met
    if fragment:
        assert any(fragment in x for x in got["reasons"]), got
