r"""The report section of a workflow known through its logs (``icsmdp report --traces T --obs MAP``).

SPEC section 10. :func:`prepare_trace_inputs` does everything that can fail on
the user's input *before* the report starts (the trace is read and fitted,
the observation map is read against the fitted model), so a bad trace or map
exits 2 with nothing written; :func:`trace_section` then returns the section
function ``(ReportContext) -> Section`` titled "Your workflow from its logs":

- the fit summary (:func:`reports.documents.fit_document`): invocations,
  episodes, truncated episodes, labels, epoch states and triples seen,
  unvisited declared triples;
- the assumption checks (Markov property of the labels, dependence of the
  outcome law on the committed successor, and on ``tau`` alone) with their
  G statistics, p-values and a one-line reading at the 5 % level;
- the gaps of the map with credible intervals
  (:func:`reports.documents.posterior_document`): a table and a forest plot
  (``trace_forest.png``: one row per key, the maximum-likelihood value as a
  dot and the equal-tailed interval as a bar, one panel per unit so that
  keys on very different scales stay readable: laws and discounts, reward
  scale, value scale, epochs; a panel whose positive values span more than
  two decades uses a log axis);
- the evidence-needed curve (``trace_evidence.png``): interval width against
  invocations on subsamples of whole episodes, log-log, with the fitted
  ``width = a n^b`` lines and slopes, and the projected trace size for the
  target width (``--target-width``) and for halving today's width;
- the per-cell attribution on the fitted model (top cells by
  ``(epsilon + eta)/(1 - gamma_bar)``).

Every number is one this run measured; the section's data (``report.json``
key ``traces``) holds the fit document, the posterior document (without the
full cell list: the top cells) and the settings.
"""
from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import matplotlib
import numpy as np

from estimators.fit import ADMISSIBLE_CHOICES, TEST_LEVEL, FitResult, fit_epoch_model
from estimators.posterior import SUPPORT_CHOICES
from estimators.uncertainty import projected_size
from icsmdp_theory.epoch_io import load_label_maps
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidObservationMapError, InvalidTraceError
from icsmdp_theory.examples import DATA_FILES, data_path
from icsmdp_theory.traces import TraceData, read_trace
from reports.builder import ReportContext, Section
from reports.documents import DEFAULT_SUPPORT, FITTED_REFERENCE, fit_document, posterior_document

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["TraceInputs", "prepare_trace_inputs", "trace_section", "trace_workflow",
           "FOREST_GROUPS", "SECTION_KEY", "TOP_CELLS"]

#: Key of the section in ``report.json`` (and its HTML anchor).
SECTION_KEY = "traces"
#: Cells listed in the attribution table.
TOP_CELLS = 8
#: Panels of the forest plot: (title, keys), one unit per panel.
FOREST_GROUPS = (
    ("laws and discounts (probabilities, TV, E[gamma^tau])",
     ("delta_phi", "delta_phi_gamma", "minimax_delta", "gamma_bar")),
    ("reward scale", ("epsilon_phi", "eta", "minimax_epsilon", "L_Q", "span_f")),
    ("value scale (bounds and realized gaps)",
     ("alpha_paper", "alpha_tv", "alpha_tight", "max_q_gap", "max_value_gap", "policy_loss",
      "v0")),
    ("epochs (mixing)", ("t_mix", "relaxation_time", "projected_t_mix")),
)
#: What each key is (the table's last column).
_WHAT = {"v0": "sum_s rho0(s) V*(s), value of the workflow",
         "epsilon_phi": "max |R - R_hat| (B1)", "delta_phi": "max TV of (o', tau) laws (B2)",
         "delta_phi_gamma": "max L1 of discounted end laws", "gamma_bar": "max E[gamma^tau]",
         "L_Q": "span of V_hat", "span_f": "span used by alpha_tv",
         "eta": "max |D_phi V_hat - D_hat V_hat|",
         "alpha_paper": "paper's form (not proved)", "alpha_tv": "provable bound",
         "alpha_tight": "provable bound (eps + eta)/(1 - gamma_bar)",
         "max_q_gap": "max |Q* - Q_hat* o phi|", "max_value_gap": "max |V* - V_hat* o phi|",
         "policy_loss": "max (V* - V of the greedy AIS policy), exact",
         "minimax_epsilon": "best epsilon any R_hat achieves",
         "minimax_delta": "best delta any P_hat achieves",
         "t_mix": "mixing time (uniform behavior)", "relaxation_time": "1/(1 - |lambda_2|)",
         "projected_t_mix": "mixing of the (agent, observation) marginal"}


