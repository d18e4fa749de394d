"""``icsmdp fit TRACE.jsonl --out MODEL.json|MODEL.npz [--alpha0 A] [--admissible observed|declared] [--force] [--json]``.

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

from estimators.fit import ADMISSIBLE_CHOICES, fit_epoch_model
from icsmdp_theory.epoch_io import save_epoch_model
from icsmdp_theory.examples import DATA_FILES, data_path
from reports.arguments import float_arg, output_file, read_trace_arg, show_progress
from reports.commands import COMMAND_HELP
from reports.documents import fit_document

__all__ = ["add_parser", "SUFFIXES", "BUNDLED_TRACES", "print_fit_report", "trace_path_arg"]

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


def _run(args) -> int:
    path = output_file("--out", args.out, suffixes=SUFFIXES, force=args.force)
    alpha0 = float_arg("alpha0", args.alpha0, low=0.0, open_low=True)
    with ExitStack() as stack:
        trace_path = trace_path_arg(args.trace, stack)
        trace = read_trace_arg(trace_path, show=show_progress(args))
    fit = fit_epoch_model(trace, admissible=args.admissible, alpha0=alpha0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_epoch_model(fit.model, path)
    doc = fit_document(fit, trace_path=trace_path)
    doc["path"] = str(path)
    if args.json:
        print(json.dumps(doc, allow_nan=False))
    else:
        print_fit_report(doc)
        print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help=COMMAND_HELP["fit"])
    p.add_argument("trace", help="handoff trace (icsmdp-trace/1, JSON Lines), or the bundled "
                                 "workflow-trace")
    p.add_argument("--out", required=True, help="MODEL.json or MODEL.npz (format by suffix)")
    p.add_argument("--alpha0", default="0.5",
                   help="posterior prior concentration per outcome, > 0 (default 0.5)")
    p.add_argument("--admissible", choices=ADMISSIBLE_CHOICES, default="observed",
                   help="admissible sets: successors seen (observed, default) or the header's "
                        "(declared)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
