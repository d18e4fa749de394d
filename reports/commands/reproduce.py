"""``icsmdp reproduce``: the paper's experiments as a report (:mod:`reports.reproduce`).

``icsmdp reproduce synthetic|routing|all [--full] [--out DIR] [--seed S] [--json]``
writes the report directory of one experiment and prints its absolute path
(``--out`` is checked before any work; a progress bar on stderr when it is a
terminal, never under ``--json``; with
``--json``: one JSON object ``{"kind", "quick", "seed", "report", "sections"}``
where ``sections`` is the report's ``report.json`` section data).
"""
from __future__ import annotations

import json
from pathlib import Path

from icsmdp_theory.errors import InvalidArgumentError
from reports.arguments import show_progress, writable_destination
from reports.reproduce import reproduce
from reports.commands import COMMAND_HELP

__all__ = ["add_parser", "KINDS"]

#: Experiment kinds (kept in sync with :data:`reports.reproduce.REPRODUCE_KINDS`).
KINDS = ("synthetic", "routing", "all")


def _run(args) -> int:
    if args.kind not in KINDS:
        raise InvalidArgumentError(f"`kind` must be one of {', '.join(KINDS)}, got {args.kind!r}.")
    if args.seed < 0:
        raise InvalidArgumentError(f"`--seed` must be an integer >= 0, got {args.seed}.")
    out = writable_destination("--out", args.out, kind="dir")  # before any work
    path = Path(reproduce(args.kind, quick=not args.full, out=out, seed=args.seed,
                          argv=["icsmdp"] + list(getattr(args, "argv", []) or []),
                          progress=show_progress(args))).resolve()
    if args.json:
        doc = json.loads((path / "report.json").read_text(encoding="utf-8"))
        print(json.dumps({"kind": args.kind, "quick": not args.full, "seed": args.seed,
                          "report": str(path), "sections": doc["sections"]},
                         allow_nan=False))
    else:
        print(path)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help=COMMAND_HELP["reproduce"])
    p.add_argument("kind", help="synthetic (T1, T2), routing, or all (the three sections)")
    p.add_argument("--full", action="store_true", help="paper-scale runs (slow)")
    p.add_argument("--out", default=str(Path("reports") / "out"),
                   help="directory under which the report directory is created")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
