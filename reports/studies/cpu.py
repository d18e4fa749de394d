r"""Study: multi-agent CPU programming (paper section 5.3), the adaptable regime.

The instance is :func:`icsmdp_theory.cpu_programming.cpu_programming`: six
agents (starter, two loaders, ALU, selector, writer) with *modes* (the local
operation) turn registers ``(A, B, MEM)`` in ``0..V-1`` into ``MEM = t`` for a
target ``t``; every agent learns the pair (mode, successor), which is outside
Theorem 1 (the paper's adaptable regime). Three parts:

**Exact optimum** (``exact`` task). ``Q*_lat`` over ``(s, (a, c'))`` from the
centralized oracle (:func:`solvers.oracle.centralized_oracle`; ``V^4 * 6``
epoch states: 3,750 at ``V = 5``, 24,576 at ``V = 8``), the accuracy of its
greedy policy (:func:`cpu_accuracy`) on every target, and the accuracy of the
AIS greedy policy (``Q_hat*`` of the learning map, uniform reference) the
decentralized agents can at best reach with what they see.

**Gaps against register locality** (``gaps`` task). For visible-block maps
(:func:`icsmdp_theory.cpu_programming.cpu_visible_map`) of width 1, 2, 3 and
shifts (a shift moves an agent's block off its own registers):
``gap_report(model.with_observation(map), reference="uniform", minimax=False)``
(``epsilon_phi``, ``delta_phi``, ``alpha_tight`` and the realized
``max_q_gap`` and ``policy_loss``) beside each agent's register locality
(:func:`icsmdp_theory.cpu_programming.cpu_locality`) and their mean.

**Learning** (``learn`` tasks, one per encoding, training fraction and
replicate ``r``; replicate seed ``1000 * seed + r`` draws both the training
targets and the IC-Q seed, so the two encodings see the same targets).
MLP IC-Q (``ICQ(learner="mlp", features=cpu_features(V, w, s, encoding))``,
numbers: ``"absolute"`` = the visible registers, the target and their
differences; ``"relative"`` = the differences only) on the learning map,
trained on the instance whose initial targets are
``cpu_targets(V, fraction, seed=replicate seed)`` (a random ``fraction`` of the
integer range); the greedy policy of the last checkpoint is then run from
every initial state ``(A, B, MEM)`` for every target *not* in the training set
(:func:`cpu_accuracy`, exact: the dynamics are deterministic). At fraction
1 no target is unseen: the accuracy is on every target (all seen). Each
replicate draws its own training targets and IC-Q seed; the table gives the
mean over replicates with a 95 % Student-t interval, beside the paper's ~80 %
(:data:`PAPER_CPU_ACCURACY`).

Sizes
-----
=========  =========================================  =========================================
part       quick (default)                             full (``--full``)
=========  =========================================  =========================================
instance   ``V = 5`` (625 interface states)            ``V = 8`` (4,096 interface states)
learning   width 2, shift 0; 2 encodings x 3 fractions   width 2, shift 0; 2 encodings x 3
           x 5 replicates, 20,000 updates, MLP         fractions x 10 replicates, 200,000
           (64, 64)                                    updates, MLP (64, 64)
gaps       widths 1, 2, 3 (shifts 0, 1; width 3       widths 1, 2, shifts 0, 1 (width 3 is
           shift 0 only)                               injective: zero gaps, tested)
=========  =========================================  =========================================

Why 200,000 updates at full size: in a measured run with 500,000 (seed 0,
absolute encoding, 16 replicates of fractions 0.2 and 0.5), the greedy policy
reached the training targets from 97.7 % to 100 % of the starts already at the
125,000 checkpoint, and the unseen-target accuracy at 125,000, 250,000 and
500,000 moved up or down by replicate with no trend (e.g. 0.93, 0.78, 0.48 and
0.83, 0.91, 0.94), at about 30 s per 500,000-update run on two loaded cores.

Common settings: epsilon-greedy 0.3, constant step 0.01 (ICQ's MLP default),
checkpoints at ``T/4, T/2, T`` (the learning curve), ``track_linearization=False``
(the ``eps_0`` tracking costs about 4 s per checkpoint at these sizes and is not
used here).

Measured (seed 0; ``icsmdp reproduce cpu [--full] --jobs 2``, 20 s quick and
3 min 16 s full wall on two cores): ``Q*`` reaches the target from every start;
the AIS greedy policy of the width-2 map from 100 % (``V = 5``) and 99.4 %
(``V = 8``). MLP IC-Q, mean over replicates [95 % interval], unseen targets
(all targets at 100 %):

==========  ========================  ========================
fraction    quick ``V = 5``, 5 reps   full ``V = 8``, 10 reps
==========  ========================  ========================
absolute    20 %: 25.1 [7.9, 42.2]    20 %: 66.0 [48.0, 84.0]
            50 %: 74.9 [45.5, 100]    50 %: 95.4 [92.1, 98.7]
            100 %: 98.2 [93.8, 100]   100 %: 99.8 [99.6, 100]
relative    20 %: 56.0 [8.6, 100]     20 %: 96.5 [95.0, 98.0]
            50 %: 84.3 [60.0, 100]    50 %: 88.5 [66.2, 100] (one
                                      replicate diverged: 0 %)
            100 %: 99.5 [98.6, 100]   100 %: 99.8 [99.4, 100]
==========  ========================  ========================

At ``V = 5`` a 20 % fraction is a single training target. Encoding the
observation relative to the target (differences only) carries what was
learned to unseen targets far better than absolute values at 20 %. The sup
gaps do not follow locality: ``delta_phi`` is ``1 - 1/V`` for every map narrower
than 3 (a successor always sees some register the agent does not), and
``alpha_tight`` is 39 to 160 (``V = 5``) and 46 to 175 (``V = 8``). The
realized policy loss of the AIS greedy policy is lower with every block on
its agent's own registers (shift 0: 9.5 at width 1 and 1.8 / 15.9 at width 2
for ``V = 5`` / ``V = 8``) than with the blocks shifted off them (18.5 at both
widths and sizes); width 1 with shift 0 also hides ``A`` from the writer,
whose STOP reward then aliases (``epsilon_phi = 10 (1 - 1/V)``).

The study is a campaign (:mod:`reports.campaign`): :func:`cpu_campaign`,
:func:`cpu_data` (from the results only), :func:`compute_cpu`,
:func:`render_cpu`, the section :func:`cpu` of ``icsmdp reproduce cpu``.

Examples
--------
>>> from icsmdp_theory.cpu_programming import cpu_programming
>>> from solvers.oracle import centralized_oracle
>>> model = cpu_programming(values=3)
>>> sol = centralized_oracle(model).solution
>>> cpu_accuracy(3, epoch_choice(model, sol.policy), range(3), model.horizon)
1.0
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import matplotlib
import numpy as np
from scipy import stats

from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.cpu_programming import (CPU_AGENTS, CPU_ENCODINGS, cpu_block, cpu_encode, cpu_features,
                                           cpu_locality, cpu_programming, cpu_step, cpu_targets,
                                           cpu_visible_map)
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from estimators.gaps import gap_report
from reports.builder import ReportContext, Section
from reports.campaign import Campaign, Task
from reports.studies.runner import run_study, study_options, study_result
from solvers import solve
from solvers.icq import ICQ, EpsilonGreedy, StepSize, choice_cells
from solvers.oracle import centralized_oracle
from solvers.records import greedy_cell_policies

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["PAPER_CPU_ACCURACY", "CPU_FRACTIONS", "CPU_KEYS", "cpu_config", "cpu_accuracy",
           "cell_choice", "epoch_choice", "mean_interval", "exact_task", "gaps_task",
           "learn_task", "cpu_task", "cpu_campaign", "CPUData", "cpu_data", "compute_cpu",
           "render_cpu", "cpu"]

#: The paper's accuracy on unseen targets (section 5.3: "~80%").
PAPER_CPU_ACCURACY = 0.8
#: Training fractions of the integer range.
CPU_FRACTIONS = (0.2, 0.5, 1.0)
#: ``report.json`` keys of the cpu section.
CPU_KEYS = ("config", "exact", "gaps", "learning", "paper_accuracy", "results_file",
            "timings_seconds")


def cpu_config(quick: bool) -> dict:
    """The study's sizes (module docstring, "Sizes")."""
    common = dict(width=2, shift=0, fractions=list(CPU_FRACTIONS), encodings=list(CPU_ENCODINGS),
                  hidden=[64, 64], epsilon=0.3,
                  step=0.01, gap_maps=[[1, 0], [1, 1], [2, 0], [2, 1], [3, 0]])
    if quick:
        return dict(values=5, replicates=5, updates=20_000, **common)
    # width 3 (injective: every gap is 0) is left out at V = 8: gap_report's AIS of 24,576
    # singleton cells passed 13 GB of memory after 2.5 minutes (measured, then stopped)
    common["gap_maps"] = [m for m in common["gap_maps"] if m[0] < 3]
    return dict(values=8, replicates=10, updates=200_000, **common)


