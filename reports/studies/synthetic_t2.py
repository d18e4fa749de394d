r"""Study T2: finite-sample behavior of IC-Q along T, p_handoff and rho (paper section 5.1).

On the reduced synthetic instance (the quick T1 sizes, in both modes: the
long-run law ``mu`` and ``t_mix`` are exact only up to 5,000 epoch states),
tabular IC-Q with the fixed uniform behavior is held against

.. math::

    \mathrm{lhs}(T) = \mathrm{mean}_{\text{seeds}} \sum_{s, c'} \mu(s, c')
        \bigl(Q_T(\phi(s), c') - Q^*(s, c')\bigr)^2

(``estimators.checker.lhs_per_seed``) with ``mu`` exact under that behavior
(SPEC section 6), and the exact learning floor
``sum mu (Q_hat* o phi - Q*)^2`` where tabular IC-Q settles
(``estimators.checker.learning_floor``, SPEC section 8):

- **budget**: ``lhs(T)`` along the checkpoints at ``rho = 1``,
  ``p_handoff = 0.3``, with the fitted decay exponent of ``lhs - floor``
  (``estimators.theorem.fit_decay``);
- **handoff**: ``lhs`` at a fixed ``T`` across ``p_handoff`` on the
  slow-mixing ``latent_moves="ring"`` variant of the family, next to the exact
  ``t_mix(1/4)``, relaxation time and ``gamma_bar`` of the epoch chain;
- **rho**: ``lhs`` at the final ``T``, the floor and ``2 alpha_tight^2`` per
  ``rho`` of the quick T1 sweep (same instance, same runs:
  :func:`reports.studies.synthetic_t1.t1_row`).

Sizes
-----
=====  ===========================================  ==========================================
mode   quick (default, CI)                          full (``--full``)
=====  ===========================================  ==========================================
T2     the quick T1 instance; T up to 12800, 3      the quick T1 instance; 10 seeds, T up to
       seeds; p_handoff in {.1, .3, .55} at         102400; 8 p_handoff in .1 .. .55 at
       T=3300 (ring variant)                        T=3300 (ring variant)
=====  ===========================================  ==========================================

T2 is a campaign (:mod:`reports.campaign`): :func:`t2_campaign` has a task for
the budget run, one per ``p_handoff`` and one per ``rho`` (:func:`t2_task`), each
with the study seed; :func:`t2_data` builds :class:`T2Data` from the results
only. Computing (:func:`compute_t2`: campaign, then :func:`t2_data`) is apart
from rendering (:func:`render_t2`); :func:`synthetic_t2` composes them into the
report section.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np

from estimators.checker import learning_floor, lhs_per_seed
from estimators.gaps import gap_report
from estimators.mixing import mixing_report
from estimators.stationary import mu, stationary_law
from estimators.theorem import fit_decay
from icsmdp_theory.families import synthetic_instance
from icsmdp_theory.options import gamma_bar
from reports.builder import ReportContext, Section
from reports.campaign import Campaign, Task
from reports.studies.runner import run_study, study_number, study_options, study_result
from reports.studies.synthetic_t1 import (checkpoint_grid, pearson, t1_base, t1_config, t1_row,
                                          t1_task_id)
from solvers import ModifiedPolicyIteration, solve
from solvers.icq import ICQ, FixedBehavior

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["T2_FAMILY", "HANDOFF_LATENT_MOVES", "T2Data", "t2_config", "t2_task", "t2_campaign", "t2_data",
           "compute_t2", "render_t2", "synthetic_t2"]

#: Synthetic family of T2 (kept on the family before issue 15, whose numbers T2 reports;
#: T1 defaults to ``"nested"``, so T2's rho scan no longer shares T1's quick rows).
T2_FAMILY = "cos-mod"
#: Latent kernel of the T2 handoff scan (:func:`icsmdp_theory.families.synthetic_instance`).
HANDOFF_LATENT_MOVES = "ring"
#: ``p_handoff`` of the budget study (the family's default).
_BUDGET_P_HANDOFF = 0.3


def t2_config(quick: bool) -> dict:
    """Settings of T2 (module docstring, table "Sizes").

    Returns
    -------
    dict
        ``updates`` (budget study), ``seeds``, ``p_grid`` and ``p_updates``
        (handoff scan).
    """
    if quick:
        return dict(updates=12_800, seeds=3, p_grid=(0.10, 0.30, 0.55), p_updates=3300)
    return dict(updates=102_400, seeds=10, p_grid=(0.10, 0.1625, 0.225, 0.2875, 0.35, 0.4125,
                                                    0.475, 0.55), p_updates=3300)


def _lhs_study(seed: int, sizes: dict, p: float, updates: int, seeds: int, checkpoints: tuple,
               *, with_floor: bool = True, latent_moves: str = "random") -> tuple:
    """One instance at ``rho = 1``: IC-Q batch, ``lhs`` per seed and checkpoint, floor.

    Returns ``(model, record, lhs (S, K), floor or None)``.
    """
    model = synthetic_instance(rho=1.0, p_handoff=p, seed=seed, latent_moves=latent_moves,
                               family=T2_FAMILY, **sizes)
    oracle = solve(ModifiedPolicyIteration(tol=1e-10), model)
    law = stationary_law(model)
    rec = solve(ICQ(updates=updates, seeds=seeds, seed=seed, behavior=FixedBehavior(),
                    checkpoints=checkpoints, progress=False), model)
    mu_epoch = mu(model, law.law)
    lhs = lhs_per_seed(model, rec, oracle.q, mu_epoch)
    floor = None
    if with_floor:
        rep = gap_report(model, reference="stationary", stationary_law=law.law,
                         minimax=False, oracle=oracle)
        floor = learning_floor(model, rep.q_hat, oracle.q, mu_epoch)
    return model, rec, lhs, floor


def _budget_part(params: dict, seed: int) -> dict:
    """(a) the sample budget at ``rho = 1``: lhs per seed and checkpoint, floor, decay fit."""
    _, rec, L, floor = _lhs_study(seed, params["sizes"], params["p_handoff"], params["updates"],
                                  params["seeds"], tuple(params["checkpoints"]))
    T = np.asarray(rec.checkpoints, float)
    fit = fit_decay(T, L, floor=floor, rng=seed)
    return dict(T=T.tolist(), lhs_per_seed=L.tolist(), floor=float(floor),
                fit=dict(exponent=fit.exponent, lower=fit.lower, upper=fit.upper,
                         points=fit.points, predicted=fit.predicted))


def _handoff_part(params: dict, seed: int) -> dict:
    """(b) one ``p_handoff`` of the ring variant: lhs at a fixed T, exact mixing quantities."""
    p, updates = params["p_handoff"], params["updates"]
    model, _, L, _ = _lhs_study(seed, params["sizes"], p, updates, params["seeds"], (updates,),
                                with_floor=False, latent_moves=params["latent_moves"])
    mix = mixing_report(model)
    return dict(p_handoff=p, t_mix=float(mix.t_mix), relaxation_time=float(mix.relaxation_time),
                gamma_bar=float(gamma_bar(model)), lhs_mean=float(L[:, -1].mean()),
                updates=updates)


def _rho_part(params: dict, seed: int) -> dict:
    """(c) one ``rho`` of the quick T1 sweep (same instance, same runs: :func:`t1_row`)."""
    config = params["t1"]
    b = t1_base(seed, config)
    r = t1_row(seed, config, params["rho"])
    mu_epoch = mu(r.model, b.law.law)
    L = lhs_per_seed(r.model, r.record, b.oracle.q, mu_epoch)
    alpha = float(r.report.alpha_tight)
    return dict(rho=r.rho, alpha_tight=alpha, interface_term=2 * alpha ** 2,
                floor=float(learning_floor(r.model, r.report.q_hat, b.oracle.q, mu_epoch)),
                lhs_mean=float(L[:, -1].mean()), updates=int(r.record.checkpoints[-1]))


_PARTS = {"budget": _budget_part, "handoff": _handoff_part, "rho": _rho_part}


def t2_task(params: dict, seed: int) -> dict:
    """One task of :func:`t2_campaign`: ``{"part": ..., "row": {...}, "seconds": s}``.

    Parameters
    ----------
    params : dict
        ``part`` (``"budget"``, ``"handoff"`` or ``"rho"``) and that part's settings.
    seed : int
        The study seed (instances, IC-Q batches, the bootstrap of the decay fit).
    """
    t0 = time.perf_counter()
    row = _PARTS[params["part"]](params, seed)
    return {"part": params["part"], "row": row, "seconds": round(time.perf_counter() - t0, 3)}


def _rho_config() -> dict:
    """The quick T1 sweep's settings without ``rhos`` (the rho scan's share of them)."""
    return {k: v for k, v in t1_config(True, T2_FAMILY).items() if k != "rhos"}


def t2_campaign(seed: int, quick: bool) -> Campaign:
    """T2 as a campaign: the budget run, one task per ``p_handoff``, one per ``rho``.

    Task ids ``budget``, ``handoff-p=0.3``, ``rho=0.75`` (:func:`t2_task`); every
    task uses the study seed itself (``Task.seed``), so the numbers are those
    of the study run in one process. The rho tasks recompute (or, in the same
    process, reuse) the quick T1 rows (:func:`reports.studies.synthetic_t1.t1_row`).

    Parameters
    ----------
    seed : int
    quick : bool
        Settings of :func:`t2_config`; the instance has the quick T1 sizes in both modes.

    Returns
    -------
    Campaign
        Named ``t2``.
    """
    cfg = t2_config(quick)
    t1q = _rho_config()
    sizes = t1q["sizes"]
    seed = int(seed)
    tasks = [Task("budget", dict(part="budget", sizes=sizes, p_handoff=_BUDGET_P_HANDOFF,
                                 updates=cfg["updates"], seeds=cfg["seeds"],
                                 checkpoints=list(checkpoint_grid(cfg["updates"]))), seed=seed)]
    tasks += [Task(f"handoff-p={p:g}", dict(part="handoff", sizes=sizes, p_handoff=float(p),
                                            updates=cfg["p_updates"], seeds=cfg["seeds"],
                                            latent_moves=HANDOFF_LATENT_MOVES), seed=seed)
              for p in cfg["p_grid"]]
    tasks += [Task(t1_task_id(rho), dict(part="rho", rho=float(rho), t1=t1q), seed=seed)
              for rho in t1_config(True)["rhos"]]
    return Campaign("t2", t2_task, tuple(tasks), seed=seed,
                    settings={"study": "t2", "quick": bool(quick), "config": cfg,
                              "rho_config": t1_config(True)})


@dataclass(frozen=True)
class T2Data:
    """What T2 computes (JSON-ready, no figure).

    Attributes
    ----------
    seed : int
    config : dict
        :func:`t2_config` plus ``sizes``, ``handoff_latent_moves`` and ``checkpoints``.
    budget : dict
        ``T``, ``lhs_mean``, ``lhs_per_seed``, ``floor``, ``p_handoff``, ``fit``
        (``exponent, lower, upper, points, predicted``).
    handoff : list of dict
        Per ``p``: ``p_handoff, t_mix, relaxation_time, gamma_bar, lhs_mean, updates``.
    rho : list of dict
        Per ``rho``: ``rho, alpha_tight, interface_term`` (``2 alpha_tight^2``),
        ``floor, lhs_mean, updates``.
    timings : dict
        ``budget``, ``handoff``, ``rho``: the tasks' seconds summed per part (rounded).
    started : float
        ``time.perf_counter()`` when the computation began.
    results_file : str or None
        The campaign's results file (``None``: a temporary one).
    """

    seed: int
    config: dict
    budget: dict
    handoff: list
    rho: list
    timings: dict
    started: float
    results_file: str | None = None


def t2_data(seed: int, quick: bool, results: dict, *, results_file: str | None = None,
            started: float | None = None) -> T2Data:
    """T2's numbers from the results of :func:`t2_campaign` only.

    Parameters
    ----------
    seed : int
    quick : bool
    results : dict
        Task id -> result (``CampaignRun.results``).
    results_file : str, optional
    started : float, optional
        ``time.perf_counter()`` when the computation began (default now).

    Returns
    -------
    T2Data
    """
    cfg = t2_config(quick)
    sizes = t1_config(True)["sizes"]
    b = study_result(results, "budget", "t2")
    L = np.asarray(b["row"]["lhs_per_seed"], float)
    fit = {k: (int(v) if k == "points" else study_number(v)) for k, v in b["row"]["fit"].items()}
    budget = dict(T=[float(t) for t in b["row"]["T"]], lhs_mean=L.mean(axis=0).tolist(),
                  lhs_per_seed=L.tolist(), floor=study_number(b["row"]["floor"]),
                  p_handoff=_BUDGET_P_HANDOFF, fit=fit)
    hs = [study_result(results, f"handoff-p={p:g}", "t2") for p in cfg["p_grid"]]
    handoff = [{k: (study_number(v) if k in _HANDOFF_FLOATS else v) for k, v in h["row"].items()}
               for h in hs]
    rs = [study_result(results, t1_task_id(rho), "t2") for rho in t1_config(True)["rhos"]]
    rho_rows = [{k: (study_number(v) if k in _RHO_FLOATS else v) for k, v in r["row"].items()}
                for r in rs]
    timings = {"budget": round(b["seconds"], 3),
               "handoff": round(sum(h["seconds"] for h in hs), 3),
               "rho": round(sum(r["seconds"] for r in rs), 3)}
    config = {**cfg, "p_grid": list(cfg["p_grid"]), "sizes": sizes,
              "handoff_latent_moves": HANDOFF_LATENT_MOVES,
              "checkpoints": list(checkpoint_grid(cfg["updates"]))}
    return T2Data(seed=seed, config=config, budget=budget, handoff=handoff, rho=rho_rows,
                  timings=timings, started=time.perf_counter() if started is None else started,
                  results_file=results_file)


#: Fields of the handoff and rho rows that are floats (``nan``/``inf`` restored on reading).
_HANDOFF_FLOATS = ("t_mix", "relaxation_time", "gamma_bar", "lhs_mean")
_RHO_FLOATS = ("alpha_tight", "interface_term", "floor", "lhs_mean")


def compute_t2(seed: int, quick: bool, *, results_dir=None, jobs: int | None = None,
               scheduler: Any = None, resume: bool = False, progress: bool = False) -> T2Data:
    """T2's numbers: :func:`t2_campaign` run by :func:`reports.studies.runner.run_study`,
    then :func:`t2_data`.

    Parameters
    ----------
    seed : int
    quick : bool
        Settings of :func:`t2_config`; the instance has the quick T1 sizes in both modes.
    results_dir : path-like, optional
        Keep the results file there (``t2-seed{seed}-{quick|full}.jsonl``);
        default a temporary file.
    jobs, scheduler, resume, progress :
        As for :func:`reports.campaign.run_campaign` (default: every core).

    Returns
    -------
    T2Data
    """
    return run_study(t2_campaign(seed, quick), t2_data, seed=seed, quick=quick,
                     results_dir=results_dir, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=progress)


def _corr(x: float) -> str:
    """A correlation for the text (``n/a`` when undefined: fewer than 2 points, no spread)."""
    return "n/a (no spread)" if x != x else f"{x:.3f}"


def _handoff_note(handoff: list) -> str:
    tm = [h["t_mix"] for h in handoff]
    lhs = [h["lhs_mean"] for h in handoff]
    gb = [h["gamma_bar"] for h in handoff]
    txt = (f"Across p_handoff the exact epoch-chain t_mix ranges over {min(tm):g}..{max(tm):g}, "
           f"gamma_bar over {min(gb):.3f}..{max(gb):.3f} and lhs at fixed T over "
           f"{min(lhs):.3g}..{max(lhs):.3g}; Pearson(lhs, t_mix) = {_corr(pearson(lhs, tm))}, "
           f"Pearson(lhs, 1/(1 - gamma_bar)) = "
           f"{_corr(pearson(lhs, [1 / (1 - g) for g in gb]))}.")
    if max(tm) == min(tm):
        txt += (" On this family the epoch chain mixes in the same number of epochs for every "
                "p_handoff (each invocation scrambles the latent state), so the t_mix envelope "
                "of the paper is not visible here; the error instead follows the effective "
                "horizon 1/(1 - gamma_bar), which grows with p_handoff (shorter invocations "
                "discount less per epoch).")
    return txt


def _rhos(values) -> str:
    """``0.1``, ``0.1 and 0.5``, ``0.1, 0.25 and 0.5``: ascending."""
    v = [f"{x:g}" for x in sorted(values)]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


def _below_floor(rho_rows: list) -> list:
    """The rows whose ``lhs`` is below their exact floor, by ascending ``rho``."""
    return sorted((r for r in rho_rows if r["lhs_mean"] < r["floor"]), key=lambda r: r["rho"])


def _floor_note(rho_rows: list) -> str:
    txt = ("Every exact floor is below the interface term 2 alpha_tight^2 (stationary "
           "reference)." if all(r["floor"] <= r["interface_term"] for r in rho_rows)
           else "Some exact floor exceeds 2 alpha_tight^2 (stationary reference): see the "
                "table.")
    below = _below_floor(rho_rows)
    if below:
        T = max(r["updates"] for r in below)
        nums = "; ".join(f"rho = {r['rho']:g}: lhs {r['lhs_mean']:.3g} against a floor of "
                         f"{r['floor']:.3g}" for r in below)
        txt += (f" At rho = {_rhos(r['rho'] for r in below)} the measured lhs is below its own "
                f"exact floor ({nums}): these runs have not reached the floor at T = {T}. The "
                "floor is where tabular IC-Q settles (lhs equals it when the learned values "
                "equal Q_hat*), and a run that has not converged can be on either side of it; "
                "these lhs values are therefore not the settled error, and a longer run is "
                "needed to see the floor.")
    return txt


def _coincide(a, b, rel: float = 0.05) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.size > 0 and bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(a), 1e-300)))


def _figure_budget(path, T, budget, fit) -> str:
    """The budget figure; returns its caption."""
    floor = budget["floor"]
    lhs = np.asarray(budget["lhs_mean"], float)
    ex = lhs - floor
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.loglog(T, lhs, "o-", color="C0", ms=7, label="lhs(T), mean over seeds")
    ax.loglog(T[ex > 0], ex[ex > 0], "s--", color="C1", ms=6, mfc="none", mew=1.5,
              label="lhs(T) - floor")
    if floor > 0:
        ax.axhline(floor, color="k", lw=1, ls=":", label=f"exact floor {floor:.3g}")
    ax.set_xlabel("T (updates per seed)")
    ax.set_ylabel("lhs = sum mu (Q_T o phi - Q*)^2")
    ax.set_title(f"Budget: decay exponent {fit['exponent']:.2f} (predicted "
                 f"{fit['predicted']:.2f})")
    fig.legend(loc="outside upper center", ncols=3, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    cap = ("T2, budget: lhs(T) and lhs(T) - floor against T (log-log) at rho = 1, "
           f"p_handoff = {budget['p_handoff']:g}, with the exact floor.")
    if _coincide(lhs[ex > 0], ex[ex > 0]):
        cap += (f" The two curves nearly coincide because the floor ({floor:.3g}) is small "
                "against lhs (open squares over filled circles).")
    return cap


def _figure_handoff(path, handoff, p_updates) -> str:
    ps = [h["p_handoff"] for h in handoff]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    h1 = ax.plot(ps, [h["lhs_mean"] for h in handoff], "o-", color="C0",
                 label=f"lhs at T = {p_updates} (left axis)")
    ax.set_xlabel("p_handoff")
    ax.set_ylabel(f"lhs at T = {p_updates}")
    ax2 = ax.twinx()
    tm = [h["t_mix"] for h in handoff]
    h2 = ax2.plot(ps, tm, "s--", color="C1", label="exact t_mix(1/4) (right axis)")
    ax2.set_ylabel("t_mix(1/4) of the epoch chain (epochs)")
    # both axes from 0 with different headroom, so that the curves' points do not coincide
    # (t_mix tops out at 2/3 of its axis, lhs at 7/8); lhs is drawn over t_mix
    ax.set_ylim(0, 8 / 7 * max([h["lhs_mean"] for h in handoff] + [1e-12]))
    ax2.set_ylim(0, 1.5 * max(tm + [1]))
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax2.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Handoff probability (ring variant)")
    fig.legend(handles=h1 + h2, loc="outside upper center", ncols=2, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (f"T2, handoff: lhs at T = {p_updates} (left axis) and the exact mixing time of "
            "the epoch chain (right axis) against p_handoff.")


def _figure_rho(path, rho_rows) -> str:
    rows = sorted(rho_rows, key=lambda r: r["rho"])
    rs = [r["rho"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.semilogy(rs, [r["lhs_mean"] for r in rows], "o-", color="C0",
                label="lhs at the final T")
    ax.semilogy(rs, [max(r["floor"], 1e-300) for r in rows], "s--", color="C1",
                label="exact floor")
    ax.semilogy(rs, [r["interface_term"] for r in rows], "^:", color="C2",
                label="2 alpha_tight^2 (stationary ref.)")
    below = _below_floor(rows)
    if below:
        ax.semilogy([r["rho"] for r in below], [r["lhs_mean"] for r in below], "o", ms=14,
                    mfc="none", mec="C3", mew=2, label="lhs below its floor: not converged")
    ax.set_xlabel("rho (retained fraction of the interface)")
    ax.set_ylabel("sum mu (Q - Q*)^2")
    ax.set_title("Retention rho at fixed T")
    ax.margins(x=0.06)
    fig.legend(loc="outside upper center", ncols=2, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    T = max((r["updates"] for r in rows), default=0)
    cap = (f"T2, rho: lhs at T = {T}, the exact floor and 2 alpha_tight^2 (stationary "
           "reference) against rho.")
    if below:
        cap += (f" Circled: at rho = {_rhos(r['rho'] for r in below)} lhs lies below its own "
                "floor, so those runs have not reached it at this T.")
    return cap


def render_t2(ctx: ReportContext, data: T2Data) -> Section:
    """T2's figures, text and ``report.json`` data.

    Figures (one per study): ``synthetic_t2_budget.png`` (lhs against T,
    log-log, with the floor), ``synthetic_t2_handoff.png`` (lhs and the
    exact ``t_mix`` against ``p_handoff``), ``synthetic_t2_rho.png`` (lhs,
    floor and ``2 alpha_tight^2`` against ``rho``, circling runs still
    below their floor).

    ``report.json`` key ``synthetic_t2``: ``config``, ``budget``, ``handoff``,
    ``rho`` (the fields of :class:`T2Data`), ``below_floor_rhos`` (the rhos
    whose ``lhs`` is below the exact floor: not converged at that ``T``),
    ``results_file`` (the campaign's results file, ``null`` for a temporary one)
    and ``timings_seconds`` (``budget, handoff, rho, section``).

    Parameters
    ----------
    ctx : ReportContext
        The figures are written to ``ctx.workdir``.
    data : T2Data

    Returns
    -------
    Section
    """
    cfg, budget, handoff, rho_rows = data.config, data.budget, data.handoff, data.rho
    sizes, fit = cfg["sizes"], budget["fit"]
    T = np.asarray(budget["T"], float)
    cap_budget = _figure_budget(ctx.workdir / "synthetic_t2_budget.png", T, budget, fit)
    cap_handoff = _figure_handoff(ctx.workdir / "synthetic_t2_handoff.png", handoff,
                                  cfg["p_updates"])
    cap_rho = _figure_rho(ctx.workdir / "synthetic_t2_rho.png", rho_rows)
    blocks = [
        ("p", f"Reduced synthetic instance (N={sizes['num_agents']}, |X|={sizes['num_latent']}, "
              f"|M|={sizes['num_interface']}, seed {data.seed}) in both modes: mu and t_mix are "
              "exact only up to 5,000 epoch states. Tabular IC-Q with the fixed uniform "
              "behavior; lhs(T) = mean over seeds of sum mu (Q_T o phi - Q*)^2; floor = sum mu "
              "(Q_hat* o phi - Q*)^2 with Q_hat* under the stationary reference, where tabular "
              "IC-Q settles."),
        ("table", ["T", "lhs mean"], [[int(t), v] for t, v in zip(T, budget["lhs_mean"])]),
        ("p", f"Fitted decay exponent of lhs - floor: {fit['exponent']:.3f} "
              f"[{fit['lower']:.3f}, {fit['upper']:.3f}] over {fit['points']} checkpoints; the "
              f"(1 + log(T+1))/T rate predicts {fit['predicted']:.3f}."),
        ("figure", "synthetic_t2_budget.png", cap_budget),
        ("p", f"Handoff scan: the family's slow-mixing variant (latent_moves="
              f"'{HANDOFF_LATENT_MOVES}': the latent state moves by -1, 0 or +1 on a ring per "
              "primitive step, so shorter invocations (larger p_handoff) move the artifact "
              "less per epoch and the epoch chain mixes more slowly; with the default random "
              "latent kernel every invocation scrambles the latent state, so t_mix would not "
              f"depend on p_handoff). The table gives lhs at T = {cfg['p_updates']} next to the "
              "exact t_mix(1/4) of the epoch chain under the uniform behavior."),
        ("table", ["p_handoff", "t_mix", "relaxation time", "gamma_bar", "lhs"],
         [[h["p_handoff"], h["t_mix"], h["relaxation_time"], h["gamma_bar"], h["lhs_mean"]]
          for h in handoff]),
        ("p", _handoff_note(handoff)),
        ("figure", "synthetic_t2_handoff.png", cap_handoff),
        ("table", ["rho", "alpha_tight (stationary reference)", "2 alpha_tight^2", "floor",
                   "lhs"],
         [[r["rho"], r["alpha_tight"], r["interface_term"], r["floor"], r["lhs_mean"]]
          for r in rho_rows]),
        ("p", _floor_note(rho_rows)),
        ("figure", "synthetic_t2_rho.png", cap_rho),
    ]
    timings = {**data.timings, "section": round(time.perf_counter() - data.started, 3)}
    out = dict(config=cfg, budget=budget, handoff=handoff, rho=rho_rows,
               below_floor_rhos=[r["rho"] for r in _below_floor(rho_rows)],
               results_file=data.results_file, timings_seconds=timings)
    return Section(key="synthetic_t2", title="T2: finite-sample behavior along T, p_handoff, rho",
                   blocks=blocks, data=out)


def synthetic_t2(ctx: ReportContext) -> Section:
    """The T2 report section: :func:`compute_t2` then :func:`render_t2` (paper section 5.1).

    Runs the campaign with the context's options (:func:`reports.studies.runner.study_options`);
    records ``ctx.seeds_used["synthetic"] = ctx.seed`` and the results file in
    ``ctx.campaign_files["t2"]``.
    """
    ctx.seeds_used["synthetic"] = ctx.seed
    data = compute_t2(ctx.seed, ctx.quick, **study_options(ctx))
    if data.results_file is not None:
        ctx.campaign_files["t2"] = data.results_file
    return render_t2(ctx, data)
