"""The report check (reports.htmlcheck): each rule catches its defect, clean pages pass.

Every defect listed in issue 11, section 5 is planted in a small page and
must be reported; a page without it must not be. The end-to-end check of a
whole report built from cheap stub sections is in ``test_builder.py``.
"""
import base64

import pytest

from reports.htmlcheck import ReportCheckError, assert_report_ok, check_html, check_report

PNG = base64.b64decode(  # a valid 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def page(body: str) -> str:
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title>"
            "<style>td{text-align:right}</style></head><body><h1 id=\"top\">Report</h1>"
            f"{body}</body></html>")


def img(name: str, data: bytes = PNG) -> str:
    return (f"<figure><img alt=\"a\" data-file=\"{name}\" src=\"data:image/png;base64,"
            f"{base64.b64encode(data).decode()}\"><figcaption>A figure.</figcaption></figure>")


CLEAN = page("<p>The bound <code>alpha_tight</code> holds; see <a href=\"#top\">the top</a>. "
             "E.g. the ratio is 0.05, i.e. loose.</p>"
             "<math display=\"block\"><mi>&#x3B1;</mi><mo>&#x2264;</mo><mn>2</mn></math>"
             "<table><tr><th>x</th></tr><tr><td>n/a</td></tr><tr><td>1.5</td></tr></table>")


def test_a_clean_page_passes(tmp_path):
    (tmp_path / "fig.png").write_bytes(PNG)
    assert check_html(CLEAN + "", tmp_path) == []
    assert check_html(page(img("fig.png")), tmp_path) == []


@pytest.mark.parametrize("body, expected", [
    # raw LaTeX of the bound, as the report showed it before (issue 11, section 5)
    ("<pre class=\"math\">\\mathbb{E}\\,\\|Q\\| \\le \\frac{6}{T}</pre>", "raw LaTeX '\\\\mathbb'"),
    ("<p>$$ x $$</p>", "raw LaTeX '$$'"),
    ("<p>Left \\left( x \\right) here.</p>", "raw LaTeX '\\\\left'"),
    # literal backticks in a heading and in text
    ("<h2 id=\"g\">AIS gaps of the `workflow` maps</h2>", "backtick"),
    ("<p>Instance `workflow` here.</p>", "backtick"),
    ("<figure><img alt=\"x `y`\" data-file=\"f.png\" src=\"data:image/png;base64,\">"
     "<figcaption>C.</figcaption></figure>", "backtick"),
    # nan shown as a word, None in a table cell
    ("<p>Pearson r = nan here.</p>", "'nan' shown as a word"),
    ("<table><tr><td>NaN</td></tr></table>", "'NaN' shown as a word"),
    ("<table><tr><td>None</td></tr></table>", "'None'"),
    # a sentence starting in lower case, at the start or after a full stop
    ("<p>lhs(T) of the run.</p>", "sentence starts in lower case"),
    ("<p>Uniform law. alpha_tight and alpha_tv are bounds.</p>", "sentence starts in lower case"),
    # links and structure
    ("<p>See <a href=\"#nowhere\">there</a>.</p>", "link '#nowhere' names no element id"),
    ("<p>See <a href=\"missing.csv\">the file</a>.</p>", "names no file of the report"),
    ("<div><p>Open.</div>", "unbalanced </div>"),
    ("<div><p>Never closed.</p>", "unbalanced </body> (line 1; open: <div> from line 1)"),
    ("<h2 id=\"a\">A</h2><h2 id=\"a\">B</h2>", "duplicate id 'a'"),
])
def test_each_defect_is_reported(tmp_path, body, expected):
    problems = check_html(page(body), tmp_path)
    assert any(expected in p for p in problems), problems


def test_a_tag_left_open_at_the_end_is_reported():
    assert check_html("<div><p>Open.</p>") == ["<div> opened at line 1 is never closed"]


def test_figures_must_resolve_to_the_embedded_file(tmp_path):
    problems = check_html(page(img("absent.png")), tmp_path)
    assert problems == ["figure 'absent.png' is not a file of the report"]
    (tmp_path / "other.png").write_bytes(PNG + b"x")
    problems = check_html(page(img("other.png")), tmp_path)
    assert problems == ["figure 'other.png': the embedded image is not the file's PNG"]
    bare = page("<figure><img alt=\"a\" src=\"data:image/png;base64,\"><figcaption>C."
                "</figcaption></figure>")
    assert any("without data-file" in p for p in check_html(bare, tmp_path))


def test_code_and_math_are_exempt_from_the_prose_rules(tmp_path):
    body = ("<p><code>nan_policy</code> and <code>lhs</code> are names. <code>lhs</code> "
            "starts this sentence.</p><pre>nan</pre>")
    problems = check_html(page(body), tmp_path)
    # "nan" in a <pre> block is still shown as a word; code spans are not
    assert problems == ["'nan' shown as a word in 'nan'"]


def test_check_report_and_assert_report_ok(tmp_path):
    assert check_report(tmp_path) == [f"{tmp_path / 'index.html'} does not exist"]
    (tmp_path / "index.html").write_text(CLEAN, encoding="utf-8")
    assert_report_ok(tmp_path)
    (tmp_path / "index.html").write_text(page("<p>rho = nan.</p>"), encoding="utf-8")
    with pytest.raises(ReportCheckError, match=r"2 problem\(s\)"):
        assert_report_ok(tmp_path)
