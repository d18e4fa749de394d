"""Checks that a written report reads as a report, not as a dump.

:func:`check_report` inspects a report directory's ``index.html`` (and the
figure files next to it) and returns the list of problems found:

- the HTML parses (``html.parser``) with balanced tags;
- every figure resolves: each ``<img>`` has a ``data-file`` that exists in the
  directory and a ``src`` that is that file's PNG as a base64 data URI;
- every link resolves: ``href="#x"`` names an element ``id="x"``; a relative
  ``href`` names an existing file;
- no raw LaTeX (``\\frac``, ``\\left``, ``$$``, any ``\\command``): formulas
  are MathML;
- no backticks in the rendered text or attributes (inline code is ``<code>``);
- no ``nan`` (any case) shown as a word, no table cell ``None``: missing
  numbers are written ``n/a``;
- no sentence of running text starts in lower case (outside ``<code>``;
  ``prose=False`` leaves this heuristic out).

:func:`assert_report_ok` raises :class:`ReportCheckError` listing them; the
report builder (:func:`reports.builder.build_report`) runs the check on
every report it writes (all rules but the lower-case heuristic, which the
report's own tests apply to every section).
"""
from __future__ import annotations

import base64
import os
import re
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["ReportCheckError", "check_html", "check_report", "assert_report_ok"]

#: Elements without a closing tag (HTML5 void elements).
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr", "mprescripts", "none"})
#: Raw LaTeX: ``$$`` or a backslash command (``\frac``, ``\left``, ``\mathbb``, ...).
_LATEX = re.compile(r"\$\$|\\(?:[A-Za-z]{2,}|[,;!{}|])")
#: Missing numbers printed as words.
_MISSING = re.compile(r"(?<![\w.])nan(?![\w(])", re.IGNORECASE)
#: A lower-case letter after a full stop (a sentence start unless an abbreviation ends there).
_LOWER_START = re.compile(r"\.\s+([a-z])")
#: Abbreviations after which a lower-case word does not start a sentence.
_ABBREVIATIONS = re.compile(r"(?:\b(?:e\.g|i\.e|vs|cf|etc|approx)|\.\.)$", re.IGNORECASE)


#: Elements whose text is checked as one piece.
_BLOCKS = frozenset({"p", "td", "th", "li", "figcaption", "h1", "h2", "h3", "pre", "dd", "dt",
                     "caption", "summary", "div", "body"})
#: Blocks of running text (their sentences must start in upper case).
_PROSE = frozenset({"p", "figcaption", "li", "dd", "caption"})


class ReportCheckError(RuntimeError):
    """A written report failed :func:`check_report` (the message lists every problem)."""


