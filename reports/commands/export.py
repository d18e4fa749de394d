"""``icsmdp export EXAMPLE --out FILE [--force] [--json]``: a bundled example as a file to edit.

Writes the bundled example (``tiny-handoff``, ``workflow``) as an instance
file, JSON or compressed ``.npz`` by the suffix of ``FILE`` (SPEC section 9,
:func:`icsmdp_theory.io.save_instance`), atomically. An existing ``FILE`` is
kept unless ``--force`` is given. Prints the absolute path written (with
``--json``: ``{"example", "path", "format"}``). The file loads back to the
same instance: ``icsmdp solve FILE`` gives the example's numbers.
"""
from __future__ import annotations

import json

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.io import save_instance
from reports.arguments import output_file
from reports.commands import COMMAND_HELP

__all__ = ["add_parser", "SUFFIXES"]

#: File suffixes ``export`` writes (the format follows the suffix).
SUFFIXES = (".json", ".npz")


def _run(args) -> int:
    if args.example not in EXAMPLES:
        raise InvalidArgumentError(f"`EXAMPLE` must be one of {', '.join(EXAMPLES)}, "
                                   f"got {args.example!r}.")
    path = output_file("--out", args.out, suffixes=SUFFIXES, force=args.force)
    save_instance(load_example(args.example), path)
    if args.json:
        print(json.dumps({"example": args.example, "path": str(path),
                          "format": path.suffix[1:]}))
    else:
        print(path)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help=COMMAND_HELP["export"])
    p.add_argument("example", help=f"bundled example ({', '.join(EXAMPLES)})")
    p.add_argument("--out", required=True, help="FILE.json or FILE.npz (format by suffix)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
