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
import sys
from typing import Sequence

from icsmdp_theory.errors import ICSMDPError
from reports.arguments import TerminationSignals
from reports.commands import check, export, gaps, report, reproduce, run, solve, verify

__all__ = ["main", "build_parser", "COMMANDS"]

#: The subcommand modules, in the order ``icsmdp --help`` lists them.
COMMANDS = (solve, report, gaps, verify, run, check, reproduce, export)


def build_parser() -> argparse.ArgumentParser:
    """The ``icsmdp`` argument parser with every subcommand."""
    p = argparse.ArgumentParser(prog="icsmdp", description=(
        "Check the theory of decentralized workflow learning (IC-SMDPs, IC-Q, Theorem 1)."))
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icsmdp`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
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
