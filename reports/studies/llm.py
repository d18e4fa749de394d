r"""The multi-LLM math-reasoning workflow (paper section 5.2, Table 1) on its calibrated model.

**A calibrated model, not a rerun of the LLM experiment.** No LLM is called:
:func:`icsmdp_theory.math_reasoning.math_reasoning` is an explicit epoch model
(SPEC 10) whose per-call probabilities are fitted so that the exact accuracies
of the five predefined workflows reproduce Table 1. This study asks what the
toolkit says about that model, per dataset (``MathQA``, ``MMLU-HS``,
``MMLU-Elem``):

- ``Direct, CoT, Reflect, Comb-E, Comb-T``: each workflow's exact accuracy, the
  undiscounted total of ``correct`` (``policy_value(model, sigma,
  discounted=False).values["correct"]``);
- ``ais_optimum``: the exact optimum over every deterministic decentralized
  policy on the 4-bit cells (:func:`estimators.decentralized.best_decentralized_policy`,
  by enumeration) and the workflow it equals on the reachable states;
- ``full_optimum``: the accuracy of the greedy policy of ``Q*_lat``
  (``solve(PolicyIteration(tol=1e-10), model)``; it sees the latent difficulty
  and correctness);
- ``icq``: tabular IC-Q on the 4-bit cells (``solve(ICQ(...), model)``), the
  exact accuracy of each seed's greedy policy at the last checkpoint
  (:func:`estimators.validation.run_greedy_policy`), worst seed, and
  ``icq_workflow`` the named workflow it equals on the states it reaches
  (``None`` if none); the same for the MLP learner (fewer seeds) and for
  tabular IC-Q on the richer *interface* cells (the 4 bits, ``round``,
  ``length``: what the logs of the pipeline record);
- the AIS gaps of the 4-bit map (:func:`estimators.gaps.gap_report`, uniform
  and stationary references) with the cells that contribute most.

What IC-Q can learn on the 4 bits
--------------------------------
IC-Q's fixed point is the greedy policy of the AIS optimum ``Q_hat*``: a
successor's value is passed back through the 4-bit cell it lands in. The model's
bit semantics (module docstring of :mod:`icsmdp_theory.math_reasoning`) give the
paths that matter cells of their own: the thinker's rationale proposes an
answer (``given``), the editor's final answer after it sets ``modified``, and a
relayed critique is a new unchecked rationale that ends in its own cells, so the
AIS greedy policy is the decentralized optimum on MathQA and MMLU-HS (Comb-E).
On MMLU-Elem the commissioner's cell after a check still merges checked direct
answers with checked CoT answers, which makes the checker look better than it is
there: the AIS greedy policy, and IC-Q, choose Comb-E (0.0018 below CoT). The
section states, per dataset, the AIS greedy policy and the workflow each IC-Q
seed equals, from this run's numbers.

Logs
----
The same pipeline *seen through its logs* (``logs`` task, MathQA): a trace
simulated from the model under the uniform behavior whose logged ``state`` is
the interface only (``given, modified, checked, judged, round, length``; the
latent ``difficulty``, ``right`` and the pending message are not logged), fitted
(:func:`estimators.fit.fit_epoch_model`), and the 4-bit map's gaps on the
fitted model with credible intervals, against the logged state itself
(:func:`estimators.uncertainty.posterior_gaps` with ``against``).

Sizes
-----
=========  ==========================================  ==========================================
part       quick (default)                              full (``--full``)
=========  ==========================================  ==========================================
IC-Q       tabular: 5 seeds, 50,000 updates, epsilon-  tabular: 10 seeds, 100,000 updates; MLP:
           greedy 0.3, harmonic steps 10/(k+10); MLP:   3 seeds, 50,000 updates
           2 seeds, 20,000 updates, constant 0.01
logs       20,000 episodes, 40 posterior draws          50,000 episodes, 200 posterior draws
Pareto     none                                         accuracy vs tokens, 4-bit cells and
                                                        centralized (:func:`estimators.pareto.pareto_front`)
=========  ==========================================  ==========================================

Campaign
--------
:func:`llm_campaign` has one task per dataset and part (``exact:MathQA``,
``icq:MathQA``, ``icq-interface:MathQA``, ``icq-mlp:MathQA``, ``pareto:MathQA``
in full mode) and the ``logs`` task; every task uses the study seed (IC-Q's
base seed, the trace seed, the posterior seed). :func:`llm_data` builds
:class:`LLMData` from the results only; :func:`render_llm` writes the section;
:func:`llm` is the section of ``icsmdp reproduce llm``; :func:`llm_summary` the
short section of the default ``icsmdp report`` (MathQA, exact numbers only).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import matplotlib
import numpy as np

from estimators.decentralized import best_decentralized_policy
from estimators.fit import fit_epoch_model
from estimators.gaps import gap_report
from estimators.pareto import pareto_front
from estimators.policy_value import policy_value
from estimators.uncertainty import posterior_gaps
from estimators.validation import ais_greedy_policy, greedy_policy, run_greedy_policy
from icsmdp_theory.cells import cell_admissible
from icsmdp_theory.epoch_io import OBS_FORMAT, label_maps_from_dict
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.math_reasoning import (DATASETS, OBSERVATION_BITS, PAPER_CITATION,
                                          PAPER_LEARNED, PAPER_TABLE1, WORKFLOW_NAMES,
                                          label_state, math_reasoning, workflow_policy)
from icsmdp_theory.traces import TraceWriter, read_trace, simulate_epoch_trace
from reports.builder import ReportContext, Section
from reports.campaign import Campaign, Task
from reports.studies.runner import run_study, study_options, study_result
from solvers import solve
from solvers.icq import ICQ, EpsilonGreedy

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["JSON_KEYS", "INTERFACE_KEYS", "LOGS_DATASET", "llm_config", "interface_model",
           "bits_model", "reachable_states", "matching_workflow", "exact_task", "icq_task",
           "logs_task", "pareto_task", "llm_task", "llm_campaign", "LLMData", "llm_data",
           "compute_llm", "render_llm", "llm", "llm_summary", "project_trace"]

#: Keys of each dataset's object in ``icsmdp reproduce llm --json`` (exactly these).
JSON_KEYS = (*WORKFLOW_NAMES, "ais_optimum", "full_optimum", "icq", "icq_workflow")
#: The interface part of a label: what the pipeline's logs record (module docstring, "Logs").
INTERFACE_KEYS = (*OBSERVATION_BITS, "round", "length")
#: The dataset of the logs part and of the default report's short section.
LOGS_DATASET = "MathQA"


def llm_config(quick: bool) -> dict:
    """Settings of the study (module docstring, table "Sizes").

    Returns
    -------
    dict
        ``datasets``; ``icq`` (tabular: ``seeds, updates, epsilon``), ``mlp``
        (``seeds, updates, epsilon``), ``logs`` (``dataset, episodes, draws,
        level``), ``pareto`` (bool).
    """
    if quick:
        return dict(datasets=list(DATASETS), icq=dict(seeds=5, updates=50_000, epsilon=0.3),
                    mlp=dict(seeds=2, updates=20_000, epsilon=0.3),
                    logs=dict(dataset=LOGS_DATASET, episodes=20_000, draws=40, level=0.9),
                    pareto=False)
    return dict(datasets=list(DATASETS), icq=dict(seeds=10, updates=100_000, epsilon=0.3),
                mlp=dict(seeds=3, updates=50_000, epsilon=0.3),
                logs=dict(dataset=LOGS_DATASET, episodes=50_000, draws=200, level=0.9),
                pareto=True)


@lru_cache(maxsize=8)
def _model(dataset: str) -> EpochModel:
    return math_reasoning(dataset)


def bits_model(model: EpochModel) -> EpochModel:
    """``model`` with the 4-bit map written as a ``fields`` rule over the label keys.

    The same partition of the labels as the model's own map (``8 given + 4
    modified + 2 checked + judged``), only coded differently; it also applies to
    a fitted model whose labels carry just the interface keys.
    """
    doc = {"format": OBS_FORMAT, "fields": [list(OBSERVATION_BITS)] * model.num_agents}
    return label_maps_from_dict(doc, model)


def interface_model(model: EpochModel) -> EpochModel:
    """``model`` observed through the interface cells: the 4 bits, ``round`` and ``length``."""
    doc = {"format": OBS_FORMAT, "fields": [list(INTERFACE_KEYS)] * model.num_agents}
    return label_maps_from_dict(doc, model)


def reachable_states(model: EpochModel, policy: Any) -> np.ndarray:
    """Epoch states reachable from ``rho0`` under the epoch policy ``policy`` (bool ``(S,)``)."""
    sigma = np.asarray(policy, dtype=np.int64)
    law = model.transition_law()
    n1, stop = model.num_successors, model.num_agents
    seen = np.asarray(model.rho0) > 0
    stack = list(np.flatnonzero(seen))
    while stack:
        s = stack.pop()
        if sigma[s] == stop:
            continue
        row = s * n1 + sigma[s]
        for s2 in law.indices[law.indptr[row]:law.indptr[row + 1]]:
            if not seen[s2]:
                seen[s2] = True
                stack.append(int(s2))
    return seen


def matching_workflow(model: EpochModel, policy: Any) -> str | None:
    """The named workflow that takes ``policy``'s successor on every state ``policy`` reaches.

    Two policies agreeing there have the same trajectories, hence the same
    values; ``None`` when no workflow does.
    """
    sigma = np.asarray(policy, dtype=np.int64)
    reach = reachable_states(model, sigma)
    for name in WORKFLOW_NAMES:
        if np.array_equal(workflow_policy(model, name)[reach], sigma[reach]):
            return name
    return None


def _accuracy(model: EpochModel, policy: Any) -> float:
    return float(policy_value(model, policy, discounted=False).values["correct"])


def _same_accuracy(accuracy: float, workflows: dict) -> str | None:
    """The first workflow whose exact accuracy equals ``accuracy`` (within ``1e-9``), else ``None``.

    A policy may have a workflow's accuracy without its handoffs (e.g. Reflect with a
    redundant second check after the revision, which changes no answer).
    """
    return next((w for w, a in workflows.items() if abs(a - accuracy) <= 1e-9), None)


def _cell_bits(model: EpochModel, agent: int, observation: int) -> str:
    """The 4-bit string ``gmcj`` of a cell of ``model`` (from any of its states)."""
    s = int(np.flatnonzero((model.state_agent == agent) & (model.state_observation == observation))[0])
    st = label_state(model.labels[int(model.state_label[s])])
    return "".join(str(int(st[k])) for k in OBSERVATION_BITS)


def _gaps(model: EpochModel, reference: str) -> dict:
    rep = gap_report(model, reference=reference, minimax=reference == "uniform")
    cells = []
    for c in rep.cells[:5]:
        cells.append(dict(agent=c["agent_name"], bits=_cell_bits(model, c["agent"], c["observation"]),
                          mass=float(c["mass"]), epsilon=float(c["epsilon"]),
                          delta=float(c["delta"]), eta=float(c["eta"]),
                          contribution=float(c["contribution"])))
    out = {k: float(getattr(rep, k)) for k in ("alpha_tight", "alpha_paper", "alpha_tv",
                                               "epsilon_phi", "delta_phi", "gamma_bar",
                                               "max_q_gap", "max_value_gap", "policy_loss")}
    for k in ("minimax_epsilon", "minimax_delta"):
        v = getattr(rep, k)
        out[k] = None if v is None else float(v)
    out["cells"] = cells
    out["reference"] = reference
    return out


def exact_task(params: dict, seed: int) -> dict:
    """Exact numbers of one dataset: workflows, 4-bit optimum, full-information optimum, gaps."""
    t0 = time.perf_counter()
    m = _model(params["dataset"])
    workflows = {w: _accuracy(m, workflow_policy(m, w)) for w in WORKFLOW_NAMES}
    opt = best_decentralized_policy(m)
    full = greedy_policy(m)
    ais = ais_greedy_policy(m, reference="stationary")
    return dict(dataset=params["dataset"], workflows=workflows,
                ais_optimum=float(opt.values["correct"]),
                ais_optimum_workflow=matching_workflow(m, opt.policy),
                num_policies=int(opt.num_policies),
                full_optimum=_accuracy(m, full),
                full_optimum_workflow=matching_workflow(m, full),
                ais_greedy=_accuracy(m, ais), ais_greedy_workflow=matching_workflow(m, ais),
                gaps={ref: _gaps(m, ref) for ref in ("uniform", "stationary")},
                seconds=round(time.perf_counter() - t0, 3))


def icq_task(params: dict, seed: int) -> dict:
    """IC-Q on one dataset: each seed's greedy accuracy and matched workflow.

    ``params``: ``dataset``, ``learner`` (``tabular``/``mlp``), ``cells``
    (``bits``: the model's 4-bit map; ``interface``: :func:`interface_model`),
    ``seeds``, ``updates``, ``epsilon``.
    """
    t0 = time.perf_counter()
    base = _model(params["dataset"])
    m = base if params["cells"] == "bits" else interface_model(base)
    T = int(params["updates"])
    settings = ICQ(learner=params["learner"], updates=T, seeds=int(params["seeds"]), seed=int(seed),
                   behavior=EpsilonGreedy(epsilon=float(params["epsilon"])), checkpoints=(T,),
                   progress=False)
    rec = solve(settings, m)
    workflows = {w: _accuracy(base, workflow_policy(base, w)) for w in WORKFLOW_NAMES}
    accs, names = [], []
    for k in range(rec.num_seeds):
        sigma = run_greedy_policy(m, rec, seed_index=k)
        accs.append(_accuracy(base, sigma))
        names.append(matching_workflow(base, sigma))
    worst = int(np.argmin(accs))
    same = [_same_accuracy(a, workflows) for a in accs]
    return dict(dataset=params["dataset"], learner=params["learner"], cells=params["cells"],
                accuracy=accs, workflow=names, same_accuracy=same, worst=float(accs[worst]),
                worst_workflow=names[worst], worst_same_accuracy=same[worst],
                settings=settings.to_dict(),
                seconds=round(time.perf_counter() - t0, 3))


def project_trace(src: str | os.PathLike, dst: str | os.PathLike, keys: Sequence[str]) -> int:
    """Copy the trace ``src`` to ``dst`` keeping only ``keys`` of each line's ``state``.

    Returns the number of invocation lines written (:class:`icsmdp_theory.traces.TraceWriter`).
    """
    with open(src, encoding="utf-8") as f:
        header = json.loads(f.readline())
        with TraceWriter(dst, gamma=header["gamma"], agents=header["agents"],
                         reward_components=header.get("reward_components", ())) as w:
            for line in f:
                if not line.strip():
                    continue
                d = json.loads(line)
                st = d["state"]
                st = json.loads(st) if isinstance(st, str) else st
                w.write(d["episode"], d["agent"], {k: st[k] for k in keys}, d["successor"],
                        d["tau"], reward=d["reward"], components=d.get("components"))
            return w.num_lines


def _uniform_cells(model: EpochModel) -> list[np.ndarray]:
    """Uniform behavior over each cell's admissible successors, per agent."""
    adm = cell_admissible(model).astype(float)
    out, start = [], 0
    for n in model.num_observations:
        block = adm[start:start + n]
        out.append(block / block.sum(axis=1, keepdims=True))
        start += n
    return out


def _interval(pg, key: str) -> list | None:
    iv = pg.intervals.get(key)
    return None if iv is None else [float(v) for v in iv]


def logs_task(params: dict, seed: int) -> dict:
    """The pipeline through its logs: simulate, log the interface only, fit, gaps with intervals."""
    t0 = time.perf_counter()
    m = _model(params["dataset"])
    with tempfile.TemporaryDirectory(prefix="icsmdp-llm-") as tmp:
        full = os.path.join(tmp, "full.jsonl")
        logged = os.path.join(tmp, "logged.jsonl")
        info = simulate_epoch_trace(m, full, episodes=int(params["episodes"]),
                                    behavior=_uniform_cells(m), seed=int(seed))
        lines = project_trace(full, logged, INTERFACE_KEYS)
        fit = fit_epoch_model(read_trace(logged))
    fm = fit.model
    a, b = bits_model(fm), interface_model(fm)
    pg = posterior_gaps(a, against=b, draws=int(params["draws"]), level=float(params["level"]),
                        seed=int(seed), minimax=False, mixing=False)
    keys = ("alpha_tight", "alpha_paper", "epsilon_phi", "delta_phi", "max_q_gap", "policy_loss")
    cmp = pg.against or {}
    return dict(dataset=params["dataset"], episodes=int(info["episodes"]), invocations=int(lines),
                labels=int(fm.num_labels), epoch_states=int(fm.num_epoch_states),
                markov_verdict=fit.markov_test.get("verdict"),
                bits={k: dict(value=None if pg.values.get(k) is None else float(pg.values[k]),
                              interval=_interval(pg, k)) for k in keys},
                interface={k: dict(value=None if cmp.get("values", {}).get(k) is None
                                   else float(cmp["values"][k]),
                                   interval=(cmp.get("intervals") or {}).get(k)) for k in keys},
                greedy_agreement=float(pg.greedy_agreement),
                draws=int(params["draws"]), level=float(params["level"]),
                seconds=round(time.perf_counter() - t0, 3))


def pareto_task(params: dict, seed: int) -> dict:
    """Accuracy against tokens (totals until STOP): the 4-bit front, the centralized one, workflows."""
    t0 = time.perf_counter()
    m = _model(params["dataset"])
    out = {}
    for kind, obs in (("bits", "model"), ("centralized", None)):
        front = pareto_front(m, components=("correct", "tokens"), obs=obs, discounted=False)
        out[kind] = [dict(correct=float(p.values["correct"]), tokens=float(p.values["tokens"]),
                          workflow=matching_workflow(m, p.policy)) for p in front.points]
    wf = {}
    for w in WORKFLOW_NAMES:
        v = policy_value(m, workflow_policy(m, w), discounted=False).values
        wf[w] = dict(correct=float(v["correct"]), tokens=float(v["tokens"]))
    return dict(dataset=params["dataset"], fronts=out, workflows=wf,
                seconds=round(time.perf_counter() - t0, 3))


_TASKS = {"exact": exact_task, "icq": icq_task, "icq-interface": icq_task, "icq-mlp": icq_task,
          "logs": logs_task, "pareto": pareto_task}


def llm_task(params: dict, seed: int) -> dict:
    """Dispatch one task of :func:`llm_campaign` on ``params["part"]``."""
    return _TASKS[params["part"]](params, seed)


def llm_campaign(seed: int, quick: bool, *, summary: bool = False) -> Campaign:
    """The study as a campaign (module docstring, "Campaign").

    Parameters
    ----------
    seed : int
    quick : bool
    summary : bool
        Only the exact task of :data:`LOGS_DATASET` (the default report's short
        section; campaign name ``llm-summary``).
    """
    cfg = llm_config(quick)
    if summary:
        tasks = (Task(f"exact:{LOGS_DATASET}", {"part": "exact", "dataset": LOGS_DATASET},
                      seed=int(seed)),)
        return Campaign("llm-summary", llm_task, tasks, seed=int(seed),
                        settings={"study": "llm-summary", "dataset": LOGS_DATASET})
    tasks = []
    for d in cfg["datasets"]:
        tasks.append(Task(f"exact:{d}", {"part": "exact", "dataset": d}, seed=int(seed)))
        tasks.append(Task(f"icq:{d}", {"part": "icq", "dataset": d, "learner": "tabular",
                                       "cells": "bits", **cfg["icq"]}, seed=int(seed)))
        tasks.append(Task(f"icq-interface:{d}", {"part": "icq-interface", "dataset": d,
                                                 "learner": "tabular", "cells": "interface",
                                                 **cfg["icq"]}, seed=int(seed)))
        tasks.append(Task(f"icq-mlp:{d}", {"part": "icq-mlp", "dataset": d, "learner": "mlp",
                                           "cells": "bits", **cfg["mlp"]}, seed=int(seed)))
        if cfg["pareto"]:
            tasks.append(Task(f"pareto:{d}", {"part": "pareto", "dataset": d}, seed=int(seed)))
    tasks.append(Task("logs", {"part": "logs", **cfg["logs"]}, seed=int(seed)))
    return Campaign("llm", llm_task, tuple(tasks), seed=int(seed),
                    settings={"study": "llm", "quick": bool(quick), "config": cfg})


@dataclass(frozen=True)
class LLMData:
    """What the study computes (JSON-ready, no figure).

    Attributes
    ----------
    seed : int
    quick : bool
    config : dict
        :func:`llm_config` (``None`` for the summary).
    datasets : dict
        Per dataset: ``exact`` (:func:`exact_task`), and when run ``icq``,
        ``icq_interface``, ``icq_mlp`` (:func:`icq_task`), ``pareto``.
    table : dict
        Per dataset the :data:`JSON_KEYS` (the ``--json`` object), IC-Q keys
        ``None`` for the summary.
    logs : dict or None
        :func:`logs_task`.
    summary : bool
    timings : dict
    started : float
    results_file : str or None
    """

    seed: int
    quick: bool
    config: dict | None
    datasets: dict
    table: dict
    logs: dict | None
    summary: bool
    timings: dict
    started: float
    results_file: str | None = None


def llm_data(seed: int, quick: bool, results: dict, *, results_file: str | None = None,
             started: float | None = None, summary: bool = False) -> LLMData:
    """The study's numbers from the results of :func:`llm_campaign` only."""
    cfg = None if summary else llm_config(quick)
    names = [LOGS_DATASET] if summary else cfg["datasets"]
    study = "llm-summary" if summary else "llm"
    datasets, table, seconds = {}, {}, 0.0
    for d in names:
        ex = study_result(results, f"exact:{d}", study)
        entry = {"exact": ex}
        seconds += ex["seconds"]
        if not summary:
            for key, tid in (("icq", "icq"), ("icq_interface", "icq-interface"),
                             ("icq_mlp", "icq-mlp")):
                entry[key] = study_result(results, f"{tid}:{d}", study)
                seconds += entry[key]["seconds"]
            if cfg["pareto"]:
                entry["pareto"] = study_result(results, f"pareto:{d}", study)
                seconds += entry["pareto"]["seconds"]
        datasets[d] = entry
        row = {w: ex["workflows"][w] for w in WORKFLOW_NAMES}
        row.update(ais_optimum=ex["ais_optimum"], full_optimum=ex["full_optimum"],
                   icq=None if summary else entry["icq"]["worst"],
                   icq_workflow=None if summary else entry["icq"]["worst_workflow"])
        table[d] = row
    logs = None
    if not summary:
        logs = study_result(results, "logs", study)
        seconds += logs["seconds"]
    return LLMData(seed=int(seed), quick=bool(quick), config=cfg, datasets=datasets, table=table,
                   logs=logs, summary=summary, timings={"study": round(seconds, 3)},
                   started=time.perf_counter() if started is None else started,
                   results_file=results_file)


def compute_llm(seed: int, quick: bool, *, summary: bool = False, results_dir=None,
                jobs: int | None = None, scheduler: Any = None, resume: bool = False,
                progress: bool = False) -> LLMData:
    """:func:`llm_campaign` run by :func:`reports.studies.runner.run_study`, then :func:`llm_data`."""
    def make(seed_, quick_, results, **kw):
        return llm_data(seed_, quick_, results, summary=summary, **kw)
    return run_study(llm_campaign(seed, quick, summary=summary), make, seed=seed, quick=quick,
                     results_dir=results_dir, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=progress)


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _g(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _icq_name(data: LLMData, dataset: str) -> str:
    r = data.datasets[dataset]["icq"]
    if r["worst_workflow"] is not None:
        return r["worst_workflow"]
    return "no named workflow" if r["worst_same_accuracy"] is None else \
        f"accuracy of {r['worst_same_accuracy']}"


def _bars(ctx: ReportContext, data: LLMData, name: str) -> None:
    names = list(data.table)
    cols = [*WORKFLOW_NAMES, "ais_optimum", "full_optimum"] + ([] if data.summary else ["icq"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 1, 3.8),
                             layout="constrained", squeeze=False)
    for ax, d in zip(axes[0], names):
        ours = [data.table[d][c] for c in cols]
        paper = [PAPER_TABLE1[d].get(c, np.nan) for c in cols]
        x = np.arange(len(cols))
        ax.bar(x - 0.2, ours, 0.4, label="calibrated model (exact)", color="C0")
        ax.bar(x + 0.2, paper, 0.4, label="paper, Table 1", color="C1")
        ax.set_xticks(x, [c.replace("_", " ") for c in cols], rotation=45, ha="right", fontsize=8)
        lo = min(v for v in ours + paper if v == v)
        ax.set_ylim(max(0.0, lo - 0.05), 1.0)
        ax.set_title(d)
        ax.set_ylabel("accuracy")
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.savefig(ctx.workdir / name, dpi=110)
    plt.close(fig)


def _pareto_plot(ctx: ReportContext, d: str, p: dict, name: str) -> None:
    fig, ax = plt.subplots(figsize=(6.0, 4.2), layout="constrained")
    for kind, style in (("centralized", "s--"), ("bits", "o-")):
        pts = sorted(p["fronts"][kind], key=lambda q: q["correct"])
        ax.plot([-q["tokens"] for q in pts], [q["correct"] for q in pts], style,
                label=f"front, {'4-bit cells' if kind == 'bits' else 'centralized'}")
    for w, v in p["workflows"].items():
        ax.scatter([-v["tokens"]], [v["correct"]], marker="x", color="k", zorder=4)
        ax.annotate(w, (-v["tokens"], v["correct"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=8)
    ax.set_xlabel("expected tokens per question (thousands, illustrative)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{d}: accuracy against tokens")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(ctx.workdir / name, dpi=110)
    plt.close(fig)


def render_llm(ctx: ReportContext, data: LLMData) -> Section:
    """The section: Table 1 ours beside the paper's, IC-Q, the gaps, the logs part, figures.

    ``report.json`` key ``llm`` (``llm_summary`` for the short section):
    ``json`` (per dataset the :data:`JSON_KEYS`), ``paper`` (Table 1 and the
    learned column), ``datasets`` (:attr:`LLMData.datasets`), ``logs``,
    ``config``, ``results_file``, ``timings_seconds`` (``study, section``).
    """
    key = "llm_summary" if data.summary else "llm"
    bars = f"{key}_accuracy.png"
    _bars(ctx, data, bars)
    blocks: list = [
        ("p", "This is a calibrated model, not a rerun of the LLM experiment: no LLM is called. "
              "The four-agent pipeline of the paper's section 5.2 is the explicit epoch model "
              "`icsmdp_theory.math_reasoning.math_reasoning(dataset)`, whose per-call "
              "probabilities were fitted (bounded least squares) so that the exact accuracies "
              "of the five predefined workflows match Table 1. Accuracy is the undiscounted "
              "total of the `correct` component (policy evaluation, not simulation); decisions "
              "are discounted with gamma = 0.999. Source of the paper's numbers: "
              f"{PAPER_CITATION}."),
    ]
    head = ["dataset", "", *WORKFLOW_NAMES, "4-bit optimum", "full information", "IC-Q"]
    rows = []
    for d, r in data.table.items():
        lv, lw = PAPER_LEARNED[d]
        rows.append([d, "model", *[_f(r[w]) for w in WORKFLOW_NAMES], _f(r["ais_optimum"]),
                     _f(r["full_optimum"]),
                     "not run" if r["icq"] is None else f"{_f(r['icq'])} ({_icq_name(data, d)})"])
        rows.append([d, "paper", *[_f(PAPER_TABLE1[d][w]) for w in WORKFLOW_NAMES], "", "",
                     f"{_f(lv)} ({lw})"])
    blocks.append(("table", head, rows))
    opt_txt = "; ".join(f"{d}: {_f(e['exact']['ais_optimum'], 4)} = "
                        f"{e['exact']['ais_optimum_workflow'] or 'no named workflow'} "
                        f"({e['exact']['num_policies']} policies)"
                        for d, e in data.datasets.items())
    blocks.append(("p", "The 4-bit optimum is the exact best of every deterministic "
                        "decentralized policy on the reachable 4-bit cells, by enumeration: "
                        f"{opt_txt}. The full-information optimum is the greedy policy of "
                        "Q*_lat, which sees the latent difficulty and whether the answer is "
                        "right; its margin over the 4-bit optimum is what the interface costs."))
    if not data.summary:
        cfg = data.config
        icq_rows = []
        for d, e in data.datasets.items():
            best = max(max(e["exact"]["workflows"].values()), e["exact"]["ais_optimum"])
            for key_, label in (("icq", "tabular, 4-bit cells"),
                                ("icq_interface", "tabular, interface cells"),
                                ("icq_mlp", "MLP, 4-bit cells")):
                r = e[key_]
                wf = ", ".join(w if w is not None else "none" if s is None else f"~{s}"
                               for w, s in zip(r["workflow"], r["same_accuracy"]))
                icq_rows.append([d, label, len(r["accuracy"]), _f(r["worst"], 4),
                                 _f(max(r["accuracy"]), 4), _f(best - r["worst"], 4), wf])
        blocks += [
            ("p", f"IC-Q (`solve(ICQ(...), model)`): tabular, {cfg['icq']['seeds']} seeds, "
                  f"{cfg['icq']['updates']} updates per seed, epsilon-greedy "
                  f"{cfg['icq']['epsilon']}, harmonic steps 10/(k+10) per (cell, successor); MLP "
                  f"(two hidden layers of 64), {cfg['mlp']['seeds']} seeds, "
                  f"{cfg['mlp']['updates']} updates, constant step 0.01. Each seed's greedy "
                  "policy at the last checkpoint is mapped to epoch states and scored by its "
                  "exact accuracy; the column 'IC-Q' of the table above is the worst tabular "
                  "seed on the 4-bit cells. 'Short of best' is the best of the five workflows "
                  "and the 4-bit optimum minus the worst seed; the workflows are those each "
                  "seed's policy equals on the states it reaches ('~Reflect': not the same "
                  "handoffs but the same exact accuracy, e.g. Reflect with a redundant second "
                  "check after the revision, which changes no answer; 'none': neither)."),
            ("table", ["dataset", "learner", "seeds", "worst seed", "best seed", "short of best",
                       "workflow per seed"], icq_rows),
            ("p", "Which workflow IC-Q matches, and why. IC-Q's fixed point is the greedy "
                  "policy of the AIS optimum Q_hat* on the 4-bit cells (stationary reference), "
                  "computed exactly: "
                  + "; ".join(f"{d} {e['exact']['ais_greedy_workflow'] or 'no named workflow'} "
                              f"{_f(e['exact']['ais_greedy'], 4)} (4-bit optimum "
                              f"{_f(e['exact']['ais_optimum'], 4)})"
                              for d, e in data.datasets.items())
                  + ". Where the two differ, the 4-bit cells merge paths the optimum tells "
                  "apart (on MMLU-Elem the commissioner's cell after a check holds checked "
                  "direct answers and checked CoT answers, which makes the checker look "
                  "better than it is there): the map's AIS gap, not a failure to converge. "
                  "The interface cells (the bits plus the logged round and length) are shown "
                  "for comparison."),
        ]
    gap_rows = []
    for d, e in data.datasets.items():
        for ref in ("uniform", "stationary"):
            g = e["exact"]["gaps"][ref]
            gap_rows.append([d, ref, _g(g["epsilon_phi"]), _g(g["delta_phi"]),
                             _g(g["alpha_tight"]), _g(g["alpha_paper"]), _g(g["max_q_gap"]),
                             _g(g["policy_loss"])])
    blocks += [
        ("p", "AIS gaps of the 4-bit map (estimators.gaps.gap_report, SPEC 5) against the exact "
              "Q*_lat. With gamma = 0.999 every alpha carries a factor of about "
              "1/(1 - gamma) = 1000 (or 1/(1 - gamma_bar)): an epsilon_phi of 0.5 (a cell "
              "mixing right and wrong answers at STOP) gives alpha_tight near 500. The bounds "
              "are correct but loose at this discount; epsilon_phi, delta_phi and the realized "
              "gaps (max |Q_hat - Q*| and the policy loss) are the informative numbers."),
        ("table", ["dataset", "reference", "epsilon_phi", "delta_phi", "alpha_tight",
                   "alpha_paper", "max Q gap", "policy loss"], gap_rows),
    ]
    attr_rows = []
    for d, e in data.datasets.items():
        for c in e["exact"]["gaps"]["uniform"]["cells"][:3]:
            attr_rows.append([d, c["agent"], c["bits"], _g(c["mass"]), _g(c["epsilon"]),
                              _g(c["delta"]), _g(c["contribution"])])
    blocks += [
        ("p", "Attribution (uniform reference): the cells contributing most, "
              "(epsilon + eta)/(1 - gamma_bar), with the observed bits given/modified/"
              "checked/judged."),
        ("table", ["dataset", "agent", "bits", "mass", "epsilon", "delta", "contribution"],
         attr_rows),
        ("figure", bars, "Accuracy per dataset: the calibrated model's exact values (blue) "
                         "beside Table 1 (orange; the paper has no 4-bit or full-information "
                         "optimum)."),
    ]
    if data.logs is not None:
        lg = data.logs
        lrows = []
        for k in ("epsilon_phi", "delta_phi", "alpha_tight", "max_q_gap", "policy_loss"):
            a, b = lg["bits"][k], lg["interface"][k]
            lrows.append([k, _g(a["value"]), "n/a" if a["interval"] is None else
                          f"[{_g(a['interval'][0])}, {_g(a['interval'][1])}]",
                          _g(b["value"]), "n/a" if b["interval"] is None else
                          f"[{_g(b['interval'][0])}, {_g(b['interval'][1])}]"])
        blocks += [
            ("p", f"The same pipeline through its logs ({lg['dataset']}): {lg['episodes']} "
                  f"episodes ({lg['invocations']} invocations) simulated from the model under "
                  "the uniform behavior, each line logging only the interface (given, modified, "
                  "checked, judged, round, length), not the difficulty, whether the answer is "
                  f"right or the pending message. The fitted model has {lg['labels']} labels "
                  f"and {lg['epoch_states']} epoch states; its Markov test: "
                  f"{str(lg['markov_verdict']).rstrip('.')}. Below, the 4-bit map on the fitted model against "
                  f"the logged state itself, with {int(round(100 * lg['level']))}% credible "
                  f"intervals from {lg['draws']} posterior models (estimators.uncertainty."
                  "posterior_gaps, uniform reference). Gaps measured this way are against "
                  "the logged state, not the latent truth: the logs cannot show what they do "
                  "not record."),
            ("table", ["gap", "4-bit map", "interval", "logged state", "interval"], lrows),
        ]
    if not data.summary and data.config["pareto"]:
        for d, e in data.datasets.items():
            name = f"llm_pareto_{d}.png"
            _pareto_plot(ctx, d, e["pareto"], name)
            blocks.append(("figure", name, f"{d}: exact supported fronts of accuracy against "
                                           "expected tokens (totals until STOP), on the 4-bit "
                                           "cells and centralized; crosses mark the five "
                                           "workflows (token costs are illustrative)."))
    out = dict(json=data.table, paper={"table1": PAPER_TABLE1,
                                       "learned": {d: list(v) for d, v in PAPER_LEARNED.items()}},
               datasets=data.datasets, logs=data.logs, config=data.config, seed=data.seed,
               results_file=data.results_file,
               timings_seconds={**data.timings,
                                "section": round(time.perf_counter() - data.started, 3)})
    title = ("LLM workflow (Table 1) on the calibrated model" if not data.summary
             else "LLM workflow on the calibrated model (MathQA)")
    return Section(key=key, title=title, blocks=blocks, data=out)


def llm(ctx: ReportContext) -> Section:
    """The section of ``icsmdp reproduce llm``: :func:`compute_llm` then :func:`render_llm`."""
    ctx.seeds_used["llm"] = ctx.seed
    data = compute_llm(ctx.seed, ctx.quick, **study_options(ctx))
    if data.results_file is not None:
        ctx.campaign_files["llm"] = data.results_file
    return render_llm(ctx, data)


def llm_summary(ctx: ReportContext) -> Section:
    """The default report's short section: MathQA, exact numbers and gaps (no IC-Q, no logs).

    With ``ctx.quick=False`` (``icsmdp report --full``) it is the whole study (:func:`llm`).
    """
    if not ctx.quick:
        return llm(ctx)
    ctx.seeds_used["llm"] = ctx.seed
    data = compute_llm(ctx.seed, True, summary=True, **{**study_options(ctx), "jobs": 1})
    if data.results_file is not None:
        ctx.campaign_files["llm-summary"] = data.results_file
    return render_llm(ctx, data)
