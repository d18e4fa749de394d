"""``icsmdp pareto MODEL --components A,B [--obs MAP] [--weights N] [--values total|discounted] [--out DIR] [--json]``.

The exact supported Pareto front of two (or more) reward components of a
model (SPEC section 11, :func:`estimators.pareto.pareto_front`): the policies
that are optimal for some weighting, each with its exact component values,
its weight range and what it does where it goes. A designer reads off what
each point of accuracy costs (the ``rate`` column: second component per unit
of the first, between consecutive points).

- ``MODEL``: an epoch model file (``icsmdp-epoch/1``), an instance file or a
  bundled example (exported with :func:`icsmdp_theory.epoch_export.export_epoch`:
  it has no components, only ``reward``), or ``math-reasoning:DATASET`` where
  :func:`reports.arguments.load_model_arg` accepts it;
- ``--components``: comma-separated component names (default ``correct,tokens``);
- ``--obs``: also the front over decentralized policies on a map's cells:
  ``model`` (the model's own maps, e.g. the 4-bit map of the math-reasoning
  family), an ``icsmdp-obs/1`` file (``by_label``/``fields``) or a bundled map
  (``workflow-maps``, ``workflow-bits``). The centralized front is always computed;
- ``--weights``: grid weights of the scan (default 11; two components are then
  refined exactly at the tie weights);
- ``--values``: ``total`` (default: expected totals until STOP, e.g. the
  accuracy of a workflow, as the paper's Table 1) or ``discounted`` (SPEC 11's
  discounted values; needed when a cost-before-STOP model is not at hand);
- ``--out DIR`` (default ``reports/out/pareto``): writes ``pareto-<model>.png``
  (the fronts; for the math-reasoning family the five named workflows are
  marked) and ``pareto-<model>.json`` (the ``--json`` document).

Prints the front table; ``--json`` prints one object: ``model``,
``components``, ``values``, ``centralized`` and ``decentralized`` (null
without ``--obs``) fronts (``points``: values, weight range, rate to the next
point, policy choices at the reachable states or cells, matching workflow),
``workflows`` (name -> values, or null), ``note``, ``figure``, ``document``.
Bad input exits 2 with one line, before anything is written.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)
import numpy as np  # noqa: E402

from estimators.pareto import (DEFAULT_WEIGHTS, UNSUPPORTED_NOTE, ParetoFront,  # noqa: E402
                               pareto_front, reachable_choices)
from estimators.policy_value import policy_value  # noqa: E402
from icsmdp_theory.epoch_export import export_epoch  # noqa: E402
from icsmdp_theory.epoch_io import load_label_maps  # noqa: E402
from icsmdp_theory.epoch_model import EpochModel  # noqa: E402
from icsmdp_theory.errors import InvalidArgumentError  # noqa: E402
from icsmdp_theory.examples import DATA_FILES, data_path  # noqa: E402
from icsmdp_theory.io import atomic_write  # noqa: E402
from icsmdp_theory.math_reasoning import (AGENTS, WORKFLOW_NAMES, observation_bits,  # noqa: E402
                                          workflow_policy)
from icsmdp_theory.results import to_jsonable  # noqa: E402
from reports.arguments import int_arg, load_model_arg, writable_destination  # noqa: E402
from reports.commands import COMMAND_HELP  # noqa: E402

__all__ = ["add_parser", "DEFAULT_PARETO_OUT", "VALUES", "front_document", "workflow_points"]

#: Default output directory.
DEFAULT_PARETO_OUT = Path("reports") / "out" / "pareto"
#: ``--values`` choices: totals until STOP (default) or discounted values (SPEC 11).
VALUES = ("total", "discounted")


def _is_math_reasoning(model: EpochModel) -> bool:
    return tuple(model.agent_names) == AGENTS


def workflow_points(model: EpochModel, components: tuple, *, discounted: bool) -> dict | None:
    """Name -> component values of each named workflow (math-reasoning family), else ``None``."""
    if not _is_math_reasoning(model):
        return None
    out = {}
    for name in WORKFLOW_NAMES:
        try:
            sigma = workflow_policy(model, name)
        except InvalidArgumentError:
            return None
        v = policy_value(model, sigma, discounted=discounted)
        out[name] = {"values": {c: v.values[c] for c in components}, "policy": sigma}
    return out


def _matching_workflow(model: EpochModel, sigma: np.ndarray, workflows: dict | None) -> str | None:
    """The named workflow taking the same choices as ``sigma`` wherever ``sigma`` goes."""
    if not workflows:
        return None
    mine = reachable_choices(model, sigma)
    for name, w in workflows.items():
        if reachable_choices(model, w["policy"]) == mine:
            return name
    return None


def _choices_text(choices: list, *, cells: bool, bits: bool) -> str:
    if cells:
        parts = []
        for c in choices:
            o = observation_bits(c["observation"]) if bits else str(c["observation"])
            parts.append(f"{c['agent'][:4]}[{o}]>{c['successor'][:4]}")
        return " ".join(parts)
    counts: dict = {}
    for c in choices:
        counts.setdefault(c["agent"], {}).setdefault(c["successor"], 0)
        counts[c["agent"]][c["successor"]] += 1
    return "; ".join(f"{a[:4]}>" + ",".join(f"{s[:4]}x{n}" for s, n in d.items())
                     for a, d in counts.items())


def front_document(model: EpochModel, front: ParetoFront, workflows: dict | None) -> dict:
    """The JSON form of a front: settings, points (values, range, rate, choices, workflow)."""
    cells = front.decentralized
    points = []
    for j, p in enumerate(front.points):
        choices = reachable_choices(model, p.policy, cells=cells)
        points.append({"values": p.values, "weight_range": p.weight_range,
                       "weights": p.weights,
                       "rate_to_next": front.rates[j] if j < len(front.rates) else None,
                       "choices": choices,
                       "workflow": _matching_workflow(model, p.policy, workflows)})
    return {"components": list(front.components), "discounted": front.discounted,
            "decentralized": cells, "exact": front.exact, "num_solves": front.num_solves,
            "scales": list(front.scales), "message": front.message, "points": points,
            "elapsed": front.elapsed}


def _print_front(title: str, doc: dict, *, bits: bool) -> None:
    comps = doc["components"]
    print(f"\n{title}: {len(doc['points'])} points ({doc['num_solves']} exact optima"
          + (", every supported vertex" if doc["exact"] else ", grid only") + ")")
    head = f"  {'#':>2} {'t range':>17} " + " ".join(f"{c[:10]:>10}" for c in comps)
    if len(comps) == 2:
        head += f" {'rate':>10}"
    print(head + "  policy")
    for j, p in enumerate(doc["points"]):
        rng = p["weight_range"]
        rtext = f"[{rng[0]:.4f}, {rng[1]:.4f}]" if rng is not None else "-"
        line = f"  {j:>2} {rtext:>17} " + " ".join(f"{p['values'][c]:>10.4f}" for c in comps)
        if len(comps) == 2:
            rate = p["rate_to_next"]
            line += f" {rate:>10.4g}" if rate is not None else f" {'':>10}"
        summary = _choices_text(p["choices"], cells=doc["decentralized"], bits=bits)
        if p["workflow"]:
            summary = f"= {p['workflow']}: " + summary
        print(line + "  " + summary)


def _plot(path: Path, name: str, comps: tuple, docs: dict, workflows: dict | None,
          values: str) -> None:
    x, y = comps[1], comps[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"centralized": dict(color="C0", marker="o"),
              "decentralized": dict(color="C1", marker="s")}
    for kind, doc in docs.items():
        if doc is None:
            continue
        xs = [p["values"][x] for p in doc["points"]]
        ys = [p["values"][y] for p in doc["points"]]
        ax.plot(xs, ys, linestyle="-", markersize=5, label=f"{kind} front",
                **styles[kind])
    if workflows:
        for j, (wname, w) in enumerate(workflows.items()):
            ax.scatter([w["values"][x]], [w["values"][y]], marker="*", s=120, zorder=5,
                       color=f"C{j + 2}", label=wname)
    ax.set_xlabel(f"{x} ({values})")
    ax.set_ylabel(f"{y} ({values})")
    ax.set_title(f"supported Pareto front: {name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.text(0.01, 0.01, "unsupported (non-convex) points may exist between vertices",
             fontsize=7, color="0.4")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _map_arg(arg: str, model: EpochModel, stack: ExitStack):
    """``--obs``: ``"model"``, a bundled map name or a file -> the maps (or ``"model"``)."""
    if arg == "model":
        return "model"
    path = arg
    if not Path(arg).exists() and arg in DATA_FILES and not DATA_FILES[arg].endswith(".jsonl"):
        path = str(stack.enter_context(resources.as_file(data_path(arg))))
    if not Path(path).is_file():
        bundled = [n for n, f in DATA_FILES.items() if not f.endswith(".jsonl")]
        raise InvalidArgumentError(f"`--obs`: {arg!r} is neither 'model', a file, nor a bundled "
                                   f"map ({', '.join(bundled)}).")
    return load_label_maps(path, model).observation


def _components_arg(text: str) -> tuple:
    comps = tuple(c.strip() for c in text.split(","))
    if len(comps) < 2 or any(not c for c in comps):
        raise InvalidArgumentError(f"`--components` must be two or more comma-separated names, "
                                   f"got {text!r}.")
    return comps


def _run(args) -> int:
    comps = _components_arg(args.components)
    weights = int_arg("weights", args.weights, low=2)
    out = writable_destination("--out", args.out, kind="dir")      # before any work
    discounted = args.values == "discounted"
    model = load_model_arg(args.model)
    if not isinstance(model, EpochModel):
        model = export_epoch(model)
    with ExitStack() as stack:
        obs = _map_arg(args.obs, model, stack) if args.obs is not None else None
    central = pareto_front(model, components=comps, weights=weights, discounted=discounted)
    cells_model = model if obs in (None, "model") else model.with_observation(obs)
    decentral = (pareto_front(model, components=comps, obs=obs, weights=weights,
                              discounted=discounted) if obs is not None else None)
    workflows = workflow_points(model, comps, discounted=discounted)
    docs = {"centralized": front_document(model, central, workflows),
            "decentralized": (front_document(cells_model, decentral, workflows)
                              if decentral is not None else None)}
    stem = "pareto-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", model.name).strip("-")
    out.mkdir(parents=True, exist_ok=True)
    figure = out / f"{stem}.png"
    _plot(figure, model.name, comps, docs, workflows, args.values)
    doc = {"model": model.name, "components": list(comps), "values": args.values,
           "weights": weights, "obs": args.obs, **docs,
           "workflows": ({n: w["values"] for n, w in workflows.items()} if workflows else None),
           "note": UNSUPPORTED_NOTE, "figure": str(figure), "document": str(out / f"{stem}.json")}
    text = json.dumps(to_jsonable(doc), allow_nan=False)
    atomic_write(out / f"{stem}.json", lambda tmp: Path(tmp).write_text(text + "\n"))
    if args.json:
        print(text)
        return 0
    bits = _is_math_reasoning(model) and args.obs == "model"    # the family's own 4-bit map
    print(f"{model.name}: supported Pareto front of {', '.join(comps)} "
          f"({'totals until STOP' if not discounted else 'discounted values'}); "
          f"t is the weight of {comps[1]} in w = (1 - t, t) on components scaled by "
          f"{', '.join(f'{s:g}' for s in central.scales)}")
    _print_front("centralized (every epoch state decides)", docs["centralized"], bits=bits)
    if decentral is not None:
        _print_front(f"decentralized on the cells of {args.obs}", docs["decentralized"], bits=bits)
    if workflows:
        print("\nnamed workflows:")
        for n, w in workflows.items():
            print(f"  {n:<8} " + " ".join(f"{c} {w['values'][c]:.4f}" for c in comps))
    print(f"\nnote: {UNSUPPORTED_NOTE}")
    print(f"figure    {figure}")
    print(f"document  {out / f'{stem}.json'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("pareto", help=COMMAND_HELP["pareto"])
    p.add_argument("model", help="epoch model file, instance file, bundled example, or "
                                 "math-reasoning:DATASET")
    p.add_argument("--components", default="correct,tokens",
                   help="comma-separated component names (default correct,tokens)")
    p.add_argument("--obs", default=None,
                   help="also the decentralized front on a map's cells: 'model' (the model's own "
                        "maps), an icsmdp-obs/1 file, or workflow-maps / workflow-bits")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS),
                   help=f"grid weights of the scan, >= 2 (default {DEFAULT_WEIGHTS}; two "
                        "components are refined exactly)")
    p.add_argument("--values", choices=VALUES, default="total",
                   help="totals until STOP (default; accuracy) or discounted values (SPEC 11)")
    p.add_argument("--out", default=str(DEFAULT_PARETO_OUT),
                   help=f"output directory (default {DEFAULT_PARETO_OUT})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
