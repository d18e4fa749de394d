"""``icsmdp report [--out DIR] [--seed S] [--full] [--json]``: the validation report of the bundled defaults.

Writes ``index.html``, ``report.md``, ``report.json`` and the figures under a
new timestamped directory of ``--out`` (default ``reports/out``) and prints
its absolute path (:mod:`reports.builder`, :mod:`reports.sections`); with
``--json`` one object ``{"report", "seed", "quick", "summary"}`` (``summary``
from the report's ``report.json``, ``null`` if it has none). ``--out`` is
checked before any work (it must be a directory, or creatable, and
writable). A progress bar is drawn on stderr when it is a terminal (never
under ``--json``).
"""
from __future__ import annotations

import json
from pathlib import Path

from reports.arguments import show_progress, writable_destination
from reports.builder import build_report
from reports.sections import DEFAULT_SECTIONS, FULL_SECTIONS
from reports.commands import COMMAND_HELP

__all__ = ["add_parser"]


def _run(args) -> int:
    out = writable_destination("--out", args.out, kind="dir")  # before any work
    sections = FULL_SECTIONS if args.full else DEFAULT_SECTIONS
    path = Path(build_report(sections, out_root=out, seed=args.seed, quick=not args.full,
                             argv=["icsmdp"] + list(args.argv),
                             progress=show_progress(args))).resolve()
    if args.json:
        doc = json.loads((path / "report.json").read_text(encoding="utf-8"))
        print(json.dumps({"report": str(path), "seed": args.seed, "quick": not args.full,
                          "summary": doc.get("summary")}, allow_nan=False))
    else:
        print(path)
    return 0


def add_parser(sub) -> None:
    r = sub.add_parser("report", help=COMMAND_HELP["report"])
    r.add_argument("--out", default=str(Path("reports") / "out"),
                   help="directory under which the report directory is created")
    r.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    r.add_argument("--full", action="store_true", help="paper-scale studies")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=_run)
