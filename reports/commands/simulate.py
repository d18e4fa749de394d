"""``icsmdp simulate MODEL --policy P --episodes N``: validate a policy by simulation (SPEC 11).

``icsmdp simulate MODEL --policy greedy|ais-greedy|RUN.npz|workflow:NAME --episodes N
[--seed S] [--horizon H] [--obs MAP] [--run-seed S] [--per-row] [--out DIR] [--json]``

``MODEL`` is an instance file or bundled example (exported first with
:func:`icsmdp_theory.epoch_export.export_epoch`: it has only ``reward``), an
epoch model ``icsmdp-epoch/1``, or the family spec ``math-reasoning:DATASET``
(:func:`reports.arguments.load_model_arg`). The policy simulated is

- ``greedy``: the greedy policy of ``Q*`` (policy iteration, SPEC 3);
- ``ais-greedy``: the greedy policy of the AIS optimum ``Q_hat*`` on the cells of
  the model's observation map, or of ``--obs MAP`` (SPEC 4, uniform reference);
- ``RUN.npz``: the greedy policy of one seed (``--run-seed``, default the record's
  first) of an IC-Q run record at its last checkpoint (``--obs``: the map the
  run learned with);
- ``workflow:NAME``: a named workflow of a math-reasoning model
  (:func:`icsmdp_theory.math_reasoning.workflow_policy`).

Prints, per reward (``reward`` and each component; discounted return and
undiscounted total): the exact expectation, the Monte Carlo mean with its 99 %
interval (Bonferroni-simultaneous over the rows unless ``--per-row``), the
standard deviation, the 5/50/95 % quantiles, the CVaR at 5 % and the check
(:func:`estimators.validation.simulate_policy`). With ``--out DIR`` a histogram
figure of every row is written to ``DIR/simulate-<model>-<policy>.png`` (``DIR``
is checked writable before any work). ``--json`` prints one object (keys
``model``, ``policy``, ``episodes``, ``seed``, ``horizon``, ``status``,
``success``, ``message``, ``truncated``, ``level``, ``simultaneous``,
``z_critical``, ``rows_checked``, ``rows``, ``figure``, ``elapsed``,
``episodes_per_second``, ``mean_invocations``). Exit status 1 when an
exact-vs-Monte-Carlo check fails, 0 otherwise (also when inconclusive); bad
input is one line on stderr, exit 2, nothing written. A progress bar over the
episodes goes to stderr on long runs (not under ``--json``).
"""
from __future__ import annotations

import json
import math
import re
import sys
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import matplotlib
import numpy as np
from tqdm import tqdm

from estimators.validation import (CHUNK_EPISODES, SimulationResult, ais_greedy_policy,
                                   greedy_policy, run_greedy_policy, simulate_policy)
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_io import load_label_maps
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import DATA_FILES, data_path
from icsmdp_theory.io import atomic_write, load_observation_maps
from icsmdp_theory.math_reasoning import AGENTS, WORKFLOW_NAMES, workflow_policy
from reports.arguments import int_arg, load_model_arg, show_progress, writable_destination
from reports.commands import COMMAND_HELP
from solvers.records import load_run

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["add_parser", "POLICY_CHOICES", "simulation_document", "histogram_figure"]

#: The fixed words of ``--policy`` (besides ``RUN.npz`` and ``workflow:NAME``).
POLICY_CHOICES = ("greedy", "ais-greedy")
_WORKFLOW = "workflow:"
_COLUMNS = ("exact", "mean", "sd", "q05", "q50", "q95", "cvar05")


def _policy_kind(text: str) -> str:
    """``"greedy"``, ``"ais-greedy"``, ``"workflow"`` or ``"run"``; checked before any work."""
    if text in POLICY_CHOICES:
        return text
    if text.startswith(_WORKFLOW):
        name = text[len(_WORKFLOW):]
        if name not in WORKFLOW_NAMES:
            raise InvalidArgumentError(f"`--policy`: unknown workflow {name!r}; choose one of "
                                       f"{', '.join(_WORKFLOW + w for w in WORKFLOW_NAMES)}.")
        return "workflow"
    path = Path(text)
    if path.suffix in (".npz", ".json"):
        if not path.with_suffix(".npz").is_file():
            raise InvalidArgumentError(f"`--policy`: run record {text!r} not found.")
        return "run"
    raise InvalidArgumentError(f"`--policy` must be greedy, ais-greedy, a run record RUN.npz or "
                               f"workflow:NAME ({', '.join(WORKFLOW_NAMES)}), got {text!r}.")


