"""The report builder (reports.builder) on cheap stub sections: summary, rendering, the check.

A report is built from stub sections (no solver runs: well under a second)
that use every block kind; the builder itself runs the HTML check
(:mod:`reports.htmlcheck`) on it, and the tests read the written files back
independently (``html.parser``, ``json``) to check what a reader sees.
"""
import json
import math
import re
from html.parser import HTMLParser

import matplotlib
import pytest

from reports.builder import Link, ReportCheckError, Section, build_report, provenance_rows
from reports.htmlcheck import check_report
from reports.sections import bound_mathml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# the workflow numbers quoted in issue 11 (gap section, uniform reference)
GAPS = dict(instance="workflow", reference="uniform", alpha_tight=20.3094, alpha_tv=21.942,
            alpha_paper=21.6095, max_q_gap=1.0, max_value_gap=1.0, policy_loss=1.78633)


def _figure(ctx, name):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [3, 1, 2])
    fig.savefig(ctx.workdir / name)
    plt.close(fig)


def stub_gaps(ctx):
    _figure(ctx, "line.png")
    blocks = [("p", "Instance `workflow` under the uniform reference; `alpha_tight` bounds it."),
              ("table", ["quantity", "value"], [["`alpha_tight` (uniform reference)", 20.3094],
                                                ["missing", float("nan")], ["none", None],
                                                ["link", Link("the theorem", "#theorem")]]),
              ("figure", "line.png", "A line, with `code` in its caption.")]
    return Section(key="gaps", title="AIS gaps of the `workflow` maps", blocks=blocks,
                   data=dict(GAPS))


def stub_theorem(ctx):
    latex = r"\mathbb{E} \le 2 \alpha^{2} + \frac{6 C_{0}}{T}"
    blocks = [("p", "The bound:"), ("math", latex, bound_mathml()),
              ("code", "lhs = 0.5\nfloor = 4.0")]
    verdicts = {"interface:alpha_tight": dict(verdict="holds", reason="floor 0.5 <= 2 alpha^2",
                                              floor=0.5, term=8.0),
                "mixing": dict(verdict="violated", reason="decays slower"),
                "overall": dict(verdict="violated", reason="combined")}
    return Section(key="theorem", title="Theorem 1", blocks=blocks,
                   data={"alpha": {"alpha_tight": 2.0}, "verdicts": verdicts,
                         "bound_latex": latex})


def stub_plain(ctx):
    return Section(key="demo", title="A section without verdicts", blocks=[("p", "Text.")],
                   data={"x": 1})


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.ids, self.hrefs, self.in_h2 = [], set(), [], False
        self.math = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "math":
            self.math += 1
        self.in_h2 = tag == "h2" or self.in_h2

    def handle_endtag(self, tag):
        if tag == "h2":
            self.in_h2 = False

    def handle_data(self, data):
        if self.in_h2:
            self.h2.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    path = build_report([stub_gaps, stub_theorem, stub_plain], out_root=root,
                        argv=["icsmdp", "report", "--out", "my dir"], progress=False)
    return path


def test_stub_report_passes_the_check_and_opens_with_the_summary(report):
    assert check_report(report) == []
    text = (report / "index.html").read_text(encoding="utf-8")
    p = _Page()
    p.feed(text)
    assert p.h2[0] == "Verdict summary"
    # every internal link resolves (nav, summary rows, table links)
    internal = [h[1:] for h in p.hrefs if h.startswith("#")]
    assert {"summary", "gaps", "theorem", "demo", "provenance"} <= set(internal)
    assert set(internal) <= p.ids
    assert p.math == 1 and "\\frac" not in text and "$$" not in text and "`" not in text
    assert "<code>workflow</code>" in text and "<td class=\"num\">n/a</td>" in text


