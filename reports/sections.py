"""Report sections: each is one function ``(ReportContext) -> Section``.

The default report (``icsmdp report``) is :data:`DEFAULT_SECTIONS`; later
capabilities add their section functions here and to that list.
"""
from __future__ import annotations

from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.oracle import centralized_oracle
from reports.builder import ReportContext, Section

__all__ = ["solve_summary", "gap_summary", "verify_summary", "DEFAULT_SECTIONS"]


def solve_summary(ctx: ReportContext) -> Section:
    """Exact centralized optimum ``Q*_lat`` of every bundled example (SPEC section 3)."""
    rows, data = [], {}
    for name in EXAMPLES:
        model = load_example(name)
        res = centralized_oracle(model)
        sol = res.solution
        data[name] = {"summary": model.summary(), "num_agents": model.num_agents,
                      "num_epoch_states": res.num_epoch_states, "gamma": model.gamma,
                      "gamma_bar": res.gamma_bar, "v0": res.v0, "method": sol.method,
                      "iterations": sol.iterations, "bellman_residual": sol.bellman_residual,
                      "error_bound": sol.error_bound, "success": sol.success,
                      "status": sol.status, "elapsed_seconds": sol.elapsed}
        rows.append([name, model.num_agents, res.num_epoch_states, model.gamma, res.gamma_bar,
                     res.v0, sol.method, sol.iterations, sol.bellman_residual, sol.error_bound,
                     sol.status])
    blocks = [
        ("p", "The centralized oracle Q*_lat solves the decision-epoch SMDP on full epoch "
              "states s = (x, m, l_0..l_{N-1}, i) exactly (SPEC section 3), here by modified "
              "policy iteration on the committed-successor chain. v0 = E_rho0 V*; gamma_bar = "
              "max E[gamma^tau]; error bound = guaranteed sup-norm error of the values."),
        ("table", ["instance", "N", "epoch states", "gamma", "gamma_bar", "v0", "method",
                   "iterations", "Bellman residual", "error bound", "status"], rows),
    ]
    return Section(key="solve", title="Centralized optimum of the bundled examples",
                   blocks=blocks, data=data)


def gap_summary(ctx: ReportContext) -> Section:
    """AIS gaps of the bundled workflow example's observation maps (SPEC sections 4-6)."""
    from icsmdp_theory.cli_gaps import GAP_KEYS, gaps_document
    from icsmdp_theory.examples import DEFAULT_EXAMPLE
    model = load_example(DEFAULT_EXAMPLE)
    doc = gaps_document(model, reference="uniform")
    rows = [[k, doc[k]] for k in GAP_KEYS] + [[k, doc[k]] for k in
                                              ("t_mix", "relaxation_time", "projected_t_mix")]
    cells = [[c["agent_name"], c["observation"], c["size"], c["epsilon"], c["delta"], c["eta"],
              c["contribution"]] for c in doc["cells"][:8]]
    blocks = [
        ("p", f"Instance `{model.name}` with its own observation maps, uniform reference law. "
              "alpha_tight and alpha_tv are provable bounds on max |Q* - Q_hat* o phi|; "
              "alpha_paper is the paper's form (its validity is the open question checked by "
              "`icsmdp verify`). policy_loss is the exact worst-state loss of the greedy AIS "
              "policy run in the full system (provably <= 2 alpha_tight)."),
        ("table", ["quantity", "value"], rows),
        ("p", "Cells ranked by their contribution (epsilon + eta)/(1 - gamma_bar): split the "
              "top ones first."),
        ("table", ["agent", "observation", "full states", "epsilon", "delta", "eta",
                   "contribution"], cells),
    ]
    data = {k: v for k, v in doc.items() if k != "cells"}
    data["top_cells"] = doc["cells"][:8]
    return Section(key="gaps", title=f"AIS gaps of the `{model.name}` observation maps",
                   blocks=blocks, data=data)


def verify_summary(ctx: ReportContext) -> Section:
    """``icsmdp verify`` on random instances: every provable fact of SPEC section 5."""
    from icsmdp_theory.verify import verify
    n = 200 if ctx.quick else 1000
    ctx.seeds_used["verify"] = ctx.seed
    res = verify(n, seed=ctx.seed, out=ctx.workdir / "counterexamples")
    rows = [[k, t["checked"], t["violations"], t["worst_ratio"]] for k, t in res.properties.items()]
    ap = res.alpha_paper
    blocks = [
        ("p", f"{res.instances} random instances (seed {res.seed}, at most {res.max_states} "
              f"epoch states, families cycled: general, aliased, exact-AIS, private states, "
              f"tau = 1). Each row is a claim lhs <= rhs; the worst ratio lhs/rhs must not "
              f"exceed 1. {res.message}."),
        ("table", ["property", "checked", "violations", "worst lhs/rhs"], rows),
        ("p", f"Open question: does the paper's alpha_paper bound the gaps? Checked on "
              f"{ap['checked']} instances: max_q_gap > alpha_paper on {ap['violations_q']}, "
              f"max_value_gap > alpha_paper on {ap['violations_value']}; worst ratio "
              f"{ap['worst_ratio']:.4g}."),
    ]
    return Section(key="verify", title="Provable facts on random instances", blocks=blocks,
                   data={"instances": res.instances, "seed": res.seed, "success": res.success,
                         "properties": res.properties, "alpha_paper": res.alpha_paper})


#: Sections of the default report, in order.
DEFAULT_SECTIONS = [solve_summary, gap_summary, verify_summary]
