"""The ``icsmdp`` command line: outputs, exit codes, and nothing written on bad input."""
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from reports.cli import main
from icsmdp_theory.examples import example_path

TINY = str(example_path("tiny-handoff"))


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_json_keys_and_values(capsys):
    code, out, err = run(["solve", "tiny-handoff", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    for key in ("gamma_bar", "v0", "method", "iterations", "bellman_residual",
                "num_epoch_states", "q_star"):
        assert key in doc
    # hand-derived (see test_committed_chain): planner at m0 hands to the checker
    assert doc["v0"] == pytest.approx(0.580645161 * 0.9 + 0.261290323, abs=1e-8)
    assert doc["num_epoch_states"] == 6 and len(doc["q_star"]) == 6
    assert doc["q_star"][0][0] is None  # planner cannot hand to itself


@pytest.mark.parametrize("method", ["vi", "pi", "mpi"])
def test_solve_methods_agree(method, capsys):
    code, out, _ = run(["solve", "workflow", "--json", "--method", method, "--tol", "1e-9"], capsys)
    assert code == 0
    assert json.loads(out)["v0"] == pytest.approx(0.6185312446, abs=1e-8)


def test_solve_human_output(capsys):
    code, out, _ = run(["solve", TINY], capsys)
    assert code == 0 and "gamma_bar" in out and "v0" in out and "iterations" in out


def _assert_rejected(argv, capsys, tmp_path, fragment):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(argv, capsys)
    assert code == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_instance_exits_2_and_names_the_location(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = json.loads(Path(TINY).read_text())
    doc["agents"][1]["kernel"][0][2][2] = 0.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    _assert_rejected(["solve", str(bad)], capsys, tmp_path,
                     "rows of `kernel` must sum to 1: agent 1 (`checker`), action 0, row y=2")
    _assert_rejected(["gaps", str(bad)], capsys, tmp_path, "agent 1 (`checker`)")
    _assert_rejected(["solve", "no-such-file.json"], capsys, tmp_path, "no-such-file.json")


def test_bad_observation_map_exits_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"format": "icsmdp-obs/1", "maps": [[[0], [2], [1]]]}))
    _assert_rejected(["gaps", "tiny-handoff", "--obs", str(obs)], capsys, tmp_path,
                     "one observation map per agent")
    obs.write_text(json.dumps({"format": "icsmdp-obs/1", "maps": [[[0], [2], [2]], [[0], [1], [2]]]}))
    _assert_rejected(["gaps", "tiny-handoff", "--obs", str(obs)], capsys, tmp_path,
                     "label 1 is unused")


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["solve", "--method", "nope"])
    assert exc.value.code == 2


def test_gaps_json_keys_and_exact_map(capsys, tmp_path):
    code, out, _ = run(["gaps", "tiny-handoff", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    for key in ("epsilon_phi", "delta_phi", "delta_phi_gamma", "gamma_bar", "L_Q", "eta",
                "alpha_paper", "alpha_tv", "alpha_tight", "max_q_gap", "max_value_gap",
                "policy_loss", "minimax_epsilon", "minimax_delta", "t_mix", "relaxation_time",
                "cells"):
        assert key in doc
    assert doc["max_q_gap"] <= doc["alpha_tight"] + 1e-9
    # an injective map on tiny-handoff (nX = 1, no private states) has no gap
    obs = tmp_path / "inj.json"
    obs.write_text(json.dumps({"format": "icsmdp-obs/1", "maps": [[[0], [1], [2]], [[0], [1], [2]]]}))
    code, out, _ = run(["gaps", "tiny-handoff", "--obs", str(obs), "--json", "--no-mixing"], capsys)
    doc = json.loads(out)
    assert doc["epsilon_phi"] <= 1e-12 and doc["delta_phi"] <= 1e-9 and doc["max_q_gap"] <= 1e-8
    code, out, _ = run(["gaps", "tiny-handoff", "--against", str(obs), "--json", "--no-mixing"],
                       capsys)
    both = json.loads(out)
    assert both["b"]["max_q_gap"] <= 1e-8 and "differences_b_minus_a" in both


def test_verify_same_seed_same_bytes(tmp_path):
    cmd = [sys.executable, "-m", "reports.cli", "verify", "--instances", "6", "--seed", "3",
           "--json", "--out", str(tmp_path / "v")]
    a = subprocess.run(cmd, capture_output=True, check=True).stdout
    b = subprocess.run(cmd, capture_output=True, check=True).stdout
    assert a == b
    doc = json.loads(a)
    assert doc["instances"] == 6 and doc["seed"] == 3
    for name, t in doc["properties"].items():
        assert set(t) >= {"checked", "violations", "worst_ratio"}
    assert set(doc["alpha_paper"]) >= {"checked", "violations_q", "violations_value",
                                       "worst_ratio", "counterexample"}


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))


