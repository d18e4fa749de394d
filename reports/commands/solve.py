"""``icsmdp solve``: the exact centralized optimum ``Q*_lat`` of an instance (SPEC section 3).

``icsmdp solve [INSTANCE] [--method auto|vi|pi|mpi] [--tol T] [--max-iter K] [--json]``
computes ``Q*_lat`` of an instance file (``.json``/``.npz``) or bundled example
and prints ``gamma_bar``, ``v0 = E_rho0 V*``, the solver's message and its
certified error bound; exits 1 when the solver did not meet ``tol``. With
adaptable agents (issue 15) ``q_star`` is over the choices ``j = a*(N+1) + c'``
and the JSON adds ``num_choices``, ``choice_order`` and the mode names.

The default ``--method auto`` (:class:`solvers.oracle.AutoSolver`) finishes
fast on every instance: modified policy iteration, or policy iteration when
``gamma`` is so close to 1 that value iteration would need more than
:data:`solvers.oracle.AUTO_VI_SWEEPS` sweeps. The printed bound and the JSON
``error_bound`` are the same number (the solver's message states it too).
"""
from __future__ import annotations

import json

from icsmdp_theory.examples import DEFAULT_EXAMPLE, EXAMPLES
from icsmdp_theory.results import to_jsonable
from reports.arguments import load_instance_arg, positive_float_type, positive_int_type
from solvers.oracle import METHODS, centralized_oracle, make_solver
from reports.commands import COMMAND_HELP

__all__ = ["add_parser", "MAX_JSON_Q_ENTRIES"]

#: ``q_star`` is included in ``solve --json`` up to this many entries.
MAX_JSON_Q_ENTRIES = 100_000


def _run(args) -> int:
    model = load_instance_arg(args.instance)
    res = centralized_oracle(model, solver=make_solver(args.method, args.tol, args.max_iter))
    sol = res.solution
    auto = sol.settings.get("auto") if args.method == "auto" else None
    if args.json:
        out = {"instance": model.name, "gamma": model.gamma, "gamma_bar": res.gamma_bar,
               "v0": res.v0, "method": sol.method, "requested_method": args.method,
               "method_reason": auto["reason"] if auto else None, "tol": args.tol,
               "iterations": sol.iterations, "bellman_residual": sol.bellman_residual,
               "error_bound": sol.error_bound, "success": sol.success, "status": sol.status,
               "message": sol.message, "num_epoch_states": res.num_epoch_states,
               "num_successors": model.num_successors, "elapsed_seconds": res.elapsed,
               "state_order": "s = f*N + i, f = (x, m, l_0..l_{N-1}) in C order",
               "q_star": None}
        if model.has_modes:  # adaptable agents (issue 15); absent for one-mode models
            out = {**{k: v for k, v in out.items() if k != "q_star"},
                   "num_choices": model.num_choices,
                   "choice_order": "j = a*(N+1) + c' (mode a, successor c'); null where a >= K_i",
                   "modes": [list(a.modes) if a.modes is not None else None
                             for a in model.agents], "q_star": None}
        if sol.q.size <= MAX_JSON_Q_ENTRIES:
            out["q_star"] = sol.q  # nan (inadmissible) -> null
        print(json.dumps(to_jsonable(out), allow_nan=False))
    else:
        print(model.summary())
        print(f"gamma_bar      {res.gamma_bar:.6g}   (max E[gamma^tau] over agents and local states)")
        print(f"v0             {res.v0:.10g}   (E_rho0 V*)")
        chosen = f"auto -> {sol.method} ({auto['reason']})" if auto else sol.method
        print(f"method         {chosen}")
        print(f"status         {sol.status}: {sol.message}")
        print(f"iterations     {sol.iterations}")
        print(f"residual       {sol.bellman_residual:.3g}   (error bound {sol.error_bound:.3g})")
        print(f"time           {res.elapsed:.3f} s")
    return 0 if sol.success else 1


def add_parser(sub) -> None:
    s = sub.add_parser("solve", help=COMMAND_HELP["solve"])
    s.add_argument("instance", nargs="?", help=f"instance file or bundled example "
                   f"({', '.join(EXAMPLES)}); default {DEFAULT_EXAMPLE}")
    s.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (default: modified policy iteration, or policy iteration when "
                   "gamma is near 1), value iteration, policy iteration, modified policy iteration")
    s.add_argument("--tol", type=positive_float_type, default=1e-8,
                   help="guaranteed sup-norm error of the values (default 1e-8)")
    s.add_argument("--max-iter", type=positive_int_type, default=None,
                   help="cap on sweeps (vi) or improvement steps (pi, mpi, auto); "
                   "default the solver's")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_run)
