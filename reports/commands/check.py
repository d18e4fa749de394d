"""``icsmdp check INSTANCE RUN [--obs OBS.json] [--json]``: Theorem 1, term by term.

``RUN`` is a run record (``solvers.records``: the ``.npz`` with its JSON
sidecar), written by ``icsmdp run`` or by any IC-Q implementation following
the documented format. Prints ``lhs(T)`` with its bootstrap interval, each
term of the bound and a verdict per term; exits 1 when a provable term is
violated.

A record interrupted after some checkpoints is checked on the checkpoints
that every seed reached, and the output says so (``checkpoints_used``,
``checkpoints_dropped``). A run that does not meet Theorem 1's assumptions
(the paper's step size, the fixed behavior that defines ``mu``) is still
checked numerically; the overall verdict line says which assumption fails
and every JSON verdict carries ``assumptions_met``.

An instance with adaptable agents (modes) is checked over the choices
``j = a*(N+1) + c'`` (the record's ``q`` has ``J = max_i K_i (N+1)`` columns);
a record whose column count differs from the instance's is refused in one line.
"""
from __future__ import annotations

import json

from estimators.checker import check_run
from icsmdp_theory.epoch_io import load_label_maps
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.io import load_observation_maps
from icsmdp_theory.results import to_jsonable
from reports.arguments import load_model_arg
from solvers.records import load_run
from reports.commands import COMMAND_HELP

__all__ = ["add_parser"]


def _run(args) -> int:
    model = load_model_arg(args.instance)
    if args.obs:  # the `maps` form for an instance, `by_label`/`fields` for an epoch model
        load = load_label_maps if isinstance(model, EpochModel) else load_observation_maps
        model = load(args.obs, model)
    record = load_run(args.run)
    res = check_run(model, record)
    if args.json:
        doc = {k: getattr(res, k) for k in ("success", "status", "message", "checkpoints",
                                            "checkpoints_used", "checkpoints_dropped",
                                            "lhs_mean", "lhs_lower", "lhs_upper", "floor",
                                            "alpha", "interface_term", "approximation", "mixing",
                                            "verdicts", "assumptions", "bound_latex")}
        print(json.dumps(to_jsonable(doc), allow_nan=False))
    else:
        print(f"{model.name}: {record.summary()}")
        if res.checkpoints_dropped:
            print(f"using {res.checkpoints_used} of {res.checkpoints_used + res.checkpoints_dropped}"
                  f" checkpoints: the ones every seed reached (the run stopped early)")
        print(f"{'T':>8s} {'lhs mean':>12s} {'95% interval':>26s}")
        for T, m, lo, hi in zip(res.checkpoints, res.lhs_mean, res.lhs_lower, res.lhs_upper):
            print(f"{int(T):8d} {m:12.6g} [{lo:11.6g}, {hi:11.6g}]")
        print(f"exact floor sum mu (Q_hat* o phi - Q*)^2 = {res.floor:.6g}")
        for f, a in res.alpha.items():
            print(f"{f:12s} = {a:.6g}   2 alpha^2 = {res.interface_term[f]:.6g}   "
                  f"smallest C0 = {res.mixing['c0_min'][f]:.6g}")
        ap = res.approximation
        print(f"approximation: eps_app {ap['eps_app']:.3g}, eps_0 {ap['eps0_value']:.3g}, "
              f"lambda_0 {ap['lambda_0']:.3g}, lambda_max {ap['lambda_max']:.3g}")
        dec = res.mixing["decay"]
        print(f"mixing: t_mix {res.mixing['t_mix']:.6g}"
              f"{'' if res.mixing['t_mix_is_exact'] else ' (upper bound)'}, decay exponent "
              f"{dec['exponent']:.3f} [{dec['lower']:.3f}, {dec['upper']:.3f}] vs predicted "
              f"{dec['predicted']:.3f}")
        met, why = res.assumptions.get("met"), res.assumptions.get("reasons", [])
        for k, v in res.verdicts.items():
            reason = v["reason"]
            if k == "overall" and met is False:
                reason += ("; numerically only: the run does not meet Theorem 1's assumptions ("
                           + "; ".join(why) + ")")
            elif k == "overall" and met is None:
                reason += "; the record does not state its step size and behavior"
            print(f"  {k:24s} {v['verdict']:13s} {reason}")
    return 0 if res.success else 1


def add_parser(sub) -> None:
    p = sub.add_parser("check", help=COMMAND_HELP["check"])
    p.add_argument("instance", help="instance file or bundled example")
    p.add_argument("run", help="run record (.npz with its .json sidecar)")
    p.add_argument("--obs", help="observation-map file the run used")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
