"""Report sections: each is one function ``(ReportContext) -> Section``.

The default report (``icsmdp report``) is :data:`DEFAULT_SECTIONS`; later
capabilities add their section functions here and to that list.
"""
from __future__ import annotations

from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.oracle import centralized_oracle
from reports.builder import ReportContext, Section

__all__ = ["solve_summary", "DEFAULT_SECTIONS"]


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


#: Sections of the default report, in order.
DEFAULT_SECTIONS = [solve_summary]
