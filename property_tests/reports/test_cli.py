"""The ``icsmdp`` entry point: every command accepts ``--json``; interrupts exit 130/143."""
import signal

import pytest

import reports.commands.solve as solve_cmd
from reports.cli import COMMANDS, build_parser, main

#: The smallest valid command line of each command (before ``--json``).
MINIMAL = {"solve": ["solve"], "report": ["report"], "gaps": ["gaps"], "verify": ["verify"],
           "run": ["run"], "check": ["check", "tiny-handoff", "rec.npz"],
           "reproduce": ["reproduce", "synthetic"], "export": ["export", "tiny-handoff",
                                                             "--out", "x.json"]}
MINIMAL["simulate-trace"] = ["simulate-trace", "tiny-handoff", "--episodes", "2", "--out", "x.jsonl"]
MINIMAL["export-epoch"] = ["export-epoch", "tiny-handoff", "--out", "x.json"]
MINIMAL["fit"] = ["fit", "workflow-trace", "--out", "x.json"]
MINIMAL["sweep"] = ["sweep", "--set", "rho=1,0.5"]
MINIMAL["simulate"] = ["simulate", "workflow", "--policy", "greedy", "--episodes", "100"]
MINIMAL["pareto"] = ["pareto", "model.json"]


def test_every_command_is_listed():
    assert set(COMMANDS) == set(MINIMAL)


def test_a_command_imports_only_its_own_module():
    """``icsmdp solve`` does not pay for matplotlib (the report's dependency)."""
    import subprocess
    import sys
    code = ("import sys; from reports.cli import build_parser; build_parser('solve'); "
            "print('matplotlib' in sys.modules, 'reports.commands.report' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in MINIMAL)


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_every_command_accepts_json(name):
    args = build_parser().parse_args(MINIMAL[name] + ["--json"])
    assert args.json is True and args.command == name


@pytest.mark.parametrize("signum,status,word", [(None, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_interrupt_exit_status(signum, status, word, capsys, monkeypatch):
    def interrupted(args):
        if signum is not None:
            args.signals.signal_number = signum  # what the SIGTERM handler records
        raise KeyboardInterrupt
    monkeypatch.setattr(solve_cmd, "_run", interrupted)  # bound again by each build_parser()
    assert main(["solve"]) == status
    assert capsys.readouterr().err.strip() == f"icsmdp solve: {word}"
