"""The ``icsmdp`` command line.

``icsmdp solve [INSTANCE] [--method vi|pi|mpi] [--tol T] [--json]``
    Exact ``Q*_lat`` of an instance file (``.json``/``.npz``) or bundled example.
``icsmdp report [--out DIR] [--seed S] [--full]``
    The validation report of the bundled defaults (prints its path).

Bad input prints one line on stderr naming what is wrong and where, exits
with status 2 and writes nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

from icsmdp_theory.errors import ICSMDPError, InvalidArgumentError
from icsmdp_theory.examples import DEFAULT_EXAMPLE, EXAMPLES, load_example
from icsmdp_theory.io import load_instance
from icsmdp_theory.results import to_jsonable

__all__ = ["main", "build_parser", "load_instance_arg"]

#: Modules that add a subcommand through ``add_parser(subparsers)``; each sets
#: ``func(args) -> int`` as its default.
_COMMAND_MODULES = ("icsmdp_theory.cli_gaps", "icsmdp_theory.cli_verify", "icsmdp_theory.cli_run",
                    "icsmdp_theory.cli_check", "icsmdp_theory.cli_reproduce")

#: ``q_star`` is included in ``solve --json`` up to this many entries.
MAX_JSON_Q_ENTRIES = 100_000


def load_instance_arg(arg: str | None):
    """An instance path, a bundled example name, or ``None`` for the default example."""
    if arg is None:
        return load_example(DEFAULT_EXAMPLE)
    path = Path(arg)
    if path.exists():
        return load_instance(path)
    if arg in EXAMPLES:
        return load_example(arg)
    raise InvalidArgumentError(
        f"`INSTANCE`: {arg!r} is neither a file nor a bundled example ({', '.join(EXAMPLES)}).")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def _cmd_solve(args) -> int:
    from icsmdp_theory.oracle import centralized_oracle, make_solver
    model = load_instance_arg(args.instance)
    res = centralized_oracle(model, make_solver(args.method, args.tol))
    sol = res.solution
    if args.json:
        out = {"instance": model.name, "gamma": model.gamma, "gamma_bar": res.gamma_bar,
               "v0": res.v0, "method": sol.method, "tol": args.tol,
               "iterations": sol.iterations, "bellman_residual": sol.bellman_residual,
               "error_bound": sol.error_bound, "success": sol.success, "status": sol.status,
               "message": sol.message, "num_epoch_states": res.num_epoch_states,
               "num_successors": model.num_successors, "elapsed_seconds": res.elapsed,
               "state_order": "s = f*N + i, f = (x, m, l_0..l_{N-1}) in C order",
               "q_star": None}
        if sol.q.size <= MAX_JSON_Q_ENTRIES:
            out["q_star"] = sol.q  # nan (inadmissible) -> null
        print(json.dumps(to_jsonable(out), allow_nan=False))
    else:
        print(model.summary())
        print(f"gamma_bar      {res.gamma_bar:.6g}   (max E[gamma^tau] over agents and local states)")
        print(f"v0             {res.v0:.10g}   (E_rho0 V*)")
        print(f"method         {sol.method}: {sol.message}")
        print(f"iterations     {sol.iterations}")
        print(f"residual       {sol.bellman_residual:.3g}   (error bound {sol.error_bound:.3g})")
        print(f"time           {res.elapsed:.3f} s")
    return 0 if sol.success else 1


def _cmd_report(args) -> int:
    from reports.builder import build_report
    from reports.sections import DEFAULT_SECTIONS, FULL_SECTIONS
    sections = FULL_SECTIONS if args.full else DEFAULT_SECTIONS
    path = build_report(sections, out_root=args.out, seed=args.seed, quick=not args.full,
                        argv=["icsmdp"] + list(args.argv))
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="icsmdp", description=(
        "Check the theory of decentralized workflow learning (IC-SMDPs, IC-Q, Theorem 1)."))
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="exact centralized optimum Q*_lat of an instance")
    s.add_argument("instance", nargs="?", help=f"instance file or bundled example "
                   f"({', '.join(EXAMPLES)}); default {DEFAULT_EXAMPLE}")
    s.add_argument("--method", choices=("vi", "pi", "mpi"), default="mpi",
                   help="value iteration, policy iteration, modified policy iteration (default)")
    s.add_argument("--tol", type=_positive_float, default=1e-8,
                   help="guaranteed sup-norm error of the values (default 1e-8)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_cmd_solve)

    r = sub.add_parser("report", help="write the validation report of the bundled defaults")
    r.add_argument("--out", default=str(Path("reports") / "out"),
                   help="directory under which the report directory is created")
    r.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    r.add_argument("--full", action="store_true", help="paper-scale studies")
    r.set_defaults(func=_cmd_report)

    import importlib
    for mod in _COMMAND_MODULES:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        module.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icsmdp`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except ICSMDPError as exc:
        msg = " ".join(str(exc).split())
        print(f"icsmdp {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"icsmdp {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `icsmdp solve --json | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
