"""JSON documents shared by the commands and the report sections.

:func:`gaps_document` is what ``icsmdp gaps --json`` prints and what the
report's gap section shows: the gap report of SPEC section 5 plus the mixing
of SPEC section 6, as JSON-ready data.
"""
from __future__ import annotations

from typing import Any

from estimators.gaps import gap_report
from estimators.mixing import mixing_report
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import to_jsonable

__all__ = ["GAP_KEYS", "MIXING_KEYS", "gaps_document"]

#: Scalar keys of the gap report printed and exported (in this order).
GAP_KEYS = ("epsilon_phi", "delta_phi", "delta_phi_tail_bound", "delta_phi_gamma", "gamma_bar",
            "L_Q", "span_f", "eta", "alpha_paper", "alpha_tv", "alpha_tight", "max_q_gap",
            "max_value_gap", "policy_loss", "minimax_epsilon", "minimax_delta")
MIXING_KEYS = ("t_mix", "t_mix_is_exact", "t_mix_lower", "t_mix_upper", "relaxation_time",
                "projected_t_mix", "projected_t_mix_decision", "eps")


def gaps_document(model: ICSMDP, *, reference: str = "uniform", minimax: bool = True,
                  mixing: bool = True, eps: float = 0.25) -> dict:
    """Gap report plus mixing of ``model`` (with its current observation maps) as a JSON-ready dict."""
    rep = gap_report(model, reference=reference, minimax=minimax)
    doc: dict[str, Any] = {"instance": model.name, "reference": rep.reference}
    for k in GAP_KEYS:
        doc[k] = getattr(rep, k)
    doc["fallback_cells"] = rep.fallback_cells
    if mixing:
        mix = mixing_report(model, eps=eps)
        for k in MIXING_KEYS:
            doc[k] = getattr(mix, k)
        doc["mixing_message"] = mix.message
    else:
        for k in MIXING_KEYS:
            doc[k] = None
    doc["cells"] = rep.cells
    doc["success"] = rep.success
    doc["message"] = rep.message
    return to_jsonable(doc)
