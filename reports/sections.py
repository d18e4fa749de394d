"""Report sections: each is one function ``(ReportContext) -> Section``.

The default report (``icsmdp report``) is :data:`DEFAULT_SECTIONS`; later
capabilities add their section functions here and to that list.
"""
from __future__ import annotations

import re
from html.entities import html5

import matplotlib
import numpy as np
from sympy.printing.mathml import mathml

from estimators.checker import check_run
from estimators.theorem import bound_terms
from icsmdp_theory.examples import DEFAULT_EXAMPLE, EXAMPLES, load_example
from reports.builder import ReportContext, Section
from reports.documents import GAP_KEYS, gaps_document
from reports.studies.cpu import cpu
from reports.studies.llm import llm_summary
from reports.studies.routing import routing
from reports.studies.synthetic_t1 import synthetic_t1
from reports.studies.synthetic_t2 import synthetic_t2
from reports.verify import verify
from solvers import ICQ, FixedBehavior, solve
from solvers.oracle import centralized_oracle

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["solve_summary", "gap_summary", "verify_summary", "theorem_check", "bound_mathml",
           "DEFAULT_SECTIONS", "FULL_SECTIONS"]

#: Left-hand side of Theorem 1 in presentation MathML (``E ||Q(.; theta_T) - Q*_lat||_mu^2 <=``).
_BOUND_LHS_MATHML = (
    "<mi>&#x1D53C;</mi>"
    "<msubsup><mrow><mo>&#x2016;</mo><mi>Q</mi><mo>(</mo><mo>&#x22C5;</mo><mo>;</mo>"
    "<msub><mi>&#x3B8;</mi><mi>T</mi></msub><mo>)</mo><mo>&#x2212;</mo>"
    "<msubsup><mi>Q</mi><mi>lat</mi><mo>*</mo></msubsup><mo>&#x2016;</mo></mrow>"
    "<mi>&#x3BC;</mi><mn>2</mn></msubsup><mo>&#x2264;</mo>")


def bound_mathml() -> str:
    """Theorem 1 (SPEC section 8) as a presentation-MathML ``<math>`` element.

    The right-hand side is printed by sympy from :func:`estimators.theorem.bound_terms`
    (interface, approximation, mixing, in that order), so it is the expression the
    checker evaluates; browsers render MathML natively, offline.
    """
    terms = bound_terms()
    rhs = "<mo>+</mo>".join(f"<mrow>{mathml(terms[k], printer='presentation')}</mrow>"
                            for k in ("interface", "approximation", "mixing"))
    # named entities (sympy's &InvisibleTimes;) as numeric references: valid XML and HTML
    rhs = re.sub(r"&([A-Za-z][A-Za-z0-9]*);",
                 lambda m: "".join(f"&#x{ord(c):X};" for c in html5[m.group(1) + ";"])
                 if m.group(1) + ";" in html5 and m.group(1) not in ("amp", "lt", "gt", "quot")
                 else m.group(0), rhs)
    return ("<math xmlns=\"http://www.w3.org/1998/Math/MathML\" display=\"block\">"
            f"<mrow>{_BOUND_LHS_MATHML}{rhs}</mrow></math>")


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
              "policy iteration on the committed-successor chain. Columns: `v0` = E_rho0 V*, "
              "`gamma_bar` = max E[gamma^tau], error bound = guaranteed sup-norm error of the "
              "values."),
        ("table", ["instance", "N", "epoch states", "gamma", "gamma_bar", "v0", "method",
                   "iterations", "Bellman residual", "error bound", "status"], rows),
    ]
    return Section(key="solve", title="Centralized optimum of the bundled examples",
                   blocks=blocks, data=data)


def gap_summary(ctx: ReportContext) -> Section:
    """AIS gaps of the bundled workflow example's observation maps (SPEC sections 4-6)."""
    model = load_example(DEFAULT_EXAMPLE)
    doc = gaps_document(model, reference="uniform")
    ref = f"{doc['reference']} reference"

    def label(k):
        return f"`{k}` ({ref})" if k.startswith("alpha") else f"`{k}`"

    rows = [[label(k), doc[k]] for k in GAP_KEYS] + [[label(k), doc[k]] for k in
                                                     ("t_mix", "relaxation_time",
                                                      "projected_t_mix")]
    cells = [[c["agent_name"], c["observation"], c["size"], c["epsilon"], c["delta"], c["eta"],
              c["contribution"]] for c in doc["cells"][:8]]
    blocks = [
        ("p", f"Instance `{model.name}` with its own observation maps, under the "
              f"{doc['reference']} reference law (every alpha below is the {ref} one; the "
              "Theorem 1 section uses the stationary law of its run, hence other values). "
              "The bounds `alpha_tight` and `alpha_tv` are provable bounds on "
              "max |Q* - Q_hat* o phi|; `alpha_paper` is the paper's form (its validity is the "
              "open question checked by `icsmdp verify`). The `policy_loss` is the exact "
              "worst-state loss of the greedy AIS policy run in the full system (provably at "
              "most 2 `alpha_tight`)."),
        ("table", ["quantity", "value"], rows),
        ("p", "Cells ranked by their contribution (epsilon + eta)/(1 - gamma_bar): split the "
              "top ones first."),
        ("table", ["agent", "observation", "full states", "epsilon", "delta", "eta",
                   "contribution"], cells),
    ]
    data = {k: v for k, v in doc.items() if k != "cells"}
    data["top_cells"] = doc["cells"][:8]
    return Section(key="gaps", title=f"AIS gaps of the {model.name} observation maps",
                   blocks=blocks, data=data)