@dataclass(frozen=True)
class TraceInputs:
    """A read and fitted trace with its map, and the settings of the section.

    Attributes
    ----------
    trace_name, obs_name : str or None
        As given on the command line (a path or a bundled name).
    trace : TraceData
    fit : FitResult
    model : EpochModel
        The fitted model with the map under study.
    posterior, level, support, jobs, target_width, reference, minimax, mixing
        Settings of :func:`reports.documents.posterior_document`.
    """

    trace_name: str
    obs_name: str | None
    trace_path: str
    trace: TraceData
    fit: FitResult
    model: EpochModel
    apply_maps: Callable[[EpochModel], EpochModel]
    posterior: int
    level: float
    support: str
    jobs: int
    target_width: float | None
    reference: str
    minimax: bool
    mixing: bool


def _bundled(arg: str, stack: ExitStack, jsonl: bool) -> str:
    """``arg`` itself, or the path of the bundled data file of that name (kept by ``stack``)."""
    if Path(arg).exists() or arg not in DATA_FILES or DATA_FILES[arg].endswith(".jsonl") != jsonl:
        return arg
    return str(stack.enter_context(resources.as_file(data_path(arg))))


def _prepare_trace_inputs_iv(posterior, level, support, admissible, alpha0, jobs, target_width,
                             reference):
    if isinstance(posterior, bool) or not isinstance(posterior, int) or posterior < 0:
        raise InvalidArgumentError(f"`--posterior` must be an integer >= 0, got {posterior!r}.")
    if not (isinstance(level, float) and 0.0 < level < 1.0):
        raise InvalidArgumentError(f"`--level` must be a number in (0, 1), got {level!r}.")
    if support not in SUPPORT_CHOICES:
        raise InvalidArgumentError(f"`--support` must be one of {', '.join(SUPPORT_CHOICES)}, "
                                   f"got {support!r}.")
    if admissible not in ADMISSIBLE_CHOICES:
        raise InvalidArgumentError(f"`--admissible` must be one of "
                                   f"{', '.join(ADMISSIBLE_CHOICES)}, got {admissible!r}.")
    if not (math.isfinite(alpha0) and alpha0 > 0):
        raise InvalidArgumentError(f"`--alpha0` must be a positive number, got {alpha0!r}.")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidArgumentError(f"`--jobs` must be an integer >= 1, got {jobs!r}.")
    if target_width is not None and not (math.isfinite(target_width) and target_width > 0):
        raise InvalidArgumentError(f"`--target-width` must be a positive number, got "
                                   f"{target_width!r}.")
    if reference not in ("uniform", "stationary"):
        raise InvalidArgumentError(f"`--reference` must be uniform or stationary, got "
                                   f"{reference!r}.")


