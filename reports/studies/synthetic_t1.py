"""Study T1: the AIS gap predicts the value gap (paper section 5.1).

One synthetic IC-SMDP (:func:`icsmdp_theory.families.synthetic_instance`) is
drawn per seed at ``rho = 1`` and re-mapped to ``ceil(rho |M|)`` observation
cells for every ``rho`` of a grid (:func:`icsmdp_theory.families.synthetic_map`);
dynamics and rewards stay fixed. The family is a setting (``family``,
:data:`icsmdp_theory.families.SYNTHETIC_FAMILIES`): ``"nested"`` (default:
contiguous nested cells, gaps non-decreasing as ``rho`` falls) or
``"cos-mod"`` (``phi_i(m) = m mod ceil(rho |M|)``, the family before issue 15,
whose gaps are not monotone in ``rho``). Per ``rho``:

- the gap report (``estimators.gaps.gap_report``, ``minimax=False``) gives
  ``alpha_tight``, ``alpha_paper``, ``alpha_tv``, ``epsilon_phi``,
  ``delta_phi`` (SPEC section 5) against the exact ``Q*`` of
  ``ModifiedPolicyIteration(tol=1e-10)`` on the base instance;
- one batch of tabular IC-Q runs (``FixedBehavior()``: uniform over
  admissible successors) and the exact value ``v0`` of each seed's converged
  greedy policy (``solvers.records.evaluate_greedy_policies``).

The value gap at ``rho`` is ``mean_seeds v0(rho = 1) - mean_seeds v0(rho)``;
T1 reports its Pearson correlation with ``alpha_tight`` and ``alpha_paper``
(the paper: 0.916).

Sizes
-----
=====  ===========================================  ==========================================
mode   quick (default, CI)                          full (``--full``)
=====  ===========================================  ==========================================
T1     N=4, nX=20, nM=20; rho in {1, .9, .75, .5,   paper scale N=10, nX=120, nM=50;
       .1}; 3 seeds, T=6600; stationary reference   rho in {1, .9, ..., .1, .05}; 5 seeds,
                                                    T=100000; uniform reference
=====  ===========================================  ==========================================

Campaign
--------
T1 is a campaign (:mod:`reports.campaign`): :func:`t1_campaign` has one task
per ``rho`` (:func:`t1_task`, id ``rho=0.75``; the campaign is named ``t1``,
``t1-cos-mod`` for the old family, which names its results file), every task with the study seed
itself, so the numbers do not depend on where or in which order the tasks run
(``jobs=1``, loky workers, a Dask cluster). A worker builds the base instance,
its oracle and long-run law once (:func:`t1_base`, cached) and sends back only
numbers; :func:`t1_data` builds :class:`T1Data` from the results file's
records only. The rows themselves (:func:`t1_row`) are cached per process:
study T2 (:mod:`reports.studies.synthetic_t2`) reuses the quick sweep's rows
for its rho scan. Computing (:func:`compute_t1`: campaign, then
:func:`t1_data`) is apart from rendering (:func:`render_t1`);
:func:`synthetic_t1` composes them into the report section.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Sequence

import matplotlib
import numpy as np

from estimators.gaps import gap_report
from estimators.stationary import stationary_law
from icsmdp_theory.families import (DEFAULT_SYNTHETIC_FAMILY, SYNTHETIC_FAMILIES,
                                    synthetic_bins, synthetic_instance, synthetic_map)
from icsmdp_theory.errors import InvalidArgumentError
from reports.builder import ReportContext, Section
from reports.campaign import Campaign, Task
from reports.studies.runner import run_study, study_number, study_options, study_result
from solvers import ModifiedPolicyIteration, solve
from solvers.icq import ICQ, FixedBehavior
from solvers.records import evaluate_greedy_policies

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["PAPER_T1_CORRELATION", "T1_REPORT_KEYS", "RhoRow", "T1Base", "T1Data",
           "t1_config", "checkpoint_grid", "pearson", "t1_base", "t1_row", "t1_task_id",
           "t1_task", "t1_campaign", "t1_data", "compute_t1", "render_t1", "synthetic_t1",
           "t1_section"]

#: The paper's reported Pearson correlation between value gap and AIS gap (T1).
PAPER_T1_CORRELATION = 0.916

#: Gap-report fields T1 reports (what a task sends back of the gap report).
T1_REPORT_KEYS = ("alpha_tight", "alpha_paper", "alpha_tv", "epsilon_phi", "delta_phi",
                  "max_q_gap", "policy_loss")


def _family_iv(family) -> str:
    if family not in SYNTHETIC_FAMILIES:
        raise InvalidArgumentError(f"`family` must be one of {', '.join(SYNTHETIC_FAMILIES)}, "
                                   f"got {family!r}.")
    return str(family)


def t1_config(quick: bool, family: str = DEFAULT_SYNTHETIC_FAMILY) -> dict:
    """Settings of the rho sweep (module docstring, table "Sizes").

    Parameters
    ----------
    quick : bool
        Reduced sizes (``True``) or paper scale.
    family : {"nested", "cos-mod"}
        The synthetic family (:data:`icsmdp_theory.families.SYNTHETIC_FAMILIES`).

    Returns
    -------
    dict
        ``sizes`` (``num_agents, num_latent, num_interface``), ``rhos``,
        ``seeds``, ``updates`` (IC-Q updates per seed), ``reference``
        (``"stationary"`` or ``"uniform"``, the gap report's reference law)
        and ``family``.
    """
    family = _family_iv(family)
    old = family == "cos-mod"  # the budgets of before issue 15 (its numbers are kept)
    if quick:
        return dict(sizes=dict(num_agents=4, num_latent=20, num_interface=20),
                    rhos=(1.0, 0.9, 0.75, 0.5, 0.1), seeds=3, updates=6600 if old else 200_000,
                    reference="stationary", family=family)
    return dict(sizes=dict(num_agents=10, num_latent=120, num_interface=50),
                rhos=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05), seeds=5,
                updates=100_000 if old else 1_600_000, reference="uniform", family=family)


def checkpoint_grid(updates: int) -> tuple:
    """IC-Q checkpoints up to ``updates``: ``50, 100, ..., 3300``, then ``6600`` doubling.

    >>> checkpoint_grid(12_800)
    (50, 100, 200, 400, 800, 1600, 3300, 6600)
    >>> checkpoint_grid(3300)
    (50, 100, 200, 400, 800, 1600, 3300)
    """
    cks = [50, 100, 200, 400, 800, 1600, 3300]
    c = 6600
    while c < updates:
        cks.append(c)
        c *= 2
    return tuple(k for k in cks if k <= updates)


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two sequences; ``nan`` with fewer than 2 points or no spread.

    >>> round(pearson([1, 2, 3], [2, 4, 6]), 12), pearson([1, 1], [2, 3])
    (1.0, nan)
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class RhoRow:
    """One ``rho`` of the sweep, with the objects behind it (in the process that computed it).

    Attributes
    ----------
    rho : float
    n_bins : int
        ``ceil(rho |M|)``.
    model : ICSMDP
        The re-mapped instance.
    report : GapReport
    record : RunRecord
        The IC-Q batch.
    evaluation : PolicyEvaluation
    seconds : dict
        ``gaps``, ``icq``, ``evaluate`` wall times.
    """

    rho: float
    n_bins: int
    model: Any
    report: Any
    record: Any
    evaluation: Any
    seconds: dict


@dataclass(frozen=True)
class T1Base:
    """The instance at ``rho = 1`` shared by every rho of the sweep.

    Attributes
    ----------
    base : ICSMDP
    oracle : SolveResult
        Its exact ``Q*`` (modified policy iteration, ``tol = 1e-10``).
    law : StationaryResult or None
        The epoch chain's long-run law under the uniform behavior (stationary
        reference only; every successor is admissible everywhere, so it does
        not depend on the observation map).
    seconds : float
        Wall time of building the three.
    """

    base: Any
    oracle: Any
    law: Any
    seconds: float


def _sweep_key(config: dict) -> tuple:
    """The hashable cache key of a sweep configuration (``rhos`` left out; a configuration
    without ``family`` is the default family's)."""
    return (tuple(sorted((k, int(v)) for k, v in config["sizes"].items())),
            int(config["seeds"]), int(config["updates"]), str(config["reference"]),
            _family_iv(config.get("family", DEFAULT_SYNTHETIC_FAMILY)))


@lru_cache(maxsize=4)
def _t1_base(seed: int, key: tuple) -> T1Base:
    sizes, _, _, reference, family = key
    t0 = time.perf_counter()
    base = synthetic_instance(rho=1.0, seed=seed, family=family, **dict(sizes))
    oracle = solve(ModifiedPolicyIteration(tol=1e-10), base)
    law = stationary_law(base) if reference == "stationary" else None
    return T1Base(base=base, oracle=oracle, law=law, seconds=time.perf_counter() - t0)


def t1_base(seed: int, config: dict) -> T1Base:
    """The base instance, its oracle and (stationary reference) its long-run law.

    Cached per ``(seed, sizes, seeds, updates, reference)`` in the calling
    process (each campaign worker builds its own once).

    Parameters
    ----------
    seed : int
        Seed of the instance.
    config : dict
        :func:`t1_config` (``rhos`` is not used).
    """
    return _t1_base(int(seed), _sweep_key(config))


@lru_cache(maxsize=5)  # the quick grid (T2 reuses it); a few full rows at most
def _t1_row(seed: int, key: tuple, rho: float) -> RhoRow:
    _, seeds, updates, reference, family = key
    b = _t1_base(seed, key)
    base, oracle = b.base, b.oracle
    r0 = time.perf_counter()
    model = base.with_observation(synthetic_map(base, rho, family))
    if reference == "stationary":
        rep = gap_report(model, reference="stationary", stationary_law=b.law.law,
                         minimax=False, oracle=oracle)
    else:
        rep = gap_report(model, reference="uniform", minimax=False, oracle=oracle)
    g1 = time.perf_counter()
    settings = ICQ(updates=updates, seeds=seeds, seed=seed, behavior=FixedBehavior(),
                   checkpoints=checkpoint_grid(updates), progress=False)
    rec = solve(settings, model)
    g2 = time.perf_counter()
    ev = evaluate_greedy_policies(model, rec, optimum=oracle)
    g3 = time.perf_counter()
    return RhoRow(rho=rho, n_bins=synthetic_bins(rho, base.num_interface), model=model,
                  report=rep, record=rec, evaluation=ev,
                  seconds={"gaps": g1 - r0, "icq": g2 - g1, "evaluate": g3 - g2})


def t1_row(seed: int, config: dict, rho: float) -> RhoRow:
    """One rho of the sweep: gap report, one IC-Q batch over the seeds, exact evaluation.

    Cached in the calling process (a few rows: study T2 reuses the quick
    sweep's rows for its rho scan).

    Parameters
    ----------
    seed : int
        Seed of the instance and of the IC-Q batch.
    config : dict
        :func:`t1_config` (``rhos`` is not used).
    rho : float
        Retained fraction of the interface.
    """
    return _t1_row(int(seed), _sweep_key(config), float(rho))


def _sweep_config(quick: bool, family: str) -> dict:
    """:func:`t1_config` without ``rhos`` (one task's share of it)."""
    return {k: v for k, v in t1_config(quick, family).items() if k != "rhos"}


def t1_task_id(rho: float) -> str:
    """The task id of ``rho`` in :func:`t1_campaign`: ``rho=0.75``."""
    return f"rho={rho:g}"


def t1_task(params: dict, seed: int) -> dict:
    """One rho (a task of :func:`t1_campaign`): what T1 reports of :func:`t1_row`.

    Parameters
    ----------
    params : dict
        ``rho`` and ``config`` (:func:`t1_config` without ``rhos``).
    seed : int
        The study seed (instance and IC-Q batch).

    Returns
    -------
    dict
        ``rho, n_bins``, the fields :data:`T1_REPORT_KEYS` of the gap report,
        ``v0`` (per seed), ``optimal_v0``, ``seconds`` (``gaps, icq, evaluate``)
        and ``oracle_seconds`` (building the base in this task; 0 when cached).
    """
    b0 = time.perf_counter()
    t1_base(seed, params["config"])
    oracle_seconds = time.perf_counter() - b0
    row = t1_row(seed, params["config"], params["rho"])
    rep, ev = row.report, row.evaluation
    return dict(rho=row.rho, n_bins=int(row.n_bins),
                **{k: float(getattr(rep, k)) for k in T1_REPORT_KEYS},
                v0=[float(v) for v in ev.v0], optimal_v0=float(ev.optimal_v0),
                seconds={k: round(v, 3) for k, v in row.seconds.items()},
                oracle_seconds=round(oracle_seconds, 3))


def _campaign_name(family: str) -> str:
    """``t1`` (default family) or ``t1-<family>``: names the results file."""
    return "t1" if family == DEFAULT_SYNTHETIC_FAMILY else f"t1-{family}"


def t1_campaign(seed: int, quick: bool, family: str = DEFAULT_SYNTHETIC_FAMILY) -> Campaign:
    """T1 as a campaign: one task per ``rho`` of :func:`t1_config` (:func:`t1_task`).

    Every task uses the study seed itself (``Task.seed``): the instance and
    the IC-Q batches are those of the study run in one process.

    Parameters
    ----------
    seed : int
    quick : bool
    family : {"nested", "cos-mod"}
        The synthetic family.

    Returns
    -------
    Campaign
        Named ``t1`` (``t1-cos-mod`` for the old family); its settings hold the
        seed, the mode and the configuration.
    """
    cfg = t1_config(quick, family)
    sweep = _sweep_config(quick, family)
    tasks = tuple(Task(t1_task_id(rho), {"rho": float(rho), "config": sweep}, seed=int(seed))
                  for rho in cfg["rhos"])
    return Campaign(_campaign_name(cfg["family"]), t1_task, tasks, seed=int(seed),
                    settings={"study": "t1", "quick": bool(quick), "config": cfg})


@dataclass(frozen=True)
class T1Data:
    """What T1 computes (JSON-ready, no figure).

    Attributes
    ----------
    seed : int
    config : dict
        :func:`t1_config` with ``rhos`` as a list.
    rows : list of dict
        Per rho: ``rho, n_bins, alpha_tight, alpha_paper, alpha_tv,
        epsilon_phi, delta_phi, max_q_gap, policy_loss, v0_per_seed, v0_mean,
        value_gap`` (mean v0 at rho = 1 minus mean v0 at rho),
        ``value_gap_per_seed``, ``optimal_gap`` (``V*(rho0)`` minus mean v0),
        ``seconds``.
    pearson_alpha_tight, pearson_alpha_paper : float
        Pearson correlation of ``value_gap`` with each alpha over the rhos.
    optimal_v0 : float
        ``V*(rho0)`` of the instance.
    timings : dict
        ``study`` (the tasks' seconds, summed) and ``oracle`` (building the base
        instance and its oracle, summed over the workers that built it), rounded.
    started : float
        ``time.perf_counter()`` when the computation began (the section's
        wall time is measured from it).
    results_file : str or None
        The campaign's results file (``None``: a temporary one).
    """

    seed: int
    config: dict
    rows: list
    pearson_alpha_tight: float
    pearson_alpha_paper: float
    optimal_v0: float
    timings: dict
    started: float
    results_file: str | None = None


def t1_data(seed: int, quick: bool, results: dict, *, results_file: str | None = None,
            started: float | None = None, family: str = DEFAULT_SYNTHETIC_FAMILY) -> T1Data:
    """T1's numbers from the results of :func:`t1_campaign` only.

    Parameters
    ----------
    seed : int
    quick : bool
    results : dict
        Task id -> result (``CampaignRun.results``, read back from the results file).
    results_file : str, optional
        Recorded in the data.
    started : float, optional
        ``time.perf_counter()`` when the computation began (default now).
    family : {"nested", "cos-mod"}
        The synthetic family of the campaign.

    Returns
    -------
    T1Data
    """
    cfg = t1_config(quick, family)
    got = [study_result(results, t1_task_id(rho), "t1") for rho in cfg["rhos"]]
    v_ref = np.asarray(got[0]["v0"], float)  # rho = 1.0 is first in every grid
    rows = []
    for res in got:
        v0 = np.asarray(res["v0"], float)
        rows.append(dict(rho=res["rho"], n_bins=res["n_bins"],
                         **{k: study_number(res[k]) for k in T1_REPORT_KEYS},
                         v0_per_seed=v0.tolist(), v0_mean=float(v0.mean()),
                         value_gap=float(v_ref.mean() - v0.mean()),
                         value_gap_per_seed=(v_ref - v0).tolist(),
                         optimal_gap=float(res["optimal_v0"] - v0.mean()),
                         seconds=dict(res["seconds"])))
    gaps = [r["value_gap"] for r in rows]
    study = sum(sum(r["seconds"].values()) + r["oracle_seconds"] for r in got)
    return T1Data(seed=seed, config={**cfg, "rhos": list(cfg["rhos"])}, rows=rows,
                  pearson_alpha_tight=pearson(gaps, [r["alpha_tight"] for r in rows]),
                  pearson_alpha_paper=pearson(gaps, [r["alpha_paper"] for r in rows]),
                  optimal_v0=float(got[0]["optimal_v0"]),
                  timings={"study": round(study, 3),
                           "oracle": round(sum(r["oracle_seconds"] for r in got), 3)},
                  started=time.perf_counter() if started is None else started,
                  results_file=results_file)


def compute_t1(seed: int, quick: bool, *, results_dir=None, jobs: int | None = None,
               scheduler: Any = None, resume: bool = False, progress: bool = False,
               family: str = DEFAULT_SYNTHETIC_FAMILY) -> T1Data:
    """T1's numbers: :func:`t1_campaign` run by :func:`reports.studies.runner.run_study`,
    then :func:`t1_data`.

    Parameters
    ----------
    seed : int
    quick : bool
    results_dir : path-like, optional
        Keep the results file there (``t1-seed{seed}-{quick|full}.jsonl``,
        ``t1-cos-mod-...`` for the old family); default a temporary file.
    jobs, scheduler, resume, progress :
        As for :func:`reports.campaign.run_campaign` (default: every core).
    family : {"nested", "cos-mod"}
        The synthetic family.

    Returns
    -------
    T1Data
    """
    family = _family_iv(family)
    return run_study(t1_campaign(seed, quick, family), partial(t1_data, family=family),
                     seed=seed, quick=quick,
                     results_dir=results_dir, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=progress)


#: How each family's map reads in the report text.
_MAP_TEXT = {"nested": "ceil(rho |M|) contiguous nested cells of m",
             "cos-mod": "m mod ceil(rho |M|)"}


def _r(x: float) -> str:
    """A correlation for the text (``n/a`` when undefined)."""
    return "n/a (no spread)" if x != x else f"{x:.3f}"


def render_t1(ctx: ReportContext, data: T1Data) -> Section:
    """T1's figure ``synthetic_t1.png``, text and ``report.json`` data.

    ``report.json`` key ``synthetic_t1``: ``config`` (sizes, rhos, seeds,
    updates, reference), ``rows`` (:attr:`T1Data.rows`),
    ``pearson_alpha_tight``, ``pearson_alpha_paper``, ``paper_pearson``,
    ``optimal_v0``, ``results_file`` (the campaign's results file, ``null`` for a
    temporary one), ``timings_seconds`` (``study, oracle, section``).

    Parameters
    ----------
    ctx : ReportContext
        The figure is written to ``ctx.workdir``.
    data : T1Data

    Returns
    -------
    Section
    """
    cfg, rows = data.config, data.rows
    alpha_t = [r["alpha_tight"] for r in rows]
    gaps = [r["value_gap"] for r in rows]
    corr_t, corr_p = data.pearson_alpha_tight, data.pearson_alpha_paper
    ref = f"{cfg['reference']} reference"
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for k, r in enumerate(rows):
        ax.scatter([r["alpha_tight"]] * len(r["value_gap_per_seed"]), r["value_gap_per_seed"],
                   s=12, color="0.6", label="one seed" if k == 0 else None, zorder=2)
    ax.plot(alpha_t, gaps, "o-", color="C0", label="mean over seeds", zorder=3)
    # label each point with its rho; points sharing an alpha get their labels stacked
    seen: dict = {}
    for a, g, r in zip(alpha_t, gaps, rows):
        k = seen.setdefault(round(a, 9), 0)
        seen[round(a, 9)] += 1
        ax.annotate(f"rho {r['rho']:g}", (a, g), textcoords="offset points",
                    xytext=(6, 4 - 12 * k), fontsize=8)
    ax.margins(x=0.12, y=0.1)
    ax.set_xlabel(f"alpha_tight ({ref})")
    ax.set_ylabel("value gap against rho = 1 (mean v0)")
    ax.set_title(f"T1: Pearson r = {_r(corr_t)} (paper {PAPER_T1_CORRELATION})")
    ax.legend(loc="upper left")
    fig.savefig(ctx.workdir / "synthetic_t1.png", dpi=110)
    plt.close(fig)
    sizes = cfg["sizes"]
    table = [[r["rho"], r["n_bins"], r["alpha_tight"], r["alpha_paper"], r["v0_mean"],
              r["value_gap"], r["optimal_gap"]] for r in rows]
    blocks = [
        ("p", f"Synthetic IC-SMDP (icsmdp_theory.families.synthetic_instance, seed {data.seed}): "
              f"N={sizes['num_agents']}, |X|={sizes['num_latent']}, |M|={sizes['num_interface']}, "
              f"p_handoff=0.3, gamma=0.95, family {cfg.get('family', DEFAULT_SYNTHETIC_FAMILY)!r}; "
              f"observation: {_MAP_TEXT[cfg.get('family', DEFAULT_SYNTHETIC_FAMILY)]}. Tabular IC-Q, "
              f"{cfg['seeds']} seeds batched, T={cfg['updates']} updates per seed, fixed uniform "
              f"behavior. The alphas come from gap_report (minimax=False) under the {ref} law. "
              "Value gap = mean v0 of the converged greedy policies at rho=1 minus mean v0 at "
              "rho (exact policy evaluation); optimal gap = V*(rho0) minus mean v0."),
        ("table", ["rho", "bins", f"alpha_tight ({ref})", f"alpha_paper ({ref})", "v0",
                   "value gap", "gap to V*"], table),
        ("p", f"Pearson correlation of value gap with alpha_tight ({ref}): {_r(corr_t)}; with "
              f"alpha_paper: {_r(corr_p)}; the paper reports {PAPER_T1_CORRELATION} "
              f"({len(rows)} rho values here)."),
        ("figure", "synthetic_t1.png", f"T1: value gap of converged IC-Q against the AIS gap "
                                       f"alpha_tight ({ref}), one point per rho."),
    ]
    out = dict(config=cfg, rows=rows, pearson_alpha_tight=corr_t, pearson_alpha_paper=corr_p,
               paper_pearson=PAPER_T1_CORRELATION, optimal_v0=data.optimal_v0,
               results_file=data.results_file,
               timings_seconds={**data.timings,
                                "section": round(time.perf_counter() - data.started, 3)})
    return Section(key="synthetic_t1", title="T1: AIS gap predicts the value gap", blocks=blocks,
                   data=out)


def synthetic_t1(ctx: ReportContext, family: str = DEFAULT_SYNTHETIC_FAMILY) -> Section:
    """The T1 report section: :func:`compute_t1` then :func:`render_t1` (paper section 5.1).

    Runs the campaign with the context's options (:func:`reports.studies.runner.study_options`);
    records ``ctx.seeds_used["synthetic"] = ctx.seed`` and the results file in
    ``ctx.campaign_files["t1"]`` (``"t1-cos-mod"`` for the old family).
    """
    ctx.seeds_used["synthetic"] = ctx.seed
    data = compute_t1(ctx.seed, ctx.quick, family=family, **study_options(ctx))
    if data.results_file is not None:
        ctx.campaign_files[_campaign_name(_family_iv(family))] = data.results_file
    return render_t1(ctx, data)


def t1_section(family: str = DEFAULT_SYNTHETIC_FAMILY):
    """The T1 section function of one synthetic family (for :func:`reports.builder.build_report`).

    >>> t1_section() is synthetic_t1, t1_section("cos-mod").__name__
    (True, 'synthetic_t1_cos_mod')
    """
    family = _family_iv(family)
    if family == DEFAULT_SYNTHETIC_FAMILY:
        return synthetic_t1

    def section(ctx: ReportContext) -> Section:
        return synthetic_t1(ctx, family)
    section.__name__ = section.__qualname__ = f"synthetic_t1_{family.replace('-', '_')}"
    return section
