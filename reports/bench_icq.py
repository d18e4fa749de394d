r"""Throughput of the IC-Q learners: ``python -m reports.bench_icq [options]``.

What is measured
----------------
Handoff updates per second of :func:`solvers.icq.run_icq` (``solve(ICQ(...), model)``)
on a bundled example (default ``workflow``), counted over the batch loop only
(``RunRecord.timings["loop_seconds"]``: setup, the final snapshot and the
record are excluded; nothing else is), for

- the tabular learner with its defaults (epsilon-greedy, ``epsilon = 0.1``;
  step ``10/(k + 10)`` per pair) at batches of 1, 16, 64, 256 and 1024
  seeds, each seed running ``T = max(1000, total // S)`` updates
  (``T = single`` for one seed);
- the MLP learner (two hidden layers of 64, one-hot input, constant step
  0.01) at batches of 64 and 256 seeds.

Every configuration is warmed up once, then the configurations run in
turn ``repeats`` times (interleaved, so a load spike hits all of them) and
the best rate is reported with the median. Checkpoint snapshots and the
``eps_0`` tracking are off (``checkpoints=(T,)``, ``track_linearization=False``).

Targets (issue 5): batch 64 at least 20x the single-seed rate; some batch at
least ``1e6`` tabular updates/s in total; the MLP at least ``1e4`` updates/s.
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


def _rate(model, learner: str, seeds: int, updates: int) -> float:
    rec = solve(ICQ(learner=learner, updates=updates, seeds=seeds, checkpoints=(updates,),
                    track_linearization=False), model)
    if not rec.success:
        raise RuntimeError(rec.message)
    return rec.timings["updates_per_second"]


def bench_icq(instance: str = "workflow", *, batches: Sequence[int] = (1, 16, 64, 256, 1024),
              mlp_batches: Sequence[int] = (64, 256), total: int = 150_000, single: int = 40_000,
              mlp_total: int = 30_000, repeats: int = 3) -> dict:
    """Run the benchmark; returns a JSON-ready dict (rates in updates per second)."""
    model = load_example(instance)
    configs = [("tabular", S, single if S == 1 else max(1000, total // S)) for S in batches]
    configs += [("mlp", S, max(200, mlp_total // S)) for S in mlp_batches]
    for learner, S, _ in configs:  # warm-up (caches, allocator)
        _rate(model, learner, S, 200)
    rates = {c: [] for c in configs}
    for _ in range(repeats):
        for c in configs:
            rates[c].append(_rate(model, *c))
    rows = [{"learner": l, "seeds": S, "updates_per_seed": T, "best": max(rates[(l, S, T)]),
             "median": statistics.median(rates[(l, S, T)]), "runs": rates[(l, S, T)]}
            for (l, S, T) in configs]
    tab = {r["seeds"]: r for r in rows if r["learner"] == "tabular"}
    out = {"instance": instance, "repeats": repeats, "rows": rows}
    if 1 in tab and 64 in tab:
        out["speedup_64_vs_1"] = tab[64]["best"] / tab[1]["best"]
        out["speedup_64_vs_1_median"] = tab[64]["median"] / tab[1]["median"]
        out["target_speedup_met"] = out["speedup_64_vs_1"] >= 20
    out["best_tabular_total"] = max(r["best"] for r in tab.values()) if tab else None
    out["target_1e6_met"] = bool(tab) and out["best_tabular_total"] >= 1e6
    mlp = [r for r in rows if r["learner"] == "mlp"]
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
    p.add_argument("--batches", type=_ints, default=[1, 16, 64, 256, 1024])
    p.add_argument("--mlp-batches", type=_ints, default=[64, 256])
    p.add_argument("--total", type=int, default=150_000, help="tabular updates per run (all seeds)")
    p.add_argument("--single", type=int, default=40_000, help="tabular updates of the 1-seed run")
    p.add_argument("--mlp-total", type=int, default=30_000, help="MLP updates per run (all seeds)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    res = bench_icq(args.instance, batches=args.batches, mlp_batches=args.mlp_batches,
                    total=args.total, single=args.single, mlp_total=args.mlp_total,
                    repeats=args.repeats)
    if args.json:
        print(json.dumps(to_jsonable(res)))
        return 0
    print(f"IC-Q throughput on {res['instance']} (handoff updates/s, loop only; best and median "
          f"of {res['repeats']})")
    print(f"{'learner':8s} {'seeds':>6s} {'T/seed':>8s} {'best':>12s} {'median':>12s}")
    for r in res["rows"]:
        print(f"{r['learner']:8s} {r['seeds']:6d} {r['updates_per_seed']:8d} {r['best']:12,.0f} "
              f"{r['median']:12,.0f}")
    if "speedup_64_vs_1" in res:
        print(f"batch 64 vs 1: {res['speedup_64_vs_1']:.1f}x (median {res['speedup_64_vs_1_median']:.1f}x; "
              f"target 20x: {'met' if res['target_speedup_met'] else 'NOT met'})")
    print(f"best tabular total: {res['best_tabular_total']:,.0f}/s "
          f"(target 1e6: {'met' if res['target_1e6_met'] else 'NOT met'})")
    if res["best_mlp"] is not None:
        print(f"best MLP 64x64: {res['best_mlp']:,.0f}/s "
              f"(target 1e4: {'met' if res['target_mlp_met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