def prepare_trace_inputs(trace: str, obs: str | None, stack: ExitStack, *, posterior: int = 200,
                         level: float = 0.9, support: str = DEFAULT_SUPPORT,
                         admissible: str = "observed", alpha0: float = 0.5, jobs: int = 1,
                         target_width: float | None = None, reference: str = FITTED_REFERENCE,
                         minimax: bool = True, mixing: bool = True) -> TraceInputs:
    """Check the options, read and fit the trace and read the map (before any report work).

    ``trace`` and ``obs`` are paths or bundled names (``workflow-trace``,
    ``workflow-maps``, ``workflow-bits``); ``stack`` keeps bundled files
    available until the report is written.

    Raises
    ------
    InvalidArgumentError, InvalidTraceError, InvalidObservationMapError
        A bad option, trace (the message names the line) or map (the file).
    """
    _prepare_trace_inputs_iv(posterior, level, support, admissible, alpha0, jobs, target_width,
                             reference)
    trace_path = _bundled(trace, stack, jsonl=True)
    if not Path(trace_path).is_file():
        raise InvalidTraceError(f"{trace}: no such trace file (`--traces`; bundled: "
                                + ", ".join(n for n, f in DATA_FILES.items()
                                            if f.endswith(".jsonl")) + ").")
    obs_path = None if obs is None else _bundled(obs, stack, jsonl=False)
    if obs_path is not None and not Path(obs_path).is_file():
        raise InvalidObservationMapError(f"{obs}: no such observation-map file (`--obs`).")
    data = read_trace(trace_path)
    fit = fit_epoch_model(data, admissible=admissible, alpha0=alpha0)

    def apply_maps(m: EpochModel) -> EpochModel:
        return load_label_maps(obs_path, m) if obs_path is not None else m

    model = apply_maps(fit.model)
    return TraceInputs(trace_name=trace, obs_name=obs, trace_path=trace_path, trace=data, fit=fit,
                       model=model, apply_maps=apply_maps, posterior=posterior, level=level,
                       support=support, jobs=jobs, target_width=target_width,
                       reference=reference, minimax=minimax, mixing=mixing)


