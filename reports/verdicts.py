"""The verdict summary a report opens with, read from its sections' data.

:func:`verdict_rows` turns the ``report.json`` data of the sections (the
``sections`` object: section key -> data) into one row per claim:

``claim``
    What is checked, naming every alpha's reference law.
``verdict``
    ``"holds"`` (this run's numbers satisfy it), ``"fails"`` (they
    contradict it: a provable property violated, a counterexample found) or
    ``"inconclusive"`` (this run cannot decide: no counterexample yet, a run
    that has not reached its floor, a fit too wide).
``ratio``
    How tight a bound is: realized value / bound (``None`` when the claim is
    not a bound); ``tightness`` says which numbers.
``detail``
    The numbers behind the verdict.
``section``
    Key of the section (its HTML anchor ``#key``).

Nothing is recomputed: every number is one the section reported. Sections
without a rule here contribute no row. Verdict rules per section key:

- ``solve``: every bundled example solved to its certified tolerance.
- ``gaps``: ``max_q_gap <= alpha_tight`` and ``<= alpha_tv``,
  ``policy_loss <= 2 alpha_tight`` (provable, SPEC section 5) and the open
  question ``max(max_q_gap, max_value_gap) <= alpha_paper``, with that
  section's reference law.
- ``verify``: no provable property violated on the random instances; the
  open question ``alpha_paper`` fails with a counterexample, else is
  inconclusive (no counterexample among the instances checked is no proof).
- ``theorem``: the checker's verdicts (``violated`` reads ``fails``).
- ``synthetic_t1``: ``max_q_gap <= alpha_tight`` at every ``rho``; the sign
  of the Pearson correlation of value gap and ``alpha_tight``.
- ``synthetic_t2``: the decay fit against the predicted rate
  (:func:`estimators.theorem.verdict_mixing`); floors below ``2
  alpha_tight^2``; whether ``lhs`` reached the exact floor at the final
  ``T`` (inconclusive where it is still below it).
- ``routing``: the exact ``Q*`` routes every pair; IC-Q does at its budget
  (inconclusive where it does not yet).
- ``traces`` (:mod:`reports.trace_section`): on the model fitted from the
  trace, ``max_q_gap <= alpha_tight`` and ``policy_loss <= 2 alpha_tight``
  (maximum-likelihood values); the Markov and successor-dependence checks
  (holds: no evidence against at 5 %, fails: rejected, inconclusive: not tested).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from estimators.theorem import DecayFit, verdict_mixing

__all__ = ["VERDICTS", "SECTION_LABELS", "verdict_rows", "verdict_counts"]

#: The verdict words, in the order the summary counts them.
VERDICTS = ("holds", "fails", "inconclusive")
#: Short names of the sections, for the summary's links.
SECTION_LABELS = {"solve": "Optimum", "gaps": "AIS gaps", "verify": "Random instances",
                  "theorem": "Theorem 1", "synthetic_t1": "T1", "synthetic_t2": "T2",
                  "routing": "Routing", "traces": "Your workflow"}


def _num(v: Any) -> float:
    """A reported number (``report.json`` writes nan as null and inf as "inf")."""
    if v is None:
        return math.nan
    if isinstance(v, str):
        return float(v)  # "inf", "-inf"
    return float(v)


def _g(v: Any) -> str:
    x = _num(v)
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def _ratio(num: Any, den: Any) -> float | None:
    a, b = _num(num), _num(den)
    if math.isnan(a) or math.isnan(b):
        return None
    if b == 0:
        return 0.0 if a == 0 else math.inf
    return a / b


def _row(section: str, claim: str, verdict: str, detail: str, ratio: float | None = None,
         tightness: str | None = None) -> dict:
    return {"section": section, "claim": claim, "verdict": verdict, "ratio": ratio,
            "tightness": tightness, "detail": detail}


def _bound(section: str, claim: str, lhs_name: str, lhs: Any, rhs_name: str, rhs: Any,
           *, provable: bool = True) -> dict:
    r = _ratio(lhs, rhs)
    if r is None:
        verdict = "inconclusive"
    elif _num(lhs) <= _num(rhs) * (1 + 1e-9) + 1e-12:
        verdict = "holds"
    else:
        verdict = "fails"
    detail = f"{lhs_name} = {_g(lhs)}, {rhs_name} = {_g(rhs)}"
    if not provable and verdict == "holds":
        detail += " (on this instance; the paper's form is not proved)"
    return _row(section, claim, verdict, detail, r, f"{lhs_name} / {rhs_name}")


# ------------------------------------------------------------------ per section
def _solve(d: dict) -> list:
    bad = [name for name, s in d.items() if not s.get("success")]
    worst = max((_num(s.get("error_bound")) for s in d.values()), default=math.nan)
    if bad:
        return [_row("solve", "The exact optimum Q*_lat of every bundled example is certified",
                     "fails", f"not converged: {', '.join(bad)}")]
    return [_row("solve", "The exact optimum Q*_lat of every bundled example is certified",
                 "holds", f"{len(d)} examples; largest certified error bound {_g(worst)}")]


def _gaps(d: dict) -> list:
    ref = f"{d.get('reference', 'uniform')} reference"
    inst = d.get("instance", "the instance")
    two_alpha = 2 * _num(d.get("alpha_tight"))
    gap = max(_num(d.get("max_q_gap")), _num(d.get("max_value_gap")))
    return [
        _bound("gaps", f"On {inst}: max_q_gap <= alpha_tight ({ref})", "max_q_gap",
               d.get("max_q_gap"), f"alpha_tight ({ref})", d.get("alpha_tight")),
        _bound("gaps", f"On {inst}: max_q_gap <= alpha_tv ({ref})", "max_q_gap",
               d.get("max_q_gap"), f"alpha_tv ({ref})", d.get("alpha_tv")),
        _bound("gaps", f"On {inst}: policy_loss <= 2 alpha_tight ({ref})", "policy_loss",
               d.get("policy_loss"), f"2 alpha_tight ({ref})", two_alpha),
        _bound("gaps", f"On {inst}: the gaps stay below alpha_paper ({ref}), the paper's form",
               "max(max_q_gap, max_value_gap)", gap, f"alpha_paper ({ref})",
               d.get("alpha_paper"), provable=False),
    ]


def _verify(d: dict) -> list:
    props = d.get("properties", {})
    n = d.get("instances")
    bad = [k for k, t in props.items() if t.get("violations")]
    # the bounds on realized gaps (max_q_gap, max_value_gap, policy_loss against alpha_tight)
    bounds = {k: _num(t.get("worst_ratio")) for k, t in props.items()
              if "gap_le_" in k or "loss_le_" in k}
    bounds = {k: v for k, v in bounds.items() if not math.isnan(v)}
    ratio = tight = None
    if bounds:
        k = max(bounds, key=bounds.get)
        ratio, tight = bounds[k], f"worst realized gap / bound ({k})"
    claim = f"Every provable property of SPEC section 5 on {n} random instances"
    counts = [f"{k} ({props[k]['violations']} of {props[k]['checked']})" for k in bad]
    detail = f"violated: {', '.join(counts)}" if bad else f"{len(props)} properties, no violation"
    if tight:
        detail += f"; {tight} = {_g(ratio)}"
    rows = [_row("verify", claim, "fails" if bad else "holds", detail, ratio, tight)]
    ap = d.get("alpha_paper")
    if ap:
        nq, nv = ap.get("violations_q", 0), ap.get("violations_value", 0)
        worst = _num(ap.get("worst_ratio"))
        claim = "alpha_paper (uniform reference) bounds max_q_gap and max_value_gap"
        if nq or nv or ap.get("counterexample"):
            rows.append(_row("verify", claim, "fails",
                             f"counterexample found: max_q_gap > alpha_paper on {nq}, "
                             f"max_value_gap > alpha_paper on {nv} of {ap.get('checked')} "
                             f"instances", worst, "worst max gap / alpha_paper"))
        else:
            rows.append(_row("verify", claim, "inconclusive",
                             f"no counterexample among {ap.get('checked')} instances (not a "
                             "proof; icsmdp verify --search looks for one)", worst,
                             "worst max gap / alpha_paper"))
    return rows


_THEOREM_WORDS = {"holds": "holds", "violated": "fails", "inconclusive": "inconclusive"}


def _theorem(d: dict) -> list:
    rows = []
    alpha = d.get("alpha", {})
    for term, v in d.get("verdicts", {}).items():
        verdict = _THEOREM_WORDS.get(v.get("verdict"), "inconclusive")
        if term.startswith("interface:"):
            form = term.split(":", 1)[1]
            claim = (f"Theorem 1, interface term: the exact floor <= 2 {form}^2 "
                     "(stationary reference)")
            rows.append(_row("theorem", claim, verdict,
                             f"floor {_g(v.get('floor'))}, 2 {form}^2 = {_g(v.get('term'))} "
                             f"({form} = {_g(alpha.get(form))})",
                             _ratio(v.get("floor"), v.get("term")), f"floor / 2 {form}^2"))
        elif term == "overall":
            continue
        else:
            rows.append(_row("theorem", f"Theorem 1, {term} term", verdict,
                             str(v.get("reason", ""))))
    if "overall" in d.get("verdicts", {}):
        v = d["verdicts"]["overall"]
        rows.append(_row("theorem", "Theorem 1 on the IC-Q run, all terms",
                         _THEOREM_WORDS.get(v.get("verdict"), "inconclusive"),
                         str(v.get("reason", ""))))
    return rows


def _t1(d: dict) -> list:
    rows_ = d.get("rows", [])
    ref = f"{d.get('config', {}).get('reference', 'uniform')} reference"
    rows = []
    if rows_:
        ratios = [(_ratio(r.get("max_q_gap"), r.get("alpha_tight")), r["rho"]) for r in rows_
                  if r.get("max_q_gap") is not None]
        if ratios:
            worst, at = max(((r, rho) for r, rho in ratios if r is not None),
                            default=(None, None))
            bad = [rho for r, rho in ratios if r is not None and r > 1 + 1e-9]
            rows.append(_row("synthetic_t1", f"T1: max_q_gap <= alpha_tight ({ref}) at every rho",
                             "fails" if bad else ("holds" if worst is not None
                                                  else "inconclusive"),
                             (f"exceeded at rho = {', '.join(f'{x:g}' for x in sorted(bad))}"
                              if bad else f"{len(ratios)} values of rho; tightest at rho = "
                                          f"{at:g}"), worst,
                             "max over rho of max_q_gap / alpha_tight"))
    r = _num(d.get("pearson_alpha_tight"))
    paper = d.get("paper_pearson")
    claim = f"T1: the value gap grows with alpha_tight ({ref})"
    detail = (f"Pearson r = {_g(r)} over {len(rows_)} values of rho (the paper reports "
              f"{_g(paper)})")
    rows.append(_row("synthetic_t1", claim, "inconclusive" if math.isnan(r)
                     else ("holds" if r > 0 else "fails"), detail))
    return rows


def _t2(d: dict) -> list:
    rows = []
    b = d.get("budget")
    if b and b.get("fit"):
        f = b["fit"]
        fit = DecayFit(_num(f.get("exponent")), _num(f.get("lower")), _num(f.get("upper")),
                       int(f.get("points") or 0), _num(f.get("predicted")))
        v = _THEOREM_WORDS[verdict_mixing(fit)]
        rows.append(_row("synthetic_t2", "T2: on this run, lhs(T) - floor decays at least at "
                         "the bound's (1 + log(T+1))/T rate", v,
                         f"fitted exponent {_g(fit.exponent)} [{_g(fit.lower)}, "
                         f"{_g(fit.upper)}] against predicted {_g(fit.predicted)}; the runs use "
                         "IC-Q's default harmonic step, not the theorem's step rule, so this "
                         "speaks about the run, not about Theorem 1"))
    rho = d.get("rho") or []
    if rho:
        ratios = [(_ratio(r.get("floor"), r.get("interface_term")), r["rho"]) for r in rho]
        bad = sorted(x for q, x in ratios if q is not None and q > 1 + 1e-9)
        worst = max((q for q, _ in ratios if q is not None), default=None)
        rows.append(_row("synthetic_t2", "T2: the exact floor <= 2 alpha_tight^2 (stationary "
                         "reference) at every rho", "fails" if bad else "holds",
                         (f"exceeded at rho = {', '.join(f'{x:g}' for x in bad)}" if bad
                          else f"{len(rho)} values of rho"), worst,
                         "max over rho of floor / 2 alpha_tight^2"))
        below = sorted(r["rho"] for r in rho if _num(r["lhs_mean"]) < _num(r["floor"]))
        T = max((r.get("updates") or 0) for r in rho)
        if below:
            rows.append(_row("synthetic_t2", f"T2: IC-Q has reached its exact floor at T = {T}",
                             "inconclusive",
                             "lhs is still below its own floor at rho = "
                             + ", ".join(f"{x:g}" for x in below)
                             + ": those runs have not reached Q_hat* at this T (lhs equals "
                               "the floor when the learned values equal Q_hat*)"))
        else:
            rows.append(_row("synthetic_t2", f"T2: IC-Q has reached its exact floor at T = {T}",
                             "holds", f"lhs >= floor at all {len(rho)} values of rho"))
    return rows


def _routing(d: dict) -> list:
    fams = d.get("families", {})
    if not fams:
        return []
    n = d.get("num_routers")
    bad_exact = [k for k, f in fams.items() if _num(f.get("oracle_accuracy")) < 1]
    short = [k for k, f in fams.items() if _num(f.get("accuracy_min")) < 1]
    rows = [_row("routing", f"Routing, N = {n}: the exact Q* delivers every packet on every "
                 "graph family", "fails" if bad_exact else "holds",
                 f"oracle accuracy below 1 on {', '.join(bad_exact)}" if bad_exact
                 else f"{len(fams)} graph families")]
    worst = min(_num(f.get("accuracy_min")) for f in fams.values())
    rows.append(_row("routing", f"Routing, N = {n}: IC-Q reaches the paper's 100% accuracy",
                     "inconclusive" if short else "holds",
                     (f"below 100% at this budget on {', '.join(short)} (worst seed "
                      f"{_g(worst)}); the exact Q* does route every pair") if short
                     else "every seed routes every pair on every family", worst,
                     "worst-seed accuracy / 1"))
    return rows


def _traces(d: dict) -> list:
    post, fit = d.get("posterior") or {}, d.get("fit") or {}
    ref = f"{post.get('reference', 'uniform')} reference"
    where = f"the model fitted from {d.get('trace', 'the trace')}"
    rows = [_bound("traces", f"On {where}: max_q_gap <= alpha_tight ({ref})", "max_q_gap",
                   post.get("max_q_gap"), f"alpha_tight ({ref})", post.get("alpha_tight")),
            _bound("traces", f"On {where}: policy_loss <= 2 alpha_tight ({ref})", "policy_loss",
                   post.get("policy_loss"), f"2 alpha_tight ({ref})",
                   2 * _num(post.get("alpha_tight")))]
    for key, claim in (("markov_test", "The trace's labels are Markov (G-test, 5% level)"),
                       ("successor_test", "The trace's outcome law does not depend on the "
                                          "committed successor (G-test, 5% level)")):
        t = fit.get(key) or {}
        if not t.get("tested"):
            rows.append(_row("traces", claim, "inconclusive", "not tested: no table has enough "
                             "data"))
            continue
        p = _num(t.get("p_value"))
        rows.append(_row("traces", claim, "fails" if p < 0.05 else "holds",
                         f"G = {_g(t.get('statistic'))}, dof = {t.get('dof')}, p = {_g(p)}, "
                         f"{t.get('tested')} tables"))
    return rows


_RULES: dict[str, Callable[[dict], list]] = {
    "solve": _solve, "gaps": _gaps, "verify": _verify, "theorem": _theorem,
    "synthetic_t1": _t1, "synthetic_t2": _t2, "routing": _routing, "traces": _traces}


def verdict_rows(sections: dict) -> list[dict]:
    """One row per claim of the report (module docstring), in the sections' order.

    Parameters
    ----------
    sections : dict
        Section key -> JSON-ready data (``report.json``'s ``sections``).

    Returns
    -------
    list of dict
        ``section, claim, verdict, ratio, tightness, detail``.
    """
    rows = []
    for key, data in sections.items():
        rule = _RULES.get(key)
        if rule is not None and isinstance(data, dict):
            rows += rule(data)
    return rows


def verdict_counts(rows: list[dict]) -> dict:
    """How many rows hold, fail, are inconclusive (keys :data:`VERDICTS`)."""
    return {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
