"""``icsmdp sweep``: a campaign over a grid of instances, maps, references, learners (:mod:`reports.sweep`).

::

    icsmdp sweep --set AXIS=V1,V2,... [--set ...] [--fixed AXIS=V ...] [--seed S]
    icsmdp sweep GRID.json                      # a grid file, format icsmdp-sweep/1
    icsmdp sweep --named t1|t2|routing [--full] [--seed S]
    common: [--out DIR] [--jobs N] [--scheduler ADDRESS] [--resume] [--json]

Every point of the grid (the Cartesian product of the ``--set`` axes; the
other axes keep their ``--fixed`` value or their default) is one task: gap
report of its observation map and, when ``T > 0``, IC-Q with exact evaluation
of the greedy policies. The axes and defaults are listed by ``icsmdp sweep
--help``; ``none`` is the instance's own map for ``rho`` and ``mod``.

Written in ``--out DIR`` (default ``reports/out/sweep``, checked writable
before any work): the results file ``sweep-<digest of the grid>.jsonl``
(one JSON line per finished point, so ``--resume`` continues an interrupted
sweep), the summary ``sweep.json`` (computed from the results file only; no
timings, so it is byte-identical for any ``--jobs``, a Dask cluster, and an
interrupted-then-resumed run) and a report directory ``DIR/<timestamp>/``
(``index.html``, ``report.md``, one figure per swept axis). ``--named``
runs a study of ``icsmdp reproduce`` (quick sizes; ``--full``: paper scale) the
same way.

``--json`` prints one object: ``grid``, ``points`` (id, swept values, status,
metrics), ``failed``, ``results``, ``summary`` and ``report`` paths. Exit
status 0; 1 when a task failed; 2 on bad arguments or a bad grid file (one
line naming the file and the key; nothing written); 130 on Ctrl-C (143 on
SIGTERM) with the number of points kept and the hint to rerun with ``--resume``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import atomic_write
from icsmdp_theory.results import to_jsonable
from reports.arguments import (EXIT_INTERRUPTED, add_campaign_arguments, campaign_options,
                               int_arg, one_line_parse_errors, writable_destination)
from reports.builder import build_report
from reports.campaign import run_campaign
from reports.commands import COMMAND_HELP
from reports.sweep import (AXES, DEFAULT_SWEEP_OUT, NAMED_SWEEPS, grid_from_options,
                           named_summary, named_sweep, read_grid, render_sweep, results_name,
                           sweep_campaign, sweep_summary)

__all__ = ["add_parser", "SUMMARY_FILE"]

#: The summary's file name in ``--out``.
SUMMARY_FILE = "sweep.json"


def _prepare(args):
    """Validate the request before any work: ``(kind, campaign, results file name, extra)``."""
    grid_given = args.grid is not None or args.set or args.fixed
    if args.named is not None:
        if grid_given:
            raise InvalidArgumentError("`--named` runs a study: give no grid file, `--set` or "
                                       "`--fixed` with it.")
        spec = named_sweep(args.named)
        seed = int_arg("seed", "0" if args.seed is None else args.seed, low=0)
        make_campaign, make_data, render = spec.functions()
        quick = not args.full
        campaign = make_campaign(seed, quick)
        name = f"sweep-{spec.name}-{'quick' if quick else 'full'}-{campaign.digest()[:12]}.jsonl"
        return "named", campaign, name, dict(spec=spec, seed=seed, quick=quick,
                                             data=make_data, render=render)
    if args.full:
        raise InvalidArgumentError("`--full` applies to `--named` sweeps only.")
    if args.grid is not None:
        if args.set or args.fixed or args.seed is not None:
            raise InvalidArgumentError("give a grid file or `--set`/`--fixed`/`--seed`, not "
                                       "both (the grid file holds its axes and its seed).")
        grid = read_grid(args.grid)
    elif grid_given:
        seed = int_arg("seed", "0" if args.seed is None else args.seed, low=0)
        grid = grid_from_options(args.set, args.fixed, seed)
    else:
        raise InvalidArgumentError("nothing to sweep: give `--set AXIS=V1,V2,...`, a grid file "
                                   f"or `--named` ({', '.join(NAMED_SWEEPS)}).")
    return "grid", sweep_campaign(grid), results_name(grid), dict(grid=grid)


def _write_json(path: Path, doc: dict) -> None:
    text = json.dumps(to_jsonable(doc), indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _interrupted(args, run_message: str) -> int:
    print(f"icsmdp sweep: {run_message}", file=sys.stderr)
    signals = getattr(args, "signals", None)
    return EXIT_INTERRUPTED if signals is None else signals.exit_status


def _run(args) -> int:
    kind, campaign, name, extra = _prepare(args)
    options = campaign_options(args)
    out = writable_destination("--out", args.out, kind="dir")  # before any work
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    run = run_campaign(campaign, path, **options)
    if run.interrupted:
        if args.json:
            print(json.dumps({"campaign": campaign.name, "status": run.status,
                              "results": str(path), "done": run.done, "total": run.total,
                              "summary": None, "report": None, "failed": dict(run.failed)}))
        return _interrupted(args, run.message)
    try:
        if kind == "grid":
            summary = sweep_summary(extra["grid"], run.results, run.failed, name)

            def section(ctx):
                return render_sweep(ctx, summary)
        else:
            if run.failed:  # a study's data needs every task
                for tid, err in run.failed.items():
                    print(f"icsmdp sweep: task {tid} failed: {err}", file=sys.stderr)
                print(f"icsmdp sweep: {run.message}; the finished tasks are kept in {path}: "
                      "run again with --resume to retry the failed ones", file=sys.stderr)
                if args.json:
                    print(json.dumps({"campaign": campaign.name, "status": run.status,
                                      "results": str(path), "summary": None, "report": None,
                                      "failed": dict(run.failed)}))
                return 1
            data = extra["data"](extra["seed"], extra["quick"], run.results)
            summary = named_summary(extra["spec"].name, seed=extra["seed"],
                                    quick=extra["quick"], results_file=name, total=run.total,
                                    results=run.results, failed=run.failed, data=data)

            def section(ctx):
                return extra["render"](ctx, data)
        _write_json(out / SUMMARY_FILE, summary)
        report = build_report([section], out_root=out, seed=int(campaign.seed),
                              quick=extra.get("quick", True),
                              argv=["icsmdp"] + list(getattr(args, "argv", []) or []),
                              progress=False)
    except KeyboardInterrupt:
        return _interrupted(args, f"interrupted after the campaign finished; all "
                                  f"{run.done} of {run.total} tasks are kept in {path}: run "
                                  "again with --resume to write the summary and the report")
    report = Path(report).resolve()
    if args.json:
        doc = {"campaign": campaign.name, "status": run.status, "results": str(path),
               "summary": str(out / SUMMARY_FILE), "report": str(report),
               "failed": dict(run.failed)}
        if kind == "grid":
            doc.update(grid=summary["grid"], points=summary["points"])
        else:
            doc.update(named=extra["spec"].name, quick=extra["quick"], seed=extra["seed"],
                       data=summary["data"])
        print(json.dumps(to_jsonable(doc), allow_nan=False))
    else:
        print(f"{run.message} ({run.skipped} kept from an earlier run)" if run.skipped
              else run.message)
        if kind == "grid":
            for p in summary["points"]:
                m = p.get("metrics") or {}
                parts = [f"alpha_tight {m['alpha_tight']:.4g}"] if "alpha_tight" in m else []
                if m.get("value_gap") is not None:
                    parts.append(f"value gap {m['value_gap']:.4g}")
                print(f"  {p['id']:<40} {p['status']:<6} {', '.join(parts)}")
        for tid, err in run.failed.items():
            print(f"  failed {tid}: {err}")
        print(f"results   {path}")
        print(f"summary   {out / SUMMARY_FILE}")
        print(f"report    {report / 'index.html'}")
    return 1 if run.failed else 0


def _axes_help() -> str:
    lines = ["axes (default in brackets):"]
    for a in AXES.values():
        default = "none" if a.default is None else a.default
        lines.append(f"  {a.name:<14} {a.help} [{default}]; {a.requirement()}")
    lines.append("example: icsmdp sweep --set rho=1,0.5,0.1 --set T=0,2000 --fixed N=4 "
                 "--fixed seeds=2 --jobs 2")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help=COMMAND_HELP["sweep"], epilog=_axes_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", nargs="?", help="grid file (format icsmdp-sweep/1)")
    p.add_argument("--set", action="append", default=[], metavar="AXIS=V1,V2,...",
                   help="sweep AXIS over these values (repeat for more axes)")
    p.add_argument("--fixed", action="append", default=[], metavar="AXIS=V",
                   help="hold AXIS at one value (repeatable)")
    p.add_argument("--named", default=None,
                   help=f"run a study of `reproduce` as a sweep: {', '.join(NAMED_SWEEPS)}")
    p.add_argument("--full", action="store_true", help="with --named: paper scale (slow)")
    p.add_argument("--seed", default=None, help="IC-Q base seed of every point (default 0)")
    p.add_argument("--out", default=str(DEFAULT_SWEEP_OUT),
                   help=f"output directory (default {DEFAULT_SWEEP_OUT})")
    add_campaign_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress)")
    one_line_parse_errors(p, 'sweep')  # argparse's own errors: one line, exit 2
    p.set_defaults(func=_run)