def _map_path(arg: str, stack: ExitStack) -> str:
    """An observation-map file, or a bundled map by name (``workflow-maps``, ``workflow-bits``)."""
    if Path(arg).exists() or arg not in DATA_FILES or DATA_FILES[arg].endswith(".jsonl"):
        return arg
    return str(stack.enter_context(resources.as_file(data_path(arg))))


def _with_map(model, path: str):
    if isinstance(model, EpochModel):
        return load_label_maps(path, model)
    return load_observation_maps(path, model)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _clean(v):
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return v


def simulation_document(res: SimulationResult, *, model: str, policy: str,
                        figure: str | None) -> dict:
    """The ``--json`` object of a simulation (module docstring); non-finite numbers are ``null``."""
    rows = [{k: _clean(v) for k, v in r.items()} for r in res.rows]
    return {"model": model, "policy": policy, "episodes": res.episodes, "seed": res.seed,
            "horizon": res.horizon, "status": res.status, "success": bool(res.success),
            "message": res.message, "truncated": res.truncated, "level": res.level,
            "simultaneous": res.simultaneous, "z_critical": res.z_critical,
            "rows_checked": res.rows_checked, "rows": rows, "figure": figure,
            "elapsed": res.elapsed, "episodes_per_second": res.episodes / max(res.elapsed, 1e-9),
            "mean_invocations": float(np.mean(res.invocations))}


def histogram_figure(res: SimulationResult, path: Path, *, title: str) -> None:
    """Histograms of every row (rewards down, discounted | undiscounted across), written atomically.

    Each panel marks the Monte Carlo mean (solid) and the exact expectation (dashed).
    """
    J = len(res.names)
    fig, axes = plt.subplots(J, 2, figsize=(9.5, 2.3 * J + 0.6), squeeze=False)
    for j, name in enumerate(res.names):
        for col, (discounted, data) in enumerate(((True, res.returns), (False, res.totals))):
            ax = axes[j, col]
            x = np.asarray(data[:, j])
            values, counts = np.unique(x, return_counts=True)
            span = float(values[-1] - values[0])
            gap = float(np.min(np.diff(values))) if values.size > 1 else 1.0
            if values.size <= 40 and gap >= span / 80:   # few, separated values: one bar each
                ax.bar(values, counts / x.size, width=0.8 * gap, color="#7fa7cf")
            else:
                ax.hist(x, bins=60, weights=np.full(x.size, 1.0 / x.size), color="#7fa7cf")
            row = res.row(name, discounted=discounted)
            ax.axvline(row["mean"], color="k", lw=1.2, label="MC mean")
            if math.isfinite(row["exact"]):
                ax.axvline(row["exact"], color="#c0392b", ls="--", lw=1.2, label="exact")
            kind = "discounted return" if discounted else "undiscounted total"
            ax.set_title(f"{name}: {kind} ({row['check']})", fontsize=9)
            ax.set_ylabel("share of episodes", fontsize=8)
            ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.5g}"


def _print_table(doc: dict, res: SimulationResult) -> None:
    print(f"{doc['model']}, policy {doc['policy']}: {res.episodes} episodes, seed {res.seed}, "
          f"{doc['mean_invocations']:.3g} invocations per episode, "
          f"{doc['episodes_per_second']:.3g} episodes/s")
    if res.truncated:
        print(f"  {res.truncated} episode(s) cut at the horizon {res.horizon} primitive steps")
    kind = (f"Bonferroni-simultaneous over {res.rows_checked} rows" if res.simultaneous
            else "per row")
    print(f"  {res.level:.0%} intervals {kind}: mean +- {res.z_critical:.3f} sd/sqrt(n)")
    head = (f"  {'reward':10s} {'kind':6s} {'exact':>10s} {'MC mean':>10s} {'interval':>23s} "
            f"{'sd':>9s} {'q05':>9s} {'q50':>9s} {'q95':>9s} {'CVaR5%':>9s}  check")
    print(head)
    for r in res.rows:
        iv = f"[{_fmt(r['lower'])}, {_fmt(r['upper'])}]"
        print(f"  {r['name'][:10]:10s} {'disc' if r['discounted'] else 'total':6s} "
              f"{_fmt(r['exact']):>10s} {_fmt(r['mean']):>10s} {iv:>23s} {_fmt(r['sd']):>9s} "
              f"{_fmt(r['q05']):>9s} {_fmt(r['q50']):>9s} {_fmt(r['q95']):>9s} "
              f"{_fmt(r['cvar05']):>9s}  {r['check']}"
              + ("" if r["check"] == "pass" else f" ({r['why']})"))
    print(f"{res.status}: {res.message}")
    if doc["figure"]:
        print(f"figure: {doc['figure']}")


