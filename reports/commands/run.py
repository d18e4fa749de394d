"""``icsmdp run``: an IC-Q learner on an instance, many seeds as one batch (SPEC section 7).

``icsmdp run [INSTANCE] --learner tabular|linear|mlp --updates T --seeds S
[--checkpoints T1,T2,...] [--seed K] [--behavior epsilon|uniform] [--epsilon E]
[--omega W] [--engine auto|compiled|numpy] [--evaluate] [--out PATH] [--json]``

Runs :class:`solvers.icq.ICQ` and, with ``--out PATH``, writes the run record
``PATH.npz`` + ``PATH.json`` (:mod:`solvers.records`). ``--evaluate`` adds the
exact value at ``rho0`` of every seed's greedy policy against the optimum
(with adaptable agents the greedy choice ``(a, c')`` per cell, run with mode
``a``'s internal policy).
``--engine``: the compiled loop runs the seeds one after another, the numpy
loop all in lockstep; both give the same numbers bit for bit, so only what an
interruption leaves differs (compiled: the seeds not yet started made no update).
Ctrl-C or SIGTERM stops the run, keeps the checkpoints reached (status
``"interrupted"``), saves them when ``--out`` is given, and exits 130 (Ctrl-C)
or 143 (SIGTERM). The destination of ``--out`` is checked before any work
(its directory must exist or be creatable, and be writable); the paths
written are printed in full. A progress bar is drawn on stderr when it is a
terminal (never under ``--json``).

Bad input prints one line on stderr, exits 2 and writes nothing. Exit status
1 means the run did not complete (stalled or diverged).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import to_jsonable
from reports.arguments import (EXIT_INTERRUPTED, float_arg, int_arg, load_model_arg,
                               one_line_parse_errors, run_record_paths, show_progress)
from solvers.api import solve
from solvers.icq import ENGINES, ICQ, LEARNERS, EpsilonGreedy, FixedBehavior
from solvers.records import evaluate_greedy_policies, save_run
from reports.commands import COMMAND_HELP

__all__ = ["add_parser"]

#: ``Q`` snapshots are included in ``--json`` output up to this many numbers.
MAX_JSON_Q_ENTRIES = 100_000
_BEHAVIORS = ("epsilon", "uniform")


def _settings_from_args(args, progress: bool = False):
    if args.learner not in LEARNERS:
        raise InvalidArgumentError(f"`--learner` must be one of {', '.join(LEARNERS)}, "
                                   f"got {args.learner!r}.")
    if args.behavior not in _BEHAVIORS:
        raise InvalidArgumentError(f"`--behavior` must be one of {', '.join(_BEHAVIORS)}, "
                                   f"got {args.behavior!r}.")
    T = int_arg("updates", args.updates, low=1)
    S = int_arg("seeds", args.seeds, low=1)
    seed = int_arg("seed", args.seed, low=0)
    cks = None
    if args.checkpoints is not None:
        parts = [p for p in args.checkpoints.replace(" ", ",").split(",") if p]
        if not parts:
            raise InvalidArgumentError("`--checkpoints` must list update counts, e.g. 100,1000.")
        cks = tuple(int_arg("checkpoints", p, low=0) for p in parts)
        if max(cks) > T:
            raise InvalidArgumentError(f"`--checkpoints` must not exceed `--updates` ({T}), "
                                       f"got {max(cks)}.")
    eps = float_arg("epsilon", args.epsilon, low=0.0, high=1.0)
    omega = None if args.omega is None else float_arg("omega", args.omega, low=0.0, open_low=True)
    behavior = FixedBehavior() if args.behavior == "uniform" else EpsilonGreedy(epsilon=eps)
    if args.engine not in ENGINES:
        raise InvalidArgumentError(f"`--engine` must be one of {', '.join(ENGINES)}, "
                                   f"got {args.engine!r}.")
    return ICQ(learner=args.learner, updates=T, seeds=S, checkpoints=cks, seed=seed,
               behavior=behavior, omega=omega, progress=progress, engine=args.engine)


def _run(args) -> int:
    settings = _settings_from_args(args, progress=show_progress(args))
    out = run_record_paths("--out", args.out)  # before any work: a run is never lost
    model = load_model_arg(args.instance)
    record = solve(settings, model)
    paths = save_run(record, out) if out is not None else None
    evaluation = None
    if args.evaluate and record.reached[-1].any():
        evaluation = evaluate_greedy_policies(model, record)
    rate = record.timings.get("updates_per_second", float("nan"))
    if args.json:
        doc = {"instance": model.name, "learner": record.learner, "updates": settings.updates,
               "seeds": record.seeds, "base_seed": settings.seed,
               "checkpoints": record.checkpoints, "status": record.status,
               "success": record.success, "message": record.message,
               "reached": record.reached, "updates_done": record.updates,
               "updates_per_second": rate, "elapsed_seconds": record.elapsed,
               "cells": {"agent": record.cell_agent, "observation": record.cell_observation},
               "out": [str(p) for p in paths] if paths else None, "q": None}
        if record.q.size <= MAX_JSON_Q_ENTRIES:
            doc["q"] = record.q  # nan (inadmissible / not reached) -> null
        if evaluation is not None:
            doc["evaluation"] = {"checkpoint": evaluation.checkpoint, "v0": evaluation.v0,
                                 "optimal_v0": evaluation.optimal_v0, "gap_v0": evaluation.gap_v0,
                                 "max_gap": evaluation.max_gap}
        print(json.dumps(to_jsonable(doc), allow_nan=False))
    else:
        print(model.summary())
        print(f"learner        {record.learner}, {record.num_seeds} seeds x {settings.updates} "
              f"updates, checkpoints {record.checkpoints.tolist()}")
        print(f"status         {record.status}: {record.message}")
        print(f"time           {record.elapsed:.2f} s ({rate:,.0f} updates/s)")
        last = record.q[-1][record.reached[-1]][:, record.cell_admissible]
        if last.size and np.isfinite(last).any():
            spread = float(np.max(np.std(last, axis=0))) if last.shape[0] > 1 else 0.0
            print(f"Q at T={int(record.checkpoints[-1])}  range [{np.nanmin(last):.4g}, "
                  f"{np.nanmax(last):.4g}], largest std over seeds {spread:.3g}")
        if evaluation is not None:
            print(f"greedy value   mean v0 {evaluation.v0.mean():.6g} vs optimal "
                  f"{evaluation.optimal_v0:.6g} (mean gap {evaluation.gap_v0.mean():.3g}, "
                  f"worst {evaluation.gap_v0.max():.3g}; exact)")
        if paths:
            print(f"saved          {paths[0]} + {paths[1]}")
        elif record.status == "interrupted":
            print("not saved (no --out)")
    if record.status == "interrupted":
        signals = getattr(args, "signals", None)
        how = "terminated (SIGTERM)" if signals is not None and signals.exit_status != \
            EXIT_INTERRUPTED else "interrupted"
        print(f"icsmdp run: {how}; checkpoints reached are kept"
              + (f" in {paths[0]}" if paths else " (not saved: no --out)"), file=sys.stderr)
        return EXIT_INTERRUPTED if signals is None else signals.exit_status
    return 0 if record.success else 1


def add_parser(sub) -> None:
    p = sub.add_parser("run", help=COMMAND_HELP["run"])
    p.add_argument("instance", nargs="?", help="instance file, bundled example (default workflow) or explicit epoch model (icsmdp-epoch/1)")
    p.add_argument("--learner", default="tabular", help="tabular (default), linear or mlp")
    p.add_argument("--updates", default="10000", help="updates T per seed (default 10000)")
    p.add_argument("--seeds", default="1", help="number of seeds S (default 1)")
    p.add_argument("--checkpoints", default=None,
                   help="comma-separated update counts to record (default: 10 log-spaced up to T)")
    p.add_argument("--seed", default="0", help="base seed (default 0)")
    p.add_argument("--behavior", default="epsilon",
                   help="epsilon (epsilon-greedy, default) or uniform (fixed, off-policy)")
    p.add_argument("--epsilon", default="0.1", help="exploration rate (default 0.1)")
    p.add_argument("--omega", default=None, help="projection radius around theta_0 (linear/mlp)")
    p.add_argument("--engine", default="auto",
                   help="auto (default: compiled where it applies), compiled (numba, seed after "
                        "seed) or numpy (all seeds in lockstep); the numbers are identical")
    p.add_argument("--evaluate", action="store_true",
                   help="exact value of each seed's greedy policy (small instances)")
    p.add_argument("--out", default=None, help="write PATH.npz + PATH.json (checked before the run)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    one_line_parse_errors(p, 'run')  # argparse's own errors: one line, exit 2
    p.set_defaults(func=_run)
