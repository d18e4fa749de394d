"""The report builder: a report is a list of sections; a section is one function.

A section function takes a :class:`ReportContext` and returns a
:class:`Section`: a JSON-ready ``data`` dict plus display ``blocks``
(paragraphs, tables, figures, code). :func:`build_report` runs the sections,
renders ``report.md``, ``report.json`` and a self-contained ``index.html``
(figures embedded as data URIs, readable offline) next to the PNG figures,
records provenance (command line, package versions, git commit, seeds,
timings), and writes atomically: everything is built in a temporary
directory that is renamed into place at the end; an existing report is never
overwritten, and on an error nothing is left behind.

Every report opens with a **verdict summary** (:mod:`reports.verdicts`): one
row per claim with its verdict (holds, fails, inconclusive), how tight the
bound is (realized / bound) and a link to its section, read from the
sections' data (``report.json`` key ``summary``). Inline code in text is
written between backticks: ``<code>`` in HTML, kept as is in Markdown.
Formulas are ``("math", latex, mathml)`` blocks: MathML in HTML (rendered
natively and offline by browsers), LaTeX in ``report.md``.

Every ``index.html`` written is checked (:func:`reports.htmlcheck.check_report`:
parses, figures and links resolve, no raw LaTeX, no backticks, no ``nan``;
the sections' tests add the lower-case sentence rule). A report failing the
check is moved to
``<timestamp>-failed-check`` (with ``CHECK-FAILED.txt`` listing the problems)
and :class:`~reports.htmlcheck.ReportCheckError` is raised.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from icsmdp_theory.results import to_jsonable
from reports.htmlcheck import ReportCheckError, check_report
from reports.verdicts import SECTION_LABELS, VERDICTS, verdict_counts, verdict_rows

__all__ = ["Section", "ReportContext", "Link", "build_report", "provenance", "provenance_rows",
           "DEFAULT_OUT", "ReportCheckError"]

#: Where reports go by default (relative to the working directory; git-ignored).
DEFAULT_OUT = Path("reports") / "out"


@dataclass
class ReportContext:
    """What a section function may use.

    Attributes
    ----------
    workdir : Path
        The temporary report directory; save figures here (file name only in blocks).
    seed : int
        Base seed of the report; sections derive theirs from it.
    quick : bool
        Reduced sizes (the default report) versus paper scale (``--full``).
    seeds_used : dict
        Sections record the seeds they used here (copied into provenance).
    jobs : int or None
        Worker processes of the sections' campaigns (:mod:`reports.campaign`);
        ``None`` (default) every core, ``1`` in this process.
    scheduler : str, distributed.Client or None
        Run the campaigns on a Dask cluster (default ``$DASK_SCHEDULER_ADDRESS``, else
        this machine).
    resume : bool
        Keep the campaigns' results files and skip the tasks they record as finished.
    campaign_dir : Path or None
        Where the campaigns' results files are kept (``<study>-seed{S}-{quick|full}.jsonl``);
        ``None`` (default): temporary files.
    progress : bool
        One progress bar per campaign on stderr.
    campaign_files : dict
        Sections record their campaigns' results files here (copied into provenance
        as ``campaigns``).
    """

    workdir: Path
    seed: int = 0
    quick: bool = True
    seeds_used: dict = field(default_factory=dict)
    jobs: int | None = None
    scheduler: Any = None
    resume: bool = False
    campaign_dir: Path | None = None
    progress: bool = False
    campaign_files: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One report section.

    Attributes
    ----------
    key : str
        Key of the section's data in ``report.json``.
    title : str
    blocks : sequence of tuples
        ``("p", text)``, ``("table", headers, rows)``, ``("figure", filename, caption)``,
        ``("code", text)``, ``("math", latex, mathml)``. Text between backticks
        is inline code; table cells may be :class:`Link`. ``mathml`` is a
        ``<math>`` element (``("math", latex)`` alone fails the HTML check:
        browsers do not render LaTeX).
    data : dict
        JSON-ready numbers behind the section.
    """

    key: str
    title: str
    blocks: Sequence[tuple]
    data: dict


