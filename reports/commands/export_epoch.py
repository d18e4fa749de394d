"""``icsmdp export-epoch INSTANCE --out E.json|E.npz [--force] [--json]``: the explicit epoch form.

Writes a primitive instance (a file or a bundled example) as an explicit
epoch model ``icsmdp-epoch/1`` (SPEC section 10,
:func:`icsmdp_theory.epoch_export.export_epoch`): labels are the full states
``[x, m, l_0, ..., l_{N-1}]``, durations summed until the remaining mass is
below ``1e-13`` (the remainder is reported). JSON or compressed ``.npz`` by the
suffix of ``--out``, written atomically; an existing file is kept unless
``--force``. The destination is checked before any work; bad input exits 2
with one line and writes nothing. Prints the absolute path written (with
``--json``: ``{"path", "states", "labels", "transitions", "truncation_remainder"}``).
"""
from __future__ import annotations

import json

from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_io import save_epoch_model
from reports.arguments import load_instance_arg, output_file
from reports.commands import COMMAND_HELP

__all__ = ["add_parser", "SUFFIXES"]

#: File suffixes ``export-epoch`` writes (the format follows the suffix).
SUFFIXES = (".json", ".npz")


def _run(args) -> int:
    path = output_file("--out", args.out, suffixes=SUFFIXES, force=args.force)
    model = export_epoch(load_instance_arg(args.instance))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_epoch_model(model, path)
    if args.json:
        print(json.dumps({"path": str(path), "states": model.num_epoch_states,
                          "labels": model.num_labels, "transitions": model.num_transitions,
                          "truncation_remainder": model.truncation_remainder}))
    else:
        print(path)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export-epoch", help=COMMAND_HELP["export-epoch"])
    p.add_argument("instance", help="instance file (.json/.npz) or bundled example name")
    p.add_argument("--out", required=True, help="E.json or E.npz (format by suffix)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
