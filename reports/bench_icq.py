r"""Throughput of the IC-Q learners: ``python -m reports.bench_icq [options]``.

What is measured
----------------
Handoff updates per second of :func:`solvers.icq.run_icq` (``solve(ICQ(...), model)``)
on a bundled example (default ``workflow``), counted over the batch loop only
(``RunRecord.timings["loop_seconds"]``: setup, the kernel's load, the final
snapshot and the record are excluded; nothing else is), for

- the tabular learner with its defaults (epsilon-greedy, ``epsilon = 0.1``;
  step ``10/(k + 10)`` per pair) on both loop engines, in one run: the
  compiled loop (``engine="compiled"``, :mod:`solvers.compiled`) and the
  batched numpy loop (``engine="numpy"``), at batches of 1, 64 and 1024
  seeds; each seed runs ``T = max(1000, total // S)`` updates, except the
  numpy engine's single seed, ``T = single`` (it runs about 10^4 updates/s);
  the ratio compiled/numpy is printed per batch;
- the linear learner (one-hot features, constant step 0.05) and the MLP
  learner (two hidden layers of 64, one-hot input, constant step 0.01) on
  both engines at batches of 1, 64 and 256 seeds; each seed runs
  ``T = max(200, param_total // S)`` updates, except the numpy engine's single
  seed, ``T = param_single``; the ratio compiled/numpy is printed per learner
  and batch.

Every configuration is warmed up once, then the configurations run in
turn ``repeats`` times (interleaved, so a load spike hits all of them) and
the best rate is reported with the median. Checkpoint snapshots and the
``eps_0`` tracking are off (``checkpoints=(T,)``, ``track_linearization=False``).

Targets (issue 15): the compiled loop at least ``2e6`` updates/s on one seed;
at 64 seeds at least as fast per update as the numpy batched loop.
(Issue 5's: numpy batch 64 at least 20x its single seed; the MLP at least
``1e4`` updates/s.)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Sequence

from icsmdp_theory.examples import load_example
from icsmdp_theory.results import to_jsonable
from solvers.api import solve
from solvers.icq import ICQ

__all__ = ["bench_icq", "main"]


def _rate(model, engine: str, learner: str, seeds: int, updates: int) -> float:
    rec = solve(ICQ(learner=learner, updates=updates, seeds=seeds, checkpoints=(updates,),
                    track_linearization=False, engine=engine), model)
    if not rec.success:
        raise RuntimeError(rec.message)
    return rec.timings["updates_per_second"]


def bench_icq(instance: str = "workflow", *, batches: Sequence[int] = (1, 64, 1024),
              mlp_batches: Sequence[int] = (1, 64, 256), total: int = 2_000_000, single: int = 40_000,
              mlp_total: int = 30_000, mlp_single: int = 3_000, repeats: int = 3,
              engines: Sequence[str] = ("compiled", "numpy"),
              param_learners: Sequence[str] = ("linear", "mlp")) -> dict:
    """Run the benchmark; returns a JSON-ready dict (rates in updates per second).

    ``mlp_batches``, ``mlp_total`` and ``mlp_single`` set the batches and
    updates of both parametric learners (linear and MLP).
    """
    model = load_example(instance)
    configs = [(e, "tabular", S, single if (S == 1 and e == "numpy") else max(1000, total // S))
               for S in batches for e in engines]
    configs += [(e, l, S, mlp_single if (S == 1 and e == "numpy") else max(200, mlp_total // S))
                for l in param_learners for S in mlp_batches for e in engines]
    for engine, learner, S, _ in configs:  # warm-up (kernel load, caches, allocator)
        _rate(model, engine, learner, S, 200)
    rates = {c: [] for c in configs}
    for _ in range(repeats):
        for c in configs:
            rates[c].append(_rate(model, *c))
    rows = [{"engine": e, "learner": l, "seeds": S, "updates_per_seed": T, "best": max(rates[c]),
             "median": statistics.median(rates[c]), "runs": rates[c]}
            for c in configs for (e, l, S, T) in [c]]
    by = {(r["engine"], r["learner"], r["seeds"]): r for r in rows}
    tab = {(e, S): r for (e, l, S), r in by.items() if l == "tabular"}
    out = {"instance": instance, "repeats": repeats, "rows": rows, "ratios": []}
    for learner in ("tabular", *param_learners):
        for S in (batches if learner == "tabular" else mlp_batches):
            if ("compiled", learner, S) in by and ("numpy", learner, S) in by:
                c, n = by[("compiled", learner, S)], by[("numpy", learner, S)]
                out["ratios"].append({"learner": learner, "seeds": S, "best": c["best"] / n["best"],
                                      "median": c["median"] / n["median"]})
    if ("compiled", 1) in tab:
        out["compiled_single"] = tab[("compiled", 1)]["best"]
        out["target_2e6_met"] = out["compiled_single"] >= 2e6
    if ("compiled", 64) in tab and ("numpy", 64) in tab:
        out["target_64_met"] = tab[("compiled", 64)]["best"] >= tab[("numpy", 64)]["best"]
    if ("numpy", 1) in tab and ("numpy", 64) in tab:
        out["numpy_speedup_64_vs_1"] = tab[("numpy", 64)]["best"] / tab[("numpy", 1)]["best"]
    mlp = [r for r in rows if r["learner"] == "mlp" and r["engine"] == "numpy"]
    out["best_mlp"] = max(r["best"] for r in mlp) if mlp else None
    out["target_mlp_met"] = bool(mlp) and out["best_mlp"] >= 1e4
    return out


def _ints(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return vals


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.bench_icq", description=__doc__.split("\n")[0])
    p.add_argument("--instance", default="workflow", help="bundled example (default workflow)")
    p.add_argument("--batches", type=_ints, default=[1, 64, 1024])
    p.add_argument("--mlp-batches", type=_ints, default=[1, 64, 256],
                   help="batches of the linear and MLP learners (default 1,64,256)")
    p.add_argument("--total", type=int, default=2_000_000,
                   help="tabular updates per run (all seeds; the compiled engine's single seed too)")
    p.add_argument("--single", type=int, default=40_000,
                   help="tabular updates of the numpy engine's 1-seed run")
    p.add_argument("--mlp-total", type=int, default=30_000,
                   help="linear / MLP updates per run (all seeds)")
    p.add_argument("--mlp-single", type=int, default=3_000,
                   help="linear / MLP updates of the numpy engine's 1-seed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    res = bench_icq(args.instance, batches=args.batches, mlp_batches=args.mlp_batches,
                    total=args.total, single=args.single, mlp_total=args.mlp_total,
                    mlp_single=args.mlp_single, repeats=args.repeats)
    if args.json:
        print(json.dumps(to_jsonable(res)))
        return 0
    print(f"IC-Q throughput on {res['instance']} (handoff updates/s, loop only; best and median "
          f"of {res['repeats']})")
    print(f"{'engine':9s} {'learner':8s} {'seeds':>6s} {'T/seed':>8s} {'best':>12s} {'median':>12s}")
    for r in res["rows"]:
        print(f"{r['engine']:9s} {r['learner']:8s} {r['seeds']:6d} {r['updates_per_seed']:8d} "
              f"{r['best']:12,.0f} {r['median']:12,.0f}")
    for r in res["ratios"]:
        print(f"{r['learner']:8s} compiled / numpy at {r['seeds']:4d} seeds: {r['best']:.2f}x "
              f"(median {r['median']:.2f}x)")
    if "compiled_single" in res:
        print(f"compiled, one seed: {res['compiled_single']:,.0f}/s "
              f"(target 2e6: {'met' if res['target_2e6_met'] else 'NOT met'})")
    if "target_64_met" in res:
        print(f"compiled at 64 seeds at least as fast as numpy: "
              f"{'met' if res['target_64_met'] else 'NOT met'}")
    if res["best_mlp"] is not None:
        print(f"best MLP 64x64 (numpy): {res['best_mlp']:,.0f}/s "
              f"(target 1e4: {'met' if res['target_mlp_met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
