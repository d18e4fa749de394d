"""``icsmdp gaps``: what a proposed observation map costs, and where (SPEC sections 4-6, 10).

``icsmdp gaps [SUBJECT] [--obs OBS.json] [--against B.json] [--reference uniform|stationary]
[--eps E] [--top K] [--no-minimax] [--no-mixing] [--json]`` and, for a workflow
known through its logs, ``[--posterior N] [--level L] [--seed S] [--jobs J]
[--support state|pooled|successor|observed] [--unvisited borrow|exclude] [--alpha0 A]
[--admissible observed|declared] [--evidence] [--target-width W]``.

``SUBJECT`` (default: the bundled ``workflow`` instance) is

- a primitive instance ``icsmdp/1`` (a file or a bundled example name);
  ``--obs`` takes the ``maps`` form of ``icsmdp-obs/1``;
- an explicit epoch model ``icsmdp-epoch/1`` (``.json``/``.npz``, recognized by
  its ``format`` key), e.g. written by ``icsmdp export-epoch`` or ``icsmdp fit``;
- a handoff trace ``icsmdp-trace/1`` (``.jsonl``, or the bundled
  ``workflow-trace``), fitted on the fly (``--admissible``, ``--alpha0``;
  :func:`estimators.fit.fit_epoch_model`).

For an epoch model or a trace ``--obs``/``--against`` take the ``by_label`` or
``fields`` forms over labels (SPEC 10; the bundled ``workflow-maps`` and
``workflow-bits`` by name).

The reference law defaults to ``uniform`` (SPEC 4, design time) for an instance
or an epoch model without counts and to ``stationary`` for a trace or a fitted
model: uniform weights on a cell's states make ``R_hat`` depend on which rare
states a trace happened to reach, and the uniform-reference gaps of the
``workflow`` traces do not approach the truth (``reports.studies.trace_consistency``),
while the stationary ones do.

A model with fit counts (a trace, or a model written by ``icsmdp fit``) gets
credible intervals (:func:`reports.documents.posterior_document`): every key
holds its value on the maximum-likelihood model, with its equal-tailed
``--level`` interval (default 0.9) from ``--posterior`` posterior models
(default 200; 0 = ML values only), the probability that the greedy AIS policy
is optimal, the top cells of the ML model and, with ``--against``, the
difference B - A over the same draws. ``--evidence`` or ``--target-width W``
(a trace only: subsamples must be refitted) adds the evidence-needed table
(interval width against trace size and the projected size for width ``W``).
``--jobs`` worker processes do not change the numbers (draw ``d`` has its own
seed). A progress bar over the posterior draws goes to stderr (not under
``--json``). An epoch model without counts (an export) gets the plain report.

``--json`` prints one object with at least the keys ``epsilon_phi``,
``delta_phi``, ``delta_phi_gamma``, ``gamma_bar``, ``L_Q``, ``eta``,
``alpha_paper``, ``alpha_tv``, ``alpha_tight``, ``max_q_gap``,
``max_value_gap``, ``policy_loss``, ``minimax_epsilon``, ``minimax_delta``,
``t_mix``, ``relaxation_time``, ``cells``; for a fitted model also ``v0``,
``intervals`` (key -> ``[lower, upper]``), ``level``, ``posterior_draws``,
``greedy_agreement``, ``against``, ``evidence`` (and ``fit``, the fit report,
for a trace).
"""
from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from estimators.fit import ADMISSIBLE_CHOICES, fit_epoch_model
from estimators.posterior import SUPPORT_CHOICES
from icsmdp_theory.epoch_io import EPOCH_FORMAT, load_epoch_model, load_label_maps
from icsmdp_theory.epoch_level import FITTED_COUNTS
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidObservationMapError
from icsmdp_theory.examples import DATA_FILES, DEFAULT_EXAMPLE, EXAMPLES, data_path
from icsmdp_theory.io import load_observation_maps
from reports.arguments import (file_format, float_arg, int_arg, load_instance_arg, mixing_eps_type,
                               positive_int_type, read_trace_arg, show_progress)