def _run(args) -> int:
    episodes = int_arg("episodes", args.episodes, low=2)
    seed = int_arg("seed", args.seed, low=0)
    horizon = None if args.horizon is None else int_arg("horizon", args.horizon, low=1)
    kind = _policy_kind(args.policy)
    if args.obs is not None and kind not in ("ais-greedy", "run"):
        raise InvalidArgumentError("`--obs` applies to `--policy ais-greedy` or a run record only.")
    if args.run_seed is not None and kind != "run":
        raise InvalidArgumentError("`--run-seed` applies to `--policy RUN.npz` only.")
    run_seed = None if args.run_seed is None else int_arg("run-seed", args.run_seed, low=0)
    out = None if args.out is None else writable_destination("--out", args.out, kind="dir")
    with ExitStack() as stack:
        base = load_model_arg(args.model)
        model = _with_map(base, _map_path(args.obs, stack)) if args.obs else base
        epoch = model if isinstance(model, EpochModel) else export_epoch(model)
        if kind == "greedy":
            sigma = greedy_policy(epoch)
        elif kind == "ais-greedy":
            sigma = ais_greedy_policy(epoch)
        elif kind == "workflow":
            if tuple(epoch.agent_names) != AGENTS:
                raise InvalidArgumentError(
                    f"`--policy {args.policy}` needs a math-reasoning model "
                    f"(math-reasoning:DATASET); `{epoch.name}` has the agents "
                    f"{', '.join(epoch.agent_names)}.")
            sigma = workflow_policy(epoch, args.policy[len(_WORKFLOW):])
        else:
            record = load_run(args.policy)
            seeds = [int(s) for s in np.asarray(record.seeds)]
            if run_seed is not None and run_seed not in seeds:
                raise InvalidArgumentError(f"`--run-seed` must be one of the record's seeds "
                                           f"{seeds}, got {run_seed}.")
            index = 0 if run_seed is None else seeds.index(run_seed)
            sigma = run_greedy_policy(model, record, seed_index=index)
    show = show_progress(args) and episodes >= CHUNK_EPISODES
    with tqdm(total=episodes, desc="simulate", unit="episode", file=sys.stderr,
              disable=not show) as bar:
        res = simulate_policy(epoch, sigma, episodes=episodes, seed=seed, horizon=horizon,
                              simultaneous=not args.per_row, progress=bar.update)
    figure = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"simulate-{_slug(epoch.name)}-{_slug(args.policy)}.png"
        histogram_figure(res, path, title=f"{epoch.name}, policy {args.policy}: "
                                          f"{res.episodes} episodes")
        figure = str(path)
    doc = simulation_document(res, model=epoch.name, policy=args.policy, figure=figure)
    if args.json:
        print(json.dumps(doc, allow_nan=False))
    else:
        _print_table(doc, res)
    return 1 if res.status == "violated" else 0


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help=COMMAND_HELP["simulate"])
    p.add_argument("model", metavar="MODEL",
                   help="instance file or bundled example, epoch model (icsmdp-epoch/1), or "
                        "math-reasoning:DATASET")
    p.add_argument("--policy", required=True,
                   help="greedy (of Q*), ais-greedy (of Q_hat* on the map's cells), RUN.npz (an "
                        "IC-Q run record's greedy policy) or workflow:NAME (math-reasoning)")
    p.add_argument("--episodes", required=True, help="episodes to simulate (>= 2)")
    p.add_argument("--seed", default="0", help="seed of the episodes (>= 0, default 0)")
    p.add_argument("--horizon", help="primitive-step cap of an episode (default 10000)")
    p.add_argument("--obs", help="observation map (icsmdp-obs/1; bundled: workflow-maps, "
                                 "workflow-bits) for ais-greedy or the map a run learned with")
    p.add_argument("--run-seed",
                   help="the run's seed whose policy is simulated (default: the first)")
    p.add_argument("--per-row", action="store_true",
                   help="99%% interval per row instead of simultaneous over the rows")
    p.add_argument("--out", help="directory for the histogram figure (checked before any work)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