class _Parser(HTMLParser):
    """Collects tags, ids, links, images and the running text of a report page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int, int]] = []  # (tag, line, serial)
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[dict] = []
        self.attr_text: list[str] = []
        self.text: list[tuple[str, int, str]] = []  # (kind, block serial, text)
        self._serial = 0

    def _where(self) -> str:
        return f"line {self.getpos()[0]}"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids:
                self.problems.append(f"duplicate id {a['id']!r} ({self._where()})")
            self.ids.add(a["id"])
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])
        if tag == "img":
            self.images.append(a)
        self.attr_text += [v for k, v in attrs if v is not None and k != "src"]
        if tag not in _VOID:
            self._serial += 1
            self.stack.append((tag, self.getpos()[0], self._serial))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            opened = self.stack[-1][:2] if self.stack else None
            self.problems.append(f"unbalanced </{tag}> ({self._where()}; open: "
                                 f"{'<%s> from line %d' % opened if opened else 'nothing'})")
            # recover: close up to the matching tag if there is one
            tags = [t for t, _, _ in self.stack]
            if tag in tags:
                del self.stack[len(tags) - 1 - tags[::-1].index(tag):]
            return
        self.stack.pop()

    def handle_data(self, data):
        tags = [t for t, _, _ in self.stack]
        if any(t in ("style", "script") for t in tags):
            return
        block, serial = next(((t, k) for t, _, k in reversed(self.stack)
                              if t in _BLOCKS), ("", 0))
        kind = "code" if "code" in tags else ("math" if "math" in tags else block)
        self.text.append((kind, serial, data))


def check_html(text: str, directory: str | os.PathLike | None = None, *,
               prose: bool = True) -> list[str]:
    """Problems of one report page (module docstring); ``[]`` when it is clean.

    Parameters
    ----------
    text : str
        The page.
    directory : path-like, optional
        Where its figures and relative links live (figure and file checks
        are skipped without it).
    prose : bool
        Also flag sentences of running text that start in lower case (a
        heuristic: abbreviations such as "e.g." are allowed, code spans
        count as capitalized).

    Returns
    -------
    list of str
        One located message per problem.
    """
    p = _Parser()
    try:
        p.feed(text)
        p.close()
    except Exception as exc:  # html.parser raises on very broken input only
        return [f"the HTML does not parse: {exc}"]
    problems = list(p.problems)
    problems += [f"<{t}> opened at line {ln} is never closed" for t, ln, _ in p.stack]
    for href in p.hrefs:
        if href.startswith("#"):
            if href[1:] not in p.ids:
                problems.append(f"link {href!r} names no element id")
        elif re.match(r"^[a-z][a-z0-9+.-]*:", href, re.IGNORECASE):
            continue  # absolute URL: not checked (a report should not need the network)
        elif directory is not None and not (Path(directory) / href.split("#")[0]).exists():
            problems.append(f"link {href!r} names no file of the report")
    for img in p.images:
        name, src = img.get("data-file"), img.get("src") or ""
        if not name:
            problems.append(f"figure without data-file (alt {img.get('alt')!r})")
            continue
        if directory is not None:
            f = Path(directory) / name
            if not f.is_file():
                problems.append(f"figure {name!r} is not a file of the report")
                continue
            want = "data:image/png;base64," + base64.b64encode(f.read_bytes()).decode("ascii")
            if src != want:
                problems.append(f"figure {name!r}: the embedded image is not the file's PNG")
        elif not src.startswith("data:image/png;base64,"):
            problems.append(f"figure {name!r} is not embedded as a PNG data URI")
    shown = [(blk, t) for blk, _, t in p.text] + [("attr", t) for t in p.attr_text]
    for blk, t in shown:
        if blk == "math":
            continue
        for m in _LATEX.finditer(t):
            problems.append(f"raw LaTeX {m.group(0)!r} in {_excerpt(t, m.start())!r}")
        if "`" in t:
            problems.append(f"backtick in {_excerpt(t, t.index('`'))!r}")
        if blk != "code":
            for m in _MISSING.finditer(t):
                problems.append(f"{m.group(0)!r} shown as a word in {_excerpt(t, m.start())!r}")
            if blk in ("td", "th") and t.strip() == "None":
                problems.append("a table cell shows 'None' (write n/a)")
    if prose:
        problems += _lower_case_sentences(p.text)
    return problems


def _excerpt(text: str, at: int, width: int = 40) -> str:
    return text[max(0, at - width):at + width].replace("\n", " ")


def _lower_case_sentences(pieces: list) -> list[str]:
    """Sentences of running text (``<p>``, captions, list items) starting in lower case."""
    paragraphs: dict[int, list[str]] = {}
    prose = {serial for kind, serial, _ in pieces if kind in _PROSE}
    for kind, serial, t in pieces:
        if serial in prose:
            # a code span or formula reads as a noun, whatever its case
            paragraphs.setdefault(serial, []).append("X" if kind in ("code", "math") else t)
    out = []
    for parts in paragraphs.values():
        s = " ".join("".join(parts).split())
        if s and s[0].islower():
            out.append(f"sentence starts in lower case: {s[:60]!r}")
        for m in _LOWER_START.finditer(s):
            if not _ABBREVIATIONS.search(s[:m.start()]):
                out.append(f"sentence starts in lower case: {_excerpt(s, m.start(1))!r}")
    return out


def check_report(directory: str | os.PathLike, *, prose: bool = True) -> list[str]:
    """Problems of the report in ``directory`` (its ``index.html`` and figures).

    Parameters
    ----------
    directory : path-like
        A report directory as written by :func:`reports.builder.build_report`.
    prose : bool
        Include the lower-case sentence rule (:func:`check_html`).

    Returns
    -------
    list of str
        ``[]`` when the report is clean.
    """
    d = Path(directory)
    page = d / "index.html"
    if not page.is_file():
        return [f"{page} does not exist"]
    return check_html(page.read_text(encoding="utf-8"), d, prose=prose)


def assert_report_ok(directory: str | os.PathLike, *, prose: bool = True) -> None:
    """Raise :class:`ReportCheckError` listing every problem of :func:`check_report`."""
    problems = check_report(directory, prose=prose)
    if problems:
        raise ReportCheckError(f"the report in {directory} fails its check "
                               f"({len(problems)} problem(s)):\n  - " + "\n  - ".join(problems))
