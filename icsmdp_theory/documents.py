"""Strict readers of the files the toolkit reads (SPEC section 9): JSON and ``.npz``.

Every failure raises the caller's error class with a one-line message that
names the file and, where a position exists, the line and column. Nothing in
a file can make the readers recurse without bound, allocate more memory than
the file can hold, or execute code.

JSON (:func:`read_json`) is parsed with these rules beyond RFC 8259:

- the text is UTF-8 and nested at most :data:`MAX_DEPTH` levels (an instance
  is 7 deep), checked by one vectorized pass before parsing;
- every key appears once in its object (a repeated key is not "the last one
  wins": it is an error naming the key and the object);
- numbers are finite: ``NaN``/``Infinity`` and literals beyond the double
  range (``1e400``) are refused at their line and column;
- integer literals have at most :data:`MAX_INT_DIGITS` digits.

``.npz`` (:func:`read_npz`) is read member by member with :mod:`zipfile`:
each member must be a ``.npy`` array whose header declares a plain dtype (no
Python objects, so nothing is unpickled) and a size that the compressed
member can hold (deflate expands at most about 1032:1), checked before any
array is allocated.

:func:`describe` says a value as given (``the string '1.0'``, ``the integer
9223372036854775808``) for located messages.

Examples
--------
>>> describe("1.0"), describe(True), describe(2**63), describe(1e308)
("the string '1.0'", 'the boolean True', 'the integer 9223372036854775808', 'the number 1e+308')
"""
from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "NPZ_DTYPE_KINDS", "read_json", "read_npz", "describe",
           "format_int"]

#: Deepest nesting of arrays and objects accepted in a JSON file.
MAX_DEPTH = 32
#: Longest integer literal accepted in a JSON file (Python's own limit is 4300).
MAX_INT_DIGITS = 4000
#: dtype kinds an ``.npz`` member may have: bool, int, uint, float, complex, str
#: (the validator then says which entry has the wrong type).
NPZ_DTYPE_KINDS = "biufcU"
#: Upper bound of deflate's expansion ratio (1032:1) with slack.
_DEFLATE_RATIO = 1100

#: A JSON string literal (to skip brackets and constants inside strings).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def format_int(value: int | str) -> str:
    """An integer (or its decimal text) as given, abbreviated past 40 digits
    (``1000...0000 (401 digits)``)."""
    text = value if isinstance(value, str) else str(int(value))
    digits = len(text.lstrip("-"))
    if digits <= 40:
        return text
    return f"{text[:13]}...{text[-4:]} ({digits} digits)"


def describe(value: Any) -> str:
    """A value as given, for messages: its JSON kind and its text."""
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {bool(value)}"
    if isinstance(value, (int, np.integer)):
        return f"the integer {format_int(int(value))}"
    if isinstance(value, (float, np.floating)):
        return f"the number {float(value)!r}"
    if isinstance(value, (complex, np.complexfloating)):
        return f"the complex number {complex(value)!r}"
    if isinstance(value, (str, np.str_)):
        text = repr(str(value))
        return f"the string {text if len(text) <= 60 else text[:57] + '...'}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} entries"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


# -------------------------------------------------------------------- JSON
class _Refused(Exception):
    """A literal the reader refuses: ``args = (token, reason)``."""


class _DuplicateKeys(dict):
    """An object in which ``duplicate`` appeared more than once."""

    duplicate: str = ""


#: Number literals that may overflow a double: a 3+-digit exponent or 300+ digits.
_BIG_LITERAL = re.compile(r'(?<![\d.eE+-])-?\d+(?:\.\d*)?[eE]\+?\d{3,}'
                          r'|(?<![\d.eE+-])-?\d{300,}(?:\.\d*)?(?:[eE][+-]?\d+)?')


def _overflowing_literal(text: str) -> str | None:
    """The first number literal outside strings whose value is not a finite double."""
    for hit in _BIG_LITERAL.finditer(text):
        token = hit.group()
        if ("." in token or "e" in token or "E" in token) and abs(float(token)) == float("inf") \
                and _locate(text, token):
            return token
    return None


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(text, f"has {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_constant(text: str):
    raise _Refused(text, "is not finite")


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {col}"


def _locate(text: str, token: str) -> str:
    """`` at line L, column C`` of the first ``token`` outside strings ("" if not found)."""
    pattern = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.+-])(' + re.escape(token) + r')(?![\w.+-])')
    for hit in pattern.finditer(text):
        if hit.group(1):
            return f" at {_position(text, hit.start(1))}"
    return ""


def _scan(text: str) -> tuple[str | None, bool]:
    """One vectorized pass over the text with strings blanked out: the position of the
    first bracket opening level ``MAX_DEPTH + 1`` (or ``None``), and whether some number
    literal may overflow a double (a 3-digit exponent or a run of 300 digits)."""
    blank = _STRING.sub(lambda m: " " * len(m.group()), text)
    codes = np.frombuffer(blank.encode("ascii", errors="replace"), dtype=np.uint8)
    n = codes.size
    step = ((codes == 91) | (codes == 123)).astype(np.int8) - ((codes == 93) | (codes == 125))
    depth = np.cumsum(step, dtype=np.int64)
    over = np.flatnonzero(depth > MAX_DEPTH)
    where = _position(text, int(over[0])) if over.size else None
    if n == 0:
        return where, False
    digit = (codes >= 48) & (codes <= 57)
    breaks = np.flatnonzero(~digit)
    runs = np.diff(np.concatenate([[-1], breaks, [n]])) - 1
    suspicious = bool(runs.max(initial=0) >= 300)
    e = np.flatnonzero((codes == 101) | (codes == 69))
    if e.size and not suspicious:
        start = e + 1 + (codes[np.minimum(e + 1, n - 1)] == 43)
        three = np.ones(e.size, bool)
        for k in range(3):
            at = start + k
            three &= (at < n) & digit[np.minimum(at, n - 1)]
        suspicious = bool(three.any())
    return where, suspicious


