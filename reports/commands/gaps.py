"""``icsmdp gaps``: what a proposed observation map costs, and where (SPEC sections 4-6).

``icsmdp gaps [INSTANCE] [--obs OBS.json] [--against B.json] [--reference uniform|stationary]
[--eps E] [--top K] [--no-minimax] [--no-mixing] [--json]``

Prints a one-screen summary (the gaps, the three ``alpha`` forms, the realized
gaps against ``Q*_lat``, the minimax gaps, the mixing of the epoch chain under
the uniform behavior) and the top offending cells; ``--against`` compares two
maps. ``--json`` prints one object with at least the keys ``epsilon_phi``,
``delta_phi``, ``delta_phi_gamma``, ``gamma_bar``, ``L_Q``, ``eta``,
``alpha_paper``, ``alpha_tv``, ``alpha_tight``, ``max_q_gap``,
``max_value_gap``, ``policy_loss``, ``minimax_epsilon``, ``minimax_delta``,
``t_mix``, ``relaxation_time``, ``cells``.
"""
from __future__ import annotations

import json

from icsmdp_theory.io import load_observation_maps
from reports.arguments import load_instance_arg, mixing_eps_type, positive_int_type
from reports.documents import GAP_KEYS, gaps_document
from reports.commands import COMMAND_HELP

__all__ = ["add_parser"]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _print_summary(doc: dict, top: int) -> None:
    print(f"{doc['instance']}: reference {doc['reference']}")
    rows = [("epsilon_phi", "max |R - R_hat| (B1)"), ("delta_phi", "max TV of (o', tau) laws (B2)"),
            ("delta_phi_gamma", "max L1 of discounted end laws"), ("gamma_bar", "max E[gamma^tau]"),
            ("L_Q", "span of V_hat"), ("eta", "max |D_phi V_hat - D_hat V_hat|"),
            ("alpha_paper", "(eps + gamma_bar L_Q delta)/(1 - gamma_bar), paper"),
            ("alpha_tv", "(eps + span_f delta)/(1 - gamma_bar), provable"),
            ("alpha_tight", "(eps + eta)/(1 - gamma_bar), provable"),
            ("max_q_gap", "max |Q* - Q_hat* o phi|"), ("max_value_gap", "max |V* - V_hat* o phi|"),
            ("policy_loss", "max (V* - V^greedy-AIS), exact"),
            ("minimax_epsilon", "best epsilon any R_hat achieves"),
            ("minimax_delta", "best delta any P_hat achieves"),
            ("t_mix", f"mixing time (eps={_fmt(doc.get('eps'))}, uniform behavior)"),
            ("relaxation_time", "1/(1 - |lambda_2|)"),
            ("projected_t_mix", "mixing of the (agent, observation) marginal")]
    for key, what in rows:
        print(f"  {key:17s} {_fmt(doc.get(key)):>12s}   {what}")
    if doc.get("t_mix_is_exact") is False:
        print(f"  t_mix bounds      [{_fmt(doc['t_mix_lower'])}, {_fmt(doc['t_mix_upper'])}]"
              f"   (not exact: chain too large for matrix powers)")
    if doc.get("delta_phi_tail_bound"):
        print(f"  (delta_phi truncation bound {doc['delta_phi_tail_bound']:.2g})")
    if doc["fallback_cells"]:
        print(f"  cells with zero reference mass (uniform fallback): {doc['fallback_cells']}")
    cells = doc["cells"][:top]
    if cells:
        print(f"\ntop {len(cells)} cells by contribution (epsilon + eta)/(1 - gamma_bar):")
        print(f"  {'agent':12s} {'obs':>4s} {'size':>5s} {'epsilon':>10s} {'delta':>10s} "
              f"{'eta':>10s} {'contrib':>10s}  worst state")
        for c in cells:
            st = c.get("epsilon_state") if (c.get("epsilon") or 0) >= (c.get("eta") or 0) \
                else c.get("delta_state")
            print(f"  {c['agent_name'][:12]:12s} {c['observation']:>4d} {c['size']:>5d} "
                  f"{_fmt(c['epsilon']):>10s} {_fmt(c['delta']):>10s} {_fmt(c['eta']):>10s} "
                  f"{_fmt(c['contribution']):>10s}  {st}")


def _run(args) -> int:
    base = load_instance_arg(args.instance)
    model = load_observation_maps(args.obs, base) if args.obs else base
    other = load_observation_maps(args.against, base) if args.against else None  # validate first
    kw = dict(reference=args.reference, minimax=not args.no_minimax, mixing=not args.no_mixing,
              eps=args.eps)
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


def add_parser(sub) -> None:
    p = sub.add_parser("gaps", help=COMMAND_HELP["gaps"])
    p.add_argument("instance", nargs="?", help="instance file or bundled example (default workflow)")
    p.add_argument("--obs", help="observation-map file (icsmdp-obs/1) replacing the instance's maps")
    p.add_argument("--against", help="a second observation-map file to compare with")
    p.add_argument("--reference", choices=("uniform", "stationary"), default="uniform",
                   help="reference law d of SPEC section 4 (default uniform)")
    p.add_argument("--eps", type=mixing_eps_type, default=0.25, help="mixing-time threshold (default 1/4)")
    p.add_argument("--top", type=positive_int_type, default=8, help="offending cells shown (default 8)")
    p.add_argument("--no-minimax", action="store_true", help="skip the minimax gaps (LPs)")
    p.add_argument("--no-mixing", action="store_true", help="skip the mixing analysis")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
