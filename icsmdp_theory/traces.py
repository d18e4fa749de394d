"""Handoff traces ``icsmdp-trace/1`` (JSON Lines): reading, writing, simulating (SPEC section 10, "Traces").

Format. Line 1 is the header

    ``{"format": "icsmdp-trace/1", "gamma": g, "agents": [names], "reward_components": [names],
    "admissible": {agent: [successor names or "STOP"]}}``

(the last two keys optional); every further line is one invocation

    ``{"episode": id, "agent": name, "state": value, "successor": name | "STOP", "tau": tau, "reward": R}``

with ``R = sum_{u < tau} gamma^u r_u`` the invocation's discounted reward, or
``"rewards": [r_0, ..., r_{tau-1}]`` instead of ``reward`` (then ``R`` is
computed here and ``len == tau`` is checked), and optionally
``"components": {name: value}`` (every declared component; a value is the
component's discounted sum, or a list of ``tau`` per-step values). ``id`` is an
integer or a string, ``tau`` an integer ``>= 1`` (a boolean is not an
integer), ``state`` any JSON value, canonicalized to a label by
:func:`icsmdp_theory.labels.canonical_label`.

Episodes. The next state of an invocation is the ``state`` of the next line
of the same episode, whose ``agent`` must equal this line's ``successor``; a
``STOP`` line ends its episode (a later line of that episode is an error). An
episode whose last line is not ``STOP`` is *truncated*: its last invocation
gives no transition (``next_label = -1``), as in SPEC section 7. Lines of
different episodes may interleave; an episode's lines are in its own order.

Strictness. Each line is one JSON object, parsed strictly (a repeated key,
``NaN``/``Infinity`` and numbers beyond the double range such as ``1e400``
are errors, as in :mod:`icsmdp_theory.documents`); unknown keys are errors
(in the header and in lines). Blank lines: a whitespace-only line *followed
by* an invocation line is an error (JSON Lines has no empty records); blank
lines at the end of the file are ignored (an editor's trailing newlines). A
line longer than :data:`MAX_LINE_BYTES` is an error (so no single line can
exhaust memory). Every error is an :class:`~icsmdp_theory.errors.InvalidTraceError`
with the one-line message ``"PATH: line L: key `k`: what"``.

Streaming. :func:`read_trace` reads the file in binary chunks of
:data:`CHUNK_BYTES`, one pass, and accumulates columnar ``array.array``
buffers (about 80 bytes per invocation plus the distinct labels), so a 1 GB
trace is never held in memory whole.

Writing. :class:`TraceWriter` writes a trace atomically (a temporary file in
the destination's directory, renamed on a clean exit of the ``with`` block,
removed on an error or Ctrl-C). :func:`simulate_trace` simulates a primitive
IC-SMDP (:class:`icsmdp_theory.simulate.BatchSimulator`, SPEC section 1)
under a behavior ``b_i(c' | o)``, writing the full state
``[x, m, l_0, ..., l_{N-1}]`` at the start of each invocation as ``state``
(its label equals the export's label of that full state), and
:func:`simulate_epoch_trace` samples an explicit epoch model (SPEC section 10).
Both are reproducible: the same arguments and seed give a byte-identical file.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
>>> with TraceWriter(path, gamma=0.5, agents=["a", "b"]) as w:
...     w.write(0, "a", [0, 1], "b", 2, rewards=[1.0, 2.0])
...     w.write(0, "b", [1, 1], "STOP", 1, reward=3.0)
>>> t = read_trace(path)
>>> t.labels, t.reward.tolist(), t.next_label.tolist(), t.successor.tolist()
(('[0,1]', '[1,1]'), [2.0, 3.0], [1, -1], [1, 2])
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidTraceError
from icsmdp_theory.labels import InvalidLabelError, canonical_label
from icsmdp_theory.model import ICSMDP, ROW_SUM_TOL, require_single_mode
from icsmdp_theory.simulate import (CHOICE_COLUMNS, PRIMITIVE_COLUMNS, STEP_COLUMNS, BatchSimulator,
                                    CategoricalRows, SeedStreams, seed_sequences)

__all__ = ["FORMAT", "STOP", "MAX_LINE_BYTES", "CHUNK_BYTES", "HEADER_KEYS", "LINE_KEYS",
           "TraceData", "read_trace", "TraceWriter", "simulate_trace", "simulate_epoch_trace",
           "write_synthetic_trace", "SIMULATION_BATCH"]

#: The header's ``format`` string.
FORMAT = "icsmdp-trace/1"
#: The successor name that ends an episode.
STOP = "STOP"
#: Longest accepted line (bytes, without the newline).
MAX_LINE_BYTES = 16 * 2 ** 20
#: Bytes read per chunk by :func:`read_trace`.
CHUNK_BYTES = 2 ** 22
#: Keys a header may have (``format``, ``gamma``, ``agents`` required).
HEADER_KEYS = ("format", "gamma", "agents", "reward_components", "admissible")
#: Keys an invocation line may have (``reward`` or ``rewards``; ``components`` optional).
LINE_KEYS = ("episode", "agent", "state", "successor", "tau", "reward", "rewards", "components")
#: Episodes simulated in parallel by :func:`simulate_trace` / :func:`simulate_epoch_trace`
#: (fixed, so the file depends only on the arguments and the seed).
SIMULATION_BATCH = 1024

_REQUIRED = ("episode", "agent", "state", "successor", "tau")
_LINE_KEY_SET = frozenset(LINE_KEYS)
_HEADER_KEY_SET = frozenset(HEADER_KEYS)


# ===================================================================== reading
class _Refused(Exception):
    """A JSON text the strict parser refuses: ``args = (key or None, reason)``."""


def _pairs(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise _Refused(k, "appears more than once in the object")
            seen.add(k)
    return d


def _constant(text):
    raise _Refused(None, f"{text} is not a finite number")


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)
_FAST_DECODER = json.JSONDecoder(parse_constant=_constant)
#: Largest accepted ``tau`` (durations are int64 inside).
MAX_TAU = 2 ** 62


def _count_keys(value) -> int:
    """Number of object keys in a parsed JSON value, nested ones included."""
    if type(value) is dict:
        return len(value) + sum(_count_keys(v) for v in value.values())
    if type(value) is list:
        return sum(_count_keys(v) for v in value if type(v) is dict or type(v) is list)
    return 0


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        text = repr(value)
        return f"the string {text if len(text) <= 60 else text[:57] + '...'}"
    if isinstance(value, list):
        return f"a list of {len(value)} entries"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _is_number(v) -> bool:
    return (type(v) is float or type(v) is int) and math.isfinite(v)


@dataclass(frozen=True, eq=False)
class TraceData:
    """A trace read by :func:`read_trace`: the header and columnar arrays over invocations.

    Every array is read-only and indexed by the invocation ``n`` in file order.

    Attributes
    ----------
    path : str
    gamma : float
    agent_names : tuple of str
        Agent ``i`` is ``agent_names[i]``; successor ``N`` is STOP.
    component_names : tuple of str
        Declared reward components (``()`` when none).
    declared_admissible : dict or None
        ``{agent index: tuple of successor indices}`` from the header's
        ``admissible`` (or the ``admissible`` argument); ``None`` when not declared.
    labels : tuple of str
        The distinct canonical state labels, sorted; ``label[n]`` indexes it.
    episode_ids : tuple
        The episode ids as written (int or str), in order of first appearance.
    episode, agent, label, successor, tau, line : int64 arrays (n,)
        Episode ordinal (0-based, by first appearance), agent index, label
        index, successor index (``N`` = STOP), duration, 1-based line number.
    reward : float array (n,)
        ``R = sum_{u<tau} gamma^u r_u``.
    components : float array (n, J) or None
        Discounted reward components, columns in ``component_names`` order.
    next_label : int64 array (n,)
        Label of the next line of the same episode; ``-1`` after STOP and for
        the last line of a truncated episode.
    num_invocations, num_episodes, num_truncated_episodes : int
    """

    path: str
    gamma: float
    agent_names: tuple
    component_names: tuple
    declared_admissible: dict | None
    labels: tuple
    episode_ids: tuple
    episode: np.ndarray
    agent: np.ndarray
    label: np.ndarray
    successor: np.ndarray
    tau: np.ndarray
    reward: np.ndarray
    components: np.ndarray | None
    next_label: np.ndarray
    line: np.ndarray
    num_invocations: int
    num_episodes: int
    num_truncated_episodes: int

    @property
    def num_agents(self) -> int:
        """``N``."""
        return len(self.agent_names)

    @property
    def num_labels(self) -> int:
        """``K``, the number of distinct labels."""
        return len(self.labels)

    def successor_name(self, c: int) -> str:
        """Name of successor index ``c`` (``"STOP"`` for ``N``)."""
        return STOP if c == len(self.agent_names) else self.agent_names[c]


class _Reader:
    """State of one streaming pass of :func:`read_trace`."""

    def __init__(self, path: str, admissible, progress=None):
        self.progress = progress
        self.path = path
        self.admissible_arg = admissible
        self.lineno = 0

    # ------------------------------------------------------------ errors
    def error(self, key: str | None, what: str, line: int | None = None) -> InvalidTraceError:
        where = f"{self.path}: line {self.lineno if line is None else line}: "
        if key is not None:
            where += f"key `{key}`: "
        return InvalidTraceError(where + " ".join(str(what).split()))

    def parse(self, raw: bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(None, f"not UTF-8 text (byte {exc.start + 1} of the line)") from None
        try:
            return _DECODER.decode(text)
        except _Refused as exc:
            raise self.error(exc.args[0], exc.args[1]) from None
        except json.JSONDecodeError as exc:
            raise self.error(None, f"not JSON: {exc.msg} (column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:
            raise self.error(None, f"not JSON: {exc}") from None

    # ------------------------------------------------------------ header
    def header(self, obj) -> None:
        if not isinstance(obj, dict) or "format" not in obj:
            raise self.error("format", f"missing header: line 1 must be "
                             f'{{"format": "{FORMAT}", "gamma": ..., "agents": [...]}}')
        if obj["format"] != FORMAT:
            raise self.error("format", f"must be {FORMAT!r}, got {_kind(obj['format'])}")
        for k in obj:
            if k not in _HEADER_KEY_SET:
                raise self.error(k, f"unknown header key (allowed: {', '.join(HEADER_KEYS)})")
        for k in ("gamma", "agents"):
            if k not in obj:
                raise self.error(k, "missing from the header")
        g = obj["gamma"]
        if not (_is_number(g) and 0.0 < g < 1.0):
            raise self.error("gamma", f"must be a number in (0, 1), got {_kind(g)}")
        self.gamma = float(g)
        agents = obj["agents"]
        if not isinstance(agents, list) or not agents:
            raise self.error("agents", f"must be a non-empty list of names, got {_kind(agents)}")
        for j, a in enumerate(agents):
            if not isinstance(a, str) or not a or a == STOP:
                raise self.error("agents", f"entry {j} must be a non-empty string other than "
                                 f"{STOP!r}, got {_kind(a)}")
        if len(set(agents)) != len(agents):
            dup = next(a for j, a in enumerate(agents) if a in agents[:j])
            raise self.error("agents", f"agent {dup!r} is listed twice")
        self.agent_names = tuple(agents)
        N = self.N = len(agents)
        self.agent_index = {a: i for i, a in enumerate(agents)}
        self.successor_index = dict(self.agent_index)
        self.successor_index[STOP] = N
        comps = obj.get("reward_components", [])
        if not isinstance(comps, list) or not all(isinstance(c, str) and c for c in comps) \
                or len(set(comps)) != len(comps):
            raise self.error("reward_components", f"must be a list of distinct non-empty names, "
                             f"got {_kind(comps)}")
        self.component_names = tuple(comps)
        self.component_set = frozenset(comps)
        declared = self.admissible_arg if self.admissible_arg is not None else obj.get("admissible")
        key = "admissible"
        self.declared = None
        if declared is not None:
            if not isinstance(declared, Mapping):
                raise self.error(key, f"must be an object {{agent: [successors]}}, got {_kind(declared)}")
            out = {}
            for a, succ in declared.items():
                if a not in self.agent_index:
                    raise self.error(key, f"unknown agent {a!r} (agents: {', '.join(agents)})")
                if not isinstance(succ, (list, tuple)) or not succ:
                    raise self.error(key, f"agent {a!r}: must be a non-empty list of successor "
                                     f"names, got {_kind(succ)}")
                idx = []
                for c in succ:
                    if c not in self.successor_index:
                        raise self.error(key, f"agent {a!r}: unknown successor {c!r} "
                                         f"(allowed: {', '.join(agents)}, {STOP})")
                    idx.append(self.successor_index[c])
                if len(set(idx)) != len(idx):
                    raise self.error(key, f"agent {a!r}: a successor is listed twice")
                out[self.agent_index[a]] = tuple(sorted(idx))
            missing = [a for a in agents if self.agent_index[a] not in out]
            if missing:
                raise self.error(key, f"agent {missing[0]!r} has no declared successors "
                                 f"(declare every agent)")
            self.declared = out
            self.allowed = [frozenset(out[i]) for i in range(N)]

    # ------------------------------------------------------------ invocations
    def read(self, f) -> TraceData:
        J = N = 0
        declared = None
        col_episode, col_agent, col_label = array("q"), array("q"), array("q")
        col_succ, col_tau, col_prev, col_line = array("q"), array("q"), array("q"), array("q")
        col_reward, col_comp = array("d"), array("d")
        episodes: dict = {}        # id -> [ordinal, last invocation, last successor]
        episode_ids: list = []
        label_ids: dict = {}       # canonical label -> first-appearance index
        int_lists: dict = {}       # tuple of ints -> label index (fast path for int-list states)
        scalars: dict = {}         # (type, value) -> label index for int/str states
        pending_blank = 0          # line number of the first blank line not yet followed by data
        agent_index, successor_index = None, None
        header_done = False
        n = 0
        leftover = b""
        scan = _FAST_DECODER.scan_once
        lineno = 0
        gamma = None
        while True:
            chunk = f.read(CHUNK_BYTES)
            if chunk and self.progress is not None:
                self.progress(len(chunk))
            if not chunk:
                lines = [leftover] if leftover else []
            else:
                parts = (leftover + chunk).split(b"\n")
                leftover = parts.pop()
                if len(leftover) > MAX_LINE_BYTES:
                    self.lineno = lineno + len(parts) + 1
                    raise self.error(None, f"line longer than {MAX_LINE_BYTES} bytes")
                lines = parts
            for raw in lines:
                lineno += 1
                if len(raw) > MAX_LINE_BYTES:
                    self.lineno = lineno
                    raise self.error(None, f"line longer than {MAX_LINE_BYTES} bytes")
                if not raw.strip():
                    if not header_done:
                        self.lineno = lineno
                        raise self.error("format", "missing header: line 1 is blank" if lineno == 1
                                         else "blank line before the first invocation")
                    if not pending_blank:
                        pending_blank = lineno
                    continue
                self.lineno = lineno
                if pending_blank:
                    raise self.error(None, "blank line in the middle of the trace (JSON Lines "
                                     "has one JSON object per line; only trailing blank lines "
                                     "are ignored)", line=pending_blank)
                if header_done:
                    # fast path: the plain C scanner; any failure re-parses strictly for the message
                    try:
                        text = raw.decode("utf-8")
                        obj, end = scan(text, 0)
                    except Exception:
                        obj = self.parse(raw)
                    else:
                        if end != len(text) and not text[end:].isspace():
                            obj = self.parse(raw)
                    # a repeated key: every key is followed by a colon, so a line whose
                    # colons outnumber the keys parsed is re-parsed with the strict parser
                    if raw.count(b":") != len(obj) if type(obj) is dict else True:
                        if type(obj) is not dict or raw.count(b":") != _count_keys(obj):
                            obj = self.parse(raw)
                else:
                    obj = self.parse(raw)
                if not header_done:
                    self.header(obj)
                    header_done = True
                    agent_index, successor_index = self.agent_index, self.successor_index
                    gamma, N, J = self.gamma, self.N, len(self.component_names)
                    declared = self.declared
                    continue
                # ---- one invocation line
                if type(obj) is not dict:
                    raise self.error(None, f"an invocation line must be a JSON object, got {_kind(obj)}")
                if len(obj) > 7 or not _LINE_KEY_SET.issuperset(obj):
                    for k in obj:
                        if k not in _LINE_KEY_SET:
                            raise self.error(k, f"unknown key (allowed: {', '.join(LINE_KEYS)})")
                try:
                    eid, ag, state, succ, tau = (obj["episode"], obj["agent"], obj["state"],
                                                 obj["successor"], obj["tau"])
                except KeyError:
                    k = next(k for k in _REQUIRED if k not in obj)
                    raise self.error(k, "missing") from None
                # agent, successor
                i = agent_index.get(ag) if type(ag) is str else None
                if i is None:
                    raise self.error("agent", f"unknown agent {_kind(ag)} (agents: "
                                     f"{', '.join(self.agent_names)})")
                c = successor_index.get(succ) if type(succ) is str else None
                if c is None:
                    raise self.error("successor", f"unknown successor {_kind(succ)} (allowed: "
                                     f"{', '.join(self.agent_names)}, {STOP})")
                if declared is not None and c not in self.allowed[i]:
                    raise self.error("successor", f"{succ!r} is not a declared admissible successor "
                                     f"of agent {ag!r} (header `admissible`)")
                # duration and reward
                if type(tau) is not int:
                    raise self.error("tau", f"must be an integer >= 1, got {_kind(tau)}")
                if tau < 1 or tau > MAX_TAU:
                    raise self.error("tau", f"must be an integer in [1, 2^62], got {tau}")
                if "reward" in obj:
                    if "rewards" in obj:
                        raise self.error("rewards", "give `reward` or `rewards`, not both")
                    R = obj["reward"]
                    if not _is_number(R):
                        raise self.error("reward", f"must be a finite number, got {_kind(R)}")
                elif "rewards" in obj:
                    R = self.discounted(obj["rewards"], tau, gamma, "rewards")
                else:
                    raise self.error("reward", "missing (give `reward` or `rewards`)")
                if J:
                    comp = obj.get("components")
                    if comp is None:
                        raise self.error("components", f"missing (the header declares "
                                         f"{', '.join(self.component_names)})")
                    col_comp.extend(self.components(comp, tau, gamma))
                elif "components" in obj:
                    raise self.error("components", "the header declares no `reward_components`")
                # state label
                ts = type(state)
                if ts is list:
                    key = tuple(state)
                    if all(type(v) is int for v in key):  # 1, 1.0 and true hash alike
                        k = int_lists.get(key)
                        if k is None:
                            k = int_lists[key] = self.label_index(state, label_ids)
                    else:
                        k = self.label_index(state, label_ids)
                elif ts is int or ts is str:
                    k = scalars.get((ts, state))
                    if k is None:
                        k = scalars[(ts, state)] = self.label_index(state, label_ids)
                else:
                    k = self.label_index(state, label_ids)
                # episode bookkeeping
                te = type(eid)
                if te is not int and te is not str:
                    raise self.error("episode", f"must be an integer or a string, got {_kind(eid)}")
                ep = episodes.get(eid)
                if ep is None:
                    ep = episodes[eid] = [len(episode_ids), n, c]
                    episode_ids.append(eid)
                    prev = -1
                else:
                    prev, pc = ep[1], ep[2]
                    if pc == N:
                        raise self.error("episode", f"episode {eid!r} already ended with "
                                         f"{STOP} at line {col_line[prev]}")
                    if i != pc:
                        raise self.error("agent", f"{ag!r} does not match the successor "
                                         f"{self.agent_names[pc]!r} of line {col_line[prev]} "
                                         f"(episode {eid!r})")
                    ep[1], ep[2] = n, c
                col_episode.append(ep[0])
                col_agent.append(i)
                col_label.append(k)
                col_succ.append(c)
                col_tau.append(tau)
                col_prev.append(prev)
                col_line.append(lineno)
                col_reward.append(R)
                n += 1
            if not chunk:
                break
        if not header_done:
            self.lineno = 1
            raise self.error("format", "missing header: the file is empty")
        if n == 0:
            self.lineno = lineno + 1
            raise self.error(None, "empty trace: no invocation lines after the header")
        return self.finish(n, col_episode, col_agent, col_label, col_succ, col_tau, col_prev,
                           col_line, col_reward, col_comp, episode_ids, label_ids, episodes)

    def label_index(self, state, label_ids: dict) -> int:
        try:
            lab = canonical_label(state)
        except InvalidLabelError as exc:
            raise self.error("state", str(exc).removeprefix("state label: ")) from None
        k = label_ids.get(lab)
        if k is None:
            k = label_ids[lab] = len(label_ids)
        return k

    def discounted(self, values, tau: int, gamma: float, key: str) -> float:
        if not isinstance(values, list):
            raise self.error(key, f"must be a list of {tau} numbers (one per step), got {_kind(values)}")
        if len(values) != tau:
            raise self.error(key, f"has {len(values)} entries but `tau` is {tau} (one per step)")
        R, d = 0.0, 1.0
        for u, r in enumerate(values):
            if not _is_number(r):
                raise self.error(key, f"entry {u} must be a finite number, got {_kind(r)}")
            R += d * r
            d *= gamma
        return R

    def components(self, comp, tau: int, gamma: float) -> list:
        if not isinstance(comp, dict):
            raise self.error("components", f"must be an object {{name: value}}, got {_kind(comp)}")
        for name in comp:
            if name not in self.component_set:
                raise self.error("components", f"unknown component {name!r} (declared: "
                                 f"{', '.join(self.component_names)})")
        out = []
        for name in self.component_names:
            if name not in comp:
                raise self.error("components", f"component {name!r} is missing")
            v = comp[name]
            if isinstance(v, list):
                out.append(self.discounted(v, tau, gamma, "components"))
            elif _is_number(v):
                out.append(float(v))
            else:
                raise self.error("components", f"component {name!r} must be a finite number or "
                                 f"a list of {tau} numbers, got {_kind(v)}")
        return out

    def finish(self, n, col_episode, col_agent, col_label, col_succ, col_tau, col_prev, col_line,
               col_reward, col_comp, episode_ids, label_ids, episodes) -> TraceData:
        def ro(a, dtype):
            x = np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype)
            x = x.copy()
            x.setflags(write=False)
            return x

        first = list(label_ids)               # first-appearance order
        order = sorted(range(len(first)), key=first.__getitem__)
        rank = np.empty(len(first), np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(first))
        label = rank[np.frombuffer(col_label, dtype=np.int64)]
        prev = np.frombuffer(col_prev, dtype=np.int64)
        nxt = np.full(n, -1, np.int64)
        has = prev >= 0
        nxt[prev[has]] = label[has]
        label.setflags(write=False)
        nxt.setflags(write=False)
        J = len(self.component_names)
        comps = None
        if J:
            comps = np.frombuffer(col_comp, dtype=np.float64).reshape(n, J).copy()
            comps.setflags(write=False)
        truncated = sum(1 for ep in episodes.values() if ep[2] != self.N)
        return TraceData(
            path=self.path, gamma=self.gamma, agent_names=self.agent_names,
            component_names=self.component_names, declared_admissible=self.declared,
            labels=tuple(first[j] for j in order), episode_ids=tuple(episode_ids),
            episode=ro(col_episode, np.int64), agent=ro(col_agent, np.int64), label=label,
            successor=ro(col_succ, np.int64), tau=ro(col_tau, np.int64),
            reward=ro(col_reward, np.float64), components=comps, next_label=nxt,
            line=ro(col_line, np.int64), num_invocations=n, num_episodes=len(episode_ids),
            num_truncated_episodes=truncated)


def read_trace(path: str | os.PathLike, *, admissible: Mapping[str, Sequence[str]] | None = None,
               progress: Callable[[int], Any] | None = None) -> TraceData:
    """Read an ``icsmdp-trace/1`` file in one streaming pass (SPEC section 10, "Traces").

    Parameters
    ----------
    path : path-like
    admissible : mapping ``{agent name: [successor names or "STOP"]}``, optional
        Declared admissible successors; replaces the header's ``admissible``.
        A line whose successor is not declared for its agent is an error.
    progress : callable, optional
        Called with the number of bytes read after each chunk (for a progress bar).

    Returns
    -------
    TraceData

    Raises
    ------
    InvalidTraceError
        ``"PATH: line L: key `k`: what"``: missing header, wrong ``format``,
        unknown agent or successor, a successor not matching the next line's
        agent, ``tau`` not an integer ``>= 1``, ``rewards`` of the wrong
        length, non-finite numbers, a line that is not JSON, a repeated or
        unknown key, a line after its episode's STOP, a blank line in the
        middle, an empty trace.
    FileNotFoundError, OSError
        The file cannot be opened (also raised as InvalidTraceError with the path).
    """
    p = os.fspath(path)
    try:
        f = open(p, "rb")
    except OSError as exc:
        raise InvalidTraceError(f"{p}: cannot read the trace: {exc.strerror or exc}") from None
    with f:
        return _Reader(p, admissible, progress).read(f)


# ===================================================================== writing
def _name_or_index(value, names: Sequence[str], what: str, *, stop: bool) -> int:
    N = len(names)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        v = int(value)
        if 0 <= v < N or (stop and v == N):
            return v
    elif isinstance(value, str):
        if value in names:
            return names.index(value)
        if stop and value == STOP:
            return N
    allowed = ", ".join(list(names) + ([STOP] if stop else []))
    raise InvalidArgumentError(f"`{what}` must be one of {allowed} (or its index), got {value!r}.")


class TraceWriter:
    """Write an ``icsmdp-trace/1`` file atomically (a context manager).

    Parameters
    ----------
    path : path-like
        Destination; written as a temporary file in the same directory and
        renamed over ``path`` when the ``with`` block exits cleanly (on an
        exception or Ctrl-C the temporary file is removed and ``path`` is untouched).
    gamma : float in (0, 1)
    agents : sequence of str
    reward_components : sequence of str, optional
    admissible : mapping ``{agent: [successor names or "STOP"]}``, optional

    Examples
    --------
    See the module docstring.
    """

    def __init__(self, path: str | os.PathLike, *, gamma: float, agents: Sequence[str],
                 reward_components: Sequence[str] = (), admissible: Mapping | None = None):
        self.path = Path(os.fspath(path))
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)) \
                or not 0.0 < float(gamma) < 1.0:
            raise InvalidArgumentError(f"`gamma` must be a number in (0, 1), got {gamma!r}.")
        self.gamma = float(gamma)
        agents = [str(a) for a in agents]
        if not agents or len(set(agents)) != len(agents) or STOP in agents or "" in agents:
            raise InvalidArgumentError(f"`agents` must be distinct non-empty names other than "
                                       f"{STOP!r}, got {agents!r}.")
        self.agents = tuple(agents)
        self.components = tuple(str(c) for c in reward_components)
        if len(set(self.components)) != len(self.components):
            raise InvalidArgumentError(f"`reward_components` must be distinct, got {self.components!r}.")
        header: dict = {"format": FORMAT, "gamma": self.gamma, "agents": list(self.agents)}
        if self.components:
            header["reward_components"] = list(self.components)
        if admissible is not None:
            adm = {}
            for a, succ in admissible.items():
                i = _name_or_index(a, self.agents, "admissible", stop=False)
                adm[self.agents[i]] = [STOP if c == len(agents) else self.agents[c] for c in
                                       sorted(_name_or_index(c, self.agents, "admissible", stop=True)
                                              for c in succ)]
            header["admissible"] = adm
        self._header = json.dumps(header, ensure_ascii=False, allow_nan=False) + "\n"
        self._names = [json.dumps(a, ensure_ascii=False) for a in self.agents] + [f'"{STOP}"']
        self._file = None
        self._tmp = None
        self.num_lines = 0

    def __enter__(self) -> "TraceWriter":
        parent = self.path.parent if str(self.path.parent) else Path(".")
        fd, self._tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=".jsonl")
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="\n", buffering=2 ** 20)
        self._file.write(self._header)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        f, tmp = self._file, self._tmp
        self._file = None
        try:
            f.close()
            if exc_type is None:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the usual mode
                os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return False

    def write(self, episode: int | str, agent: int | str, state: Any, successor: int | str,
              tau: int, reward: float | None = None, rewards: Sequence[float] | None = None,
              components: Mapping[str, float] | None = None) -> None:
        """Append one invocation line (SPEC section 10).

        Parameters
        ----------
        episode : int or str
        agent : name or index
        state : JSON value (written canonically)
        successor : name, ``"STOP"`` or index (``N`` = STOP)
        tau : int >= 1
        reward : float, optional
            The discounted invocation reward ``R``; or give ``rewards`` (``tau`` per-step values).
        components : mapping name -> float, optional
            Required when the writer declares ``reward_components``.
        """
        if self._file is None:
            raise InvalidArgumentError("`TraceWriter.write` is only valid inside its `with` block.")
        if isinstance(episode, bool) or not isinstance(episode, (int, np.integer, str)):
            raise InvalidArgumentError(f"`episode` must be an integer or a string, got {episode!r}.")
        episode = episode if isinstance(episode, str) else int(episode)
        i = _name_or_index(agent, self.agents, "agent", stop=False)
        c = _name_or_index(successor, self.agents, "successor", stop=True)
        if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 1:
            raise InvalidArgumentError(f"`tau` must be an integer >= 1, got {tau!r}.")
        try:
            label = canonical_label(state)
        except InvalidLabelError as exc:
            raise InvalidArgumentError(f"`state`: {exc}") from None
        parts = [f'{{"episode":{json.dumps(episode, ensure_ascii=False)},"agent":{self._names[i]},'
                 f'"state":{label},"successor":{self._names[c]},"tau":{int(tau)}']
        if (reward is None) == (rewards is None):
            raise InvalidArgumentError("give exactly one of `reward` and `rewards`.")
        if reward is not None:
            if isinstance(reward, bool) or not math.isfinite(float(reward)):
                raise InvalidArgumentError(f"`reward` must be a finite number, got {reward!r}.")
            parts.append(f',"reward":{float(reward)!r}')
        else:
            r = [float(x) for x in rewards]
            if len(r) != tau or not all(math.isfinite(x) for x in r):
                raise InvalidArgumentError(f"`rewards` must be {tau} finite numbers, got {rewards!r}.")
            parts.append(f',"rewards":{json.dumps(r)}')
        if self.components:
            if components is None or set(components) != set(self.components):
                raise InvalidArgumentError(f"`components` must give exactly "
                                           f"{', '.join(self.components)}, got {components!r}.")
            vals = {k: float(components[k]) for k in self.components}
            if not all(math.isfinite(v) for v in vals.values()):
                raise InvalidArgumentError(f"`components` must be finite, got {components!r}.")
            parts.append(f',"components":{json.dumps(vals, ensure_ascii=False)}')
        elif components:
            raise InvalidArgumentError("`components` given but the writer declares no `reward_components`.")
        parts.append("}\n")
        self._file.write("".join(parts))
        self.num_lines += 1

    def write_lines(self, text: str, count: int) -> None:
        """Append ``count`` pre-formatted lines (trusted callers of this module; no checks)."""
        self._file.write(text)
        self.num_lines += count


def write_synthetic_trace(path: str | os.PathLike, *, invocations: int, agents: int = 10,
                          labels: int = 1000, episode_length: int = 20, seed: int = 0) -> dict:
    """Write a valid random trace quickly (for benchmarks of readers and fits; no model behind it).

    Episodes of ``episode_length`` invocations (the last one ends with STOP;
    the final episode may be shorter and then also ends with STOP); agents
    ``"agent0".."agent{N-1}"`` drawn uniformly; states
    ``[k // 100, (k // 10) % 10, k % 10, k]`` for a uniform label ``k < labels``;
    ``tau`` uniform in ``1..5``; ``reward`` uniform in ``[0, 1)``; ``gamma = 0.95``.

    Returns
    -------
    dict
        ``{"path", "invocations", "episodes", "bytes"}``.
    """
    n = int(invocations)
    if n < 1 or agents < 1 or labels < 1 or episode_length < 1:
        raise InvalidArgumentError("`invocations`, `agents`, `labels` and `episode_length` must be >= 1.")
    rng = np.random.default_rng(seed)
    names = [f"agent{i}" for i in range(agents)]
    succ_names = [f'"agent{j}"' for j in range(agents)] + ['"STOP"']
    block = 100_000
    first = int(rng.integers(0, agents))
    with TraceWriter(path, gamma=0.95, agents=names) as w:
        for lo in range(0, n, block):
            m = min(block, n - lo)
            pos = np.arange(lo, lo + m)
            ag = np.empty(m + 1, np.int64)
            ag[0] = first
            ag[1:] = rng.integers(0, agents, m)
            first = int(ag[-1])
            succ = ag[1:].copy()       # successor of a line = agent of the next line
            succ[((pos + 1) % episode_length == 0) | (pos == n - 1)] = agents  # STOP
            k = rng.integers(0, labels, m)
            tau = rng.integers(1, 6, m)
            r = rng.random(m)
            lines = [f'{{"episode":{e},"agent":"agent{a}","state":[{kk // 100},{(kk // 10) % 10},'
                     f'{kk % 10},{kk}],"successor":{succ_names[c]},"tau":{t},"reward":{rr!r}}}\n'
                     for e, a, kk, c, t, rr in zip((pos // episode_length).tolist(), ag[:m].tolist(),
                                                   k.tolist(), succ.tolist(), tau.tolist(), r.tolist())]
            w.write_lines("".join(lines), m)
    episodes = (n - 1) // episode_length + 1
    return {"path": str(path), "invocations": n, "episodes": episodes,
            "bytes": os.path.getsize(path)}


# ===================================================================== simulation
def _behavior_iv(behavior, num_observations: Sequence[int], N: int,
                 forbidden: Sequence[np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """Per-agent ``b_i[o, c']`` as float arrays; ``forbidden[i][o, c']`` marks inadmissible mass."""
    if not isinstance(behavior, (list, tuple)) or len(behavior) != N:
        raise InvalidArgumentError(f"`behavior` must be a list of {N} arrays (one per agent), "
                                   f"got {type(behavior).__name__}.")
    out = []
    for i, b in enumerate(behavior):
        where = f"`behavior[{i}]` (agent {i}, `{names[i]}`)"
        try:
            b = np.array(b, dtype=float)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{where} must be a numeric array.") from None
        shape = (int(num_observations[i]), N + 1)
        if b.shape != shape:
            raise InvalidArgumentError(f"{where} must have shape {list(shape)} (observations, "
                                       f"successors), got {list(b.shape)}.")
        bad = ~np.isfinite(b) | (b < 0)
        if bad.any():
            o, c = np.argwhere(bad)[0]
            raise InvalidArgumentError(f"{where} must be finite and >= 0: entry [o={o}, c'={c}] "
                                       f"is {float(b[o, c])!r}.")
        bad = (b > 0) & forbidden[i]
        if bad.any():
            o, c = np.argwhere(bad)[0]
            raise InvalidArgumentError(f"{where} puts mass {float(b[o, c])!r} on inadmissible "
                                       f"successor c'={c} at observation o={o}.")
        sums = b.sum(axis=1)
        off = np.abs(sums - 1.0) > ROW_SUM_TOL
        if off.any():
            o = int(np.flatnonzero(off)[0])
            raise InvalidArgumentError(f"rows of {where} must sum to 1: observation o={o} sums to "
                                       f"{float(sums[o])!r}.")
        out.append(b)
    return out


def _count_iv(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {low}, got {value!r}.")
    return int(value)


def _seed_iv(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"`seed` must be an integer >= 0, got {seed!r}.")
    return int(seed)


class _EpisodeBuffers:
    """Lines of the running episode of each slot; flushed with the episode's id when it ends."""

    def __init__(self, writer: TraceWriter, slots: int, progress):
        self.writer = writer
        self.lines = [[] for _ in range(slots)]
        self.next_id = 0
        self.invocations = 0
        self.truncated = 0
        self.progress = progress

    def flush(self, slots, truncated: bool) -> None:
        out = []
        count = 0
        for s in slots:
            buf = self.lines[s]
            if buf:  # an episode cut before its first invocation ended has no line: not written
                head = f'{{"episode":{self.next_id},'
                out.extend(head + x for x in buf)
                count += len(buf)
                self.next_id += 1
                self.truncated += truncated
                buf.clear()
        if out:
            self.writer.write_lines("".join(out), count)
            self.invocations += count
        if self.progress is not None and len(slots):
            self.progress(len(slots))


def simulate_trace(model: ICSMDP, path: str | os.PathLike, *, episodes: int,
                   behavior: Sequence[np.ndarray], seed: int = 0,
                   progress: Callable[[int], Any] | None = None) -> dict:
    """Simulate ``episodes`` episodes of a primitive IC-SMDP and write their trace (SPEC sections 1, 10).

    Each invocation of agent ``i`` starts at the full state ``f = (x, m, l_0..l_{N-1})``;
    the agent observes ``o = phi_i(m, l_i)`` (the model's own maps) and commits to
    ``c' ~ b_i(. | o)``; the primitive steps run until the invocation ends
    (:class:`~icsmdp_theory.simulate.BatchSimulator`), and one line is written:
    ``state = [x, m, l_0, ..., l_{N-1}]``, ``successor = c'``, ``tau``,
    ``reward = R = sum_{u<tau} gamma^u r_u``. An episode that reaches the
    horizon ``H`` (primitive steps) ends there without STOP: the invocation
    running at ``H`` is dropped (its duration is censored), so the episode's
    last line is the last invocation that ended by step ``H``; an episode whose
    first invocation is cut has no line and does not count. Episodes are
    written whole, numbered ``0, 1, ...`` in the order they end.

    Parameters
    ----------
    model : ICSMDP
    path : path-like
        Destination (written atomically).
    episodes : int >= 1
        Episodes started (those cut before any line are not written).
    behavior : list of ndarray ``(nO_i, N+1)``
        ``b_i[o, c']``, rows summing to 1, no mass on inadmissible successors
        (e.g. :func:`estimators.behavior.uniform_behavior`).
    seed : int >= 0
        The file is a function of the arguments and ``seed`` (episodes run
        :data:`SIMULATION_BATCH` at a time; slot ``k`` draws from
        :func:`~icsmdp_theory.simulate.seed_sequences` child ``k``).
    progress : callable, optional
        Called with the number of episodes that ended (e.g. ``tqdm.update``).

    Returns
    -------
    dict
        ``{"path", "episodes" (written), "invocations", "truncated_episodes", "seed"}``.
    """
    if not isinstance(model, ICSMDP):
        raise InvalidArgumentError(f"`model` must be an ICSMDP, got {type(model).__name__}.")
    require_single_mode(model, "the simulator (`icsmdp simulate`, `simulate-trace`)")
    episodes = _count_iv("episodes", episodes)
    seed = _seed_iv(seed)
    N = model.num_agents
    forbidden = [np.broadcast_to(~a.successors, (a.num_observations, N + 1)) for a in model.agents]
    behavior = _behavior_iv(behavior, model.num_observations, N, forbidden,
                            [a.name for a in model.agents])
    offs = cell_offsets(model.num_observations)
    choice = CategoricalRows.dense(np.vstack(behavior))
    B = min(episodes, SIMULATION_BATCH)
    sim = BatchSimulator(model, B)
    tb = sim.tables
    nM = model.num_interface
    streams = SeedStreams(seed_sequences(seed, B), step_width=STEP_COLUMNS, event_width=N + 2)
    names = [json.dumps(a.name, ensure_ascii=False) for a in model.agents] + [f'"{STOP}"']
    start_state = np.zeros((B, N + 2), np.int64)   # [x, m, l_0..l_{N-1}] at the epoch start
    active = np.ones(B, bool)
    c0 = CHOICE_COLUMNS[0]
    ca, ck, ce = PRIMITIVE_COLUMNS

    def begin(idx: np.ndarray, u: np.ndarray) -> None:
        ag = sim.agent[idx]
        G = sim.G[idx]
        xm = tb.xm_of[G]
        start_state[idx, 0] = xm // nM
        start_state[idx, 1] = xm % nM
        start_state[idx, 2:] = sim.private[idx]
        start_state[idx, 2 + ag] = tb.l_of[G]
        c = choice.sample(offs[ag] + tb.obs_of[G], u[c0][idx])
        sim.begin(idx, c)

    # the header declares the instance's handoff graph, so `fit --admissible declared` can be
    # tried against the truth
    declared = {i: [int(c) for c in np.flatnonzero(model.admissible[i])] for i in range(model.num_agents)}
    with TraceWriter(path, gamma=model.gamma, agents=[a.name for a in model.agents],
                     admissible=declared) as w:
        buffers = _EpisodeBuffers(w, B, progress)
        every = np.arange(B)
        started = B
        u = streams.step()
        sim.restart(every, streams.events(every))
        begin(every, u)
        while active.any():
            u = streams.step()
            ended = sim.step(u[ca], u[ck], u[ce])
            ended &= active
            h = np.flatnonzero(ended)
            stopped = handed = h[:0]
            if h.size:
                c = sim.successor[h]
                tau = sim.clock - sim.epoch_start[h]
                for s, a, st, cc, t, R in zip(h.tolist(), sim.agent[h].tolist(),
                                              start_state[h].tolist(), c.tolist(), tau.tolist(),
                                              sim.ret[h].tolist()):
                    buffers.lines[s].append(
                        f'"agent":{names[a]},"state":[{",".join(map(str, st))}],'
                        f'"successor":{names[cc]},"tau":{t},"reward":{R!r}}}\n')
                go = c < N
                stopped, handed = h[~go], h[go]
                if handed.size:
                    sim.handoff(handed, c[go])
            cut = np.flatnonzero(sim.truncated() & active)
            if cut.size and stopped.size:
                cut = cut[~np.isin(cut, stopped)]
            if cut.size:
                handed = handed[~np.isin(handed, cut)]
                buffers.flush(cut.tolist(), truncated=True)
            if stopped.size:
                buffers.flush(stopped.tolist(), truncated=False)
            done = np.sort(np.concatenate([stopped, cut])) if cut.size else stopped
            restarted = done[:max(0, min(done.size, episodes - started))]
            started += restarted.size
            if restarted.size < done.size:
                active[done[restarted.size:]] = False
            if restarted.size:
                sim.restart(restarted, streams.events(restarted))
            start = handed if restarted.size == 0 else np.concatenate([handed, restarted])
            if start.size:
                begin(start, u)
        summary = {"path": str(Path(os.fspath(path)).absolute()), "episodes": buffers.next_id,
                   "invocations": buffers.invocations,
                   "truncated_episodes": buffers.truncated, "seed": seed}
    return summary


def simulate_epoch_trace(model: EpochModel, path: str | os.PathLike, *, episodes: int,
                         behavior: Sequence[np.ndarray], seed: int = 0, max_invocations: int = 1000,
                         progress: Callable[[int], Any] | None = None) -> dict:
    """Sample ``episodes`` episodes of an explicit epoch model and write their trace (SPEC section 10).

    An episode starts at ``s ~ rho0``; at epoch state ``s = (k, i)`` agent ``i``
    commits to ``c' ~ b_i(. | o)`` with ``o`` the compacted observation
    ``model.state_observation[s]``; ``(k', tau)`` is drawn from the model's law
    ``P(k', tau | k, i, c')`` and one line is written with ``state`` the label
    ``k`` (its canonical JSON text), ``tau`` and ``reward = R(s, c')`` (and the
    components ``R_j(s, c')`` when the model has them). STOP ends the episode;
    an episode reaching ``max_invocations`` lines ends there without STOP
    (truncated). Episodes are numbered in the order they end; the file is a
    function of the arguments and ``seed``.

    Parameters
    ----------
    model : EpochModel
    path : path-like
        Destination (written atomically).
    episodes : int >= 1
    behavior : list of ndarray ``(num_observations[i], N+1)``
        Rows summing to 1, no mass on a successor inadmissible at some state of that observation.
    seed : int >= 0
    max_invocations : int >= 1
        Truncation length of an episode (invocations).
    progress : callable, optional
        Called with the number of episodes that ended.

    Returns
    -------
    dict
        ``{"path", "episodes", "invocations", "truncated_episodes", "seed"}``.
    """
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__}.")
    episodes = _count_iv("episodes", episodes)
    max_invocations = _count_iv("max_invocations", max_invocations)
    seed = _seed_iv(seed)
    N = model.num_agents
    forbidden = []
    for i in range(N):
        mask = model.state_agent == i
        f = np.zeros((model.num_observations[i], N + 1), bool)
        np.logical_or.at(f, model.state_observation[mask], ~model.admissible[mask])
        forbidden.append(f)
    behavior = _behavior_iv(behavior, model.num_observations, N, forbidden, model.agent_names)
    choice = CategoricalRows.dense(np.vstack(behavior))
    choice_row = cell_offsets(model.num_observations)[model.state_agent] + model.state_observation
    key = model.trans_state * (N + 1) + model.trans_successor
    uniq, first = np.unique(key, return_index=True)
    row_of = np.full(model.num_epoch_states * (N + 1), -1, np.int64)
    row_of[uniq] = np.arange(uniq.size)
    T = key.size
    trans = CategoricalRows(np.r_[first, T], np.arange(T), model.trans_prob)
    init = CategoricalRows.dense(model.rho0[None, :])
    rng = np.random.default_rng(seed)
    B = min(episodes, SIMULATION_BATCH)
    names = [json.dumps(a, ensure_ascii=False) for a in model.agent_names] + [f'"{STOP}"']
    comp_names = [json.dumps(c, ensure_ascii=False) for c in model.component_names]
    labels = model.labels
    state_label = model.state_label
    cur = init.sample(np.zeros(B, np.int64), rng.random(B))
    count = np.zeros(B, np.int64)
    active = np.ones(B, bool)
    started = B
    with TraceWriter(path, gamma=model.gamma, agents=model.agent_names,
                     reward_components=model.component_names) as w:
        buffers = _EpisodeBuffers(w, B, progress)
        while active.any():
            idx = np.flatnonzero(active)
            s = cur[idx]
            c = choice.sample(choice_row[s], rng.random(idx.size))
            t = trans.sample(row_of[s * (N + 1) + c], rng.random(idx.size))
            R = model.reward[s, c]
            comps = model.components[s, c] if model.components is not None else None
            for j, (slot, ss, cc, tt, rr) in enumerate(zip(idx.tolist(), s.tolist(), c.tolist(),
                                                            model.trans_tau[t].tolist(), R.tolist())):
                extra = ""
                if comps is not None:
                    extra = ',"components":{' + ",".join(
                        f"{n}:{float(v)!r}" for n, v in zip(comp_names, comps[j].tolist())) + "}"
                buffers.lines[slot].append(
                    f'"agent":{names[model.state_agent[ss]]},"state":{labels[state_label[ss]]},'
                    f'"successor":{names[cc]},"tau":{tt},"reward":{rr!r}{extra}}}\n')
            count[idx] += 1
            cur[idx] = model.trans_next[t]
            stop = c == N
            stopped = idx[stop]
            cut = idx[~stop & (count[idx] >= max_invocations)]
            if cut.size:
                buffers.flush(cut.tolist(), truncated=True)
            if stopped.size:
                buffers.flush(stopped.tolist(), truncated=False)
            done = np.sort(np.concatenate([stopped, cut]))
            restarted = done[:max(0, min(done.size, episodes - started))]
            started += restarted.size
            active[done[restarted.size:]] = False
            if restarted.size:
                cur[restarted] = init.sample(np.zeros(restarted.size, np.int64), rng.random(restarted.size))
                count[restarted] = 0
        summary = {"path": str(Path(os.fspath(path)).absolute()), "episodes": buffers.next_id,
                   "invocations": buffers.invocations,
                   "truncated_episodes": buffers.truncated, "seed": seed}
    return summary