# ================================================================ scoring
def cell_choice(model: ICSMDP, choice_per_cell: np.ndarray) -> Callable:
    """``policy(i, m) -> j`` of a per-cell choice array (cells of ``model``'s maps)."""
    offs = cell_offsets(model.num_observations)
    maps = [a.observation[:, 0] for a in model.agents]
    pol = np.asarray(choice_per_cell, dtype=np.int64)
    return lambda i, m: pol[offs[i] + maps[i][m]]


def epoch_choice(model: ICSMDP, choice_per_epoch_state: np.ndarray) -> Callable:
    """``policy(i, m) -> j`` of a choice per epoch state ``s = m N + i`` (``nX = nL = 1``)."""
    pol = np.asarray(choice_per_epoch_state, dtype=np.int64)
    N = model.num_agents
    return lambda i, m: pol[np.asarray(m) * N + i]


def cpu_accuracy(values: int, policy: Callable, targets: Sequence[int], horizon: int) -> float:
    """Fraction of initial states reaching ``MEM = t`` under a deterministic choice policy.

    Every ``(A, B, MEM)`` in ``0..V-1`` and every target in ``targets`` (the
    initial law restricted to them: uniform), the starter first; each step the
    active agent ``i`` picks ``j = policy(i, m)``, runs mode ``j // 7``
    (:func:`icsmdp_theory.cpu_programming.cpu_step`) and hands to ``j mod 7``;
    success when it hands to STOP with ``MEM = t`` within ``horizon`` invocations.
    """
    V = int(values)
    tg = np.asarray(list(targets), dtype=np.int64)
    if tg.size == 0:
        raise InvalidArgumentError("`targets` must not be empty.")
    N = len(CPU_AGENTS)
    a, b, mem, t = (x.ravel() for x in np.meshgrid(np.arange(V), np.arange(V), np.arange(V), tg,
                                                    indexing="ij"))
    agent = np.zeros(a.size, np.int64)
    done = np.zeros(a.size, bool)
    ok = np.zeros(a.size, bool)
    for _ in range(int(horizon)):
        live = np.flatnonzero(~done)
        if live.size == 0:
            break
        m = cpu_encode(a[live], b[live], mem[live], t[live], V)
        cur = agent[live]
        for i in range(N):
            idx = live[cur == i]
            if idx.size == 0:
                continue
            k, c = np.divmod(policy(i, m[cur == i]), N + 1)
            for kk in np.unique(k):
                s = idx[k == kk]
                a[s], b[s], mem[s] = cpu_step(a[s], b[s], mem[s], i, int(kk), V)
            stop = c == N
            done[idx[stop]] = True
            ok[idx[stop]] = mem[idx[stop]] == t[idx[stop]]
            agent[idx[~stop]] = c[~stop]
    return float(ok.mean())


