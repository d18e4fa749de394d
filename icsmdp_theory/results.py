"""The typed result family shared by solvers, estimators, learners and the checker.

Every result is a frozen dataclass deriving from :class:`Result`, so a report
reads the same fields (``success``, ``status``, ``message``, ``iterations``,
``settings``, ``elapsed``) from every stage (STYLE 5). Non-convergence is a
result with ``success=False``; invalid input raises (STYLE 6).

Three promises hold for every result (STYLE 18):

* it prints like scipy's ``OptimizeResult``: ``message``, ``success`` and
  ``status`` first, then the other fields one per line with aligned names,
  arrays abbreviated to dtype, shape and a few values, long lists and dicts
  abbreviated, nested results indented;
* its ``status`` is a word of :data:`STATUS_WORDS`, the one table of status
  words and what each means (:func:`status_table_markdown` renders it for the
  README and the docs); constructing a result with any other status raises;
* it is read-only: the fields cannot be reassigned (frozen dataclass) and
  every array field, and every array inside a tuple, list or dict field, is a
  read-only view (the producer's own array is neither copied nor changed).

>>> r = SolveResult(success=True, status="converged", message="vi: converged.",
...                 q=np.array([[0.5, np.nan]]), v=np.array([0.5]), policy=np.array([0]),
...                 bellman_residual=0.0, error_bound=1e-9, method="vi")
>>> print(r)
SolveResult
           message: vi: converged.
           success: True
            status: converged
        iterations: 0
          settings: {}
           elapsed: 0.0
                 q: float64 array, shape (1, 2): [0.5, nan]
                 v: float64 array, shape (1,): [0.5]
            policy: int64 array, shape (1,): [0]
  bellman_residual: 0.0
       error_bound: 1e-09
            method: 'vi'
>>> r.q.flags.writeable
False
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError

__all__ = ["Result", "SolveResult", "STATUS_WORDS", "status_table_markdown", "to_jsonable"]


#: Every status word a result of the toolkit can carry, with its meaning.
#: ``Result.__post_init__`` refuses any other word, so this table is complete.
STATUS_WORDS: dict[str, str] = {
    # ---- exact solvers (value/policy/modified policy iteration, the oracle)
    "converged": "The iteration met its stopping rule and its certified error bound (or the "
                 "bracket between its upper and lower bounds) is within the requested tolerance.",
    "stagnated": "The iterates stopped improving before the stopping rule was met (the floor "
                 "that double precision resolves); `success` says whether the achieved bound "
                 "still meets the tolerance, and `error_bound` reports it.",
    "max_iter": "The iteration limit `max_iter` was reached before the stopping rule was met; "
                "the result holds the last iterate (`success=False`).",
    "inaccurate": "The computation finished but did not certify the requested accuracy (a "
                  "policy evaluation, LP bracket or estimate above its tolerance); the message "
                  "gives the accuracy reached.",
    "max_rounds": "The cutting-plane linear programs of the minimax centre reached their round "
                  "limit before the upper and lower bounds on the radius met (`success=False`).",
    # ---- direct computations
    "exact": "Computed by a direct method with no tolerance: an exact linear solve (stationary "
             "law) or exact powers of the chain (mixing time).",
    "computed": "Computed by a direct (closed-form or linear-algebra) method with no "
                "convergence criterion.",
    "optimal": "The linear program was solved to optimality (HiGHS).",
    "zero": "The feature Gram matrix has no eigenvalue above the rank tolerance: every "
            "feature vanishes, so the spectrum is empty (`success=False`).",
    "evaluated": "The greedy policies at the checkpoint were evaluated exactly against the "
                 "optimum; `success` is the optimum's.",
    # ---- mixing times
    "periodic": "The chain's closed class is periodic, so d(t) >= 1/2 > eps for every t and "
                "the mixing time is exactly infinite.",
    "multiple_closed_classes": "The chain has more than one closed class, so d(t) >= 1/2 > eps "
                               "for every t and the mixing time is exactly infinite.",
    "limit_above_eps": "The projected distance to stationarity decreases to a limit above eps, "
                       "so the projected mixing time is exactly infinite.",
    "undetermined": "The projected mixing time could not be decided: the projected distance "
                    "tends to a limit within rounding of eps, or the limit was not computed "
                    "(`success=False`).",
    "cap": "The doubling search reached `max_doublings` with d(t) still above eps; the mixing "
           "time is not known (`success=False`).",
    "memory": "The doubling search stopped at its memory budget for stored matrix powers with "
              "d(t) still above eps; the mixing time is not known (`success=False`).",
    "bounds": "The chain has more epoch states than the exact-size limit: only spectral lower "
              "and upper bounds on the mixing time were computed, not the mixing time itself.",
    # ---- estimates and checks
    "ok": "Every estimate met its stated accuracy (gap reports, map comparisons) or every "
          "provable property held on every instance (`verify`).",
    "holds": "Theorem 1's bound holds: every provable term and the approximation and mixing "
             "terms agree with it at the stated confidence.",
    "violated": "A provable inequality failed: a checked term lies above its bound at the "
                "stated confidence (`check`), or a property failed on some instance (`verify`).",
    "inconclusive": "The data neither confirm nor refute the bound: too few checkpoints above "
                    "the floor, confidence intervals too wide, or a term that could not be "
                    "settled.",
    # ---- learner runs (IC-Q)
    "completed": "The learner performed every requested update for every seed and all "
                 "estimates are finite at the last checkpoint.",
    "stalled": "A seed made no update for the stall limit of primitive steps (invocations "
               "longer than the horizon?); the run stopped and keeps the checkpoints reached.",
    "interrupted": "The run was interrupted (Ctrl-C or SIGTERM; for a campaign also a dead "
                   "worker); the checkpoints reached so far, or the campaign tasks finished "
                   "so far, are kept (a campaign continues with `--resume`).",
    "diverged": "Some estimates are not finite (overflow) at the last checkpoint.",
    # ---- campaigns (reports.campaign)
    "finished": "Every task of the campaign ran to completion and its result is in the "
                "results file.",
    "task_errors": "Every task of the campaign ran, but some raised; their errors are "
                   "recorded in the results file and listed in the summary (`success=False`).",
}


def status_table_markdown() -> str:
    """The Markdown table of :data:`STATUS_WORDS`, rows sorted by word.

    The README and the docs print this text, so they show the same table.

    >>> print(status_table_markdown().splitlines()[0])
    | status | meaning |
    """
    rows = ["| status | meaning |", "|---|---|"]
    rows += [f"| `{w}` | {STATUS_WORDS[w]} |" for w in sorted(STATUS_WORDS)]
    return "\n".join(rows)


# ---------------------------------------------------------------- read-only fields
def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (``a`` itself and its flags are untouched)."""
    view = a.view()
    view.flags.writeable = False
    return view