@dataclass(frozen=True)
class Link:
    """A table cell or text that links: ``href`` is ``#section-key`` or a report file."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(argv: Sequence[str] | None = None) -> dict:
    """Command line, versions, git commit, machine and start time."""
    versions = {}
    for pkg in ("icsmdp-theory", "numpy", "scipy", "sympy", "networkx", "matplotlib", "tqdm"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"command": list(sys.argv if argv is None else argv), "python": sys.version.split()[0],
            "platform": platform.platform(), "versions": versions, "git_commit": _git_commit(),
            "cpu_count": os.cpu_count(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


# ----------------------------------------------------------------- rendering
_STYLE = (
    "body{font-family:sans-serif;max-width:62em;margin:2em auto;padding:0 1em;line-height:1.4;"
    "color:#111}h2{margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;"
    "padding:.2em .5em;text-align:left;vertical-align:top}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums}th{background:#f0f0f0}"
    "img{max-width:100%}figure{margin:1em 0}figcaption{font-size:.95em;color:#333;"
    "max-width:48em}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
    "code{background:#f1f1f1;padding:0 .2em;border-radius:3px;font-size:.92em;"
    "white-space:nowrap}"
    ".math{overflow-x:auto;padding:.6em 0;font-size:1.15em}"
    "td.holds{background:#e3f4e3}td.fails{background:#f9dcdc;font-weight:bold}"
    "td.inconclusive{background:#fff3cd}nav ul{columns:2}math{font-size:1.1em}")


def _fmt(v) -> str:
    """A cell value as text: floats to 6 significant digits, nan/None as ``n/a``."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.6g}"
    return str(v)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _inline_html(text: str) -> str:
    """Escape ``text``; spans between backticks become ``<code>``."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # unbalanced: leave the text as written (the check flags it)
        return html.escape(str(text))
    return "".join(html.escape(p) if k % 2 == 0 else f"<code>{html.escape(p)}</code>"
                   for k, p in enumerate(parts))


def _cell_html(v) -> str:
    if isinstance(v, Link):
        return f"<td><a href=\"{html.escape(v.href)}\">{_inline_html(v.text)}</a></td>"
    cls = " class=\"num\"" if _is_num(v) else ""
    return f"<td{cls}>{_inline_html(_fmt(v))}</td>"


def _table_html(headers, rows, classes=None) -> str:
    head = "".join(f"<th>{_inline_html(_fmt(h))}</th>" for h in headers)
    body = []
    for k, r in enumerate(rows):
        cells = [_cell_html(v) for v in r]
        if classes is not None:  # the first cell carries the row's class (verdict colour)
            cells[0] = cells[0].replace("<td", f"<td class=\"{html.escape(classes[k])}\"", 1)
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _md_cell(v) -> str:
    if isinstance(v, Link):
        return f"[{v.text}]({v.href})".replace("|", "\\|")
    return _fmt(v).replace("|", "\\|")


def _md_table(headers, rows) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def provenance_rows(prov: dict) -> list[list[str]]:
    """Provenance as ``[field, value]`` rows (the report's provenance table).

    The command line is shell-quoted; nested dicts (versions, timings, seeds)
    become ``key value`` lists on one row.
    """
    labels = {"command": "command line", "python": "Python", "platform": "platform",
              "git_commit": "git commit", "cpu_count": "CPU count", "started": "started (UTC)",
              "finished": "finished (UTC)", "seed": "base seed", "mode": "mode",
              "total_seconds": "total wall time (s)", "timings_seconds": "wall time per section (s)",
              "seeds": "seeds per section", "versions": "package versions",
              "campaigns": "campaign results files"}
    rows = []
    for k, v in prov.items():
        if k == "command" and isinstance(v, (list, tuple)):
            text = shlex.join(str(a) for a in v)
        elif isinstance(v, dict):
            text = ", ".join(f"{a} {_fmt(b)}" for a, b in v.items()) or "none"
        elif isinstance(v, (list, tuple)):
            text = " ".join(_fmt(a) for a in v)
        else:
            text = _fmt(v)
        rows.append([labels.get(k, k.replace("_", " ")), text])
    return rows


_ORDER = {v: k for k, v in enumerate(("fails", "inconclusive", "holds"))}


def _summary_table(summary: dict, titles: dict) -> tuple[list, list, list]:
    rows = sorted(summary["rows"], key=lambda r: _ORDER.get(r["verdict"], 3))
    out, classes = [], []
    for r in rows:
        ratio = r["ratio"]
        tight = None if ratio is None else float(f"{ratio:.3g}")  # shown as n/a or a number
        label = SECTION_LABELS.get(r["section"], titles.get(r["section"], r["section"]))
        out.append([r["verdict"], r["claim"], tight, r["detail"], Link(label, "#" + r["section"])])
        classes.append(r["verdict"])
    return (["verdict", "claim", "realized / bound", "numbers (this run)", "section"], out,
            classes)


def _summary_text(summary: dict) -> str:
    c = summary["counts"]
    txt = (f"{len(summary['rows'])} claims checked by this run: {c['holds']} hold, "
           f"{c['fails']} fail, {c['inconclusive']} inconclusive (failures first, then "
           "inconclusive claims). For a bound, realized / bound says how tight it is: 1 is "
           "tight, a small ratio is loose, above 1 it fails.")
    if any("alpha" in r["claim"] for r in summary["rows"]):
        txt += (" Every alpha names its reference law (uniform, or the stationary law of the "
                "run): the same instance and map give different alphas under different "
                "references.")
    return txt


def _render_md(sections, prov, summary=None) -> str:
    out = ["# icsmdp-theory validation report", ""]
    titles = {s.key: s.title for s in sections}
    if summary and summary["rows"]:
        headers, rows, _ = _summary_table(summary, titles)
        out += ["<a id=\"summary\"></a>", "", "## Verdict summary", "", _summary_text(summary),
                "", _md_table(headers, rows), ""]
    for s in sections:
        out += [f"<a id=\"{s.key}\"></a>", "", f"## {s.title}", ""]
        for b in s.blocks:
            kind = b[0]
            if kind == "p":
                out += [b[1], ""]
            elif kind == "table":
                out += [_md_table(b[1], b[2]), ""]
            elif kind == "figure":
                out += [f"![{b[2]}]({b[1]})", "", f"*{b[2]}*", ""]
            elif kind == "code":
                out += ["```", b[1], "```", ""]
            elif kind == "math":
                out += ["$$", b[1], "$$", ""]
    out += ["<a id=\"provenance\"></a>", "", "## Provenance", "",
            _md_table(["field", "value"], provenance_rows(prov)), ""]
    return "\n".join(out)


def _render_html(sections, prov, workdir: Path, summary=None) -> str:
    esc = html.escape
    body = []
    titles = {s.key: s.title for s in sections}
    nav = [("summary", "Verdict summary")] if summary and summary["rows"] else []
    nav += [(s.key, s.title) for s in sections] + [("provenance", "Provenance")]
    body.append("<nav><ul>" + "".join(f"<li><a href=\"#{esc(k)}\">{_inline_html(t)}</a></li>"
                                      for k, t in nav) + "</ul></nav>")
    if summary and summary["rows"]:
        headers, rows, classes = _summary_table(summary, titles)
        body.append("<h2 id=\"summary\">Verdict summary</h2>")
        body.append(f"<p>{_inline_html(_summary_text(summary))}</p>")
        body.append(_table_html(headers, rows, classes))
    for s in sections:
        body.append(f"<h2 id=\"{esc(s.key)}\">{_inline_html(s.title)}</h2>")
        for b in s.blocks:
            kind = b[0]
            if kind == "p":
                body.append(f"<p>{_inline_html(b[1])}</p>")
            elif kind == "table":
                body.append(_table_html(b[1], b[2]))
            elif kind == "figure":
                data = base64.b64encode((workdir / b[1]).read_bytes()).decode("ascii")
                body.append(f"<figure><img alt=\"{esc(b[2].replace('`', ''))}\" "
                            f"data-file=\"{esc(b[1])}\" src=\"data:image/png;base64,{data}\">"
                            f"<figcaption>{_inline_html(b[2])}</figcaption></figure>")
            elif kind == "code":
                body.append(f"<pre>{esc(b[1])}</pre>")
            elif kind == "math":
                if len(b) > 2 and b[2]:
                    body.append(f"<div class=\"math\">{b[2]}</div>")
                else:  # no MathML: shown as source, which the report check refuses
                    body.append(f"<pre class=\"math\">{esc(b[1])}</pre>")
    body.append("<h2 id=\"provenance\">Provenance</h2>")
    body.append(_table_html(["field", "value"], provenance_rows(prov)))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>icsmdp-theory validation report</title>"
            f"<style>{_STYLE}</style></head><body><h1>icsmdp-theory validation report</h1>"
            + "\n".join(body) + "\n</body></html>\n")


def _final_dir(root: Path, stamp: str) -> Path:
    cand, k = root / stamp, 1
    while cand.exists():
        k += 1
        cand = root / f"{stamp}-{k}"
    return cand


def build_report(section_funcs: Sequence[Callable[[ReportContext], Section]], *,
                 out_root: str | os.PathLike = DEFAULT_OUT, seed: int = 0, quick: bool = True,
                 argv: Sequence[str] | None = None, progress: bool = True,
                 jobs: int | None = None, scheduler: Any = None, resume: bool = False,
                 campaign_dir: str | os.PathLike | None = None) -> Path:
    """Run the sections and write the report directory; return its path.

    The directory is ``out_root/<UTC timestamp>`` (``-2``, ``-3``, ... if taken).
    ``jobs``, ``scheduler``, ``resume`` and ``campaign_dir`` go to the sections'
    campaigns through the :class:`ReportContext`; the results files the sections
    record are listed in the provenance (``campaigns``). With ``progress`` each
    campaign draws its bar too (when stderr is a terminal).
    """
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    prov = provenance(argv)
    prov["seed"] = seed
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        ctx = ReportContext(workdir=tmp, seed=seed, quick=quick, jobs=jobs, scheduler=scheduler,
                            resume=bool(resume),
                            campaign_dir=None if campaign_dir is None else Path(campaign_dir),
                            progress=bool(progress) and bool(
                                getattr(sys.stderr, "isatty", lambda: False)()))
        sections, timings = [], {}
        funcs = list(section_funcs)
        t_start = time.perf_counter()
        bar = None
        if progress:
            bar = tqdm(total=len(funcs), desc="report", unit="section", file=sys.stderr,
                       disable=not sys.stderr.isatty())
        for func in funcs:
            t0 = time.perf_counter()
            sec = func(ctx)
            timings[sec.key] = round(time.perf_counter() - t0, 3)
            sections.append(sec)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        prov["timings_seconds"] = timings
        prov["total_seconds"] = round(time.perf_counter() - t_start, 3)
        prov["mode"] = "quick" if quick else "full"
        prov["seeds"] = ctx.seeds_used
        if ctx.campaign_files:
            prov["campaigns"] = dict(ctx.campaign_files)
        prov["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        section_data = {s.key: to_jsonable(s.data) for s in sections}
        rows = verdict_rows(section_data)
        summary = {"rows": rows, "counts": verdict_counts(rows), "verdicts": list(VERDICTS)}
        doc = {"format": "icsmdp-report/1", "provenance": prov, "summary": to_jsonable(summary),
               "sections": section_data,
               "figures": [b[1] for s in sections for b in s.blocks if b[0] == "figure"]}
        (tmp / "report.json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n",
                                         encoding="utf-8")
        (tmp / "report.md").write_text(_render_md(sections, prov, summary), encoding="utf-8")
        (tmp / "index.html").write_text(_render_html(sections, prov, tmp, summary),
                                        encoding="utf-8")
        # the lower-case sentence heuristic is left to the tests of the sections
        problems = check_report(tmp, prose=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; give it the usual mode
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if problems:
            stamp += "-failed-check"
            (tmp / "CHECK-FAILED.txt").write_text("\n".join(problems) + "\n", encoding="utf-8")
        while True:
            final = _final_dir(root, stamp)
            try:
                os.rename(tmp, final)  # atomic; fails if `final` appeared meanwhile
                break
            except OSError:
                if not final.exists():
                    raise
        if problems:
            raise ReportCheckError(
                f"the report written to {final} fails its check ({len(problems)} problem(s); "
                "kept for inspection, listed in CHECK-FAILED.txt):\n  - "
                + "\n  - ".join(problems))
        return final
    except BaseException:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
