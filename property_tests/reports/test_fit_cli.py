"""``icsmdp fit``: the maximum-likelihood model of a hand-counted trace, the report, errors (exit 2, nothing written)."""
import json

import numpy as np
import pytest

from icsmdp_theory.epoch_io import load_epoch_model
from icsmdp_theory.examples import DATA_FILES, data_path
from icsmdp_theory.traces import read_trace
from reports.cli import main

H = '{"format": "icsmdp-trace/1", "gamma": 0.5, "agents": ["a", "b"]}\n'


def _line(ep, agent, state, succ, tau, reward):
    return json.dumps({"episode": ep, "agent": agent, "state": state, "successor": succ,
                       "tau": tau, "reward": reward}) + "\n"


#: Four episodes counted by hand below: ep 3 is truncated (its line has no outcome).
HAND = H + "".join([
    _line(0, "a", [0], "b", 1, 1.0), _line(0, "b", [1], "STOP", 2, 2.0),
    _line(1, "a", [0], "b", 1, 3.0), _line(1, "b", [2], "STOP", 1, 0.0),
    _line(2, "a", [0], "STOP", 1, 5.0),
    _line(3, "a", [0], "b", 1, 1.0),
])


def _prob(m, label, agent, succ, next_label, tau):
    """P(next_label, tau | label, agent, succ) read off the model (0 if absent)."""
    k = m.labels.index(label)
    s = m.state_index(k, agent)
    nl = -1 if next_label is None else m.labels.index(next_label)
    hit = ((m.trans_state == s) & (m.trans_successor == succ) & (m.trans_next_label == nl)
           & (m.trans_tau == tau))
    return float(m.trans_prob[hit].sum())


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_fit_writes_the_hand_counted_ml_model(tmp_path, capsys, suffix):
    trace = tmp_path / "t.jsonl"
    trace.write_text(HAND)
    out = tmp_path / f"m{suffix}"
    assert main(["fit", str(trace), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # the report, counted by hand
    assert (doc["invocations"], doc["episodes"], doc["truncated_episodes"]) == (6, 4, 1)
    assert (doc["states_seen"], doc["triples_seen"], doc["dangling"]) == (3, 4, 0)
    assert doc["invocations_used"] == 5 and doc["path"] == str(out) and doc["trace"] == str(trace)
    for test in ("markov_test", "successor_test"):
        assert {"statistic", "dof", "p_value", "verdict"} <= set(doc[test])
    m = load_epoch_model(out)
    assert m.counts is not None and m.counts["alpha0"] == 0.5
    # a@[0] -> b: outcomes ([1], 1) and ([2], 1) once each of 2; STOP once; R means
    assert _prob(m, "[0]", 0, 1, "[1]", 1) == pytest.approx(0.5)
    assert _prob(m, "[0]", 0, 1, "[2]", 1) == pytest.approx(0.5)
    assert _prob(m, "[0]", 0, 2, None, 1) == pytest.approx(1.0)
    assert _prob(m, "[1]", 1, 2, None, 2) == pytest.approx(1.0)
    s0 = m.state_index(m.labels.index("[0]"), 0)
    assert m.reward[s0, 1] == pytest.approx(2.0) and m.reward[s0, 2] == pytest.approx(5.0)
    assert m.rho0[s0] == pytest.approx(1.0) and m.rho0.sum() == pytest.approx(1.0)
    # existing file kept without --force
    before = out.read_bytes()
    assert main(["fit", str(trace), "--out", str(out), "--alpha0", "2"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["fit", str(trace), "--out", str(out), "--alpha0", "2", "--force"]) == 0
    assert load_epoch_model(out).counts["alpha0"] == 2.0


def test_fit_text_report_and_declared_admissible(tmp_path, capsys):
    """With declared sets, the declared but unvisited triple (b -> a at both b states) is listed."""
    header = json.loads(H)
    header["admissible"] = {"a": ["b", "STOP"], "b": ["a", "STOP"]}
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps(header) + "\n" + HAND.split("\n", 1)[1])
    out = tmp_path / "m.json"
    assert main(["fit", str(trace), "--out", str(out), "--admissible", "declared"]) == 0
    text = capsys.readouterr().out
    for fragment in ("invocations", "episodes", "1 truncated", "epoch states", "triples",
                     "unvisited declared triples (excluded): 2", "Markov property",
                     "committed successor", f"wrote {out}"):
        assert fragment in text, fragment
    assert main(["fit", str(trace), "--out", str(tmp_path / "m2.json"), "--json",
                 "--admissible", "declared"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted((u["label"], u["agent"], u["successor"]) for u in doc["unvisited_declared"]) == \
        [("[1]", "b", "a"), ("[2]", "b", "a")]


def test_fit_accepts_the_bundled_trace_by_name(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["fit", "workflow-trace", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    with open(data_path("workflow-trace"), "rb") as f:
        lines = sum(1 for _ in f) - 1                                  # minus the header
    assert doc["invocations"] == lines and doc["episodes"] == 300
    assert DATA_FILES["workflow-trace"].endswith(".jsonl")
    assert load_epoch_model(out).num_epoch_states == doc["states_seen"]


A_B = _line(0, "a", 0, "b", 1, 0.0)
BAD_TRACES = {
    "missing header": (_line(0, "a", 0, "STOP", 1, 0.0), 1),
    "wrong format string": (H.replace("icsmdp-trace/1", "icsmdp-trace/2"), 1),
    "unknown agent": (H + _line(0, "c", 0, "STOP", 1, 0.0), 2),
    "successor/next-agent mismatch": (H + A_B + _line(0, "a", 1, "STOP", 1, 0.0), 3),
    "tau < 1": (H + _line(0, "a", 0, "STOP", 0, 0.0), 2),
    "rewards length != tau": (H + '{"episode": 0, "agent": "a", "state": 0, "successor": "STOP", '
                                  '"tau": 2, "rewards": [1.0]}\n', 2),
    "non-finite reward": (H + '{"episode": 0, "agent": "a", "state": 0, "successor": "STOP", '
                              '"tau": 1, "reward": NaN}\n', 2),
    "overflowing number": (H + '{"episode": 0, "agent": "a", "state": 0, "successor": "STOP", '
                               '"tau": 1, "reward": 1e400}\n', 2),
    "not JSON": (H + '{"episode": 0,\n', 2),
    "empty trace": (H, 2),
}


@pytest.mark.parametrize("case", sorted(BAD_TRACES))
def test_bad_trace_exits_2_with_its_line_and_writes_nothing(tmp_path, capsys, case):
    text, line = BAD_TRACES[case]
    trace = tmp_path / "t.jsonl"
    trace.write_text(text)
    for extra in ([], ["--json"]):
        assert main(["fit", str(trace), "--out", str(tmp_path / "out" / "m.json")] + extra) == 2
        cap = capsys.readouterr()
        assert f"line {line}" in cap.err and cap.err.count("\n") == 1, cap.err
        assert cap.out == ""
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_destination_is_checked_before_the_trace_is_read(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["fit", str(tmp_path / "missing.jsonl"), "--out", str(blocker / "m.json")]) == 2
    assert "`--out`: cannot write" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m.txt")]) == 2
    assert "`--out` must end in .json or .npz" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["--alpha0", "0"], "`--alpha0` must be a number in (0.0, inf)"),
    (["--alpha0", "nan"], "`--alpha0` must be a number"),
])
def test_bad_alpha0_exits_2(tmp_path, capsys, argv, fragment):
    trace = tmp_path / "t.jsonl"
    trace.write_text(HAND)
    assert main(["fit", str(trace), "--out", str(tmp_path / "m.json")] + argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_declared_without_header_sets_exits_2(tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    trace.write_text(HAND)
    assert main(["fit", str(trace), "--out", str(tmp_path / "m.json"), "--admissible",
                 "declared"]) == 2
    assert "header key `admissible`" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_interrupt_exits_130_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import reports.commands.fit as cmd

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "fit_epoch_model", interrupted)
    trace = tmp_path / "t.jsonl"
    trace.write_text(HAND)
    assert main(["fit", str(trace), "--out", str(tmp_path / "m.json")]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_shipped_trace_is_the_documented_simulation(tmp_path, capsys):
    """The shipped trace equals `icsmdp simulate-trace workflow --episodes 300 --seed 0` byte for byte."""
    out = tmp_path / "t.jsonl"
    assert main(["simulate-trace", "workflow", "--episodes", "300", "--behavior", "uniform",
                 "--seed", "0", "--out", str(out)]) == 0
    assert out.read_bytes() == data_path("workflow-trace").read_bytes()
    t = read_trace(out)
    assert t.num_episodes == 300 and out.stat().st_size < 500_000
    assert np.all(np.diff(t.line) > 0)