from reports.commands import COMMAND_HELP
from reports.commands.fit import BUNDLED_TRACES, trace_path_arg
from reports.documents import (DEFAULT_SUPPORT, FITTED_REFERENCE, GAP_KEYS, fit_document,
                               gaps_document, posterior_document)

__all__ = ["add_parser", "POSTERIOR_OPTIONS", "resolve_subject"]

#: Options that apply to a fitted model (a trace or a model written by ``icsmdp fit``) only.
POSTERIOR_OPTIONS = ("posterior", "level", "seed", "jobs", "support", "unvisited", "alpha0",
                     "evidence", "target_width")
#: Options that apply to a trace only.
TRACE_OPTIONS = ("admissible", "evidence", "target_width")
#: Default number of posterior models (SPEC 10).
DEFAULT_POSTERIOR = 200
#: Rows of the summary: key, what it is.
_ROWS = (("epsilon_phi", "max |R - R_hat| (B1)"), ("delta_phi", "max TV of (o', tau) laws (B2)"),
         ("delta_phi_gamma", "max L1 of discounted end laws"), ("gamma_bar", "max E[gamma^tau]"),
         ("L_Q", "span of V_hat"), ("eta", "max |D_phi V_hat - D_hat V_hat|"),
         ("alpha_paper", "(eps + gamma_bar L_Q delta)/(1 - gamma_bar), paper"),
         ("alpha_tv", "(eps + span_f delta)/(1 - gamma_bar), provable"),
         ("alpha_tight", "(eps + eta)/(1 - gamma_bar), provable"),
         ("max_q_gap", "max |Q* - Q_hat* o phi|"), ("max_value_gap", "max |V* - V_hat* o phi|"),
         ("policy_loss", "max (V* - V^greedy-AIS), exact"),
         ("minimax_epsilon", "best epsilon any R_hat achieves"),
         ("minimax_delta", "best delta any P_hat achieves"))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# ----------------------------------------------------------------- the subject
def resolve_subject(arg: str | None, stack: ExitStack) -> tuple[str, object]:
    """``("instance", ICSMDP)``, ``("epoch", EpochModel)`` or ``("trace", path)`` named by ``arg``."""
    if arg is None:
        return "instance", load_instance_arg(None)
    path = Path(arg)
    if path.exists():
        if path.suffix == ".jsonl":
            return "trace", str(path)
        if path.is_file() and file_format(path) == EPOCH_FORMAT:
            return "epoch", load_epoch_model(path)
        return "instance", load_instance_arg(arg)
    if arg in EXAMPLES:
        return "instance", load_instance_arg(arg)
    if arg in BUNDLED_TRACES:
        return "trace", trace_path_arg(arg, stack)
    traces = list(BUNDLED_TRACES)
    raise InvalidArgumentError(
        f"`SUBJECT`: {arg!r} is neither a file nor a bundled example ({', '.join(EXAMPLES)}) "
        f"or trace ({', '.join(traces)}).")


def _map_path(arg: str | None, stack: ExitStack) -> str | None:
    """An observation-map path, or a bundled map by name (``workflow-maps``, ``workflow-bits``)."""
    if arg is None or Path(arg).exists() or arg not in DATA_FILES \
            or DATA_FILES[arg].endswith(".jsonl"):
        return arg
    return str(stack.enter_context(resources.as_file(data_path(arg))))