def mean_interval(x: Sequence[float], level: float = 0.95) -> dict:
    """Mean and Student-t interval of replicate values (``None`` bounds with one value)."""
    x = np.asarray(list(x), float)
    mean = float(x.mean())
    if x.size < 2:
        return dict(mean=mean, low=None, high=None, n=int(x.size))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return dict(mean=mean, low=max(0.0, mean - half), high=min(1.0, mean + half), n=int(x.size))


# ================================================================ tasks
def exact_task(params: dict, seed: int) -> dict:
    """``Q*`` greedy accuracy on every target and the AIS greedy accuracy of the learning map."""
    V, w, s = int(params["values"]), int(params["width"]), int(params["shift"])
    t0 = time.perf_counter()
    full = cpu_programming(values=V)
    orc = centralized_oracle(full)
    t1 = time.perf_counter()
    acc_star = cpu_accuracy(V, epoch_choice(full, orc.solution.policy), range(V), full.horizon)
    learn = full.with_observation(cpu_visible_map(V, w, s))
    g = gap_report(learn, reference="uniform", minimax=False, oracle=orc.solution)
    pol = greedy_cell_policies(np.asarray(g.q_hat), choice_cells(learn))
    acc_ais = cpu_accuracy(V, cell_choice(learn, pol), range(V), full.horizon)
    return dict(num_epoch_states=int(full.num_epoch_states), num_choices=int(full.num_choices),
                v0=float(orc.v0), oracle_error_bound=float(orc.solution.error_bound),
                q_star_accuracy=acc_star, ais_greedy_accuracy=acc_ais,
                seconds={"oracle": round(t1 - t0, 3), "rest": round(time.perf_counter() - t1, 3)})


