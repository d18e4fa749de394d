"""``icsmdp reproduce``: the paper's experiments as a report (:mod:`reports.reproduce`).

``icsmdp reproduce synthetic|routing|all|llm|cpu [--full] [--out DIR] [--seed S] [--jobs N]
[--scheduler ADDRESS] [--resume] [--json]`` writes the report directory of one
experiment and prints its absolute path (``--out`` and ``--scheduler`` are
checked before any work; a progress bar per study on stderr when it is a
terminal, never under ``--json``; with ``--json``: one JSON object ``{"kind",
"quick", "seed", "report", "campaigns", "sections"}`` where ``campaigns`` maps
each study to its results file and ``sections`` is the report's
``report.json`` section data; for ``llm`` the object also has one key per
dataset, ``MathQA``, ``MMLU-HS``, ``MMLU-Elem``, each holding exactly ``Direct, CoT,
Reflect, Comb-E, Comb-T, ais_optimum, full_optimum, icq, icq_workflow``).

Every study is a campaign (:mod:`reports.campaign`) whose tasks run on
``--jobs`` worker processes (default every core) or on the Dask cluster at
``--scheduler``; its results file is kept in
``<out>/campaigns/<study>-seed{S}-{quick|full}.jsonl``. Ctrl-C (or SIGTERM)
keeps the finished tasks, writes no report, says how many tasks are kept and
to rerun with ``--resume``, and exits with 130 (143); a task that raised makes
the command exit with 1 naming it (``--resume`` runs it again).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from icsmdp_theory.errors import InvalidArgumentError
from reports.arguments import (EXIT_INTERRUPTED, add_campaign_arguments, campaign_options,
                               writable_destination)
from reports.commands import COMMAND_HELP
from reports.reproduce import campaign_dir, reproduce
from reports.studies.runner import StudyInterrupted, StudyTaskErrors

__all__ = ["add_parser", "KINDS"]

#: Experiment kinds (kept in sync with :data:`reports.reproduce.REPRODUCE_KINDS`).
KINDS = ("synthetic", "routing", "all", "llm", "cpu")


def _exit_status(args) -> int:
    signals = getattr(args, "signals", None)
    return EXIT_INTERRUPTED if signals is None else signals.exit_status


def _run(args) -> int:
    if args.kind not in KINDS:
        raise InvalidArgumentError(f"`kind` must be one of {', '.join(KINDS)}, got {args.kind!r}.")
    if args.seed < 0:
        raise InvalidArgumentError(f"`--seed` must be an integer >= 0, got {args.seed}.")
    out = writable_destination("--out", args.out, kind="dir")  # before any work
    options = campaign_options(args)                            # --scheduler checked here
    try:
        path = Path(reproduce(args.kind, quick=not args.full, out=out, seed=args.seed,
                              argv=["icsmdp"] + list(getattr(args, "argv", []) or []),
                              **options)).resolve()
    except StudyInterrupted as exc:
        print(f"icsmdp reproduce: {exc}", file=sys.stderr)
        return _exit_status(args)
    except KeyboardInterrupt:  # between tasks or while rendering: every finished task is kept
        print(f"icsmdp reproduce: interrupted; the finished tasks are kept in "
              f"{campaign_dir(out)}: run again with --resume to finish", file=sys.stderr)
        return _exit_status(args)
    except StudyTaskErrors as exc:
        print(f"icsmdp reproduce: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    doc = json.loads((path / "report.json").read_text(encoding="utf-8"))
    if args.json:
        obj = {"kind": args.kind, "quick": not args.full, "seed": args.seed, "report": str(path),
               "campaigns": doc.get("provenance", {}).get("campaigns", {}),
               "sections": doc["sections"]}
        if args.kind == "llm":
            obj.update(doc["sections"]["llm"]["json"])
        print(json.dumps(obj, allow_nan=False))
    else:
        print(path)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help=COMMAND_HELP["reproduce"])
    p.add_argument("kind", help="synthetic (T1, T2), routing, all (the three sections), or "
                   "llm (the multi-LLM workflow of Table 1 on its calibrated model), or cpu (multi-agent "
                   "CPU programming with adaptable agents)")
    p.add_argument("--full", action="store_true", help="paper-scale runs (slow)")
    p.add_argument("--out", default=str(Path("reports") / "out"),
                   help="directory under which the report directory is created (the studies' "
                   "results files go to OUT/campaigns)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    add_campaign_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
