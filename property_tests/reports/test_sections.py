"""Report sections (reports.sections): the Theorem 1 formula, reference names, readable text.

The cheap real sections (``solve_summary``, ``gap_summary``: a few seconds)
are built into a report, which the builder checks (``reports.htmlcheck``);
the slow ones (verify, theorem, T1, T2) are covered by the default report.
"""
import json
import re
import xml.etree.ElementTree as ET

import pytest
import sympy

from estimators.theorem import bound_latex, bound_terms
import reports.sections as sections
from reports.builder import ReportContext, build_report
from reports.htmlcheck import check_report
from reports.sections import bound_mathml, gap_summary, solve_summary

M = "{http://www.w3.org/1998/Math/MathML}"


def test_bound_mathml_is_the_checked_expression():
    """The MathML is well-formed and shows the three terms of bound_terms(), in order, with
    every symbol of the LaTeX (issue 11, section 5: the bound was raw LaTeX on screen)."""
    root = ET.fromstring(bound_mathml())
    assert root.tag == M + "math" and root.get("display") == "block"
    text = "".join(root.itertext())
    assert "\\" not in text and "$" not in text
    # left-hand side, then <= and the sum of the three terms
    assert text.index("\u2264") < text.index("\u03b1")
    top = list(root[0])
    plus = [k for k, el in enumerate(top) if el.tag == M + "mo" and el.text == "+"]
    assert len(plus) == 2  # interface + approximation + mixing
    # the Greek letters and subscripts sympy prints, against the expression's own symbols
    names = {str(s) for t in bound_terms().values() for s in t.free_symbols}
    assert names == {"alpha", "epsilon_app", "epsilon_0", "lambda_max", "C_1", "C_0", "t_mix", "T"}
    for glyph in ("\u03b1", "\u03b5", "\u03bb", "app", "max", "mix", "log", "T"):
        assert glyph in text, glyph
    assert root.find(f".//{M}mfrac") is not None  # the mixing term is a fraction over T
    # one coefficient 6 per term of sympy's approximation and mixing terms, one 2 for alpha
    sixes = sum(1 for k in ("approximation", "mixing")
                for term in sympy.Add.make_args(bound_terms()[k])
                if term.as_coeff_Mul()[0] == 6)
    numbers = [el.text for el in root.iter(M + "mn")]
    assert sixes == 4 and numbers.count("6") == sixes
    assert numbers.count("2") == 2 + 1  # 2 alpha^2 (two) and the lhs's squared norm
    assert "\\frac" in bound_latex()  # the LaTeX form stays available for report.md / .json


@pytest.fixture(scope="module")
def cheap_report(tmp_path_factory):
    return build_report([solve_summary, gap_summary], out_root=tmp_path_factory.mktemp("r"),
                        argv=["test"], progress=False)


def test_cheap_real_sections_pass_the_check(cheap_report):
    assert check_report(cheap_report) == []
    html = (cheap_report / "index.html").read_text(encoding="utf-8")
    assert "`" not in html and not re.search(r"\bnan\b", html, re.IGNORECASE)


def test_every_alpha_of_the_gap_section_names_its_reference(cheap_report):
    """Fails on /work/orig: the gap table said "alpha_tight" with no reference."""
    doc = json.loads((cheap_report / "report.json").read_text(encoding="utf-8"))
    assert doc["sections"]["gaps"]["reference"] == "uniform"
    html = (cheap_report / "index.html").read_text(encoding="utf-8")
    gaps = html[html.index("id=\"gaps\""):html.index("id=\"provenance\"")]
    for form in ("alpha_paper", "alpha_tv", "alpha_tight"):
        assert f"<td><code>{form}</code> (uniform reference)</td>" in gaps, form
    assert "the Theorem 1 section uses the stationary law" in gaps


def test_gap_verdicts_state_the_ratio_of_realized_gap_to_bound(cheap_report):
    doc = json.loads((cheap_report / "report.json").read_text(encoding="utf-8"))
    g = doc["sections"]["gaps"]
    rows = {r["claim"]: r for r in doc["summary"]["rows"] if r["section"] == "gaps"}
    r = rows["On workflow: max_q_gap <= alpha_tight (uniform reference)"]
    assert r["verdict"] == "holds"
    assert r["ratio"] == pytest.approx(g["max_q_gap"] / g["alpha_tight"], rel=1e-12)
    assert 0 < r["ratio"] < 1
    html = (cheap_report / "index.html").read_text(encoding="utf-8")
    assert f"<td class=\"num\">{r['ratio']:.3g}</td>" in html


def test_solve_section_states_every_example(tmp_path):
    sec = solve_summary(ReportContext(workdir=tmp_path))
    table = next(b for b in sec.blocks if b[0] == "table")
    assert [r[0] for r in table[2]] == list(sec.data)
    assert all(v["success"] for v in sec.data.values())


# ------------------------------------------- slow sections, rendered from stand-in results
class _Verify:
    instances, seed, max_states, success = 3, 0, 64, True
    message = "all provable properties held"
    properties = {"q_gap_le_alpha_tight": dict(checked=3, violations=0, worst_ratio=0.5,
                                               worst_instance=1)}
    alpha_paper = dict(checked=3, violations_q=1, violations_value=0, worst_ratio=1.25,
                       worst_instance=2, counterexample=None)


class _Check:
    checkpoints = [100, 1000]
    lhs_mean, lhs_lower, lhs_upper, floor = [1.0, 0.1], [0.8, 0.08], [1.2, 0.12], 0.05
    alpha = {"alpha_tight": 2.0}
    interface_term = {"alpha_tight": 8.0}
    approximation = {"eps_app": 0.0}
    mixing = {"c0_min": {"alpha_tight": 0.0}, "t_mix": 10.0,
              "decay": dict(exponent=-1.0, lower=-1.2, upper=-0.8, predicted=-0.9)}
    verdicts = {"interface:alpha_tight": dict(verdict="holds", reason="floor 0.05 <= 8",
                                              floor=0.05, term=8.0),
                "overall": dict(verdict="holds", reason="combined")}
    bound_latex = bound_latex()


def test_verify_and_theorem_sections_read_well(tmp_path, monkeypatch):
    """The text of the two slow sections, with stand-in results, passes the whole check
    (prose rule included); the verify counterexample reads as a failure in the summary."""
    monkeypatch.setattr(sections, "verify", lambda n, seed, out: _Verify())
    monkeypatch.setattr(sections, "solve", lambda settings, model: None)
    monkeypatch.setattr(sections, "check_run", lambda model, rec: _Check())
    path = build_report([sections.verify_summary, sections.theorem_check], out_root=tmp_path,
                        progress=False)
    assert check_report(path) == []
    doc = json.loads((path / "report.json").read_text(encoding="utf-8"))
    th = doc["sections"]["theorem"]
    assert th["alpha_reference"] == "stationary" and th["bound_latex"] == bound_latex()
    rows = {r["claim"]: r for r in doc["summary"]["rows"]}
    r = rows["alpha_paper (uniform reference) bounds max_q_gap and max_value_gap"]
    assert r["verdict"] == "fails" and r["ratio"] == 1.25
    html = (path / "index.html").read_text(encoding="utf-8")
    assert "<td><code>alpha_tight</code> (stationary reference)</td>" in html
    assert html.count("<math") == 1 and "a counterexample: the paper&#x27;s form" in html
    md = (path / "report.md").read_text(encoding="utf-8")
    assert "$$\n" + bound_latex() + "\n$$" in md
