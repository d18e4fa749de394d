"""``icsmdp fit TRACE.jsonl --out MODEL.json|MODEL.npz [--alpha0 A] [--admissible observed|declared] [--force] [--json]``.

``icsmdp fit NEW.jsonl --against OLD.jsonl [--out MODEL.json] [--level 0.05] [--correction holm|bh] [--obs MAP] [--json]``
also fits the older trace ``OLD.jsonl`` and prints the drift report after the
fit report (:func:`estimators.drift.trace_drift`; ``--json``: a ``drift`` key):
which ``(k, i, c')`` laws changed (per-triple tests, Holm-corrected at
``--level``), the triples seen in one trace only, and whether the recommended
full-information policy changed (with ``--obs``, an ``icsmdp-obs/1`` map over
labels or a bundled map name, also the AIS-greedy policy on the map's cells and
the exact optimum over decentralized policies on the cells, the workflow a
designer would deploy: which cells changed their successor, what keeping the
old one loses, and for a math-reasoning trace the named workflow each equals;
``decentralized`` under ``drift``). ``--out`` is optional with ``--against``. Two traces with different agents or
``gamma`` exit 2 with one line, and nothing is written.

Reads a handoff trace ``icsmdp-trace/1`` (:func:`icsmdp_theory.traces.read_trace`,
streaming) and writes its maximum-likelihood explicit epoch model
``icsmdp-epoch/1`` with the counts behind it (SPEC section 10 "Estimation",
:func:`estimators.fit.fit_epoch_model`); ``icsmdp gaps MODEL`` then reports the
gaps of an observation map with credible intervals from those counts.

- ``--alpha0``: the posterior's prior concentration per outcome, stored in the
  counts (default 0.5, SPEC 10);
- ``--admissible``: ``observed`` (default; the successors seen at each
  ``(k, i)``) or ``declared`` (the header's ``admissible`` sets intersected with
  the data; declared but unvisited triples are reported and excluded).

Prints the fit report (invocations, episodes, truncated episodes, states and
triples seen, unvisited declared triples, dangling invocations, the Markov
and successor-dependence checks with p-values); ``--json`` prints
:func:`reports.documents.fit_document` with ``path`` (the file written). JSON
or compressed ``.npz`` by the suffix of ``--out``, written atomically; an
existing file is kept unless ``--force``. The destination is checked before
the trace is read; a bad trace exits 2 with one line naming the line number
and writes nothing.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

from estimators.drift import trace_drift
from estimators.fit import ADMISSIBLE_CHOICES, fit_epoch_model
from icsmdp_theory.documents import read_json
from icsmdp_theory.epoch_io import load_label_maps, save_epoch_model
from icsmdp_theory.errors import InvalidArgumentError, InvalidObservationMapError
from icsmdp_theory.examples import DATA_FILES, data_path
from reports.arguments import float_arg, output_file, read_trace_arg, show_progress
from reports.commands import COMMAND_HELP
from reports.documents import fit_document

__all__ = ["add_parser", "SUFFIXES", "BUNDLED_TRACES", "print_fit_report", "print_drift_report",
           "trace_path_arg"]

#: File suffixes ``fit`` writes (the format follows the suffix).
SUFFIXES = (".json", ".npz")
#: Bundled traces, by name (:data:`icsmdp_theory.examples.DATA_FILES`).
BUNDLED_TRACES = tuple(n for n, f in DATA_FILES.items() if f.endswith(".jsonl"))


def trace_path_arg(arg: str, stack: ExitStack) -> str:
    """A trace path, or the path of a bundled trace named ``arg`` (kept available by ``stack``)."""
    if Path(arg).exists() or arg not in BUNDLED_TRACES:
        return arg
    return str(stack.enter_context(resources.as_file(data_path(arg))))


def _p(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def print_fit_report(doc: dict) -> None:
    """Print a fit document (:func:`reports.documents.fit_document`) for a reader."""
    m = doc["model"]
    print(f"{doc['trace']}: gamma {m['gamma']:g}, agents {', '.join(m['agents'])}")
    print(f"  invocations          {doc['invocations']:>8d}   ({doc['invocations_used']} behind the "
          f"estimates, {doc['dangling']} dangling dropped)")
    print(f"  episodes             {doc['episodes']:>8d}   ({doc['truncated_episodes']} truncated, "
          f"{doc['starts_dropped']} starts dropped)")
    print(f"  labels seen          {doc['labels_seen']:>8d}")
    print(f"  epoch states         {doc['states_seen']:>8d}   ({doc['pairs_without_outcome']} pairs "
          f"seen without an outcome)")
    print(f"  triples (k, i, c')   {doc['triples_seen']:>8d}   ({m['num_transitions']} outcomes "
          f"(k', tau))")
    print(f"  admissible sets      {doc['admissible']:>8s}   alpha0 {doc['alpha0']:g}")
    unv = doc["unvisited_declared"]
    if unv:
        print(f"  unvisited declared triples (excluded): {len(unv)}")
        for t in unv[:8]:
            print(f"    label {t['label']} agent {t['agent']} -> {t['successor']}")
        if len(unv) > 8:
            print(f"    ... {len(unv) - 8} more")
    print("assumption checks:")
    for test in (doc["markov_test"], doc["successor_test"], doc["successor_test"].get("tau_only")):
        if test is None:
            continue
        print(f"  {test['verdict']}")
        if test.get("worst") is not None:
            print(f"    smallest p at {json.dumps(test['worst'], ensure_ascii=False)}")


def print_drift_report(drift: dict, top: int = 12) -> None:
    """Print a drift report (:meth:`estimators.drift.DriftResult.to_dict`) for a reader."""
    print(f"drift against {drift.get('against')}:")
    print(f"  {drift['verdict']}")
    t = drift["tests"]
    print(f"  law tests: {t['law']['g_test']} G (Williams), {t['law']['monte_carlo']} exact "
          f"conditional (Monte Carlo, {drift['permutations']} tables), {t['law']['degenerate']} "
          f"degenerate; reward tests: {t['reward']['welch']} Welch, {t['reward']['permutation']} "
          f"permutation, {t['reward']['exact']} exact, {t['reward']['degenerate']} degenerate")
    if drift["changed"]:
        print(f"  changed triples ({drift['correction']} at {drift['level']:g}):")
        print(f"    {'label':28s} {'agent':10s} {'successor':10s} {'n new':>6s} {'n old':>6s} "
              f"{'p':>9s} {'adj. p':>9s} {'TV':>6s} {'dR':>9s}")
        for c in drift["changed"][:top]:
            print(f"    {c['label'][:28]:28s} {c['agent'][:10]:10s} {c['successor'][:10]:10s} "
                  f"{c['n_new']:6d} {c['n_old']:6d} {c['p_value']:9.3g} {c['adjusted']:9.3g} "
                  f"{c['tv']:6.3f} {c['reward_difference']:9.3g}")
        if len(drift["changed"]) > top:
            print(f"    ... {len(drift['changed']) - top} more")
    for key, what in (("only_new", "new"), ("only_old", "old")):
        if drift[key]:
            print(f"  triples seen only in the {what} trace: {len(drift[key])}")
            for c in drift[key][:4]:
                print(f"    label {c['label']} agent {c['agent']} -> {c['successor']} ({c['count']})")
    for key, what in (("policy", "full-information greedy"), ("ais_policy", "AIS-greedy on the map")):
        pol = drift.get(key)
        if pol is None:
            continue
        where = "states" if key == "policy" else "cells"
        print(f"  {what}: {'changed' if pol['policy_changed'] else 'unchanged'} "
              f"({len(pol['changed'])} of {pol['shared_' + where]} shared {where})")
        for c in pol["changed"][:top]:
            at = f"label {c['label']}" if key == "policy" else \
                f"observation {json.dumps(c['fields']) if c['fields'] is not None else c['observation']}"
            print(f"    {c['agent']} at {at}: {c['old']} -> {c['new']}")
        if len(pol["changed"]) > top:
            print(f"    ... {len(pol['changed']) - top} more")
    dec = drift.get("decentralized")
    if dec is not None and not dec["computed"]:
        print(f"  decentralized optimum on the map: not computed ({dec['reason']})")
    elif dec is not None:
        what = "accuracy (undiscounted correct)" if dec["objective"] == "correct" else \
            "discounted reward"
        print(f"  decentralized optimum on the map ({what}): "
              f"{'changed' if dec['policy_changed'] else 'unchanged'}")
        for side in ("new", "old"):
            s = dec[side]
            name = s["workflow"] or "no named workflow"
            near = "" if s["workflow"] is not None or s["workflow_values"] is None else \
                "; no named workflow has data on all the states it reaches" \
                if s["best_workflow"] is None else \
                f"; best named: {s['best_workflow']}, {s['best_workflow_gap']:.3g} below"
            print(f"    {side}: {s['value']:.4f} ({name}{near}; {s['num_policies']} policies)")
        for c in dec["changed"][:top]:
            at = json.dumps(c["fields"]) if c["fields"] is not None else c["observation"]
            print(f"    {c['agent']} at observation {at}: {c['old']} -> {c['new']}")
        for side, other in (("new", "old"), ("old", "new")):
            loss = dec["loss_" + side]
            print(f"    keeping the {other} recommendation loses "
                  f"{'-' if loss is None else f'{loss:.4g}'} in the {side} model")


def _map_path(arg: str, stack: ExitStack) -> str:
    """The path of ``--obs``: a file, or a bundled map by name; checked before any trace is read."""
    if not Path(arg).exists() and arg in DATA_FILES and not DATA_FILES[arg].endswith(".jsonl"):
        arg = str(stack.enter_context(resources.as_file(data_path(arg))))
    if not Path(arg).is_file():
        raise InvalidObservationMapError(f"{arg}: no such observation-map file.")
    return arg


def _map_doc(path: str, model) -> dict:
    """The parsed ``icsmdp-obs/1`` document at ``path``, checked on ``model`` (errors name the file)."""
    load_label_maps(path, model)
    return read_json(Path(path), InvalidObservationMapError)


def _run(args) -> int:
    if args.against is None:
        for flag, value in (("--level", args.level), ("--obs", args.obs),
                            ("--correction", args.correction)):
            if value is not None:
                raise InvalidArgumentError(f"`{flag}` applies with `--against OLD.jsonl` only.")
        if args.out is None:
            raise InvalidArgumentError("`--out` is required (MODEL.json or MODEL.npz) unless "
                                       "`--against OLD.jsonl` asks for a drift report.")
    path = None if args.out is None else output_file("--out", args.out, suffixes=SUFFIXES,
                                                     force=args.force)
    alpha0 = float_arg("alpha0", args.alpha0, low=0.0, open_low=True)
    level = 0.05 if args.level is None else float_arg("level", args.level, low=0.0, high=1.0,
                                                      open_low=True)
    if level >= 1.0:
        raise InvalidArgumentError(f"`--level` must be a number in (0, 1), got {args.level!r}.")
    drift = None
    with ExitStack() as stack:
        trace_path = trace_path_arg(args.trace, stack)
        against_path = None if args.against is None else trace_path_arg(args.against, stack)
        obs_path = None if args.obs is None else _map_path(args.obs, stack)
        trace = read_trace_arg(trace_path, show=show_progress(args))
        fit = fit_epoch_model(trace, admissible=args.admissible, alpha0=alpha0)
        if against_path is not None:
            old = fit_epoch_model(read_trace_arg(against_path, show=show_progress(args)),
                                  admissible=args.admissible, alpha0=alpha0)
            obs = None if obs_path is None else _map_doc(obs_path, fit.model)
            try:
                result = trace_drift(fit, old, level=level, obs=obs, rng=0,
                                     correction=args.correction or "holm")
            except InvalidObservationMapError as exc:
                raise InvalidObservationMapError(f"{obs_path}: {exc}") from None
            drift = {"against": against_path, "obs": args.obs, **result.to_dict()}
    doc = fit_document(fit, trace_path=trace_path)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_epoch_model(fit.model, path)
        doc["path"] = str(path)
    if drift is not None:
        doc["drift"] = drift
    if args.json:
        print(json.dumps(doc, allow_nan=False))
    else:
        print_fit_report(doc)
        if drift is not None:
            print_drift_report(drift)
        if path is not None:
            print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help=COMMAND_HELP["fit"])
    p.add_argument("trace", help="handoff trace (icsmdp-trace/1, JSON Lines), or the bundled "
                                 "workflow-trace")
    p.add_argument("--out", help="MODEL.json or MODEL.npz (format by suffix); required unless "
                                 "--against")
    p.add_argument("--against", help="an older trace of the same workflow: print the drift report "
                                     "(changed (k, i, c') laws, recommended policy)")
    p.add_argument("--correction", choices=("holm", "bh"), default=None,
                   help="with --against: multiple-testing correction across triples, Holm "
                   "(family-wise, default) or bh (Benjamini-Hochberg, false discovery rate)")
    p.add_argument("--level", help="with --against: level of the Holm-corrected tests, in (0, 1) "
                                   "(default 0.05)")
    p.add_argument("--obs", help="with --against: an observation map over labels (icsmdp-obs/1, or "
                                 "a bundled map): also compare the AIS-greedy policies on its cells")
    p.add_argument("--alpha0", default="0.5",
                   help="posterior prior concentration per outcome, > 0 (default 0.5)")
    p.add_argument("--admissible", choices=ADMISSIBLE_CHOICES, default="observed",
                   help="admissible sets: successors seen (observed, default) or the header's "
                        "(declared)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
