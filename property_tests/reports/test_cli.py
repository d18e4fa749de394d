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


def test_every_command_is_listed():
    names = {m.__name__.rsplit(".", 1)[-1] for m in COMMANDS}
    assert names == set(MINIMAL)


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
