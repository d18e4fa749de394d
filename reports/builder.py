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
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import platform
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

__all__ = ["Section", "ReportContext", "build_report", "provenance", "DEFAULT_OUT"]

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
    """

    workdir: Path
    seed: int = 0
    quick: bool = True
    seeds_used: dict = field(default_factory=dict)


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
        ``("code", text)``, ``("math", latex)``.
    data : dict
        JSON-ready numbers behind the section.
    """

    key: str
    title: str
    blocks: Sequence[tuple]
    data: dict


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
def _md_table(headers, rows) -> str:
    def cell(v):
        return _fmt(v).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _render_md(sections, prov) -> str:
    out = ["# icsmdp-theory validation report", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
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
    out += ["## Provenance", "", "```", json.dumps(prov, indent=1), "```", ""]
    return "\n".join(out)


def _render_html(sections, prov, workdir: Path) -> str:
    esc = html.escape
    body = []
    for s in sections:
        body.append(f"<h2 id=\"{esc(s.key)}\">{esc(s.title)}</h2>")
        for b in s.blocks:
            kind = b[0]
            if kind == "p":
                body.append(f"<p>{esc(b[1])}</p>")
            elif kind == "table":
                head = "".join(f"<th>{esc(_fmt(h))}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in r) + "</tr>"
                               for r in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "figure":
                data = base64.b64encode((workdir / b[1]).read_bytes()).decode("ascii")
                body.append(f"<figure><img alt=\"{esc(b[2])}\" data-file=\"{esc(b[1])}\" "
                            f"src=\"data:image/png;base64,{data}\"><figcaption>{esc(b[2])}"
                            f"</figcaption></figure>")
            elif kind == "code":
                body.append(f"<pre>{esc(b[1])}</pre>")
            elif kind == "math":
                body.append(f"<pre class=\"math\">{esc(b[1])}</pre>")
    body.append("<h2 id=\"provenance\">Provenance</h2>")
    body.append(f"<pre>{esc(json.dumps(prov, indent=1))}</pre>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;"
             "padding:.2em .5em;text-align:right}img{max-width:100%}pre{background:#f4f4f4;"
             "padding:.5em;overflow-x:auto}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>icsmdp-theory validation report</title>"
            f"<style>{style}</style></head><body><h1>icsmdp-theory validation report</h1>"
            + "".join(body) + "</body></html>\n")


def _final_dir(root: Path, stamp: str) -> Path:
    cand, k = root / stamp, 1
    while cand.exists():
        k += 1
        cand = root / f"{stamp}-{k}"
    return cand


def build_report(section_funcs: Sequence[Callable[[ReportContext], Section]], *,
                 out_root: str | os.PathLike = DEFAULT_OUT, seed: int = 0, quick: bool = True,
                 argv: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Run the sections and write the report directory; return its path.

    The directory is ``out_root/<UTC timestamp>`` (``-2``, ``-3``, ... if taken).
    """
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    prov = provenance(argv)
    prov["seed"] = seed
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        ctx = ReportContext(workdir=tmp, seed=seed, quick=quick)
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
        prov["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        doc = {"format": "icsmdp-report/1", "provenance": prov,
               "sections": {s.key: to_jsonable(s.data) for s in sections},
               "figures": [b[1] for s in sections for b in s.blocks if b[0] == "figure"]}
        (tmp / "report.json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n",
                                         encoding="utf-8")
        (tmp / "report.md").write_text(_render_md(sections, prov), encoding="utf-8")
        (tmp / "index.html").write_text(_render_html(sections, prov, tmp), encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; give it the usual mode
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        while True:
            final = _final_dir(root, stamp)
            try:
                os.rename(tmp, final)  # atomic; fails if `final` appeared meanwhile
                return final
            except OSError:
                if not final.exists():
                    raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