def _find_duplicate(doc: Any) -> str:
    """Where the first object with a repeated key is (iterative: no recursion)."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, _DuplicateKeys):
            place = f"`{where}`" if where else "the top-level object"
            return f"duplicate key `{node.duplicate}` in {place}"
        if isinstance(node, dict):
            stack.extend((v, f"{where}.{k}" if where else k) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{j}]") for j, v in reversed(list(enumerate(node)))
                         if isinstance(v, (dict, list)))
    return "duplicate key"  # pragma: no cover (only called when one exists)


def read_json(path: Path, error: type) -> Any:
    """Parse a UTF-8 JSON file strictly (rules in the module docstring).

    Raises
    ------
    error
        Unreadable file, not UTF-8, nested too deep, invalid JSON, a repeated
        key, a non-finite or out-of-range number; the message names the file
        and the line and column (or the object) of the first problem.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}).") from None
    duplicated = []

    deep_at, suspicious = _scan(text)
    if deep_at is not None:
        raise error(f"{path}: JSON nested deeper than {MAX_DEPTH} levels at {deep_at}.")


    def pairs(items):
        out = dict(items)
        if len(out) != len(items):
            seen = set()
            out = _DuplicateKeys(items)
            out.duplicate = next(k for k, _ in items if k in seen or seen.add(k))
            duplicated.append(out)
        return out

    try:
        doc = json.loads(text, object_pairs_hook=pairs, parse_constant=_parse_constant,
                         parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    except _Refused as exc:
        token, reason = exc.args
        shown = token if len(token) <= 40 else format_int(token) if token.lstrip("-").isdigit() \
            else token[:37] + "..."
        if reason == "is not finite":
            raise error(f"{path}: non-finite number `{token}`{_locate(text, token)}; every number "
                        f"must be finite.") from None
        raise error(f"{path}: number `{shown}`{_locate(text, token)} {reason}.") from None
    except RecursionError:  # pragma: no cover (the depth check comes first)
        raise error(f"{path}: JSON nested too deeply.") from None
    token = _overflowing_literal(text) if suspicious else None
    if token is not None:
        shown = token if len(token) <= 40 else token[:37] + "..."
        raise error(f"{path}: number `{shown}`{_locate(text, token)} is beyond the double-precision "
                    f"range (about 1.8e308).")
    if duplicated:
        raise error(f"{path}: {_find_duplicate(doc)}; every key must appear once.")
    return doc


# --------------------------------------------------------------------- npz
def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, fail) -> np.ndarray:
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            fail(f"array `{key}` has .npy format version {version}, expected 1.0 or 2.0")
        if dtype.hasobject:
            fail(f"array `{key}` holds Python objects (pickles are never read)")
        if dtype.kind not in NPZ_DTYPE_KINDS or dtype.fields is not None or dtype.subdtype:
            fail(f"array `{key}` has dtype {dtype}; expected booleans, numbers or text")
        if any(n < 0 for n in shape):
            fail(f"array `{key}` declares the invalid shape {list(shape)}")
        count = 1
        for n in shape:
            count *= int(n)
        nbytes = count * dtype.itemsize
        limit = info.compress_size * (_DEFLATE_RATIO if info.compress_type else 1) + 4096
        if nbytes > limit:
            fail(f"array `{key}` declares shape {list(shape)} ({nbytes} bytes), more than its "
                 f"{info.compress_size}-byte member can hold")
        data = fp.read(nbytes)
        if len(data) != nbytes:
            fail(f"array `{key}` is truncated ({len(data)} of {nbytes} bytes)")
        if fp.read(1):
            fail(f"array `{key}` has bytes after its data")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def read_npz(path: Path, error: type, what: str = "instance") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, by name, checked before allocation.

    Raises
    ------
    error
        Not a zip archive (e.g. an ``.npy`` renamed), a member that is not an
        ``.npy`` array, a repeated member, an object or unsupported dtype, a
        declared size the member cannot hold, truncated or corrupt data.
    """
    path = Path(path)

    def fail(msg):
        raise error(f"{path}: {msg}.")

    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        fail(f"cannot read the file ({exc.strerror or exc})")
    if head == b"\x93NUMPY":
        fail(f"is a single .npy array, not a .npz archive; a .npz {what} is a zip of named arrays")
    corrupt = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
               NotImplementedError, RuntimeError)
    try:
        zf = zipfile.ZipFile(path)
    except error:
        raise
    except corrupt as exc:
        fail(f"not a readable .npz {what} ({' '.join(str(exc).split())})")
    arrays: dict[str, np.ndarray] = {}
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy") or info.is_dir():
                fail(f"member `{info.filename}` is not a .npy array")
            key = info.filename[:-4]
            if key in arrays:
                fail(f"array `{key}` appears twice in the archive")
            try:
                arrays[key] = _read_member(zf, info, key, fail)
            except error:
                raise
            except corrupt as exc:
                fail(f"array `{key}` is unreadable ({' '.join(str(exc).split())})")
    return arrays