# ----------------------------------------------------------------- printing
def _print_cells(cells: list, top: int) -> None:
    cells = cells[:top]
    if not cells:
        return
    print(f"\ntop {len(cells)} cells by contribution (epsilon + eta)/(1 - gamma_bar):")
    print(f"  {'agent':12s} {'obs':>4s} {'size':>5s} {'epsilon':>10s} {'delta':>10s} "
          f"{'eta':>10s} {'contrib':>10s}  worst state")
    for c in cells:
        st = c.get("epsilon_state") if (c.get("epsilon") or 0) >= (c.get("eta") or 0) \
            else c.get("delta_state")
        st = json.dumps(st, ensure_ascii=False) if isinstance(st, dict) and "label" in st else st
        print(f"  {c['agent_name'][:12]:12s} {c['observation']:>4d} {c['size']:>5d} "
              f"{_fmt(c['epsilon']):>10s} {_fmt(c['delta']):>10s} {_fmt(c['eta']):>10s} "
              f"{_fmt(c['contribution']):>10s}  {st}")


def _print_summary(doc: dict, top: int) -> None:
    print(f"{doc['instance']}: reference {doc['reference']}")
    rows = _ROWS + (("t_mix", f"mixing time (eps={_fmt(doc.get('eps'))}, uniform behavior)"),
                    ("relaxation_time", "1/(1 - |lambda_2|)"),
                    ("projected_t_mix", "mixing of the (agent, observation) marginal"))
    for key, what in rows:
        print(f"  {key:17s} {_fmt(doc.get(key)):>12s}   {what}")
    if doc.get("t_mix_is_exact") is False:
        print(f"  t_mix bounds      [{_fmt(doc['t_mix_lower'])}, {_fmt(doc['t_mix_upper'])}]"
              f"   (not exact: chain too large for matrix powers)")
    if doc.get("delta_phi_tail_bound"):
        print(f"  (delta_phi truncation bound {doc['delta_phi_tail_bound']:.2g})")
    if doc["fallback_cells"]:
        print(f"  cells with zero reference mass (uniform fallback): {doc['fallback_cells']}")
    if doc.get("cells_differing"):
        print(f"  cells whose states admit different successors ({doc.get('cell_rule')} rule): "
              f"{doc['cells_differing']}")
    _print_cells(doc["cells"], top)


def _interval(iv) -> str:
    return "" if iv is None else f"[{_fmt(iv[0])}, {_fmt(iv[1])}]"