def _frozen_value(value: Any) -> Any:
    """``value`` with every writable array, itself or one level inside a container, read-only.

    Returns ``value`` itself when nothing needs to change.
    """
    if isinstance(value, np.ndarray):
        return _read_only(value) if value.flags.writeable else value
    if isinstance(value, dict):
        if any(isinstance(v, np.ndarray) and v.flags.writeable for v in value.values()):
            return type(value)((k, _frozen_value(v) if isinstance(v, np.ndarray) else v)
                               for k, v in value.items())
        return value
    if isinstance(value, (tuple, list)):
        if any(isinstance(v, np.ndarray) and v.flags.writeable for v in value):
            items = [_frozen_value(v) if isinstance(v, np.ndarray) else v for v in value]
            if hasattr(value, "_fields"):  # a named tuple
                return type(value)(*items)
            return type(value)(items)
        return value
    return value


# ---------------------------------------------------------------- repr
_LINE = 88          # an inline dict/list longer than this is printed one item per line
_STR = 100          # strings (other than the message) are cut to this many characters
_ITEMS = 8          # a multi-line dict/list shows at most this many items
_HEAD, _TAIL = 3, 2  # values shown at each end of a long array or list
_FIRST = ("message", "success", "status")


def _format_scalar(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        text = f"{float(x):.6g}"
        return text if any(c in text for c in ".eni") else text + ".0"
    if isinstance(x, (complex, np.complexfloating)):
        return f"{complex(x):.6g}"
    return _cut(repr(x), 24)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _format_array(a: np.ndarray) -> str:
    n = a.size
    if n <= _HEAD + _TAIL + 1:
        shown = [_format_scalar(x) for x in a.flat]
    else:
        shown = ([_format_scalar(x) for x in a.flat[:_HEAD]] + ["..."]
                 + [_format_scalar(x) for x in a.flat[n - _TAIL:]])
    return f"{a.dtype} array, shape {tuple(a.shape)}: [{', '.join(shown)}]"


def _is_plain(value: Any) -> bool:
    """Whether ``value`` prints on one short line by itself."""
    return value is None or isinstance(value, (bool, int, float, complex, str, np.generic))


def _items(value: Any) -> list[tuple[str, Any]]:
    """``(label, item)`` pairs of a dict, named tuple, tuple or list."""
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    if hasattr(value, "_fields"):
        return list(zip(value._fields, value))
    return [(f"[{j}]", v) for j, v in enumerate(value)]


def _brackets(value: Any) -> tuple[str, str]:
    if isinstance(value, dict):
        return "{", "}"
    if isinstance(value, list):
        return "[", "]"
    return (type(value).__name__ if hasattr(value, "_fields") else "") + "(", ")"


def _item_text(value: Any, label: str, item_text: str) -> str:
    if isinstance(value, dict):
        return f"{label!r}: {item_text}" if not label.isidentifier() else f"{label}: {item_text}"
    if hasattr(value, "_fields"):
        return f"{label}={item_text}"
    return item_text


def _inline(value: Any) -> str | None:
    """A one-line rendering of ``value`` in full, or ``None`` if it does not fit on a line.

    Arrays and strings always fit (abbreviated); a long list of numbers shows
    its ends and its length.
    """
    if isinstance(value, Result):
        return None
    if isinstance(value, np.ndarray):
        return _format_array(value)
    if isinstance(value, str):
        return _cut(repr(value), _STR)
    if _is_plain(value):
        return _format_scalar(value)
    if isinstance(value, (dict, tuple, list)):
        open_, close = _brackets(value)
        if not isinstance(value, dict) and len(value) > _HEAD + _TAIL + 1:
            if not all(_is_plain(v) for v in value):
                return None
            items = list(value)
            shown = ([_format_scalar(v) for v in items[:_HEAD]] + ["..."]
                     + [_format_scalar(v) for v in items[-_TAIL:]])
            return f"{open_}{', '.join(shown)}{close} ({len(items)} items)"
        parts = []
        for label, item in _items(value):
            text = _inline(item)
            if text is None:
                return None
            parts.append(_item_text(value, label, text))
        if type(value) is tuple and len(parts) == 1:
            parts[0] += ","
        text = open_ + ", ".join(parts) + close
        return text if len(text) <= _LINE else None
    return _cut(repr(value), _STR)


def _summary(value: Any) -> str:
    """A one-line abbreviation of ``value``: its first items up to about :data:`_LINE` characters."""
    if isinstance(value, Result):
        return (f"{type(value).__name__}(status={value.status}, success={value.success}, "
                f"message={_cut(repr(value.message), 48)})")
    text = _inline(value)
    if text is not None:
        return text
    if not isinstance(value, (dict, tuple, list)):
        return _cut(repr(value), _STR)
    open_, close = _brackets(value)
    parts, size = [], len(open_)
    for label, item in _items(value):
        if isinstance(item, (Result, dict, tuple, list)) and _inline(item) is None:
            item_text = f"<{type(item).__name__} of {len(item)}>" if not isinstance(item, Result) \
                else f"<{type(item).__name__}>"
        else:
            item_text = _cut(_inline(item), 32)
        part = _item_text(value, label, item_text)
        if parts and size + len(part) > _LINE - 24:
            break
        parts.append(part)
        size += len(part) + 2
    rest = len(value) - len(parts)
    more = f", ...{close} ({len(value)} items)" if rest else close
    return open_ + ", ".join(parts) + more


def _name_value_lines(pairs: list[tuple[str, Any]], indent: int, *,
                      raw: tuple[str, ...] = (), expand: bool = True) -> list[str]:
    """``name: value`` lines with right-aligned names starting at column ``indent``.

    Values of the names in ``raw`` print unquoted. A nested result prints its
    fields below its name, indented to the value column; so does a dict, list
    or tuple too long for one line when ``expand`` (one level: the items of an
    expanded container that do not fit on a line are abbreviated by
    :func:`_summary`).
    """
    width = max((len(name) for name, _ in pairs), default=0)
    lines = []
    for name, value in pairs:
        head = " " * indent + name.rjust(width) + ": "
        if name in raw and isinstance(value, str):
            lines.append(head + value.replace("\n", "\n" + " " * len(head)))
            continue
        text = _inline(value)
        if text is not None:
            lines.append(head + text)
        elif isinstance(value, Result):
            lines.append(head + type(value).__name__)
            lines.extend(value._repr_lines(len(head), header=False))
        elif expand and isinstance(value, (dict, tuple, list)):
            items = _items(value)
            lines.append(head + f"{type(value).__name__} of {len(items)}")
            lines.extend(_name_value_lines(items[:_ITEMS], len(head), expand=False))
            if len(items) > _ITEMS:
                lines.append(" " * len(head) + f"... ({len(items) - _ITEMS} more, "
                             f"{len(items)} in all)")
        else:
            lines.append(head + _summary(value))
    return lines


@dataclass(frozen=True, kw_only=True, repr=False)
class Result:
    """Common fields of every result.

    Attributes
    ----------
    success : bool
        Whether the computation met its promise (tolerance, bound, ...).
    status : str
        Short machine-readable status, a word of :data:`STATUS_WORDS`, e.g.
        ``"converged"``, ``"max_iter"``.
    message : str
        One human-readable sentence about the status.
    iterations : int
        Iterations (sweeps, improvement steps, updates) performed.
    settings : dict
        The settings of the solver/estimator that produced the result.
    elapsed : float
        Wall-clock seconds.

    Notes
    -----
    A subclass is declared ``@dataclass(frozen=True, kw_only=True,
    repr=False)`` so that it keeps this class's ``repr``; a subclass that
    defines ``__post_init__`` must call ``super().__post_init__()``.
    """

    success: bool
    status: str
    message: str
    iterations: int = 0
    settings: dict = field(default_factory=dict)
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.status, str) or self.status not in STATUS_WORDS:
            raise InvalidArgumentError(
                f"`status` of a {type(self).__name__} must be a word of "
                f"icsmdp_theory.results.STATUS_WORDS ({', '.join(sorted(STATUS_WORDS))}), "
                f"got {self.status!r}.")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            frozen = _frozen_value(value)
            if frozen is not value:
                object.__setattr__(self, f.name, frozen)

    def _repr_lines(self, indent: int = 0, header: bool = True) -> list[str]:
        fields = [f for f in dataclasses.fields(self) if f.repr]
        order = ([f for n in _FIRST for f in fields if f.name == n]
                 + [f for f in fields if f.name not in _FIRST])
        pairs = [(f.name, getattr(self, f.name)) for f in order]
        lines = [" " * indent + type(self).__name__] if header else []
        return lines + _name_value_lines(pairs, indent + 2, raw=("message", "status"))

    def __repr__(self) -> str:
        return "\n".join(self._repr_lines())