def test_summary_reads_the_sections_data(report):
    doc = json.loads((report / "report.json").read_text(encoding="utf-8"))
    rows = doc["summary"]["rows"]
    assert doc["summary"]["counts"] == {"holds": 5, "fails": 2, "inconclusive": 0}
    by_claim = {r["claim"]: r for r in rows}
    r = by_claim["On workflow: max_q_gap <= alpha_tight (uniform reference)"]
    assert r["verdict"] == "holds" and r["section"] == "gaps"
    assert r["ratio"] == pytest.approx(1.0 / 20.3094, rel=1e-12)  # 0.0492: loose
    r = by_claim["On workflow: policy_loss <= 2 alpha_tight (uniform reference)"]
    assert r["ratio"] == pytest.approx(1.78633 / (2 * 20.3094), rel=1e-12)
    r = by_claim["Theorem 1, interface term: the exact floor <= 2 alpha_tight^2 (stationary "
                 "reference)"]
    assert r["ratio"] == pytest.approx(0.5 / 8.0) and r["verdict"] == "holds"
    assert by_claim["Theorem 1, mixing term"]["verdict"] == "fails"
    # failures are listed first in the page, each row links to its section
    text = (report / "index.html").read_text(encoding="utf-8")
    table = text[text.index("id=\"summary\""):text.index("id=\"gaps\"")]
    verdicts = re.findall(r"<td class=\"(holds|fails|inconclusive)\">", table)
    assert verdicts == ["fails", "fails"] + ["holds"] * 5
    assert table.count("href=\"#theorem\"") == 3 and table.count("href=\"#gaps\"") == 4
    # the section data are unchanged (keys kept)
    assert doc["sections"]["gaps"] == GAPS and doc["figures"] == ["line.png"]


def test_latex_stays_in_markdown_and_json(report):
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "$$\n\\mathbb{E} \\le 2 \\alpha^{2} + \\frac{6 C_{0}}{T}\n$$" in md
    assert "`workflow`" in md and "<a id=\"gaps\"></a>" in md
    doc = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert doc["sections"]["theorem"]["bound_latex"].startswith("\\mathbb{E}")


def test_provenance_is_a_table_not_json(report):
    text = (report / "index.html").read_text(encoding="utf-8")
    prov = text[text.index("id=\"provenance\""):]
    assert "<table>" in prov and "{" not in prov and "<pre>" not in prov
    assert "icsmdp report --out &#x27;my dir&#x27;" in prov  # shell-quoted command line
    rows = dict(provenance_rows({"command": ["a", "b c"], "versions": {"numpy": "2"},
                                 "seed": 0, "git_commit": None}))
    assert rows == {"command line": "a 'b c'", "package versions": "numpy 2", "base seed": "0",
                    "git commit": "n/a"}


@pytest.mark.parametrize("block, problem", [
    (("math", r"\frac{1}{T}"), "raw LaTeX"),          # a formula without MathML
    (("p", "An `unbalanced backtick."), "backtick"),
    (("p", "Pearson r = nan here."), "'nan' shown as a word"),
    (("table", ["x"], [[Link("gone", "#nowhere")]]), "link '#nowhere' names no element id"),
])
def test_a_broken_report_fails_loudly_and_is_kept_for_inspection(tmp_path, block, problem):
    def broken(ctx):
        return Section(key="bad", title="Bad", blocks=[block], data={})

    with pytest.raises(ReportCheckError, match=re.escape(problem)):
        build_report([broken], out_root=tmp_path, progress=False)
    (kept,) = list(tmp_path.iterdir())
    assert kept.name.endswith("-failed-check")
    assert problem in (kept / "CHECK-FAILED.txt").read_text(encoding="utf-8")


def test_the_builder_leaves_the_lower_case_heuristic_to_the_tests(tmp_path):
    def lower(ctx):
        return Section(key="low", title="Low", blocks=[("p", "text <b> in lower case.")],
                       data={})

    path = build_report([lower], out_root=tmp_path, progress=False)
    assert check_report(path, prose=False) == []
    assert check_report(path) == ["sentence starts in lower case: 'text <b> in lower case.'"]


def test_summary_is_omitted_without_verdicts(tmp_path):
    path = build_report([stub_plain], out_root=tmp_path, progress=False)
    text = (path / "index.html").read_text(encoding="utf-8")
    assert "Verdict summary" not in text
    doc = json.loads((path / "report.json").read_text(encoding="utf-8"))
    assert doc["summary"]["rows"] == [] and not math.isnan(doc["provenance"]["total_seconds"])