# ----------------------------------------------------------------- readings
def _p(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _reading(test: dict, what: str, meaning: str) -> str:
    """One line: what the check says about the model."""
    if not test.get("tested"):
        return (f"Not tested: no table of {what} has enough data (every expected count >= 5 "
                "after pooling rare rows and columns); collect more invocations per triple.")
    p = test.get("p_value")
    if p is not None and p < TEST_LEVEL:
        return f"Rejected at {TEST_LEVEL:.0%} (p = {_p(p)}): {meaning}"
    return (f"No evidence against it at {TEST_LEVEL:.0%} (p = {_p(p)}, {test['tested']} of "
            f"{test['candidates']} tables tested).")


def _check_rows(fit_doc: dict) -> list:
    mk, sc = fit_doc["markov_test"], fit_doc["successor_test"]
    rows = []
    for name, test, what, meaning in (
            ("Markov property of the labels", mk, "previous label by outcome",
             "the outcome depends on the previous label, so the labels miss part of the "
             "state; the fitted model (and its gaps) describe a coarser process than the "
             "workflow."),
            ("outcome (k', tau) independent of the committed successor", sc,
             "successor by outcome",
             "the invocation's outcome depends on the successor it committed to (expected "
             "when labels carry the successor's private state; see the tau-only row)."),
            ("law of tau independent of the committed successor", sc.get("tau_only") or {},
             "successor by tau", "durations depend on the committed successor.")):
        if not test:
            continue
        worst = test.get("worst")
        where = "n/a" if not worst else (f"label {worst.get('label')}, agent {worst.get('agent')}"
                                         + (f", successor {worst['successor']}"
                                            if "successor" in worst else ""))
        tested = bool(test.get("tested"))
        rows.append([name, test.get("statistic") if tested else None,
                     test.get("dof") if tested else None, test.get("p_value"),
                     f"{test.get('tested', 0)} of {test.get('candidates', 0)}",
                     test.get("min_p_bonferroni"), where, _reading(test, what, meaning)])
    return rows


# ----------------------------------------------------------------- figures
def _forest(doc: dict, path: Path, level: float) -> list[str]:
    """The forest plot; returns the keys drawn."""
    groups = []
    for title, keys in FOREST_GROUPS:
        ks = [k for k in keys if doc.get(k) is not None or (doc["intervals"].get(k) is not None)]
        if ks:
            groups.append((title, ks))
    heights = [len(ks) + 1.2 for _, ks in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(7.5, 0.42 * sum(heights) + 0.6),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    drawn = []
    for ax, (title, ks) in zip(axes[:, 0], groups):
        y = np.arange(len(ks))[::-1]
        vals = []
        for yy, k in zip(y, ks):
            v = doc.get(k)
            iv = doc["intervals"].get(k)
            if iv is not None and iv[0] is not None and iv[1] is not None:
                ax.plot([iv[0], iv[1]], [yy, yy], color="tab:blue", lw=3, alpha=0.55,
                        solid_capstyle="butt")
                ax.plot([iv[0], iv[1]], [yy, yy], "|", color="tab:blue", ms=10)
                vals += [iv[0], iv[1]]
            if v is not None:
                ax.plot([v], [yy], "o", color="black", ms=5, zorder=3)
                vals.append(v)
            drawn.append(k)
        pos = [x for x in vals if x is not None and x > 0]
        if pos and len(pos) == len(vals) and max(pos) / min(pos) > 100:
            ax.set_xscale("log")
        ax.set_yticks(y)
        ax.set_yticklabels(ks, fontsize=9)
        ax.set_ylim(-0.7, len(ks) - 0.3)
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].plot([], [], "o", color="black", ms=5, label="maximum-likelihood value")
    axes[0, 0].plot([], [], color="tab:blue", lw=3, alpha=0.55,
                    label=f"{level:.0%} credible interval")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def _halving(ev: dict) -> dict:
    """Per key: invocations for half today's width, ``(w_n / 2 / a)^(1/b)`` from the fit."""
    out = {}
    for k, ws in ev["widths"].items():
        b, a, w = ev["slope"].get(k), ev["scale"].get(k), ws[-1] if ws else None
        out[k] = (projected_size(w / 2, a, b) if b is not None and a and w is not None and w > 0
                  else None)
    return out


def _evidence_plot(ev: dict, path: Path, level: float) -> None:
    n = np.asarray(ev["invocations"], dtype=float)
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    target = ev.get("target_width")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (k, ws) in enumerate(ev["widths"].items()):
        w = np.array([np.nan if x is None else x for x in ws], dtype=float)
        ok = np.isfinite(w) & (w > 0)
        c = colors[j % len(colors)]
        b, a = ev["slope"].get(k), ev["scale"].get(k)
        lab = f"{k}: b = {b:.2f}" if b is not None else f"{k}: no fit (width 0)"
        if not ok.any():
            ax.plot([], [], "o", color=c, label=lab)
            continue
        ax.loglog(n[ok], w[ok], "o", color=c, label=lab)
        if b is not None:
            proj = ev["projected_invocations"].get(k)
            hi = max(n.max(), proj or 0.0) * 1.2
            xs = np.geomspace(n.min(), hi, 50)
            ax.loglog(xs, a * xs ** b, "-", color=c, lw=1)
            if target is not None and proj is not None:
                ax.loglog([proj], [target], "*", color=c, ms=11)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target width {target:g}")
    ax.set_xlabel("invocations in the (sub)sample")
    ax.set_ylabel(f"width of the {level:.0%} interval")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------- the section
def _fmt_int(n) -> str:
    return f"{int(n):,}"


def trace_workflow(ctx: ReportContext, inputs: TraceInputs) -> Section:
    """The section "Your workflow from its logs" of ``inputs`` (module docstring)."""
    seed = ctx.seed + 3
    ctx.seeds_used[SECTION_KEY] = seed
    fit_doc = fit_document(inputs.fit, trace_path=inputs.trace_path)
    fit_doc["trace"] = inputs.trace_name
    doc = posterior_document(inputs.model, trace=inputs.trace, apply_maps=inputs.apply_maps,
                             reference=inputs.reference, posterior=inputs.posterior,
                             level=inputs.level, support=inputs.support, seed=seed,
                             jobs=inputs.jobs, target_width=inputs.target_width,
                             minimax=inputs.minimax, mixing=inputs.mixing,
                             evidence=inputs.posterior > 0, alpha0=inputs.fit.alpha0,
                             admissible=inputs.fit.admissible)
    n_post, level = doc["posterior_draws"], doc["level"]
    obs = inputs.obs_name or "each label its own observation"
    m = fit_doc["model"]
    ref = f"{doc['reference']} reference"
    unv = fit_doc["unvisited_declared"]
    blocks = [
        ("p", f"This section was measured by this run on the trace `{inputs.trace_name}` "
              f"({_fmt_int(fit_doc['invocations'])} invocations of {len(m['agents'])} agents, "
              f"gamma {m['gamma']:g}) with the map `{obs}`. The trace was fitted by maximum "
              f"likelihood (SPEC section 10; admissible sets {fit_doc['admissible']}, prior "
              f"concentration alpha0 = {fit_doc['alpha0']:g}), and every gap below is its "
              f"value on the fitted model with its equal-tailed {level:.0%} credible interval "
              f"from {n_post} posterior models (support {doc['support']}, seed {seed}). "
              f"Alphas use the {ref}."),
        ("table", ["fit", "value", "note"], [
            ["invocations", fit_doc["invocations"],
             f"{_fmt_int(fit_doc['invocations_used'])} behind the estimates, "
             f"{_fmt_int(fit_doc['dangling'])} dangling dropped"],
            ["episodes", fit_doc["episodes"],
             f"{_fmt_int(fit_doc['truncated_episodes'])} truncated (end without STOP), "
             f"{_fmt_int(fit_doc['starts_dropped'])} starts dropped"],
            ["labels seen", fit_doc["labels_seen"], "distinct canonical state labels"],
            ["epoch states seen", fit_doc["states_seen"],
             f"pairs (label, agent) with an outcome; {fit_doc['pairs_without_outcome']} without"],
            ["triples seen", fit_doc["triples_seen"],
             f"admissible (label, agent, successor) with data; {_fmt_int(m['num_transitions'])} "
             f"outcomes (next label, tau)"],
            ["unvisited declared triples", len(unv),
             ("declared in the header, never seen: excluded from the fit" if unv else
              "none listed (admissible sets observed)")
             + (f"; every posterior model borrows {doc['borrowed_pairs']} declared triples "
                f"never visited" if doc.get("borrowed_pairs") else "")],
        ]),
    ]
    if unv:
        blocks.append(("table", ["label", "agent", "successor"],
                       [[f"`{t['label']}`", t["agent"], t["successor"]] for t in unv[:8]]))
    blocks += [
        ("p", "Assumption checks (G-tests of independence with Williams' correction, summed "
              "over the tables with enough data; a small p-value is evidence against the "
              f"assumption; the reading is at the {TEST_LEVEL:.0%} level)."),
        ("table", ["assumption", "G", "dof", "p-value", "tables tested",
                   "smallest p (Bonferroni)", "worst table", "reading"], _check_rows(fit_doc)),
    ]
    # ----------------------------------------------------------- gaps and intervals
    iv = doc["intervals"]
    keys = [k for k in ("v0",) + tuple(k for _, ks in FOREST_GROUPS for k in ks if k != "v0")
            if doc.get(k) is not None or iv.get(k) is not None]
    rows = []
    for k in keys:
        lo, hi = iv.get(k) or (None, None)
        inside = ("n/a" if lo is None or doc.get(k) is None else
                  "yes" if lo - 1e-12 <= doc[k] <= hi + 1e-12 else "no")
        label = f"`{k}` ({ref})" if k.startswith("alpha") else f"`{k}`"
        rows.append([label, doc.get(k), lo, hi, inside, _WHAT.get(k, "")])
    forest = "trace_forest.png"
    drawn = _forest(doc, ctx.workdir / forest, level)
    agree = doc["greedy_agreement"]
    blocks += [
        ("table", ["quantity", "ML value", f"{level:.0%} lower", f"{level:.0%} upper",
                   "ML inside", "what"], rows),
        ("figure", forest, f"Gaps of the map `{obs}` on the model fitted from "
                           f"`{inputs.trace_name}`: maximum-likelihood value (dot) and "
                           f"{level:.0%} credible interval from {n_post} posterior models "
                           f"(bar), one panel per unit."),
        ("p", ("The greedy AIS policy is optimal for Q* on the fitted model: "
               + ("yes" if doc["greedy_agreement_ml"] else "no")
               + (f"; in {agree:.0%} of the {n_post} posterior models." if agree is not None
                  else " (no posterior models drawn).")
               + " The maximum-likelihood value need not lie inside its interval (the "
                 "posterior adds prior mass on outcomes seen elsewhere for the same successor "
                 "or at the same state, and completes the declared triples the trace never "
                 "visited, which the fit excludes); the column ML inside says where it does."
               + (f" Every posterior model borrows {doc['borrowed_pairs']} declared triples "
                  f"the trace never visited (from the successors seen at their state, or "
                  f"the agent's STOP data)." if doc.get("borrowed_pairs") else ""))),
    ]
    # ----------------------------------------------------------- evidence needed
    ev = doc.get("evidence")
    halving = None
    if ev:
        halving = _halving(ev)
        evfig = "trace_evidence.png"
        _evidence_plot(ev, ctx.workdir / evfig, level)
        tw = ev.get("target_width")
        ev_rows = []
        for k, ws in ev["widths"].items():
            ev_rows.append([f"`{k}`"] + list(ws) + [ev["slope"].get(k), halving.get(k)]
                           + ([ev["projected_invocations"].get(k)] if tw is not None else []))
        heads = (["quantity"] + [f"width, n = {_fmt_int(v)}" for v in ev["invocations"]]
                 + ["slope b", "n for half today's width"]
                 + ([f"n for width {tw:g}"] if tw is not None else []))
        blocks += [
            ("p", f"Evidence needed: the same posterior on random subsamples of whole episodes "
                  f"(shares {', '.join(f'{f:g}' for f in ev['fractions'])} of the trace, "
                  f"refitted, {min(50, n_post)} posterior models each, no minimax or mixing), "
                  "the width of each interval against the invocations, and the least-squares "
                  "line width = a n^b in logs (b near -0.5 when the posterior concentrates "
                  "at the usual rate). A width of 0 (a quantity the posterior does not move) "
                  "has no fit."),
            ("table", heads, ev_rows),
            ("figure", evfig, "Interval width against invocations (log-log), the fitted lines "
                              "and their slopes b"
                              + (f"; stars: the projected trace size for width {tw:g}."
                                 if tw is not None else ".")),
        ]
    else:
        blocks.append(("p", "Evidence needed: not computed (`--posterior 0`: no posterior "
                            "models)."))
    # ----------------------------------------------------------- cells
    cells = doc["cells"][:TOP_CELLS]
    crow = []
    for c in cells:
        worst = c.get("epsilon_state") if (c.get("epsilon") or 0) >= (c.get("eta") or 0) \
            else c.get("delta_state")
        where = (f"`{worst['label']}`" if isinstance(worst, dict) and "label" in worst
                 else "n/a")
        crow.append([c["agent_name"], c["observation"], c["size"], c["epsilon"], c["delta"],
                     c["eta"], c["contribution"], where])
    blocks += [
        ("p", "Per-cell attribution on the fitted model: cells (agent, observation) ranked by "
              "their contribution (epsilon + eta)/(1 - gamma_bar) to `alpha_tight`; split the "
              "top ones first (the worst state names the label where the cell's worst gap "
              "is attained)."),
        ("table", ["agent", "observation", "states", "epsilon", "delta", "eta",
                   "contribution", "worst state"], crow),
    ]
    if doc.get("cells_differing"):
        blocks.append(("p", f"{len(doc['cells_differing'])} cells hold states that admit "
                            f"different successors ({doc['cell_rule']} rule)."))
    data = {"trace": inputs.trace_name, "obs": inputs.obs_name, "seed": seed,
            "fit": fit_doc, "posterior": {k: v for k, v in doc.items() if k != "cells"},
            "top_cells": cells, "forest_keys": drawn, "halving_invocations": halving}
    return Section(key=SECTION_KEY, title="Your workflow from its logs", blocks=blocks,
                   data=data)


def trace_section(inputs: TraceInputs) -> Callable[[ReportContext], Section]:
    """The section function of the report for ``inputs`` (:func:`trace_workflow` bound to them)."""

    def traces(ctx: ReportContext) -> Section:
        return trace_workflow(ctx, inputs)

    traces.__doc__ = trace_workflow.__doc__
    return traces
