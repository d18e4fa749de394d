"""Epoch-model files ``icsmdp-epoch/1`` and observation maps over labels (SPEC section 10).

JSON form (integers index ``agents``, ``labels`` and successors; STOP is ``N``)::

    {"format": "icsmdp-epoch/1", "name": "...", "gamma": 0.9,
     "agents": ["planner", "checker"], "labels": ["[0,0]", "[0,1]"],
     "rho0": [[k, i, p], ...],                  # states with p > 0 suffice
     "admissible": [[k, i, [c', ...]], ...],    # lists every epoch state once
     "transitions": [[k, i, c', k', tau, p], ...],   # k' null for STOP
     "reward": [[k, i, c', R], ...],            # every admissible (k, i, c') once
     "observation": [[o per label] per agent],  # optional (default: each label its own)
     "reward_components": ["tokens", ...],      # optional, with "components":
     "components": [[k, i, c', R_1, ..., R_J], ...],
     "counts": {...}}                           # optional evidence of a fitted model

The epoch states are the ``(k, i)`` of ``admissible``; every other table refers
to them. Beyond the model's own checks (:class:`~icsmdp_theory.epoch_model.EpochModel`)
the reader refuses unknown or missing keys, a wrong ``format``, entries of the
wrong length or type (a boolean or a string where an integer belongs), unknown
labels, agents or successors, a ``(k, i)`` that is not a state, repeated entries,
an empty successor list, a null ``k'`` for a successor other than STOP, and a
reward for an inadmissible pair or none for an admissible one; the one-line
message names the file, the key and the entry index (and the label and agent).
Files are read by the strict readers of :mod:`icsmdp_theory.documents`
(duplicate keys, NaN, depth, sizes) and written atomically
(:func:`icsmdp_theory.io.atomic_write`). ``.npz`` holds the same arrays as the
model (``states``, ``admissible``, ``rho0``, ``reward``, ``trans_*``, ...); both
forms round-trip exactly.

Observation maps over labels (``icsmdp-obs/1``): ``{"by_label": [{label: o, ...}
per agent]}`` with every label of the model, or the rule form ``{"fields":
[[f, ...] per agent]}``: agent ``i`` observes positions (integers, of a list
state) or keys (strings, of an object state) of the state parsed back from its
label; each distinct tuple becomes one observation (numbered in the order of
its canonical label text). The rule must apply at every label where agent
``i`` is active; elsewhere (``phi_i`` is never used there) a label the rule
cannot read gets a value of its own.
"""
from __future__ import annotations

import json
import os
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from icsmdp_theory.documents import describe, read_json, read_npz
from icsmdp_theory.epoch_model import TRANSITION_KEYS, EpochModel
from icsmdp_theory.errors import InvalidEpochModelError, InvalidObservationMapError
from icsmdp_theory.io import OBS_FORMAT, atomic_write
from icsmdp_theory.labels import canonical_label

__all__ = ["EPOCH_FORMAT", "EPOCH_KEYS", "EPOCH_OPTIONAL_KEYS", "NPZ_EPOCH_KEYS",
           "epoch_model_from_dict", "epoch_model_to_dict", "load_epoch_model", "save_epoch_model",
           "label_maps_from_dict", "load_label_maps"]

EPOCH_FORMAT = "icsmdp-epoch/1"
#: Required keys of the JSON form, in the order written.
EPOCH_KEYS = ("format", "name", "gamma", "agents", "labels", "rho0", "admissible", "transitions",
              "reward")
#: Optional keys of the JSON form.
EPOCH_OPTIONAL_KEYS = ("observation", "reward_components", "components", "counts")
#: Arrays of the ``.npz`` form (``components`` only with ``component_names``; ``counts`` optional).
NPZ_EPOCH_KEYS = ("format", "name", "gamma", "agents", "labels", "states", "admissible", "rho0",
                  "reward", "trans_state", "trans_successor", "trans_next_label", "trans_tau",
                  "trans_prob", "observation", "component_names", "components", "counts")
