"""Study T1: the AIS gap predicts the value gap (paper section 5.1).

One synthetic IC-SMDP (:func:`icsmdp_theory.families.synthetic_instance`) is
drawn per seed at ``rho = 1`` and re-mapped to ``phi_i(m) = m mod ceil(rho |M|)``
for every ``rho`` of a grid (:func:`icsmdp_theory.families.synthetic_map`);
dynamics and rewards stay fixed. Per ``rho``:

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
                                                    T=100000; uniform reference; the rhos
                                                    run in worker processes (one per core)
=====  ===========================================  ==========================================

The rho sweep (:func:`synthetic_rho_study`) is cached per ``(seed, quick)``;
study T2 (:mod:`reports.studies.synthetic_t2`) reuses the quick sweep for its
rho scan. Computing (:func:`compute_t1`) is apart from rendering
(:func:`render_t1`); :func:`synthetic_t1` composes them into the report section.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import matplotlib
import numpy as np

from estimators.gaps import gap_report
from estimators.stationary import stationary_law
from icsmdp_theory.families import synthetic_bins, synthetic_instance, synthetic_map
from reports.builder import ReportContext, Section
from reports.studies.workers import map_in_workers, worker_processes
from solvers import ModifiedPolicyIteration, solve
from solvers.icq import ICQ, FixedBehavior
from solvers.records import evaluate_greedy_policies

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["PAPER_T1_CORRELATION", "T1_REPORT_KEYS", "RhoRow", "RhoStudy", "T1Data",
           "t1_config", "checkpoint_grid", "pearson", "synthetic_rho_study", "compute_t1",
           "render_t1", "synthetic_t1"]

#: The paper's reported Pearson correlation between value gap and AIS gap (T1).
PAPER_T1_CORRELATION = 0.916

#: Gap-report fields T1 reports (all a worker process sends back).
T1_REPORT_KEYS = ("alpha_tight", "alpha_paper", "alpha_tv", "epsilon_phi", "delta_phi",
                  "max_q_gap", "policy_loss")

#: Fields of the greedy-policy evaluation T1 reports.
_EVALUATION_KEYS = ("v0", "optimal_v0")


def t1_config(quick: bool) -> dict:
    """Settings of the rho sweep (module docstring, table "Sizes").

    Parameters
    ----------
    quick : bool
        Reduced sizes (``True``) or paper scale.

    Returns
    -------
    dict
        ``sizes`` (``num_agents, num_latent, num_interface``), ``rhos``,
        ``seeds``, ``updates`` (IC-Q updates per seed) and ``reference``
        (``"stationary"`` or ``"uniform"``, the gap report's reference law).
    """
    if quick:
        return dict(sizes=dict(num_agents=4, num_latent=20, num_interface=20),
                    rhos=(1.0, 0.9, 0.75, 0.5, 0.1), seeds=3, updates=6600,
                    reference="stationary")
    return dict(sizes=dict(num_agents=10, num_latent=120, num_interface=50),
                rhos=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05), seeds=5,
                updates=100_000, reference="uniform")


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


class _Reported:
    """The named attributes of a result, copied (picklable and small)."""

    def __init__(self, obj: Any, keys: Sequence[str]):
        for k in keys:
            setattr(self, k, getattr(obj, k))


@dataclass(frozen=True)
class RhoRow:
    """One ``rho`` of the sweep.

    Attributes
    ----------
    rho : float
    n_bins : int
        ``ceil(rho |M|)``.
    model : ICSMDP or None
        The re-mapped instance (``None`` in a worker process's row).
    report : GapReport
        Or, from a worker process, an object with the fields :data:`T1_REPORT_KEYS` only.
    record : RunRecord or None
        The IC-Q batch (``None`` in a worker process's row).
    evaluation : PolicyEvaluation
        Or, from a worker process, an object with ``v0`` and ``optimal_v0`` only.
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
class RhoStudy:
    """The rho sweep behind T1 (and T2's rho scan).

    Attributes
    ----------
    config : dict
        :func:`t1_config`.
    base : ICSMDP
        The instance at ``rho = 1``.
    oracle : SolveResult
        Its exact ``Q*`` (modified policy iteration, ``tol = 1e-10``).
    law : StationaryResult or None
        The epoch chain's long-run law under the uniform behavior (stationary
        reference only).
    rows : tuple of RhoRow
        In the order of ``config["rhos"]`` (``rho = 1`` first).
    oracle_seconds, seconds : float
        Wall time of the base instance and oracle, and of the whole sweep.
    workers : int
        Worker processes used (1: serial).
    """

    config: dict
    base: Any
    oracle: Any
    law: Any
    rows: tuple
    oracle_seconds: float
    seconds: float
    workers: int


@lru_cache(maxsize=4)
def _t1_base(seed: int, quick: bool) -> tuple:
    """``(config, base instance at rho = 1, its ModifiedPolicyIteration oracle, oracle seconds)``."""
    cfg = t1_config(quick)
    t0 = time.perf_counter()
    base = synthetic_instance(rho=1.0, seed=seed, **cfg["sizes"])
    oracle = solve(ModifiedPolicyIteration(tol=1e-10), base)
    return cfg, base, oracle, time.perf_counter() - t0


def _t1_row(seed: int, quick: bool, rho: float, law: Any = None, keep: bool = True) -> RhoRow:
    """One rho of the sweep: gap report, one IC-Q batch over the seeds, exact evaluation.

    With ``keep=False`` (worker processes of the full study) the row holds no
    model and no run record, only what T1 reports.
    """
    cfg, base, oracle, _ = _t1_base(seed, quick)
    r0 = time.perf_counter()
    model = base.with_observation(synthetic_map(base, rho))
    if law is not None:
        rep = gap_report(model, reference="stationary", stationary_law=law.law,
                         minimax=False, oracle=oracle)
    else:
        rep = gap_report(model, reference="uniform", minimax=False, oracle=oracle)
    g1 = time.perf_counter()
    settings = ICQ(updates=cfg["updates"], seeds=cfg["seeds"], seed=seed,
                   behavior=FixedBehavior(), checkpoints=checkpoint_grid(cfg["updates"]),
                   progress=False)
    rec = solve(settings, model)
    g2 = time.perf_counter()
    ev = evaluate_greedy_policies(model, rec, optimum=oracle)
    g3 = time.perf_counter()
    if not keep:  # drop what is large and not reported (the worker's arrays stay there)
        rep = _Reported(rep, T1_REPORT_KEYS)
        ev = _Reported(ev, _EVALUATION_KEYS)
        model = rec = None
    return RhoRow(rho=rho, n_bins=synthetic_bins(rho, base.num_interface), model=model,
                  report=rep, record=rec, evaluation=ev,
                  seconds={"gaps": g1 - r0, "icq": g2 - g1, "evaluate": g3 - g2})


def _t1_worker(args: tuple) -> RhoRow:
    seed, quick, rho = args
    return _t1_row(seed, quick, rho, keep=False)


@lru_cache(maxsize=4)
def synthetic_rho_study(seed: int, quick: bool) -> RhoStudy:
    """The rho sweep behind T1 (and T2's rho scan): one instance, one IC-Q batch per rho.

    Parameters
    ----------
    seed : int
        Seed of the instance and of the IC-Q batches.
    quick : bool
        Sizes of :func:`t1_config`.

    Returns
    -------
    RhoStudy
        Cached per ``(seed, quick)``. The full study runs the rhos in worker
        processes (one per core, forked after the oracle is solved, so they
        share it); its rows keep only the reported numbers.
    """
    t0 = time.perf_counter()
    cfg, base, oracle, t_oracle = _t1_base(seed, quick)
    # every successor is admissible everywhere, so the uniform behavior, and hence the
    # epoch chain and its long-run law, do not depend on the observation map
    law = stationary_law(base) if cfg["reference"] == "stationary" else None
    workers = worker_processes(len(cfg["rhos"]))
    if quick or workers == 1:
        rows = [_t1_row(seed, quick, rho, law) for rho in cfg["rhos"]]
    else:
        rows = map_in_workers(_t1_worker, [(seed, quick, rho) for rho in cfg["rhos"]], workers)
    return RhoStudy(config=cfg, base=base, oracle=oracle, law=law, rows=tuple(rows),
                    oracle_seconds=t_oracle, seconds=time.perf_counter() - t0, workers=workers)


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
    workers : int
    timings : dict
        ``study`` and ``oracle`` wall seconds (rounded).
    started : float
        ``time.perf_counter()`` when the computation began (the section's
        wall time is measured from it).
    """

    seed: int
    config: dict
    rows: list
    pearson_alpha_tight: float
    pearson_alpha_paper: float
    optimal_v0: float
    workers: int
    timings: dict
    started: float


def compute_t1(seed: int, quick: bool) -> T1Data:
    """T1's numbers: per-rho gaps and values, and their correlations.

    Parameters
    ----------
    seed : int
    quick : bool

    Returns
    -------
    T1Data
    """
    started = time.perf_counter()
    st = synthetic_rho_study(seed, quick)
    v_ref = st.rows[0].evaluation.v0  # rho = 1.0 is first in every grid
    rows = []
    for r in st.rows:
        rep, ev = r.report, r.evaluation
        rows.append(dict(rho=r.rho, n_bins=r.n_bins, alpha_tight=rep.alpha_tight,
                         alpha_paper=rep.alpha_paper, alpha_tv=rep.alpha_tv,
                         epsilon_phi=rep.epsilon_phi, delta_phi=rep.delta_phi,
                         max_q_gap=rep.max_q_gap, policy_loss=rep.policy_loss,
                         v0_per_seed=ev.v0.tolist(), v0_mean=float(ev.v0.mean()),
                         value_gap=float(v_ref.mean() - ev.v0.mean()),
                         value_gap_per_seed=(v_ref - ev.v0).tolist(),
                         optimal_gap=float(ev.optimal_v0 - ev.v0.mean()),
                         seconds={k: round(v, 3) for k, v in r.seconds.items()}))
    gaps = [r["value_gap"] for r in rows]
    return T1Data(seed=seed, config={**st.config, "rhos": list(st.config["rhos"])}, rows=rows,
                  pearson_alpha_tight=pearson(gaps, [r["alpha_tight"] for r in rows]),
                  pearson_alpha_paper=pearson(gaps, [r["alpha_paper"] for r in rows]),
                  optimal_v0=st.rows[0].evaluation.optimal_v0, workers=st.workers,
                  timings={"study": round(st.seconds, 3), "oracle": round(st.oracle_seconds, 3)},
                  started=started)


def _r(x: float) -> str:
    """A correlation for the text (``n/a`` when undefined)."""
    return "n/a (no spread)" if x != x else f"{x:.3f}"


def render_t1(ctx: ReportContext, data: T1Data) -> Section:
    """T1's figure ``synthetic_t1.png``, text and ``report.json`` data.

    ``report.json`` key ``synthetic_t1``: ``config`` (sizes, rhos, seeds,
    updates, reference), ``rows`` (:attr:`T1Data.rows`),
    ``pearson_alpha_tight``, ``pearson_alpha_paper``, ``paper_pearson``,
    ``optimal_v0``, ``workers``, ``timings_seconds`` (``study, oracle, section``).

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
              f"p_handoff=0.3, gamma=0.95; observation m mod ceil(rho |M|). Tabular IC-Q, "
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
               workers=data.workers,
               timings_seconds={**data.timings,
                                "section": round(time.perf_counter() - data.started, 3)})
    return Section(key="synthetic_t1", title="T1: AIS gap predicts the value gap", blocks=blocks,
                   data=out)


def synthetic_t1(ctx: ReportContext) -> Section:
    """The T1 report section: :func:`compute_t1` then :func:`render_t1` (paper section 5.1).

    Records ``ctx.seeds_used["synthetic"] = ctx.seed``.
    """
    ctx.seeds_used["synthetic"] = ctx.seed
    return render_t1(ctx, compute_t1(ctx.seed, ctx.quick))