def test_report_builder_parses_and_never_overwrites(tmp_path):
    from reports.builder import Section, build_report
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def section(ctx):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2])
        fig.savefig(ctx.workdir / "line.png")
        plt.close(fig)
        return Section(key="demo", title="Demo", blocks=[("p", "Text <b>"), ("table", ["a"], [[1.5]]),
                                                         ("figure", "line.png", "A line")],
                       data={"x": np.float64(1.5), "nan": float("nan")})

    first = build_report([section], out_root=tmp_path, argv=["test"], progress=False)
    second = build_report([section], out_root=tmp_path, argv=["test"], progress=False)
    assert first != second and first.exists() and second.exists()
    doc = json.loads((first / "report.json").read_text())
    assert doc["sections"]["demo"] == {"x": 1.5, "nan": None}
    assert doc["provenance"]["command"] == ["test"] and "versions" in doc["provenance"]
    prov = doc["provenance"]
    assert prov["mode"] == "quick" and set(prov["timings_seconds"]) == {"demo"}
    assert prov["total_seconds"] >= prov["timings_seconds"]["demo"] >= 0
    assert doc["figures"] == ["line.png"] and (first / "line.png").exists()
    p = _Collect()
    p.feed((first / "index.html").read_text())
    assert "table" in p.tags and len(p.images) == 1
    assert p.images[0]["src"].startswith("data:image/png;base64,")
    assert (first / p.images[0]["data-file"]).exists()
    assert "Text &lt;b&gt;" in (first / "index.html").read_text()
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []


def test_report_failure_leaves_nothing(tmp_path):
    from reports.builder import build_report

    def broken(ctx):
        (ctx.workdir / "partial.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_report([broken], out_root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, full", [([], False), (["--full"], True)])
def test_report_full_adds_routing_at_paper_scale(monkeypatch, tmp_path, capsys, flags, full):
    import reports.commands.report
    seen = {}

    def fake_build(sections, *, out_root, seed, quick, argv, **kw):
        seen.update(names=[f.__name__ for f in sections], quick=quick)
        return tmp_path / "r"

    monkeypatch.setattr(reports.commands.report, "build_report", fake_build)
    assert main(["report", "--out", str(tmp_path), *flags]) == 0
    assert seen["quick"] is (not full)
    assert ("routing" in seen["names"]) is full
    assert seen["names"][:4] == ["solve_summary", "gap_summary", "verify_summary", "theorem_check"]


# ------------------------------------------------ hostile input (issue 11, section 2)
def _hostile(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["solve", "gaps", "check"])
def test_hostile_instance_is_one_line_for_every_command(command, capsys, tmp_path, monkeypatch):
    # a nested JSON value (RecursionError before), a string inside `reward` (silently
    # coerced before) and a repeated `gamma` (the last one won before)
    monkeypatch.chdir(tmp_path)
    text = Path(TINY).read_text()
    cases = {
        "deep.json": (text.replace('"horizon": 60', '"horizon": ' + "[" * 1000 + "]" * 1000),
                      "JSON nested deeper than 32 levels at line 5, column 45."),
        "string.json": (text.replace('"reward": [[[[0.0, 0.0, 0.0]]', '"reward": [[[["1.0", 0.0, 0.0]]', 1),
                        "`reward` of agent 0 (`planner`): entry [0, 0, 0, 0] is the string '1.0', "
                        "expected a number."),
        "dup.json": (text.rstrip().rstrip("}") + ', "gamma": 0.5}\n',
                     "duplicate key `gamma` in the top-level object; every key must appear once."),
    }
    for name, (body, message) in cases.items():
        path = _hostile(tmp_path, name, body)
        argv = {"solve": ["solve", str(path)],
                "gaps": ["gaps", str(path), "--no-mixing", "--no-minimax"],
                "check": ["check", str(path), "no-such-record.npz"]}[command]
        code, out, err = run(argv, capsys)
        assert code == 2 and out == "", err
        assert err == f"icsmdp {command}: error: {path}: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)   # nothing written
