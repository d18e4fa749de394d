"""``icsmdp verify``: the provable facts of SPEC section 5 on random instances.

``icsmdp verify [--instances N] [--seed S] [--max-states K] [--json] [--out DIR] [--search]
[--search-budget B] [--jobs N] [--scheduler ADDRESS] [--resume]``
prints a table (property, instances checked, violations, worst ratio lhs/rhs)
and the ``alpha_paper`` tally; exits 1 when a provable property fails (the
instance is saved under ``--out``, printed as an absolute path) or when the
check of some instance raised (listed under ``failed_tasks``).

The instances are a campaign (:mod:`reports.campaign`): one task per
instance, run on ``--jobs`` local workers (default every core) or a Dask
cluster (``--scheduler``), each appended as it finishes to
``<out>/verify-seed{S}-n{N}-states{K}.jsonl``. Ctrl-C (or SIGTERM) keeps the
finished instances, prints one line and exits 130 (143); ``--resume`` checks
only the rest. The summary is computed from the results file, so it is the
same for any ``--jobs``, a Dask cluster, and an interrupted-then-resumed run.
``--search`` then runs the ``alpha_paper`` counterexample search
(:mod:`reports.search`) as a second campaign, ``<out>/search-seed{S}-budget{B}.jsonl``.
``--out`` is checked before any work, and so are Hypothesis for ``--search``
(the ``test`` extra) and the ``dask`` extra for ``--scheduler``. The campaign's progress bar is drawn on stderr only when it
is a terminal, never under ``--json``.
"""
from __future__ import annotations

import json
import sys

from icsmdp_theory.results import to_jsonable
from reports.arguments import (TerminationSignals, add_campaign_arguments, campaign_options,
                               positive_int_type, writable_destination)
from reports.search import DEFAULT_SEARCH_BUDGET
from reports.verify import verify
from reports.commands import COMMAND_HELP

__all__ = ["add_parser", "DEFAULT_VERIFY_OUT"]

#: Where counterexamples are saved without ``--out`` (relative to the working directory).
DEFAULT_VERIFY_OUT = "reports/out/verify"


def _print_table(res) -> None:
    print(f"{res.instances} instances, seed {res.seed}, at most {res.max_states} epoch states; "
          f"{res.elapsed:.1f} s")
    print(f"{'property':28s} {'checked':>8s} {'violations':>10s} {'worst lhs/rhs':>14s}")
    for name, t in res.properties.items():
        print(f"{name:28s} {t['checked']:8d} {t['violations']:10d} {t['worst_ratio']:14.6g}")
    ap = res.alpha_paper
    print("\nopen question, alpha_paper = (eps + gamma_bar L_Q delta)/(1 - gamma_bar):")
    print(f"  checked {ap['checked']}, max_q_gap > alpha_paper on {ap['violations_q']}, "
          f"max_value_gap > alpha_paper on {ap['violations_value']}, "
          f"worst ratio {ap['worst_ratio']:.6g}")
    if ap["counterexample"]:
        print(f"  counterexample saved: {ap['counterexample']}")
    for task_id, error in res.failed_tasks.items():
        print(f"  {task_id} raised: {error}")
    print(f"results file: {res.results_file}")
    print(res.message)


def _verify(args, out) -> object:
    return verify(args.instances, seed=args.seed, max_states=args.max_states, out=out,
                  search=args.search, search_budget=args.search_budget, **campaign_options(args))


def _run(args) -> int:
    out = writable_destination("--out", args.out or DEFAULT_VERIFY_OUT, kind="dir")
    signals = getattr(args, "signals", None)  # set by reports.cli.main (SIGTERM -> Ctrl-C)
    if signals is None:
        signals = TerminationSignals()
        with signals:
            res = _verify(args, out)
    else:
        res = _verify(args, out)
    if res.interrupted:
        print(f"icsmdp verify: {res.message}", file=sys.stderr)
        return signals.exit_status
    if args.json:
        doc = {"instances": res.instances, "seed": res.seed, "max_states": res.max_states,
               "success": res.success, "message": res.message,
               "properties": {k: {"checked": v["checked"], "violations": v["violations"],
                                  "worst_ratio": v["worst_ratio"],
                                  "worst_instance": v["worst_instance"]}
                              for k, v in res.properties.items()},
               "alpha_paper": res.alpha_paper, "counterexamples": res.counterexamples,
               "failed_tasks": res.failed_tasks}
        print(json.dumps(to_jsonable(doc), allow_nan=False, sort_keys=True))
    else:
        _print_table(res)
    return 0 if res.success else 1


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help=COMMAND_HELP["verify"])
    p.add_argument("--instances", type=int, default=200, help="instances to draw (default 200)")
    p.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    p.add_argument("--max-states", type=int, default=64,
                   help="largest epoch-state count drawn (default 64)")
    p.add_argument("--out", default=None,
                   help="where the results file and counterexamples are written "
                   "(default reports/out/verify)")
    p.add_argument("--search", action="store_true",
                   help="then search for the smallest alpha_paper counterexample, a campaign "
                   "of short hypothesis.find attempts (needs the `test` extra)")
    p.add_argument("--search-budget", type=positive_int_type, default=DEFAULT_SEARCH_BUDGET,
                   help=f"Hypothesis examples of the whole search (default "
                   f"{DEFAULT_SEARCH_BUDGET})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_campaign_arguments(p)
    p.set_defaults(func=_run)
