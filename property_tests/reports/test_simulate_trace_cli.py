"""``icsmdp simulate-trace``: files, behaviors, reproducibility, errors (exit 2, nothing written)."""
import json

import numpy as np
import pytest

from icsmdp_theory.examples import load_example
from icsmdp_theory.traces import read_trace
from reports.cli import main
from reports.commands import COMMAND_HELP


def test_simulate_trace_json_and_reproducible(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    args = ["simulate-trace", "tiny-handoff", "--episodes", "400", "--seed", "4", "--out", str(out),
            "--json"]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"path", "episodes", "invocations", "truncated_episodes", "seed"}
    t = read_trace(out)
    assert (info["episodes"], info["invocations"], info["seed"]) == (t.num_episodes, t.num_invocations, 4)
    first = out.read_bytes()
    assert main(args) == 2                                  # exists, no --force
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert out.read_bytes() == first


def test_epsilon_behavior_follows_the_ais_greedy_choice(tmp_path, capsys):
    """tiny-handoff by hand: STOP pays nothing except the checker's STOP at m=2 (reward 1 at
    once, more than any later discounted 1); elsewhere handing over keeps a positive value.
    So with epsilon = 0 the planner always hands to the checker, and the checker stops at
    m=2 and hands back at m in {0, 1} (its observation is m)."""
    out = tmp_path / "e.jsonl"
    assert main(["simulate-trace", "tiny-handoff", "--episodes", "300", "--behavior", "epsilon",
                 "--epsilon", "0", "--out", str(out), "--json"]) == 0
    t = read_trace(out)
    assert np.all(t.successor[t.agent == 0] == 1)           # planner -> checker
    chk = t.agent == 1
    m = np.array([json.loads(t.labels[k])[1] for k in t.label[chk]])
    assert np.all(t.successor[chk] == np.where(m == 2, 2, 0))
    out2 = tmp_path / "u.jsonl"
    assert main(["simulate-trace", "tiny-handoff", "--episodes", "2000", "--behavior", "epsilon",
                 "--epsilon", "0.5", "--out", str(out2), "--json"]) == 0
    t = read_trace(out2)
    p = t.successor[t.agent == 0]
    # planner: 1 - eps + eps/2 = 0.75 on checker
    assert abs((p == 1).mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / p.size)


@pytest.mark.parametrize("argv, fragment", [
    (["--episodes", "0"], "`--episodes` must be an integer >= 1"),
    (["--episodes", "3", "--behavior", "greedy"], "`--behavior` must be one of uniform, epsilon"),
    (["--episodes", "3", "--behavior", "epsilon", "--epsilon", "1.5"], "`--epsilon` must be a number in"),
    (["--episodes", "3", "--epsilon", "0.2"], "`--epsilon` applies to `--behavior epsilon` only"),
    (["--episodes", "3", "--seed", "-1"], "`--seed` must be an integer >= 0"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, argv, fragment):
    out = tmp_path / "t.jsonl"
    assert main(["simulate-trace", "tiny-handoff", "--out", str(out)] + argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_is_checked_first(tmp_path, capsys):
    bad = tmp_path / "file"
    bad.write_text("x")
    assert main(["simulate-trace", "no-such-instance", "--episodes", "3",
                 "--out", str(bad / "t.jsonl")]) == 2
    assert "`--out`: cannot write" in capsys.readouterr().err


def test_interrupt_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import reports.commands.simulate_trace as cmd

    def interrupted(model, path, **kw):
        from icsmdp_theory.traces import TraceWriter
        with TraceWriter(path, gamma=0.5, agents=["a"]) as w:
            w.write(0, "a", 0, "STOP", 1, reward=0.0)
            raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "simulate_trace", interrupted)
    assert main(["simulate-trace", "tiny-handoff", "--episodes", "3", "--out",
                 str(tmp_path / "t.jsonl")]) == 130
    assert list(tmp_path.iterdir()) == []


BAD_TRACES = {
    "missing header": ('{"episode": 0, "agent": "a", "state": 0, "successor": "STOP", "tau": 1, "reward": 0}\n', 1),
    "not JSON": ('{"format": "icsmdp-trace/1", "gamma": 0.5, "agents": ["a"]}\n{"episode": 0,\n', 2),
    "empty trace": ('{"format": "icsmdp-trace/1", "gamma": 0.5, "agents": ["a"]}\n', 2),
}


@pytest.mark.parametrize("case", sorted(BAD_TRACES))
def test_bad_trace_through_a_trace_command(tmp_path, capsys, case):
    """Every command that reads a trace reports a bad line as one stderr line, exit 2."""
    if "fit" not in COMMAND_HELP:
        pytest.skip("no trace-reading command registered yet (icsmdp fit)")
    text, line = BAD_TRACES[case]
    trace = tmp_path / "t.jsonl"
    trace.write_text(text)
    assert main(["fit", str(trace), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert f"line {line}" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]