def _print_posterior(doc: dict, top: int, obs: str | None) -> None:
    n = doc["posterior_draws"]
    print(f"{doc['instance']} with map {obs or 'each label its own observation'}: "
          f"reference {doc['reference']}")
    if n:
        print(f"  maximum-likelihood value and {doc['level']:.0%} credible interval from {n} "
              f"posterior models (alpha0 {_fmt(doc['alpha0'])}, support {doc['support']}, "
              f"seed {doc['seed']})")
        if doc.get("borrowed_pairs"):
            print(f"  every posterior model completes the {doc['borrowed_pairs']} declared triples "
                  f"the trace never visited (borrowed from their state's other successors, or "
                  f"the agent's STOP data; --unvisited exclude to leave them out)")
        for note in doc.get("posterior_notes") or ():
            print(f"  note: {note}")
    else:
        print("  maximum-likelihood values (--posterior 0: no intervals)")
    rows = (("v0", "sum_s rho0(s) V*(s), value of the workflow"),) + _ROWS + (
        ("t_mix", f"mixing time (eps={_fmt(doc.get('eps'))}, uniform behavior)"),
        ("relaxation_time", "1/(1 - |lambda_2|)"),
        ("projected_t_mix", "mixing of the (agent, observation) marginal"))
    iv = doc["intervals"]
    for key, what in rows:
        if doc.get(key) is None and iv.get(key) is None:
            continue               # not computed (--no-mixing, --no-minimax)
        print(f"  {key:17s} {_fmt(doc.get(key)):>12s}  {_interval(iv.get(key)):>28s}   {what}")
    ml = "yes" if doc["greedy_agreement_ml"] else "no"
    if doc["greedy_agreement"] is not None:
        print(f"  greedy AIS policy optimal for Q*: in {doc['greedy_agreement']:.0%} of posterior "
              f"draws (on the ML model: {ml})")
    else:
        print(f"  greedy AIS policy optimal for Q* on the ML model: {ml}")
    if doc.get("fallback_cells"):
        print(f"  cells with zero reference mass (uniform fallback): {doc['fallback_cells']}")
    if doc.get("cells_differing"):
        print(f"  {len(doc['cells_differing'])} cell(s) whose states admit different successors "
              f"({doc['cell_rule']} rule)")
    ev = doc.get("evidence")
    if ev:
        inv = ev["invocations"]
        print(f"\nevidence needed: {doc['level']:.0%} interval width against invocations "
              f"(subsamples of whole episodes; width ~ a n^b)")
        head = "".join(f"{'n=' + str(v):>11s}" for v in inv)
        target = ev["target_width"]
        last = f"  n for width {_fmt(target)}" if target is not None else ""
        print(f"  {'key':13s}{head}  {'b':>6s}{last}")
        for k, ws in ev["widths"].items():
            cells = "".join(f"{_fmt(w):>11s}" for w in ws)
            b = ev["slope"][k]
            proj = ev["projected_invocations"][k]
            tail = ""
            if target is not None:
                tail = f"  {proj:>12.3g}" if proj is not None else f"  {'-':>12s}"
            print(f"  {k:13s}{cells}  {(f'{b:.2f}' if b is not None else '-'):>6s}{tail}")
    _print_cells(doc["cells"], top)
    cmp = doc.get("against")
    if cmp:
        print(f"\nA = {obs or 'each label its own observation'}    B = {cmp.get('obs')}"
              + (f"    (the same {n} posterior draws)" if n else ""))
        print(f"  {'key':17s} {'A':>11s} {'B':>11s} {'B - A':>11s}  {'interval of B - A':>26s} "
              f"{'P(B < A)':>9s}")
        for key, _ in (("v0", ""),) + _ROWS:
            if cmp["values"].get(key) is None:
                continue
            pb = cmp["prob_b_smaller"].get(key)
            print(f"  {key:17s} {_fmt(doc.get(key)):>11s} {_fmt(cmp['values'][key]):>11s} "
                  f"{_fmt(cmp['difference'][key]):>11s}  "
                  f"{_interval(cmp['difference_intervals'].get(key)):>26s} "
                  f"{('-' if pb is None else f'{pb:.2f}'):>9s}")
        if cmp.get("greedy_agreement") is not None:
            print(f"  greedy AIS policy optimal under B: in {cmp['greedy_agreement']:.0%} of draws")


# ----------------------------------------------------------------- running
def _posterior_settings(args) -> dict:
    level = float_arg("level", "0.9" if args.level is None else args.level, low=0.0, high=1.0,
                      open_low=True)
    if level >= 1.0:
        raise InvalidArgumentError(f"`--level` must be a number in (0, 1), got {args.level!r}.")
    tw = None if args.target_width is None else float_arg("target-width", args.target_width,
                                                          low=0.0, open_low=True)
    return {"posterior": int_arg("posterior", str(DEFAULT_POSTERIOR) if args.posterior is None
                                 else args.posterior, low=0),
            "level": level, "seed": int_arg("seed", "0" if args.seed is None else args.seed, low=0),
            "jobs": int_arg("jobs", "1" if args.jobs is None else args.jobs, low=1),
            "support": DEFAULT_SUPPORT if args.support is None else args.support,
            "borrow": args.unvisited != "exclude",
            "target_width": tw, "evidence": bool(args.evidence)}


