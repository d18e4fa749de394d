"""``icsmdp report [--out DIR] [--seed S] [--full] [--json]``: the validation report of the bundled defaults.

Writes ``index.html``, ``report.md``, ``report.json`` and the figures under a
new timestamped directory of ``--out`` (default ``reports/out``) and prints
its absolute path (:mod:`reports.builder`, :mod:`reports.sections`); with
``--json`` one object ``{"report", "seed", "quick", "summary"}`` (``summary``
from the report's ``report.json``, ``null`` if it has none). ``--out`` is
checked before any work (it must be a directory, or creatable, and
writable). A progress bar is drawn on stderr when it is a terminal (never
under ``--json``).

A workflow known through its logs (SPEC section 10): ``--traces T.jsonl
[--obs MAP.json]`` adds the section "Your workflow from its logs"
(:mod:`reports.trace_section`: fit summary, assumption checks, gaps with
credible intervals and their forest plot, the evidence-needed curve, the
per-cell attribution on the fitted model), with the pass-through options
``--posterior N`` (default 200; 0 = maximum-likelihood values only),
``--level``, ``--support``, ``--alpha0``, ``--admissible``, ``--reference``,
``--target-width``, ``--jobs``, ``--no-minimax``, ``--no-mixing``;
``--traces-only`` writes that section alone. Bundled names work too
(``workflow-trace``, ``workflow-maps``, ``workflow-bits``). The trace is read
and fitted and the map read against it *before* any section runs: a bad
trace (the message names the line), map or option exits 2 and writes
nothing. Without ``--traces`` the report is unchanged, and the trace options
are refused.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from estimators.fit import ADMISSIBLE_CHOICES
from estimators.posterior import SUPPORT_CHOICES
from icsmdp_theory.errors import InvalidArgumentError
from reports.arguments import float_arg, int_arg, show_progress, writable_destination
from reports.builder import build_report
from reports.commands import COMMAND_HELP
from reports.documents import DEFAULT_SUPPORT, FITTED_REFERENCE
from reports.sections import DEFAULT_SECTIONS, FULL_SECTIONS
from reports.trace_section import prepare_trace_inputs, trace_section

__all__ = ["add_parser", "TRACE_OPTIONS"]

#: Options that need ``--traces`` (argparse destinations).
TRACE_OPTIONS = ("obs", "posterior", "level", "support", "alpha0", "admissible", "reference",
                 "target_width", "jobs", "no_minimax", "no_mixing", "traces_only")


def _trace_inputs(args, stack: ExitStack):
    """Check the trace options and read, fit and map the trace (``None`` without ``--traces``)."""
    if args.traces is None:
        for name in TRACE_OPTIONS:
            value = getattr(args, name)
            if value is not None and value is not False:
                raise InvalidArgumentError(f"`--{name.replace('_', '-')}` applies with "
                                           f"`--traces` only.")
        return None
    level = float_arg("level", "0.9" if args.level is None else args.level, low=0.0,
                      open_low=True)
    if level >= 1.0:
        raise InvalidArgumentError(f"`--level` must be a number in (0, 1), got {args.level!r}.")
    return prepare_trace_inputs(
        args.traces, args.obs, stack,
        posterior=int_arg("posterior", "200" if args.posterior is None else args.posterior, low=0),
        level=level, support=args.support or DEFAULT_SUPPORT,
        admissible=args.admissible or "observed",
        alpha0=float_arg("alpha0", "0.5" if args.alpha0 is None else args.alpha0, low=0.0,
                         open_low=True),
        jobs=int_arg("jobs", "1" if args.jobs is None else args.jobs, low=1),
        target_width=(None if args.target_width is None else
                      float_arg("target-width", args.target_width, low=0.0, open_low=True)),
        reference=args.reference or FITTED_REFERENCE, minimax=not args.no_minimax,
        mixing=not args.no_mixing)


def _run(args) -> int:
    out = writable_destination("--out", args.out, kind="dir")  # before any work
    with ExitStack() as stack:
        inputs = _trace_inputs(args, stack)                      # before any work too
        sections = list(FULL_SECTIONS if args.full else DEFAULT_SECTIONS)
        if inputs is not None:
            sections = ([] if args.traces_only else sections) + [trace_section(inputs)]
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
    g = r.add_argument_group("a workflow known through its logs (SPEC section 10)")
    g.add_argument("--traces", metavar="T.jsonl",
                   help="handoff trace icsmdp-trace/1 (or bundled workflow-trace): adds the "
                        "section 'Your workflow from its logs'")
    g.add_argument("--obs", metavar="MAP.json",
                   help="observation map over labels, icsmdp-obs/1 by_label or fields (bundled: "
                        "workflow-maps, workflow-bits; default: each label its own observation)")
    g.add_argument("--posterior", help="posterior models for the intervals (default 200; 0 = "
                                       "maximum-likelihood values only)")
    g.add_argument("--level", help="credible level in (0, 1) (default 0.9)")
    g.add_argument("--support", choices=SUPPORT_CHOICES,
                   help=f"Dirichlet support of the posterior (default {DEFAULT_SUPPORT})")
    g.add_argument("--alpha0", help="prior concentration per outcome (default 0.5)")
    g.add_argument("--admissible", choices=ADMISSIBLE_CHOICES,
                   help="admissible sets of the fit (default observed)")
    g.add_argument("--reference", choices=("uniform", "stationary"),
                   help=f"reference law of the alphas (default {FITTED_REFERENCE}, as for `icsmdp gaps` on a trace)")
    g.add_argument("--target-width", help="interval width to project the trace size for")
    g.add_argument("--jobs", help="worker processes for the posterior draws (default 1)")
    g.add_argument("--no-minimax", action="store_true", help="skip the minimax gaps (LPs)")
    g.add_argument("--no-mixing", action="store_true", help="skip the mixing times")
    g.add_argument("--traces-only", action="store_true",
                   help="write the trace section alone (skip the bundled validation sections)")
    r.set_defaults(func=_run)