@dataclass(frozen=True, kw_only=True, repr=False)
class SolveResult(Result):
    """Result of an exact SMDP solver (SPEC section 3).

    Attributes
    ----------
    q : ndarray, shape (num_states, num_actions)
        Action values; ``nan`` where an action is inadmissible.
    v : ndarray, shape (num_states,)
        ``v[s] = max_a q[s, a]`` over admissible actions.
    policy : ndarray of int, shape (num_states,)
        Greedy policy: the lowest admissible index within ``1e-10`` of the max.
    bellman_residual : float
        ``max_s |(T v)(s) - v(s)|`` for the returned ``v``.
    error_bound : float
        A guaranteed bound on ``max |v - v*|`` (and on ``max |q - q*|``).
    method : str
        ``"vi"``, ``"pi"`` or ``"mpi"``.
    """

    q: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    bellman_residual: float
    error_bound: float
    method: str


def to_jsonable(obj: Any) -> Any:
    """Convert results, arrays and numpy scalars to JSON-serializable data.

    Non-finite floats become ``None`` (JSON has no NaN); ``inf`` becomes the
    string ``"inf"`` so that an infinite mixing time stays distinguishable.

    >>> to_jsonable({"a": np.array([1.0, np.nan]), "b": np.float64(np.inf)})
    {'a': [1.0, None], 'b': 'inf'}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if np.isnan(x):
            return None
        if np.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return obj