def _plain(args, model, load_maps) -> int:
    """Today's report of a primitive instance or an epoch model without counts."""
    base = model
    model = load_maps(args.obs, base) if args.obs else base
    other = load_maps(args.against, base) if args.against else None  # validate first
    kw = dict(reference=args.reference or "uniform", minimax=not args.no_minimax,
              mixing=not args.no_mixing, eps=args.eps)
    doc = gaps_document(model, **kw)
    if other is None:
        if args.json:
            print(json.dumps(doc, allow_nan=False))
        else:
            _print_summary(doc, args.top)
        return 0
    doc_b = gaps_document(other, **kw)
    diff = {k: (None if doc[k] is None or doc_b[k] is None or isinstance(doc[k], str)
                else doc_b[k] - doc[k]) for k in GAP_KEYS}
    if args.json:
        print(json.dumps({"a": doc, "b": doc_b, "differences_b_minus_a": diff}, allow_nan=False))
    else:
        print(f"A = {args.obs or 'instance maps'}    B = {args.against}")
        print(f"  {'key':17s} {'A':>12s} {'B':>12s} {'B - A':>12s}")
        for k in GAP_KEYS:
            print(f"  {k:17s} {_fmt(doc[k]):>12s} {_fmt(doc_b[k]):>12s} {_fmt(diff[k]):>12s}")
    return 0


def _refuse(args, options, where: str) -> None:
    for name in options:
        value = getattr(args, name)
        if value is not None and value is not False:
            flag = "--" + name.replace("_", "-")
            raise InvalidArgumentError(f"`{flag}` applies to {where} only.")


