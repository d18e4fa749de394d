"""The ``icsmdp`` command line: one subcommand per module of :mod:`reports.commands`.

``icsmdp solve|report|gaps|verify|run|check|reproduce|export ...``; each module
adds its parser with ``add_parser(subparsers)`` and sets ``func(args) -> int``.
Every command accepts ``--json`` (one JSON object on stdout).

Bad input prints one line on stderr naming what is wrong and where, exits
with status 2 and writes nothing (output destinations are checked before any
work). Ctrl-C exits with status 130 and SIGTERM with 143; both stop a command
the same way (``icsmdp run`` keeps and saves the checkpoints reached).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from icsmdp_theory.errors import ICSMDPError
from reports.arguments import TerminationSignals
from reports.commands import COMMAND_HELP

__all__ = ["main", "build_parser", "command_module", "COMMANDS"]

#: The subcommands, in the order ``icsmdp --help`` lists them.
COMMANDS = tuple(COMMAND_HELP)


def command_module(name: str):
    """The module ``reports.commands.<name>`` of a subcommand (imported on first use).

    Commands are loaded on demand so that a command pays only for its own
    dependencies (``icsmdp solve`` does not import matplotlib); every module
    is in this layer, so the layers contract is unaffected.
    """
    return importlib.import_module(f"reports.commands.{name.replace('-', '_')}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``icsmdp`` argument parser.

    Parameters
    ----------
    command : str or None
        ``None``: every subcommand with its full options. A command name: that
        command in full, the others by name and help only (what :func:`main`
        uses). Anything else: names and help only.
    """
    p = argparse.ArgumentParser(prog="icsmdp", description=(
        "Check the theory of decentralized workflow learning (IC-SMDPs, IC-Q, Theorem 1)."))
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        if command is None or name == command:
            command_module(name).add_parser(sub)
        else:
            sub.add_parser(name, help=COMMAND_HELP[name])
    return p


def _requested(argv: Sequence[str]) -> str:
    """The subcommand named by ``argv`` (``""`` when none: usage and help only)."""
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMAND_HELP else ""
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icsmdp`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_requested(argv))
    args = parser.parse_args(argv)
    args.argv = argv
    signals = TerminationSignals()
    args.signals = signals
    try:
        with signals:
            return args.func(args)
    except ICSMDPError as exc:
        msg = " ".join(str(exc).split())
        print(f"icsmdp {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        how = "terminated (SIGTERM)" if signals.exit_status == 143 else "interrupted"
        print(f"icsmdp {args.command}: {how}", file=sys.stderr)
        return signals.exit_status
    except BrokenPipeError:  # e.g. `icsmdp solve --json | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