def verify_summary(ctx: ReportContext) -> Section:
    """``icsmdp verify`` on random instances: every provable fact of SPEC section 5."""
    n = 200 if ctx.quick else 1000
    ctx.seeds_used["verify"] = ctx.seed
    res = verify(n, seed=ctx.seed, out=ctx.workdir / "counterexamples")
    rows = [[k, t["checked"], t["violations"], t["worst_ratio"]] for k, t in res.properties.items()]
    ap = res.alpha_paper
    blocks = [
        ("p", f"{res.instances} random instances (seed {res.seed}, at most {res.max_states} "
              f"epoch states, families cycled: general, aliased, exact-AIS, private states, "
              f"tau = 1), gap reports under the uniform reference law. Each row is a claim "
              f"lhs <= rhs; the worst ratio lhs/rhs must not exceed 1. Result: {res.message}."),
        ("table", ["property", "checked", "violations", "worst lhs/rhs"], rows),
        ("p", f"Open question: does the paper's `alpha_paper` (uniform reference) bound the "
              f"gaps? Checked on {ap['checked']} instances: `max_q_gap` > `alpha_paper` on "
              f"{ap['violations_q']}, `max_value_gap` > `alpha_paper` on "
              f"{ap['violations_value']}; worst ratio {ap['worst_ratio']:.4g}"
              + (" (a counterexample: the paper's form does not bound the gaps)."
                 if ap["violations_q"] or ap["violations_value"] else
                 " (no counterexample among these instances, which proves nothing; "
                 "`icsmdp verify --search` looks for one).")),
    ]
    return Section(key="verify", title="Provable facts on random instances", blocks=blocks,
                   data={"instances": res.instances, "seed": res.seed, "success": res.success,
                         "properties": res.properties, "alpha_paper": res.alpha_paper})


def theorem_check(ctx: ReportContext) -> Section:
    """Theorem 1, term by term, on a tabular IC-Q run of the workflow example (SPEC section 8)."""
    model = load_example(DEFAULT_EXAMPLE)
    seed = ctx.seed + 1
    ctx.seeds_used["theorem_check"] = seed
    updates = 20_000 if ctx.quick else 200_000
    checkpoints = tuple(int(t) for t in np.unique(np.geomspace(100, updates, 9).astype(int)))
    settings = ICQ(updates=updates, seeds=16, behavior=FixedBehavior(), checkpoints=checkpoints,
                   seed=seed, progress=False)
    rec = solve(settings, model)
    res = check_run(model, rec)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(res.checkpoints, res.lhs_lower, res.lhs_upper, alpha=0.3, label="95% interval")
    ax.loglog(res.checkpoints, res.lhs_mean, "o-", label="lhs(T), mean over seeds")
    ax.axhline(res.floor, color="k", ls="--", label="exact floor (Q_hat* o phi vs Q*)")
    ax.set_xlabel("T (updates per seed)")
    ax.set_ylabel("sum mu (Q - Q*)^2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.workdir / "theorem_lhs.png", dpi=110)
    plt.close(fig)
    ref = "stationary reference"  # check_run's gap report uses the run's long-run law

    def term_label(k):
        if k.startswith("interface:"):
            return f"interface, `{k.split(':', 1)[1]}` ({ref})"
        return k

    rows = [[term_label(k), v["verdict"], v["reason"]] for k, v in res.verdicts.items()]
    terms = [[f"`{f}` ({ref})", res.alpha[f], res.interface_term[f], res.mixing["c0_min"][f]]
             for f in res.alpha]
    dec = res.mixing["decay"]
    mml = bound_mathml()
    blocks = [
        ("p", "Theorem 1 (SPEC section 8) bounds the error of IC-Q after T updates, measured "
              "in the long-run law mu of the sampled epochs:"),
        ("math", res.bound_latex, mml),
        ("p", f"Tabular IC-Q on `{model.name}`, 16 seeds, {updates} updates per seed, fixed "
              f"uniform behavior (so mu is exact), seed {seed}. The curve `lhs(T)` is measured "
              f"against Q*_lat with a 95% bootstrap interval over seeds; the exact floor is "
              f"where IC-Q settles. The alphas here are computed under the stationary "
              f"reference law (the law mu the run samples); the gap section uses the uniform "
              f"reference, so its alphas for the same instance and maps differ."),
        ("figure", "theorem_lhs.png", "The lhs(T) of the IC-Q run and the exact floor."),
        ("table", ["alpha form", "alpha", "2 alpha^2", "smallest C0"], terms),
        ("p", f"Decay of lhs(T) - floor: exponent {dec['exponent']:.3f} "
              f"[{dec['lower']:.3f}, {dec['upper']:.3f}], predicted log(T)/T slope "
              f"{dec['predicted']:.3f}; `t_mix` = {res.mixing['t_mix']:.6g}."),
        ("table", ["term", "verdict", "reason"], rows),
    ]
    data = {"checkpoints": res.checkpoints, "lhs_mean": res.lhs_mean, "lhs_lower": res.lhs_lower,
            "lhs_upper": res.lhs_upper, "floor": res.floor, "alpha": res.alpha,
            "interface_term": res.interface_term, "approximation": res.approximation,
            "mixing": res.mixing, "verdicts": res.verdicts, "seed": seed, "updates": updates,
            "alpha_reference": "stationary", "bound_latex": res.bound_latex,
            "bound_mathml": mml}
    return Section(key="theorem", title="Theorem 1, term by term, on an IC-Q run",
                   blocks=blocks, data=data)


#: Sections of the default report, in order.
DEFAULT_SECTIONS = [solve_summary, gap_summary, verify_summary, theorem_check,
                    synthetic_t1, synthetic_t2, llm_summary]
#: Sections of ``icsmdp report --full``: the default ones at paper scale, plus routing (N=100)
#: and CPU programming (adaptable agents).
FULL_SECTIONS = [*DEFAULT_SECTIONS, routing, cpu]