_NPZ_OPTIONAL = ("components", "counts")


def _fail(msg: str):
    raise InvalidEpochModelError(msg)


# ------------------------------------------------------------------ reading
class _Doc:
    """Parses the tables of one document (sizes known), with located messages."""

    def __init__(self, agents: list, labels: list):
        self.agents, self.labels = agents, labels
        self.N, self.K = len(agents), len(labels)

    def where(self, k: int, i: int) -> str:
        return f"label {k} ({self.labels[k]!r}), agent {i} (`{self.agents[i]}`)"

    def table(self, key: str, value: Any, names: tuple[str, ...]) -> list[tuple]:
        """The columns of a list of fixed-length lists."""
        n = len(names)
        if not isinstance(value, list):
            _fail(f"`{key}` must be a list of [{', '.join(names)}] entries, got {describe(value)}.")
        if set(map(type, value)) - {list} or set(map(len, value)) - {n}:
            j = next(j for j, e in enumerate(value) if type(e) is not list or len(e) != n)
            _fail(f"`{key}` entry {j} must be a list [{', '.join(names)}] of {n} entries, got "
                  f"{describe(value[j])}.")
        cols = list(zip(*value)) if value else [()] * n
        return cols

    @staticmethod
    def ints(key: str, names, c: int, col: tuple, *, nullable: bool = False) -> np.ndarray:
        allowed = {int, type(None)} if nullable else {int}
        if set(map(type, col)) - allowed:
            j = next(j for j, v in enumerate(col) if type(v) not in allowed)
            need = "an integer or null" if nullable else "an integer"
            _fail(f"`{key}` entry {j}: `{names[c]}` must be {need}, got {describe(col[j])}.")
        if nullable:
            col = tuple(-1 if v is None else v for v in col)
        try:
            return np.array(col, dtype=np.int64).reshape(-1)
        except OverflowError:
            j = next(j for j, v in enumerate(col) if abs(v) > 2**62)
            _fail(f"`{key}` entry {j}: `{names[c]}` is out of range, got {describe(col[j])}.")

    @staticmethod
    def numbers(key: str, names, c: int, col: tuple) -> np.ndarray:
        if set(map(type, col)) - {int, float}:
            j = next(j for j, v in enumerate(col) if type(v) not in (int, float))
            _fail(f"`{key}` entry {j}: `{names[c]}` must be a number, got {describe(col[j])}.")
        try:
            return np.array(col, dtype=float).reshape(-1)
        except OverflowError:
            j = next(j for j, v in enumerate(col) if abs(v) > 1.7e308)
            _fail(f"`{key}` entry {j}: `{names[c]}` is beyond the double-precision range, got "
                  f"{describe(col[j])}.")

    def in_range(self, key: str, what: str, arr: np.ndarray, hi: int, extra: str = "") -> None:
        bad = np.flatnonzero((arr < 0) | (arr >= hi))
        if bad.size:
            j = int(bad[0])
            _fail(f"`{key}` entry {j}: unknown {what} {int(arr[j])} ({what}s are 0..{hi - 1}{extra}).")

    def state_columns(self, key: str, names, cols) -> tuple[np.ndarray, np.ndarray]:
        k = self.ints(key, names, 0, cols[0])
        i = self.ints(key, names, 1, cols[1])
        self.in_range(key, "label", k, self.K)
        self.in_range(key, "agent", i, self.N)
        return k, i

    def successors(self, key: str, names, c: int, col: tuple) -> np.ndarray:
        arr = self.ints(key, names, c, col)
        self.in_range(key, "successor", arr, self.N + 1, f", STOP = {self.N}")
        return arr

    # admissible defines the states ------------------------------------------
    def states(self, value: Any) -> tuple[np.ndarray, np.ndarray]:
        key, names = "admissible", ("k", "i", "successors")
        cols = self.table(key, value, names)
        k, i = self.state_columns(key, names, cols)
        lists = cols[2]
        if set(map(type, lists)) - {list}:
            j = next(j for j, v in enumerate(lists) if type(v) is not list)
            _fail(f"`admissible` entry {j} ({self.where(k[j], i[j])}): `successors` must be a list "
                  f"of successor indices, got {describe(lists[j])}.")
        lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        empty = np.flatnonzero(lens == 0)
        if empty.size:
            j = int(empty[0])
            _fail(f"`admissible` entry {j} ({self.where(k[j], i[j])}) lists no successor; every "
                  f"state needs at least one.")
        flat = tuple(chain.from_iterable(lists))
        rows = np.repeat(np.arange(len(lists)), lens)
        if set(map(type, flat)) - {int}:
            t = next(t for t, v in enumerate(flat) if type(v) is not int)
            _fail(f"`admissible` entry {int(rows[t])}: successor {describe(flat[t])} must be an "
                  f"integer (0..{self.N}, STOP = {self.N}).")
        c = np.array(flat, dtype=object)
        bad = np.flatnonzero((c < 0) | (c > self.N))
        if bad.size:
            t = int(bad[0])
            _fail(f"`admissible` entry {int(rows[t])} ({self.where(k[rows[t]], i[rows[t]])}): unknown "
                  f"successor {flat[t]} (successors are 0..{self.N}, STOP = {self.N}).")
        c = c.astype(np.int64)
        n1 = self.N + 1
        hits = np.bincount(rows * n1 + c, minlength=len(lists) * n1)
        rep = np.flatnonzero(hits > 1)
        if rep.size:
            j, cc = divmod(int(rep[0]), n1)
            _fail(f"`admissible` entry {j} ({self.where(k[j], i[j])}) lists successor {cc} twice.")
        adm = (hits > 0).reshape(len(lists), n1)
        key_ = k * self.N + i
        order = np.argsort(key_, kind="stable")
        same = np.flatnonzero(key_[order][1:] == key_[order][:-1])
        if same.size:
            a, b = sorted((int(order[same[0]]), int(order[same[0] + 1])))
            _fail(f"`admissible` entries {a} and {b} repeat the state ({self.where(k[a], i[a])}); "
                  f"each epoch state is listed once.")
        self.adm, self.order, self.sorted_key = adm, order, key_[order]
        self.state_ki = np.column_stack([k, i])
        return self.state_ki, adm

    def lookup(self, key: str, k: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The state (row of ``admissible``) of each ``(k, i)``; refuses non-states."""
        want = k * self.N + i
        pos = np.searchsorted(self.sorted_key, want)
        S = self.sorted_key.size
        ok = (pos < S) & (self.sorted_key[np.minimum(pos, S - 1)] == want)
        bad = np.flatnonzero(~ok)
        if bad.size:
            j = int(bad[0])
            _fail(f"`{key}` entry {j}: ({self.where(k[j], i[j])}) is not an epoch state (not listed "
                  f"in `admissible`).")
        return self.order[pos]

    def unique(self, key: str, code: np.ndarray, what: str) -> None:
        order = np.argsort(code, kind="stable")
        same = np.flatnonzero(code[order][1:] == code[order][:-1])
        if same.size:
            a, b = sorted((int(order[same[0]]), int(order[same[0] + 1])))
            _fail(f"`{key}` entry {b} repeats entry {a} (same {what}); each appears once.")

    def rho0(self, value: Any) -> np.ndarray:
        key, names = "rho0", ("k", "i", "p")
        cols = self.table(key, value, names)
        k, i = self.state_columns(key, names, cols)
        p = self.numbers(key, names, 2, cols[2])
        s = self.lookup(key, k, i)
        self.unique(key, s, "state")
        out = np.zeros(self.adm.shape[0])
        out[s] = p
        return out

    def transitions(self, value: Any) -> dict:
        key, names = "transitions", ("k", "i", "c'", "k'", "tau", "p")
        cols = self.table(key, value, names)
        k, i = self.state_columns(key, names, cols)
        c = self.successors(key, names, 2, cols[2])
        kn = self.ints(key, names, 3, cols[3], nullable=True)
        tau = self.ints(key, names, 4, cols[4])
        p = self.numbers(key, names, 5, cols[5])
        bad = np.flatnonzero((kn == -1) & (c != self.N))
        if bad.size:
            j = int(bad[0])
            _fail(f"`transitions` entry {j} ({self.where(k[j], i[j])}): `k'` is null but the "
                  f"successor {int(c[j])} (`{self.agents[c[j]]}`) is not STOP; only STOP rows "
                  f"have no next label.")
        bad = np.flatnonzero((kn < -1) | (kn >= self.K))
        if bad.size:
            j = int(bad[0])
            _fail(f"`transitions` entry {j}: unknown next label {int(kn[j])} (labels are "
                  f"0..{self.K - 1}).")
        return {"state": self.lookup(key, k, i), "successor": c, "next_label": kn, "tau": tau,
                "prob": p}

    def pair_table(self, key: str, value: Any, names: tuple[str, ...]) -> np.ndarray:
        """``[[k, i, c', v_1, ..., v_J], ...]`` -> array ``(S, N+1, J)``, NaN where inadmissible."""
        cols = self.table(key, value, names)
        k, i = self.state_columns(key, names, cols)
        c = self.successors(key, names, 2, cols[2])
        vals = np.column_stack([self.numbers(key, names, j, cols[j]) for j in range(3, len(names))])
        s = self.lookup(key, k, i)
        bad = np.flatnonzero(~self.adm[s, c])
        if bad.size:
            j = int(bad[0])
            _fail(f"`{key}` entry {j} ({self.where(k[j], i[j])}): successor {int(c[j])} is not "
                  f"admissible at this state (see `admissible`).")
        n1 = self.N + 1
        self.unique(key, s * n1 + c, "state and successor")
        out = np.full(self.adm.shape + (vals.shape[1],), np.nan)
        out[s, c] = vals
        filled = np.zeros(self.adm.shape, bool)
        filled[s, c] = True
        missing = np.argwhere(self.adm & ~filled)
        if missing.size:
            g, cc = int(missing[0][0]), int(missing[0][1])
            kg, ig = self.state_ki[g]
            _fail(f"`{key}` has no entry for ({self.where(kg, ig)}), successor {cc}; every "
                  f"admissible pair needs one.")
        return out


def epoch_model_from_dict(doc: Any) -> EpochModel:
    """Validate a parsed ``icsmdp-epoch/1`` document and build the model.

    Raises
    ------
    InvalidEpochModelError
        One line naming the key, the entry index, the label and the agent.
    """
    if not isinstance(doc, dict):
        _fail("the epoch model must be a JSON object at top level.")
    allowed = EPOCH_KEYS + EPOCH_OPTIONAL_KEYS
    unknown = [k for k in doc if k not in allowed]
    if unknown:
        _fail(f"unknown key `{unknown[0]}` (allowed: {', '.join(allowed)}).")
    missing = [k for k in EPOCH_KEYS if k not in doc]
    if missing:
        _fail(f"missing key `{missing[0]}`.")
    if doc["format"] != EPOCH_FORMAT:
        _fail(f"`format` must be {EPOCH_FORMAT!r}, got {describe(doc['format'])}.")
    for key in ("agents", "labels"):
        if not isinstance(doc[key], list) or not doc[key]:
            _fail(f"`{key}` must be a non-empty list of strings, got {describe(doc[key])}.")
        bad = next((j for j, v in enumerate(doc[key]) if not isinstance(v, str)), None)
        if bad is not None:
            _fail(f"`{key}` entry {bad} must be a string, got {describe(doc[key][bad])}.")
    p = _Doc(doc["agents"], doc["labels"])
    states, adm = p.states(doc["admissible"])
    rho0 = p.rho0(doc["rho0"])
    transitions = p.transitions(doc["transitions"])
    reward = p.pair_table("reward", doc["reward"], ("k", "i", "c'", "R"))[:, :, 0]
    names: list = []
    components = None
    if ("reward_components" in doc) != ("components" in doc):
        _fail("`reward_components` and `components` go together: give both or neither.")
    if "reward_components" in doc:
        names = doc["reward_components"]
        if not isinstance(names, list) or not names:
            _fail(f"`reward_components` must be a non-empty list of names, got {describe(names)}.")
        bad = next((j for j, v in enumerate(names) if not isinstance(v, str)), None)
        if bad is not None:
            _fail(f"`reward_components` entry {bad} must be a string, got {describe(names[bad])}.")
        components = p.pair_table("components", doc["components"],
                                  ("k", "i", "c'") + tuple(f"R_{j + 1}" for j in range(len(names))))
    observation = None
    if "observation" in doc:
        obs = doc["observation"]
        if not isinstance(obs, list) or len(obs) != p.N:
            _fail(f"`observation` must hold one list of {p.K} observations per agent ({p.N} agents), "
                  f"got {describe(obs)}.")
        observation = []
        for a, row in enumerate(obs):
            if not isinstance(row, list) or len(row) != p.K:
                _fail(f"`observation` of agent {a} (`{p.agents[a]}`) must be a list of {p.K} integers "
                      f"(one per label), got {describe(row)}.")
            bad = next((j for j, o in enumerate(row) if type(o) is not int or not 0 <= o < 2**62), None)
            if bad is not None:
                _fail(f"`observation` of agent {a} (`{p.agents[a]}`), label {bad} "
                      f"({p.labels[bad]!r}): must be an integer >= 0, got {describe(row[bad])}.")
            observation.append(np.array(row, dtype=np.int64))
    counts = doc.get("counts")
    if "counts" in doc and not isinstance(counts, dict):
        _fail(f"`counts` must be a JSON object, got {describe(counts)}.")
    return EpochModel(name=doc["name"], gamma=doc["gamma"], agents=doc["agents"], labels=doc["labels"],
                      states=states, admissible=adm, rho0=rho0, transitions=transitions,
                      reward=reward, observation=observation, component_names=names,
                      components=components, counts=counts)


# ------------------------------------------------------------------ writing
def _plain(value: Any) -> Any:
    """numpy values as JSON data (for ``counts``)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"a {type(value).__name__} is not JSON data")


def epoch_model_to_dict(model: EpochModel) -> dict:
    """The ``icsmdp-epoch/1`` document of ``model`` (inverse of :func:`epoch_model_from_dict`).

    ``rho0`` lists the states with positive mass; ``observation`` is written only
    when some agent's map is not the identity; ``counts`` as JSON data.
    """
    k, i = model.state_label.tolist(), model.state_agent.tolist()
    rows, cols = np.nonzero(model.admissible)
    splits = np.split(cols, np.cumsum(model.admissible.sum(axis=1))[:-1])
    doc: dict[str, Any] = {
        "format": EPOCH_FORMAT, "name": model.name, "gamma": model.gamma,
        "agents": list(model.agent_names), "labels": list(model.labels)}
    pos = np.flatnonzero(model.rho0 > 0)
    doc["rho0"] = [[k[s], i[s], p] for s, p in zip(pos.tolist(), model.rho0[pos].tolist())]
    doc["admissible"] = [[a, b, c.tolist()] for a, b, c in zip(k, i, splits)]
    ts = model.trans_state
    nxt = model.trans_next_label.tolist()
    doc["transitions"] = [
        [a, b, c, None if kn == -1 else kn, t, p] for a, b, c, kn, t, p in zip(
            model.state_label[ts].tolist(), model.state_agent[ts].tolist(),
            model.trans_successor.tolist(), nxt, model.trans_tau.tolist(), model.trans_prob.tolist())]
    sk, si = model.state_label[rows].tolist(), model.state_agent[rows].tolist()
    doc["reward"] = [[a, b, c, r] for a, b, c, r in zip(sk, si, cols.tolist(),
                                                        model.reward[rows, cols].tolist())]
    ident = np.arange(model.num_labels)
    if any(not np.array_equal(o, ident) for o in model.observation):
        doc["observation"] = [o.tolist() for o in model.observation]
    if model.component_names:
        doc["reward_components"] = list(model.component_names)
        doc["components"] = [[a, b, c, *v] for a, b, c, v in zip(
            sk, si, cols.tolist(), model.components[rows, cols].tolist())]
    if model.counts is not None:
        doc["counts"] = _counts_json(model)
    return doc


def _json_text(doc: dict) -> str:
    """One key per line, one table entry per line (readable and diff-friendly)."""
    lines = []
    for key, value in doc.items():
        head = json.dumps(key)
        if isinstance(value, list) and value and isinstance(value[0], list):
            body = ",\n  ".join(json.dumps(e, allow_nan=False, ensure_ascii=False) for e in value)
            lines.append(f" {head}: [\n  {body}\n ]")
        else:
            lines.append(f" {head}: {json.dumps(value, allow_nan=False, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _npz_arrays(model: EpochModel) -> dict:
    out = {"format": np.array(EPOCH_FORMAT), "name": np.array(model.name),
           "gamma": np.array(model.gamma), "agents": np.array(model.agent_names, dtype=str),
           "labels": np.array(model.labels, dtype=str),
           "states": np.column_stack([model.state_label, model.state_agent]).astype(np.int64),
           "admissible": np.asarray(model.admissible), "rho0": np.asarray(model.rho0),
           "reward": np.asarray(model.reward),
           "trans_state": np.asarray(model.trans_state), "trans_successor": np.asarray(model.trans_successor),
           "trans_next_label": np.asarray(model.trans_next_label),
           "trans_tau": np.asarray(model.trans_tau), "trans_prob": np.asarray(model.trans_prob),
           "observation": np.stack(model.observation).astype(np.int64),
           "component_names": np.array(model.component_names, dtype=str).reshape(-1)}
    if model.components is not None:
        out["components"] = np.asarray(model.components)
    if model.counts is not None:
        out["counts"] = np.array(json.dumps(_counts_json(model), ensure_ascii=False))
    return out


def _counts_json(model: EpochModel) -> Any:
    """``model.counts`` as JSON data (numpy arrays as lists)."""
    try:
        return json.loads(json.dumps(model.counts, default=_plain, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidEpochModelError(f"`counts` must be JSON data with finite numbers: {exc}.") from None


def save_epoch_model(model: EpochModel, path: str | os.PathLike) -> Path:
    """Write ``model`` as ``icsmdp-epoch/1`` JSON, or compressed ``.npz`` by suffix, atomically."""
    path = Path(path)
    if path.suffix == ".npz":
        arrays = _npz_arrays(model)
        atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))
    else:
        text = _json_text(epoch_model_to_dict(model))
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def _from_npz(arrays: dict) -> EpochModel:
    unknown = [k for k in arrays if k not in NPZ_EPOCH_KEYS]
    if unknown:
        _fail(f"unknown array `{unknown[0]}` in the .npz epoch model (allowed: "
              f"{', '.join(NPZ_EPOCH_KEYS)}).")
    missing = [k for k in NPZ_EPOCH_KEYS if k not in arrays and k not in _NPZ_OPTIONAL]
    if missing:
        _fail(f"missing array `{missing[0]}` in the .npz epoch model.")

    def scalar(key, kinds, what):
        arr = arrays[key]
        if arr.ndim != 0 or arr.dtype.kind not in kinds:
            _fail(f"array `{key}` must be {what} (a 0-d array), got dtype {arr.dtype}, shape "
                  f"{list(arr.shape)}.")
        return arr.item()

    def names(key):
        arr = arrays[key]
        if arr.ndim != 1 or (arr.size and arr.dtype.kind != "U"):
            _fail(f"array `{key}` must be a 1-d array of strings, got dtype {arr.dtype}, shape "
                  f"{list(arr.shape)}.")
        return [str(v) for v in arr.tolist()]

    fmt = scalar("format", "U", "a string")
    if fmt != EPOCH_FORMAT:
        _fail(f"`format` must be {EPOCH_FORMAT!r}, got {describe(fmt)}.")
    counts = None
    if "counts" in arrays:
        text = scalar("counts", "U", "a string (JSON text)")
        try:
            counts = json.loads(text, parse_constant=lambda c: _fail(f"`counts` holds {c}; numbers "
                                                                     f"must be finite."))
        except json.JSONDecodeError as exc:
            _fail(f"array `counts` is not JSON text ({exc.msg}).")
        if not isinstance(counts, dict):
            _fail(f"`counts` must be a JSON object, got {describe(counts)}.")
    obs = arrays["observation"]
    return EpochModel(
        name=scalar("name", "U", "a string"), gamma=scalar("gamma", "fiu", "a number"),
        agents=names("agents"), labels=names("labels"), states=arrays["states"],
        admissible=arrays["admissible"], rho0=arrays["rho0"], reward=arrays["reward"],
        transitions={k: arrays["trans_" + k] for k in TRANSITION_KEYS},
        observation=list(obs) if obs.ndim == 2 else obs, component_names=names("component_names"),
        components=arrays.get("components"), counts=counts)


def load_epoch_model(path: str | os.PathLike) -> EpochModel:
    """Read an ``icsmdp-epoch/1`` model from ``.json`` or ``.npz`` (nothing is executed).

    Raises
    ------
    InvalidEpochModelError
        Unreadable file, invalid JSON or ``.npz``, or an invalid model; the
        one-line message starts with the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidEpochModelError(f"{path}: no such epoch-model file.")
    try:
        if path.suffix == ".npz":
            return _from_npz(read_npz(path, InvalidEpochModelError, what="epoch model"))
        doc = read_json(path, InvalidEpochModelError)
        return epoch_model_from_dict(doc)
    except InvalidEpochModelError as exc:
        text = str(exc)
        raise InvalidEpochModelError(text if text.startswith(f"{path}: ") else f"{path}: {text}") \
            from None


# --------------------------------------------------------------- label maps
def _obs_fail(msg: str):
    raise InvalidObservationMapError(msg)


def _by_label(model: EpochModel, value: Any) -> list[np.ndarray]:
    N, labels = model.num_agents, model.labels
    if not isinstance(value, list) or len(value) != N:
        _obs_fail(f"`by_label` must hold one object per agent ({N} agents), got {describe(value)}.")
    index = {lab: j for j, lab in enumerate(labels)}
    maps = []
    for i, obj in enumerate(value):
        where = f"`by_label` of agent {i} (`{model.agent_names[i]}`)"
        if not isinstance(obj, dict):
            _obs_fail(f"{where} must be an object {{label: observation}}, got {describe(obj)}.")
        missing = next((lab for lab in labels if lab not in obj), None)
        if missing is not None:
            _obs_fail(f"{where}: label {missing!r} is missing; every label of the model needs an "
                      f"observation.")
        bad = next((lab for lab, o in obj.items() if type(o) is not int or o < 0), None)
        if bad is not None:
            _obs_fail(f"{where}: label {bad!r} maps to {describe(obj[bad])}; observations are "
                      f"integers >= 0.")
        # labels the model does not have are allowed (a map written for a larger trace, or a
        # subsample of it): they are simply not used
        out = np.fromiter((obj[lab] for lab in labels), np.int64, len(labels))
        maps.append(out)
    return maps


def _pick(state: Any, fields: list) -> Any:
    """The observed tuple of ``state`` (raises KeyError/IndexError/TypeError if absent)."""
    if isinstance(state, list):
        if any(type(f) is not int for f in fields):
            raise TypeError("list state")
        return [state[f] for f in fields]
    if isinstance(state, dict):
        if any(type(f) is not str for f in fields):
            raise TypeError("object state")
        return [state[f] for f in fields]
    raise TypeError("scalar state")


def _fields(model: EpochModel, value: Any) -> list[np.ndarray]:
    N, K = model.num_agents, model.num_labels
    if not isinstance(value, list) or len(value) != N:
        _obs_fail(f"`fields` must hold one list of fields per agent ({N} agents), got {describe(value)}.")
    states = []
    for k, lab in enumerate(model.labels):
        try:
            states.append(json.loads(lab))
        except json.JSONDecodeError:
            states.append(lab)  # a label that is not JSON text: a scalar string state
    maps = []
    for i, fields in enumerate(value):
        where = f"`fields` of agent {i} (`{model.agent_names[i]}`)"
        if not isinstance(fields, list):
            _obs_fail(f"{where} must be a list of positions or keys, got {describe(fields)}.")
        bad = next((f for f in fields if type(f) not in (int, str) or (type(f) is int and f < 0)), None)
        if bad is not None:
            _obs_fail(f"{where}: {describe(bad)} is neither a position (integer >= 0) nor a key "
                      f"(string).")
        active = np.zeros(K, bool)
        active[model.state_label[model.state_agent == i]] = True
        texts: list = []
        for k, state in enumerate(states):
            try:
                picked = _pick(state, fields)
                texts.append(canonical_label(picked))
            except (KeyError, IndexError, TypeError):
                if active[k]:
                    kind = "a list" if isinstance(state, list) else "an object" \
                        if isinstance(state, dict) else "a scalar"
                    _obs_fail(f"{where}: the rule {fields} does not apply to label {model.labels[k]!r} "
                              f"({kind} state) where the agent is active; positions apply to list "
                              f"states, keys to object states.")
                texts.append(None)
        seen = sorted({t for t in texts if t is not None})
        code = {t: j for j, t in enumerate(seen)}
        maps.append(np.array([len(seen) if t is None else code[t] for t in texts], np.int64))
    return maps


def label_maps_from_dict(doc: Any, model: EpochModel) -> EpochModel:
    """``model`` with the observation maps of a parsed ``icsmdp-obs/1`` document over labels.

    Raises
    ------
    InvalidObservationMapError
        Not an object, wrong format or keys, wrong agent count, an unknown or
        missing label, a non-integer observation, or a rule that does not apply.
    """
    if not isinstance(doc, dict):
        _obs_fail("the observation-map file must be a JSON object.")
    allowed = ("format", "by_label", "fields")
    unknown = [k for k in doc if k not in allowed]
    if unknown:
        hint = " (the `maps` form is for primitive instances; an epoch model takes `by_label` or " \
               "`fields`)" if unknown[0] == "maps" else ""
        _obs_fail(f"unknown key `{unknown[0]}` in the observation-map file{hint} (allowed: "
                  f"{', '.join(allowed)}).")
    if doc.get("format") != OBS_FORMAT:
        _obs_fail(f"`format` must be {OBS_FORMAT!r}, got {describe(doc.get('format'))}.")
    forms = [k for k in ("by_label", "fields") if k in doc]
    if len(forms) != 1:
        _obs_fail("the observation-map file must have exactly one of `by_label` and `fields`.")
    maps = _by_label(model, doc["by_label"]) if forms[0] == "by_label" else _fields(model, doc["fields"])
    return model.with_observation(maps)


def load_label_maps(path: str | os.PathLike, model: EpochModel) -> EpochModel:
    """Read an ``icsmdp-obs/1`` file (``by_label`` or ``fields`` form) and return ``model`` with it.

    Raises
    ------
    InvalidObservationMapError
        The message starts with the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidObservationMapError(f"{path}: no such observation-map file.")
    doc = read_json(path, InvalidObservationMapError)
    try:
        return label_maps_from_dict(doc, model)
    except InvalidObservationMapError as exc:
        raise InvalidObservationMapError(f"{path}: {exc}") from None
