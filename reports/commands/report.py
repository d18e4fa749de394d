"""``icsmdp report [--out DIR] [--seed S] [--full]``: the validation report of the bundled defaults.

Writes ``index.html``, ``report.md``, ``report.json`` and the figures under a
new timestamped directory of ``--out`` (default ``reports/out``) and prints
its path (:mod:`reports.builder`, :mod:`reports.sections`).
"""
from __future__ import annotations

from pathlib import Path

from reports.builder import build_report
from reports.sections import DEFAULT_SECTIONS, FULL_SECTIONS

__all__ = ["add_parser"]


def _run(args) -> int:
    sections = FULL_SECTIONS if args.full else DEFAULT_SECTIONS
    path = build_report(sections, out_root=args.out, seed=args.seed, quick=not args.full,
                        argv=["icsmdp"] + list(args.argv))
    print(path)
    return 0


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="write the validation report of the bundled defaults")
    r.add_argument("--out", default=str(Path("reports") / "out"),
                   help="directory under which the report directory is created")
    r.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    r.add_argument("--full", action="store_true", help="paper-scale studies")
    r.set_defaults(func=_run)