def _run(args) -> int:
    with ExitStack() as stack:
        kind, subject = resolve_subject(args.instance, stack)
        obs_name, against_name = args.obs, args.against
        args.obs = _map_path(args.obs, stack)
        args.against = _map_path(args.against, stack)
        if kind == "instance":
            _refuse(args, POSTERIOR_OPTIONS + TRACE_OPTIONS,
                    "a trace or a fitted epoch model (icsmdp fit)")
            return _plain(args, subject, load_observation_maps)
        fitted = kind == "trace" or (subject.counts is not None
                                     and subject.counts.get("format") == FITTED_COUNTS)
        if not fitted:
            _refuse(args, POSTERIOR_OPTIONS + TRACE_OPTIONS,
                    "a trace or a fitted epoch model (icsmdp fit; this model has no fit counts)")
            return _plain(args, subject, load_label_maps)
        if kind == "epoch":
            _refuse(args, ("admissible",), "a trace (the model file was fitted already)")
            if args.evidence or args.target_width is not None:
                flag = "--evidence" if args.evidence else "--target-width"
                raise InvalidArgumentError(
                    f"`{flag}` needs the trace (subsamples are refitted): run `icsmdp gaps "
                    f"TRACE.jsonl` on the trace this model was fitted from.")
        settings = _posterior_settings(args)
        for given in (args.obs, args.against):     # before the trace is read and fitted
            if given is not None and not Path(given).is_file():
                raise InvalidObservationMapError(f"{given}: no such observation-map file.")
        alpha0 = None if args.alpha0 is None else float_arg("alpha0", args.alpha0, low=0.0,
                                                             open_low=True)
        admissible = args.admissible or "observed"
        trace = fit = None
        if kind == "trace":
            trace = read_trace_arg(subject, show=show_progress(args))
            fit = fit_epoch_model(trace, admissible=admissible,
                                  alpha0=0.5 if alpha0 is None else alpha0)
            fitted_model = fit.model
        else:
            fitted_model = subject
        model = load_label_maps(args.obs, fitted_model) if args.obs else fitted_model
        against = load_label_maps(args.against, fitted_model) if args.against else None
        if fit is not None and not args.json:
            print(fit.message)
        obs = args.obs

        def apply_maps(m: EpochModel) -> EpochModel:
            return load_label_maps(obs, m) if obs else m

        bar = tqdm(total=settings["posterior"], desc="posterior", unit="draw", file=sys.stderr,
                   disable=not show_progress(args) or settings["posterior"] == 0)
        ev_bar = tqdm(total=4, desc="evidence", unit="subsample", file=sys.stderr,
                      disable=not show_progress(args) or trace is None
                      or not (settings["evidence"] or settings["target_width"] is not None))
        stack.callback(ev_bar.close)
        stack.callback(bar.close)
        doc = posterior_document(
            model, against=against, trace=trace, apply_maps=apply_maps,
            reference=args.reference or FITTED_REFERENCE,
            posterior=settings["posterior"], level=settings["level"], support=settings["support"],
            seed=settings["seed"], jobs=settings["jobs"], target_width=settings["target_width"],
            minimax=not args.no_minimax, mixing=not args.no_mixing, progress=bar.update,
            evidence=settings["evidence"], alpha0=alpha0, admissible=admissible, eps=args.eps,
            evidence_progress=ev_bar.update, borrow=settings["borrow"])
        bar.close()
        ev_bar.close()
        doc["obs"] = obs_name
        if doc.get("against") is not None:
            doc["against"]["obs"] = against_name
        if fit is not None:
            doc["fit"] = fit_document(fit, trace_path=subject)
        if args.json:
            print(json.dumps(doc, allow_nan=False))
        else:
            _print_posterior(doc, args.top, obs_name)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("gaps", help=COMMAND_HELP["gaps"])
    p.add_argument("instance", nargs="?", metavar="SUBJECT",
                   help=f"instance file or bundled example (default {DEFAULT_EXAMPLE}), an epoch "
                        f"model (icsmdp-epoch/1 .json/.npz), or a trace (.jsonl, or the bundled "
                        f"workflow-trace)")
    p.add_argument("--obs", help="observation-map file (icsmdp-obs/1): `maps` for an instance, "
                                 "`by_label`/`fields` for an epoch model or trace (bundled: "
                                 "workflow-maps, workflow-bits)")
    p.add_argument("--against", help="a second observation-map file to compare with")
    p.add_argument("--reference", choices=("uniform", "stationary"), default=None,
                   help="reference law d of SPEC section 4 (default: uniform for an instance or "
                        "an export, stationary for a trace or a fitted model)")
    p.add_argument("--eps", type=mixing_eps_type, default=0.25, help="mixing-time threshold (default 1/4)")
    p.add_argument("--top", type=positive_int_type, default=8, help="offending cells shown (default 8)")
    p.add_argument("--no-minimax", action="store_true", help="skip the minimax gaps (LPs)")
    p.add_argument("--no-mixing", action="store_true", help="skip the mixing analysis")
    g = p.add_argument_group("fitted models (a trace, or a model written by `icsmdp fit`)")
    g.add_argument("--posterior", help=f"posterior models for the credible intervals "
                                       f"(default {DEFAULT_POSTERIOR}; 0 = ML values only)")
    g.add_argument("--level", help="credible level in (0, 1) (default 0.9)")
    g.add_argument("--seed", help="seed of the posterior draws (>= 0, default 0)")
    g.add_argument("--jobs", help="worker processes (default 1; the numbers do not depend on it)")
    g.add_argument("--support", choices=SUPPORT_CHOICES,
                   help="posterior prior: state (default: pooled, plus alpha0 on each outcome seen at "
                        "the same state after another successor), pooled (alpha0 in total per "
                        "triple, spread like the trace-wide outcomes of the successor), successor "
                        "(SPEC 10: alpha0 per outcome seen for the successor) or observed "
                        "(outcomes of the triple only)")
    g.add_argument("--unvisited", choices=("borrow", "exclude"),
                   help="declared triples the trace never visited: borrow (default: each posterior "
                        "model completes them from the state's other successors) or exclude")
    g.add_argument("--alpha0", help="prior concentration per outcome (> 0; default: the fit's, 0.5)")
    g.add_argument("--admissible", choices=ADMISSIBLE_CHOICES,
                   help="trace only: admissible sets observed (default) or declared in the header")
    g.add_argument("--evidence", action="store_true",
                   help="trace only: interval width against trace size (refits subsamples)")
    g.add_argument("--target-width", help="trace only: projected invocations for this interval "
                                          "width (implies --evidence)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