def gaps_task(params: dict, seed: int) -> dict:
    """The uniform-reference gaps of one visible-block map and its register locality."""
    V, w, s = int(params["values"]), int(params["width"]), int(params["shift"])
    t0 = time.perf_counter()
    model = cpu_programming(values=V, width=w, shift=s)
    g = gap_report(model, reference="uniform", minimax=False)
    loc = [cpu_locality(i, w, s) for i in range(len(CPU_AGENTS))]
    return dict(width=w, shift=s, locality=loc, mean_locality=float(np.mean(loc)),
                blocks=[list(cpu_block(i, w, s)) for i in range(len(CPU_AGENTS))],
                epsilon_phi=float(g.epsilon_phi), delta_phi=float(g.delta_phi),
                alpha_tight=float(g.alpha_tight), max_q_gap=float(g.max_q_gap),
                policy_loss=float(g.policy_loss), gamma_bar=float(g.gamma_bar),
                seconds=round(time.perf_counter() - t0, 3))


def learn_task(params: dict, seed: int) -> dict:
    """MLP IC-Q on a training fraction of the targets; accuracy on seen and unseen targets."""
    V, w, s = int(params["values"]), int(params["width"]), int(params["shift"])
    f, r = float(params["fraction"]), int(params["replicate"])
    rep_seed = int(seed) * 1000 + r
    train = cpu_targets(V, f, seed=rep_seed)
    unseen = np.setdiff1d(np.arange(V), train)
    model = cpu_programming(values=V, width=w, shift=s, targets=train)
    T = int(params["updates"])
    t0 = time.perf_counter()
    rec = solve(ICQ(learner="mlp", updates=T, seeds=1, seed=rep_seed,
                    features=cpu_features(V, w, s, params["encoding"]), hidden=tuple(params["hidden"]),
                    behavior=EpsilonGreedy(epsilon=float(params["epsilon"])),
                    step=StepSize(rule="constant", c=float(params["step"])),
                    checkpoints=(T // 4, T // 2), track_linearization=False,
                    progress=False), model)
    t1 = time.perf_counter()
    adm = choice_cells(model)
    curve = []
    for k, upd in enumerate(rec.checkpoints):
        pol = cell_choice(model, greedy_cell_policies(rec.q[k, 0], adm))
        curve.append(dict(updates=int(upd),
                          seen=cpu_accuracy(V, pol, train, model.horizon),
                          unseen=None if unseen.size == 0 else
                          cpu_accuracy(V, pol, unseen, model.horizon)))
    last = curve[-1]
    return dict(fraction=f, replicate=r, encoding=params["encoding"], seed=rep_seed,
                train_targets=train.tolist(),
                unseen_targets=unseen.tolist(), seen_accuracy=last["seen"],
                unseen_accuracy=last["unseen"],
                accuracy=last["seen"] if last["unseen"] is None else last["unseen"],
                curve=curve, status=rec.status,
                seconds={"icq": round(t1 - t0, 3), "accuracy": round(time.perf_counter() - t1, 3)})


_TASKS = {"exact": exact_task, "gaps": gaps_task, "learn": learn_task}


def cpu_task(params: dict, seed: int) -> dict:
    """One task of :func:`cpu_campaign` (``params["part"]``: exact, gaps or learn)."""
    return _TASKS[params["part"]](params, seed)


def _learn_id(e: str, f: float, r: int) -> str:
    return f"learn:{e}:fraction={f:g}:replicate={r}"


def cpu_campaign(seed: int, quick: bool) -> Campaign:
    """The cpu study as a campaign: ``exact``, one ``gaps:w=..:s=..`` per map, one ``learn``
    task per (encoding, fraction, replicate), the learning tasks first (the longest)."""
    cfg = cpu_config(quick)
    base = dict(values=cfg["values"], width=cfg["width"], shift=cfg["shift"])
    tasks = [Task(_learn_id(e, f, r), dict(part="learn", encoding=e, fraction=f, replicate=r,
                                           updates=cfg["updates"], hidden=cfg["hidden"],
                                           epsilon=cfg["epsilon"], step=cfg["step"], **base),
                  seed=int(seed))
             for e in cfg["encodings"] for f in cfg["fractions"] for r in range(cfg["replicates"])]
    tasks.append(Task("exact", dict(part="exact", **base), seed=int(seed)))
    tasks += [Task(f"gaps:w={w}:s={s}", dict(part="gaps", values=cfg["values"], width=w, shift=s),
                   seed=int(seed)) for w, s in cfg["gap_maps"]]
    return Campaign("cpu", cpu_task, tuple(tasks), seed=int(seed),
                    settings={"study": "cpu", "quick": bool(quick), "config": cfg})


@dataclass(frozen=True)
class CPUData:
    """What the cpu study computes (JSON-ready, no figure).

    Attributes
    ----------
    seed : int
    config : dict
        :func:`cpu_config`.
    exact : dict
        :func:`exact_task`'s result.
    gaps : list of dict
        :func:`gaps_task`'s results in the order of ``config["gap_maps"]``.
    learning : dict
        Per encoding and fraction (key ``f"{encoding}:{fraction:g}"``): ``encoding``,
        ``fraction``, ``replicates`` (the :func:`learn_task` results) and ``accuracy``
        (:func:`mean_interval` of their ``accuracy``:
        unseen targets, or every target at fraction 1), ``seen`` (the same on the
        training targets).
    started : float
    results_file : str or None
    """

    seed: int
    config: dict
    exact: dict
    gaps: list
    learning: dict
    started: float
    results_file: str | None = None


def cpu_data(seed: int, quick: bool, results: dict, *, results_file: str | None = None,
             started: float | None = None) -> CPUData:
    """The cpu study's numbers from the results of :func:`cpu_campaign` only."""
    cfg = cpu_config(quick)
    learning = {}
    for e, f in ((e, f) for e in cfg["encodings"] for f in cfg["fractions"]):
        reps = [study_result(results, _learn_id(e, f, r), "cpu") for r in range(cfg["replicates"])]
        learning[f"{e}:{f:g}"] = dict(encoding=e, fraction=f, replicates=reps,
                                  accuracy=mean_interval([x["accuracy"] for x in reps]),
                                  seen=mean_interval([x["seen_accuracy"] for x in reps]),
                                  unseen=all(x["unseen_accuracy"] is not None for x in reps))
    gaps = [study_result(results, f"gaps:w={w}:s={s}", "cpu") for w, s in cfg["gap_maps"]]
    return CPUData(seed=seed, config=cfg, exact=study_result(results, "exact", "cpu"), gaps=gaps,
                   learning=learning,
                   started=time.perf_counter() if started is None else started,
                   results_file=results_file)


def compute_cpu(seed: int, quick: bool, *, results_dir=None, jobs: int | None = None,
                scheduler: Any = None, resume: bool = False, progress: bool = False) -> CPUData:
    """:func:`cpu_campaign` run by :func:`reports.studies.runner.run_study`, then :func:`cpu_data`."""
    return run_study(cpu_campaign(seed, quick), cpu_data, seed=seed, quick=quick,
                     results_dir=results_dir, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=progress)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def render_cpu(ctx: ReportContext, data: CPUData) -> Section:
    """The cpu figure ``cpu.png``, text and ``report.json`` data (keys :data:`CPU_KEYS`)."""
    cfg, ex = data.config, data.exact
    V = cfg["values"]
    fr = list(data.learning)
    fig, ax = plt.subplots(figsize=(7.0, 4.0), layout="constrained")
    x = np.arange(len(fr))
    acc = [data.learning[k]["accuracy"] for k in fr]
    lo = [a["mean"] - (a["low"] if a["low"] is not None else a["mean"]) for a in acc]
    hi = [(a["high"] if a["high"] is not None else a["mean"]) - a["mean"] for a in acc]
    colors = [f"C{cfg['encodings'].index(data.learning[k]['encoding'])}" for k in fr]
    ax.bar(x, [a["mean"] for a in acc], 0.6, yerr=[lo, hi], capsize=4, color=colors)
    for r in range(cfg["replicates"]):
        ax.plot(x, [data.learning[k]["replicates"][r]["accuracy"] for k in fr], "k.", ms=4)
    ax.axhline(PAPER_CPU_ACCURACY, color="k", lw=0.8, ls=":", label="paper: ~80%")
    ax.axhline(ex["q_star_accuracy"], color="C2", lw=0.8, ls="--", label="greedy Q* (exact)")
    ax.set_xticks(x, [f"{data.learning[k]['encoding']}\n{data.learning[k]['fraction']:.0%}"
                      for k in fr], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (unseen targets; all at 100%)")
    ax.set_title(f"CPU programming, V = {V}: MLP IC-Q by encoding and training fraction")
    fig.legend(loc="outside upper center", ncols=2, fontsize=8)
    fig.savefig(ctx.workdir / "cpu.png", dpi=110)
    plt.close(fig)
    rows = []
    for k in fr:
        L = data.learning[k]
        a = L["accuracy"]
        interval = "n/a" if a["low"] is None else f"[{_pct(a['low'])}, {_pct(a['high'])}]"
        rows.append([L["encoding"], f"{L['fraction']:.0%}", "unseen" if L["unseen"] else "all (seen)",
                     _pct(a["mean"]), interval, " ".join(_pct(r["accuracy"]) for r in L["replicates"]),
                     _pct(L["seen"]["mean"]),
                     "; ".join(str(r["train_targets"]) for r in L["replicates"]),
                     ", ".join(f"{n}: {r['status']}" for n, r in enumerate(L["replicates"])
                               if r["status"] != "completed") or "none"])
    grows = [[g["width"], g["shift"], " ".join(f"{x:.2g}" for x in g["locality"]),
              f"{g['mean_locality']:.3f}", f"{g['epsilon_phi']:.4g}", f"{g['delta_phi']:.4g}",
              f"{g['alpha_tight']:.4g}", f"{g['max_q_gap']:.4g}", f"{g['policy_loss']:.4g}"]
             for g in data.gaps]
    blocks = [
        ("p", f"Six adaptable agents ({', '.join(CPU_AGENTS)}; "
              "icsmdp_theory.cpu_programming) set MEM to a target t from registers (A, B, MEM) "
              f"in 0..{V - 1}; each invocation picks a mode (the local operation) and a "
              f"successor (J = {ex['num_choices']} choices), costs 0.5, and the writer's STOP "
              f"with MEM = t pays 10. Agents see a visible block of width {cfg['width']} "
              f"(shift {cfg['shift']}) plus the target. Exact optimum over "
              f"{ex['num_epoch_states']} epoch states: the greedy Q* policy reaches the target "
              f"from {_pct(ex['q_star_accuracy'])} of the initial states; the AIS greedy policy "
              f"of the learning map (the best IC-Q fixed point) from "
              f"{_pct(ex['ais_greedy_accuracy'])}."),
        ("p", f"MLP IC-Q (hidden {cfg['hidden']}, {cfg['updates']} updates, epsilon "
              f"{cfg['epsilon']}, constant step {cfg['step']}; inputs, scaled by 1/(V-1): "
              "'absolute' = the visible registers, the target and their differences, "
              "'relative' = the differences only) trained on a random fraction of the "
              "targets, scored on the targets it never saw (every initial (A, B, MEM)); one "
              "row per fraction, mean over replicates (each its own targets and seed) with a "
              f"95% Student-t interval. Paper: ~{PAPER_CPU_ACCURACY:.0%} on unseen targets with "
              "20% of the range. A run whose estimates blow up (status 'diverged': Q not "
              "finite) is kept in the mean: its greedy policy then takes the first admissible "
              "choice everywhere and never reaches a target."),
        ("table", ["encoding", "fraction", "scored on", "accuracy (mean)", "95% interval", "per replicate",
                   "accuracy on training targets (mean)", "training targets",
                   "runs not completed (replicate: status)"], rows),
        ("p", "AIS gaps of visible-block maps (uniform reference, SPEC 5) against register "
              "locality (fraction of the registers an agent's modes touch inside its block, per "
              "agent in the order above; width 3 sees everything). delta_phi is a sup over "
              "cells and choices of a total variation between deterministic moves: it is "
              "1 - 1/V^h as soon as some successor's block holds h registers the agent cannot "
              "see, whatever the agent's own locality; the realized gaps (max |Q* - Q_hat* o phi|, "
              "policy loss of the AIS greedy policy) show what the map costs."),
        ("table", ["width", "shift", "locality per agent", "mean locality", "epsilon_phi",
                   "delta_phi", "alpha_tight", "max Q gap", "policy loss"], grows),
        ("figure", "cpu.png", "CPU programming: accuracy of MLP IC-Q on unseen targets by "
                              "training fraction (bars: mean and 95% interval; dots: replicates)."),
    ]
    out = dict(config=cfg, exact=ex, gaps=data.gaps, learning=data.learning,
               paper_accuracy=PAPER_CPU_ACCURACY, results_file=data.results_file,
               timings_seconds={"section": round(time.perf_counter() - data.started, 3)})
    return Section(key="cpu", title="Multi-agent CPU programming (adaptable agents)",
                   blocks=blocks, data=out)


def cpu(ctx: ReportContext) -> Section:
    """The cpu report section: :func:`compute_cpu` then :func:`render_cpu`."""
    ctx.seeds_used["cpu"] = ctx.seed
    data = compute_cpu(ctx.seed, ctx.quick, **study_options(ctx))
    if data.results_file is not None:
        ctx.campaign_files["cpu"] = data.results_file
    return render_cpu(ctx, data)
