r"""Study: do gaps estimated from logs approach the truth, and do their intervals cover it? (issue 12)

The truth is the bundled ``workflow`` instance, exported as an explicit epoch
model (:func:`icsmdp_theory.epoch_export.export_epoch`) and restricted to the
epoch states reachable from ``rho0`` (:meth:`~icsmdp_theory.epoch_model.EpochModel.reachable_states`):
a trace visits exactly those in the long run, so they are what a fit estimates.
The map is the instance's own 4-bit map written over labels (``by_label``).

- **Consistency.** For each trace size (episodes of the toolkit's simulator under
  the uniform behavior; ``reps`` independent traces per size), the absolute
  error of the maximum-likelihood value of each key against the truth, averaged
  over the traces, and the slope of ``log error`` against ``log invocations``
  (``-1/2`` is the parametric rate; bias that vanishes as every triple gets
  visited falls faster).
- **Coverage.** Over ``traces`` independent traces of about ``invocations``
  invocations, the share whose equal-tailed ``level`` interval
  (:func:`estimators.uncertainty.posterior_gaps`, ``draws`` posterior models)
  contains the true value, per key and per posterior (``support`` and whether the
  declared triples a trace never visited are borrowed).

``python -m reports.studies.trace_consistency [--sizes E1,E2,..] [--reps R]
[--traces T] [--episodes E] [--draws D] [--supports s1,s2] [--unvisited borrow,exclude]
[--seed S] [--reference REF] [--jobs J] [--json]`` prints both tables (``--json``: one object).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from estimators.behavior import uniform_behavior
from estimators.fit import fit_epoch_model
from estimators.posterior import DEFAULT_SUPPORT
from estimators.uncertainty import draw_values, posterior_gaps
from icsmdp_theory.cells import epoch_observations
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_io import label_maps_from_dict
from icsmdp_theory.examples import load_example
from icsmdp_theory.traces import read_trace, simulate_trace

__all__ = ["KEYS", "workflow_truth", "consistency", "coverage", "main"]

#: The quantities the issue names.
KEYS = ("gamma_bar", "v0", "epsilon_phi", "delta_phi", "alpha_tight", "policy_loss")


def workflow_truth(reference: str = "stationary") -> tuple[dict, dict, object]:
    """``(true values, the map document, the primitive instance)`` of the study."""
    model = load_example("workflow")
    export = export_epoch(model)
    truth = export.restricted(export.reachable_states())
    obs = epoch_observations(model)
    doc = {"format": "icsmdp-obs/1",
           "by_label": [{lab: int(obs[k, i]) for k, lab in enumerate(export.labels)}
                        for i in range(model.num_agents)]}
    values = draw_values(label_maps_from_dict(doc, truth), reference=reference, minimax=False,
                         mixing=False)["a"]
    return values, doc, model


def _fit(model, doc, episodes: int, seed: int, workdir: Path):
    path = workdir / f"trace-{episodes}-{seed}.jsonl"
    simulate_trace(model, path, episodes=episodes, behavior=uniform_behavior(model), seed=seed)
    trace = read_trace(path)
    path.unlink()
    return trace, label_maps_from_dict(doc, fit_epoch_model(trace).model)


def consistency(sizes: Sequence[int], *, reps: int = 5, reference: str = "stationary",
                seed: int = 0) -> dict:
    """Mean absolute ML error per key at each size (episodes), and the log-log slope."""
    truth, doc, model = workflow_truth(reference)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ep in sizes:
            errs, inv = [], []
            for r in range(reps):
                trace, fitted = _fit(model, doc, ep, seed * 100_003 + 1_000 * r + ep, Path(tmp))
                v = draw_values(fitted, reference=reference, minimax=False, mixing=False)["a"]
                errs.append([abs(v[k] - truth[k]) for k in KEYS])
                inv.append(trace.num_invocations)
            rows.append({"episodes": int(ep), "invocations": float(np.mean(inv)),
                         "error": dict(zip(KEYS, np.mean(errs, axis=0).tolist()))})
    n = np.log([r["invocations"] for r in rows])
    slopes = {}
    for k in KEYS:
        e = np.array([r["error"][k] for r in rows])
        ok = e > 1e-12
        slopes[k] = float(np.polyfit(n[ok], np.log(e[ok]), 1)[0]) if ok.sum() >= 2 else None
    return {"truth": truth, "reference": reference, "rows": rows, "slope": slopes}


def coverage(*, traces: int = 50, episodes: int = 1650, draws: int = 200, level: float = 0.9,
             supports: Sequence[str] = (DEFAULT_SUPPORT,), unvisited: Sequence[str] = ("borrow",),
             reference: str = "stationary", jobs: int = 1, seed: int = 0, progress=None) -> dict:
    """Share of traces whose ``level`` interval contains the true value, per posterior and key.

    A posterior is ``"support/unvisited"`` (e.g. ``"state/borrow"``, the default): the prior
    and whether draws complete the declared triples the trace never visited.
    """
    truth, doc, model = workflow_truth(reference)
    combos = [(s, u) for s in supports for u in unvisited]
    names = [f"{s}/{u}" for s, u in combos]
    hits = {n: np.zeros(len(KEYS)) for n in names}
    widths = {n: [] for n in names}
    inv = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(traces):
            trace, fitted = _fit(model, doc, episodes, seed * 100_003 + 7_919 * t + 1, Path(tmp))
            inv.append(trace.num_invocations)
            for name, (s, u) in zip(names, combos):
                res = posterior_gaps(fitted, reference=reference, draws=draws, level=level,
                                     support=s, seed=t, minimax=False, mixing=False, jobs=jobs,
                                     borrow=u == "borrow")
                iv = [res.intervals[k] for k in KEYS]
                hits[name] += [lo - 1e-12 <= truth[k] <= hi + 1e-12 for k, (lo, hi) in zip(KEYS, iv)]
                widths[name].append([hi - lo for lo, hi in iv])
            if progress is not None:
                progress(1)
    return {"truth": truth, "reference": reference, "level": level, "traces": traces,
            "draws": draws, "invocations_mean": float(np.mean(inv)),
            "coverage": {n: dict(zip(KEYS, (hits[n] / traces).tolist())) for n in names},
            "mean_width": {n: dict(zip(KEYS, np.mean(widths[n], axis=0).tolist()))
                           for n in names}}


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.studies.trace_consistency",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=_ints, default=[80, 250, 800, 2500, 8000],
                   help="trace sizes in episodes for the consistency table (about 12 invocations each)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--traces", type=int, default=50, help="traces for the coverage table (0: skip)")
    p.add_argument("--episodes", type=int, default=1650, help="episodes per coverage trace (~2e4 invocations)")
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--supports", default=DEFAULT_SUPPORT,
                   help="posterior priors, comma-separated (state, pooled, successor, observed)")
    p.add_argument("--unvisited", default="borrow",
                   help="declared triples never visited, comma-separated (borrow, exclude)")
    p.add_argument("--seed", type=int, default=0, help="seed of the coverage traces")
    p.add_argument("--reference", choices=("uniform", "stationary"), default="stationary")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    out = {"consistency": consistency(args.sizes, reps=args.reps, reference=args.reference)}
    if args.traces:
        out["coverage"] = coverage(traces=args.traces, episodes=args.episodes, draws=args.draws,
                                   supports=args.supports.split(","),
                                   unvisited=args.unvisited.split(","), reference=args.reference,
                                   jobs=args.jobs, seed=args.seed)
    out["elapsed_s"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(out))
        return 0
    c = out["consistency"]
    print(f"truth (workflow export, reachable states, reference {c['reference']}): "
          + ", ".join(f"{k} {c['truth'][k]:.6g}" for k in KEYS))
    print(f"{'episodes':>8s} {'invocations':>11s} " + " ".join(f"{k:>12s}" for k in KEYS))
    for r in c["rows"]:
        print(f"{r['episodes']:8d} {r['invocations']:11.0f} "
              + " ".join(f"{r['error'][k]:12.4g}" for k in KEYS))
    print(f"{'slope':>20s} " + " ".join(f"{'-' if c['slope'][k] is None else format(c['slope'][k], '.2f'):>12s}"
                                      for k in KEYS))
    if "coverage" in out:
        cv = out["coverage"]
        print(f"\ncoverage of {cv['level']:g} intervals over {cv['traces']} traces of "
              f"~{cv['invocations_mean']:.0f} invocations ({cv['draws']} posterior models each):")
        for s, row in cv["coverage"].items():
            print(f"  {s:16s} " + " ".join(f"{k} {row[k]:.2f}" for k in KEYS))
    print(f"({out['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
