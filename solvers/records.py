"""Run records of IC-Q learners, their files, and the exact value of learned policies (SPEC section 7).

A :class:`RunRecord` holds, for every seed of a run, the value estimates
``Q_i(o, c')`` at checkpoint update counts over the disjoint union of the
agents' observation cells ``(i, o)``, in agent-major order
``cell = sum_{j < i} nO_j + o`` (:func:`cell_offsets`).

File format ``icsmdp-run/1``
----------------------------
A run is two files side by side: ``PATH.npz`` (numpy ``savez``, read with
``allow_pickle=False``) and ``PATH.json`` (UTF-8, the sidecar). An external
IC-Q implementation writes a record the checker can read by providing the
entries marked *required* (the optional ones as it has them); any other key
or array is rejected, as unknown keys are in instance files (SPEC section 9),
and every rejection is one line naming the file, the key and the index.

Sidecar ``PATH.json`` (one object):

==========================  ========================================================  ========
key                         meaning                                                   required
==========================  ========================================================  ========
``format``                  ``"icsmdp-run/1"``                                        yes
``instance``                the instance's ``name``                                   yes
``learner``                 ``"tabular"``, ``"linear"``, ``"mlp"`` or any label       yes
``gamma``                   primitive discount                                        yes
``num_agents``              ``N``                                                     yes
``num_observations``        ``[nO_0, ..., nO_{N-1}]``                                 yes
``model_kind``              ``"icsmdp"`` (a primitive instance, the default) or       no
                            ``"epoch"`` (an explicit epoch model, SPEC section 10)
``num_epoch_states``        epoch states of the model the run learned on              no
``base_seed``               the run's base seed (int or null)                         no
``success``, ``status``,    as in every result (``"completed"``, ``"interrupted"``,   no
``message``                 ``"stalled"``, ``"diverged"``)
``iterations``              primitive steps of the batch loop                         no
``elapsed``                 wall-clock seconds                                        no
``settings``                the learner's settings (JSON object)                      no
``timings``                 JSON object of seconds and rates                          no
==========================  ========================================================  ========

Arrays ``PATH.npz`` (``K`` checkpoints, ``S`` seeds, ``n = sum_i nO_i`` cells, ``C = N+1``):

==========================  ==============  =====================================================  ========
key                         shape, dtype    meaning                                                required
==========================  ==============  =====================================================  ========
``checkpoints``             (K,) int        update counts ``T`` (per seed) of the snapshots          yes
``q``                       (K, S, n, C)    ``Q_i(o, c')`` at cell ``(i, o)``; ``nan`` where          yes
                            float64         ``c'`` is inadmissible for ``i`` or not reached; with
                                            adaptable agents ``C = J = max_i K_i (N+1)`` and the
                                            column is the choice ``j = a*(N+1) + c'``
``admissible``              (N, C) bool     ``succ[i][c']`` (``model_kind`` ``"icsmdp"``; with        yes
                                            modes the admissible choices ``j``); for an
                            or (n, C)       ``"epoch"`` run the cell's set ``adm(i, o)``, the
                                            intersection of its states' sets (SPEC section 10)
``seeds``                   (S,) int        seed ids (child index of ``SeedSequence(base_seed)``)     no
``reached``                 (K, S) bool     checkpoint reached (default: ``q`` finite somewhere)      no
``updates``                 (S,) int        updates performed per seed                               no
``primitive_steps``,        (S,) int        per seed                                                 no
``episodes``,
``truncations``
``checkpoint_seconds``      (K, S) float    wall-clock time when reached                             no
``eps0_value``,             (K, S) float    ``max |Q - Qbar|`` and ``max ||grad Q - g0||`` over all   no
``eps0_grad``                               ``(i, o, c')`` (SPEC section 8; 0 for tabular/linear)
``theta_distance``          (K, S, N)       ``||theta_i - theta_i0||``                               no
``theta0_<i>``,             (S, P_i)        initial and final parameters of agent ``i``              no
``theta_<i>``
``features_<i>``            any             linear features / MLP inputs of agent ``i``              no
``msg_<field>``             (M,)            message log, fields ``seed, epoch, sender, receiver,     no
                                            b, tau, R, observation, successor``
==========================  ==============  =====================================================  ========

A message row is what predecessor ``receiver`` got at the end of its epoch
``epoch`` (the seed's handoff count, from 0) in seed ``seed``: ``(b, tau, R)``
from ``sender`` (the successor, or ``N`` for STOP with ``b = 0``); the
``observation`` and ``successor`` columns are the receiver's own journal (what
it observed and chose at the start of that epoch), never sent; with adaptable
agents ``successor`` holds the receiver's choice ``j = a*(N+1) + c'`` (mode
``a``; ``sender`` is ``c' = j mod (N+1)``), and ``j = c'`` without them.

Policy evaluation
-----------------
:func:`evaluate_greedy_policies` maps each seed's greedy decentralized policy
``pi_i(o) = argmax_{c' admissible} Q_i(o, c')`` (lowest index within
``1e-10`` of the max, :func:`solvers.common.greedy`) to the epoch policy
``sigma[f, i] = pi_i(phi_i(m, l_i))`` and evaluates it exactly in the full
system with :func:`solvers.iteration.evaluate_policy`. With adaptable agents
the greedy policy picks a choice ``j = a*(N+1) + c'`` among the cell's
admissible choices (:func:`choice_cell_admissible`) and the committed chain
runs the invocation with mode ``a``'s option reduction (SPEC sections 2-3,
:mod:`solvers.committed_chain`): ``V_sigma(s) = R_{i,a}(y, c') + D_{i,a} V_sigma``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icsmdp_theory.cells import cell_admissible, cell_offsets
from icsmdp_theory.documents import describe, read_json, read_npz
from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.epoch_level import cell_rule
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import atomic_write
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result, to_jsonable
from icsmdp_theory.validation import is_int, is_real
from solvers.api import PolicyIteration, solve
from solvers.committed_chain import committed_chain
from solvers.common import greedy
from solvers.epoch_smdp import evaluate_epoch_policy
from solvers.iteration import evaluate_policy

__all__ = ["RunRecord", "PolicyEvaluation", "RUN_FORMAT", "save_run", "load_run",
           "greedy_cell_policies", "epoch_policy", "evaluate_greedy_policies", "cells_from_epoch_q",
           "choice_cell_admissible", "num_choices"]

#: Format tag of the JSON sidecar.
RUN_FORMAT = "icsmdp-run/1"
#: Fields of the message log, in order.
MESSAGE_FIELDS = ("seed", "epoch", "sender", "receiver", "b", "tau", "R", "observation", "successor")


@dataclass(frozen=True, kw_only=True, repr=False)
class RunRecord(Result):
    """A learner run: ``Q`` snapshots per seed at checkpoints (see the module docstring).

    Attributes
    ----------
    instance, learner : str
    gamma : float
    num_agents : int
    num_observations : tuple of int
    admissible : ndarray (N, N+1) bool, or (n_cells, N+1) for ``model_kind == "epoch"``
        (``(N, J)``, ``model.choice_admissible``, with adaptable agents)
    model_kind : {"icsmdp", "epoch"}
        A primitive instance or an explicit epoch model (SPEC section 10).
    num_epoch_states : int or None
    checkpoints : ndarray (K,) int
    q : ndarray (K, S, n_cells, N+1)
        ``nan`` where inadmissible or not reached; ``(K, S, n_cells, J)`` over the
        choices ``j = a*(N+1) + c'`` for a model with adaptable agents.
    seeds : ndarray (S,) int
    base_seed : int or None
    reached : ndarray (K, S) bool
    updates, primitive_steps, episodes, truncations : ndarray (S,) int
    checkpoint_seconds, eps0_value, eps0_grad : ndarray (K, S)
    theta_distance : ndarray (K, S, N)
    theta0, theta : tuple of N arrays (S, P_i), or empty
    features : tuple of N arrays, or empty
    messages : dict of arrays (:data:`MESSAGE_FIELDS`) or None
    timings : dict
    """

    instance: str
    learner: str
    gamma: float
    num_agents: int
    num_observations: tuple
    admissible: np.ndarray
    checkpoints: np.ndarray
    q: np.ndarray
    seeds: np.ndarray
    base_seed: int | None = None
    reached: np.ndarray | None = None
    updates: np.ndarray | None = None
    primitive_steps: np.ndarray | None = None
    episodes: np.ndarray | None = None
    truncations: np.ndarray | None = None
    checkpoint_seconds: np.ndarray | None = None
    eps0_value: np.ndarray | None = None
    eps0_grad: np.ndarray | None = None
    theta_distance: np.ndarray | None = None
    theta0: tuple = ()
    theta: tuple = ()
    features: tuple = ()
    messages: dict | None = None
    timings: dict = field(default_factory=dict)
    model_kind: str = "icsmdp"
    num_epoch_states: int | None = None

    @property
    def num_seeds(self) -> int:
        return int(self.q.shape[1])

    @property
    def cell_offsets(self) -> np.ndarray:
        return cell_offsets(self.num_observations)

    @property
    def cell_agent(self) -> np.ndarray:
        """Agent ``i`` of each cell: ``(n_cells,)``."""
        return np.repeat(np.arange(self.num_agents), self.num_observations)

    @property
    def cell_observation(self) -> np.ndarray:
        """Observation ``o`` of each cell: ``(n_cells,)``."""
        return np.concatenate([np.arange(n) for n in self.num_observations])

    @property
    def cell_admissible(self) -> np.ndarray:
        """The cell's admissible successors: ``admissible[i(cell), c']`` (``admissible`` itself for
        an explicit epoch model's run): ``(n_cells, N+1)``."""
        if self.model_kind == "epoch":
            return np.asarray(self.admissible, bool)
        return self.admissible[self.cell_agent]

    @property
    def agent_admissible(self) -> np.ndarray:
        """Successors admissible in some cell of each agent (the estimators' pairs): ``(N, N+1)``."""
        if self.model_kind == "epoch":
            adm = np.asarray(self.admissible, bool)
            return np.logical_or.reduceat(adm, self.cell_offsets[:-1], axis=0)
        return np.asarray(self.admissible, bool)

    def checkpoint_index(self, checkpoint: int) -> int:
        """Index ``k`` of a checkpoint given as an index (negative allowed) into :attr:`checkpoints`."""
        K = len(self.checkpoints)
        if not -K <= checkpoint < K:
            raise InvalidArgumentError(f"`checkpoint` must index one of the {K} checkpoints "
                                       f"{self.checkpoints.tolist()}, got {checkpoint}.")
        return checkpoint % K

    def summary(self) -> str:
        K, S = self.q.shape[:2]
        return (f"{self.learner} IC-Q on {self.instance}: {S} seeds, checkpoints "
                f"{self.checkpoints.tolist()}, status {self.status}")


# ---------------------------------------------------------------- files
_JSON_FIELDS = ("instance", "learner", "gamma", "num_agents", "num_observations", "base_seed",
                "success", "status", "message", "iterations", "elapsed", "settings", "timings",
                "model_kind", "num_epoch_states")
#: Values of the sidecar's ``model_kind``.
MODEL_KINDS = ("icsmdp", "epoch")
_KIND_TEXT = {"icsmdp": "a primitive instance", "epoch": "an explicit epoch model"}
_ARRAY_FIELDS = ("checkpoints", "q", "admissible", "seeds", "reached", "updates", "primitive_steps",
                 "episodes", "truncations", "checkpoint_seconds", "eps0_value", "eps0_grad",
                 "theta_distance")


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def save_run(record: RunRecord, path) -> tuple[Path, Path]:
    """Write ``record`` as ``PATH.npz`` + ``PATH.json`` (``PATH`` may end in ``.npz``); returns both paths.

    Files are written atomically (temporary file, then rename), the ``.npz``
    first, so a reader never sees a sidecar without its arrays.
    """
    npz, js = _paths(path)
    arrays = {}
    for name in _ARRAY_FIELDS:
        v = getattr(record, name)
        if v is not None:
            arrays[name] = np.asarray(v)
    for prefix, group in (("theta0_", record.theta0), ("theta_", record.theta),
                          ("features_", record.features)):
        for i, a in enumerate(group):
            if a is not None:
                arrays[f"{prefix}{i}"] = np.asarray(a)
    if record.messages is not None:
        for k in MESSAGE_FIELDS:
            arrays[f"msg_{k}"] = np.asarray(record.messages[k])
    for k, a in arrays.items():
        if a.dtype == object:
            raise InvalidArgumentError(f"`{k}` must be a numeric array to be saved, got dtype object.")
    meta = {"format": RUN_FORMAT}
    meta.update({k: to_jsonable(getattr(record, k)) for k in _JSON_FIELDS})

    def write_npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def write_json(tmp):
        Path(tmp).write_text(json.dumps(meta, indent=1, allow_nan=False), encoding="utf-8")

    npz.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(npz, write_npz)
    atomic_write(js, write_json)
    return npz, js


def _fail(path, msg):
    raise InvalidArgumentError(f"{path}: {msg}")


def _where(mask: np.ndarray) -> str:
    """``[i, j, ...]``: the index of the first ``True`` entry of ``mask``."""
    return "[" + ", ".join(str(int(j)) for j in np.argwhere(mask)[0]) + "]"


#: Keys of the sidecar (``format`` and :data:`_JSON_FIELDS`).
_JSON_KEYS = ("format",) + _JSON_FIELDS
#: Statuses that allow non-finite estimates (a run that diverged keeps its last values).
_NONFINITE_STATUSES = ("diverged",)
#: Message-log columns holding integers, with their lower bounds.
_MESSAGE_INTS = {"seed": 0, "epoch": 0, "sender": 0, "receiver": 0, "tau": 0, "observation": 0,
                 "successor": 0}


def _sidecar_iv(js: Path, meta) -> dict:
    """The sidecar's fields checked: types, ranges and keys (one located message each)."""
    if not isinstance(meta, dict):
        _fail(js, f"the sidecar must be one JSON object, got {describe(meta)}.")
    if "format" not in meta:
        _fail(js, f"missing key `format` (must be {RUN_FORMAT!r}).")
    if meta["format"] != RUN_FORMAT:
        _fail(js, f"`format` must be {RUN_FORMAT!r}, got {describe(meta['format'])}.")
    for k in meta:
        if k not in _JSON_KEYS:
            _fail(js, f"unknown key `{k}`; the keys of {RUN_FORMAT} are {', '.join(_JSON_KEYS)}.")
    for k in ("instance", "learner", "gamma", "num_agents", "num_observations"):
        if k not in meta:
            _fail(js, f"missing key `{k}`.")

    def want(key, ok, what, default=None):
        value = meta.get(key, default)
        if not ok(value):
            _fail(js, f"`{key}` must be {what}, got {describe(value)}.")
        return value

    out = {"instance": want("instance", lambda v: isinstance(v, str), "a string"),
           "learner": want("learner", lambda v: isinstance(v, str), "a string"),
           "gamma": float(want("gamma", lambda v: is_real(v) and 0 < v < 1, "a number in (0, 1)")),
           "num_agents": int(want("num_agents", lambda v: is_int(v) and v >= 1,
                                  "an integer >= 1"))}
    N = out["num_agents"]
    nO = want("num_observations", lambda v: isinstance(v, list), f"a list of {N} integers >= 1")
    if len(nO) != N:
        _fail(js, f"`num_observations` must list {N} counts (`num_agents`), got {len(nO)}.")
    for i, v in enumerate(nO):
        if not (is_int(v) and v >= 1):
            _fail(js, f"`num_observations[{i}]` must be an integer >= 1, got {describe(v)}.")
    out["num_observations"] = tuple(int(v) for v in nO)
    out["base_seed"] = want("base_seed", lambda v: v is None or (is_int(v) and v >= 0),
                            "null or an integer >= 0")
    out["success"] = want("success", lambda v: isinstance(v, bool), "true or false", True)
    out["status"] = want("status", lambda v: isinstance(v, str), "a string", "completed")
    out["message"] = want("message", lambda v: isinstance(v, str), "a string", "")
    out["iterations"] = int(want("iterations", lambda v: v is None or (is_int(v) and v >= 0),
                                 "null or an integer >= 0") or 0)
    out["elapsed"] = float(want("elapsed", lambda v: v is None or (is_real(v) and v >= 0),
                                "null or a finite number >= 0") or 0.0)
    out["settings"] = want("settings", lambda v: v is None or isinstance(v, dict),
                           "null or a JSON object") or {}
    out["timings"] = want("timings", lambda v: v is None or isinstance(v, dict),
                          "null or a JSON object") or {}
    out["model_kind"] = want("model_kind", lambda v: isinstance(v, str) and v in MODEL_KINDS,
                             f"one of {', '.join(repr(k) for k in MODEL_KINDS)}", "icsmdp")
    nes = want("num_epoch_states", lambda v: v is None or (is_int(v) and v >= 1),
               "null or an integer >= 1")
    out["num_epoch_states"] = None if nes is None else int(nes)
    return out


def _array_kind_iv(npz: Path, key: str, a: np.ndarray, kind: str) -> np.ndarray:
    """``a`` as int64 (``kind="int"``), bool (``"bool"``) or float64 (``"real"``)."""
    k = a.dtype.kind
    if kind == "bool" and k == "b":
        return a.astype(bool)
    if kind == "bool" and k in "iu":
        bad = (a != 0) & (a != 1)
        if bad.any():
            _fail(npz, f"array `{key}` entry {_where(bad)} is {describe(a[bad][0])}; expected "
                       f"booleans (or 0/1).")
        return a.astype(bool)
    if kind == "int" and k in "iu":
        if k == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            bad = a > np.iinfo(np.int64).max
            _fail(npz, f"array `{key}` entry {_where(bad)} is {describe(a[bad][0])}, beyond the "
                       f"64-bit integer range.")
        return a.astype(np.int64)
    if kind == "real" and k in "iuf":
        return a.astype(np.float64)
    expected = {"bool": "booleans", "int": "integers", "real": "real numbers"}[kind]
    _fail(npz, f"array `{key}` has dtype {a.dtype}; expected {expected}.")


def _array_iv(npz: Path, arrays: dict, key: str, shape: tuple, kind: str, *, low=None,
              nan: bool = False, inf: bool = False, shape_text: str | None = None) -> np.ndarray:
    """One array checked: dtype kind, shape (``None`` entries are free), finiteness and bound."""
    a = arrays[key]
    if a.ndim != len(shape) or any(n is not None and a.shape[j] != n for j, n in enumerate(shape)):
        text = shape_text or "(" + ", ".join("?" if n is None else str(n) for n in shape) + \
            ("," if len(shape) == 1 else "") + ")"
        _fail(npz, f"array `{key}` must have shape {text}, got {tuple(a.shape)}.")
    a = _array_kind_iv(npz, key, a, kind)
    if kind == "real":
        if not nan and np.isnan(a).any():
            _fail(npz, f"array `{key}` entry {_where(np.isnan(a))} is nan; every entry must be "
                       f"a number.")
        if not inf and np.isinf(a).any():
            bad = np.isinf(a)
            _fail(npz, f"array `{key}` entry {_where(bad)} is {describe(a[bad][0])}; entries "
                       f"must be finite{' or nan (not reached)' if nan else ''}.")
    if low is not None:
        bad = a < low  # nan compares False
        if bad.any():
            _fail(npz, f"array `{key}` entry {_where(bad)} is {describe(a[bad][0])}; entries "
                       f"must be >= {low}.")
    a.setflags(write=False)
    return a


def _arrays_iv(npz: Path, arrays: dict, meta: dict) -> dict:
    """The arrays checked against the format and the sidecar; returns the RunRecord fields."""
    N, nO = meta["num_agents"], meta["num_observations"]
    n, C = sum(nO), N + 1
    q_shape = np.shape(arrays["q"]) if "q" in arrays else ()
    if len(q_shape) == 4 and q_shape[3] > C and q_shape[3] % C == 0 and meta["model_kind"] == "icsmdp":
        C = int(q_shape[3])  # adaptable agents: J = max_i K_i (N+1) choices j = a*(N+1) + c'
    diverged = meta["status"] in _NONFINITE_STATUSES
    groups = ("theta0_", "theta_", "features_")
    known = set(_ARRAY_FIELDS) | {f"msg_{k}" for k in MESSAGE_FIELDS} | \
        {f"{p}{i}" for p in groups for i in range(N)}
    for key in arrays:
        if key not in known:
            _fail(npz, f"unknown array `{key}` (see the {RUN_FORMAT} format; per-agent arrays "
                       f"`theta0_<i>`, `theta_<i>`, `features_<i>` need 0 <= i < {N}).")
    for key in ("checkpoints", "q", "admissible"):
        if key not in arrays:
            _fail(npz, f"missing array `{key}`.")
    ck = _array_iv(npz, arrays, "checkpoints", (None,), "int", low=0)
    K = ck.size
    if K == 0:
        _fail(npz, "array `checkpoints` is empty; a run has at least one checkpoint.")
    down = np.diff(ck) <= 0
    if down.any():
        j = int(np.flatnonzero(down)[0]) + 1
        _fail(npz, f"array `checkpoints` entry [{j}] is {int(ck[j])}, not above entry [{j - 1}] "
                   f"{int(ck[j - 1])}; checkpoints must increase.")
    q = _array_iv(npz, arrays, "q", (K, None, n, C), "real", nan=True, inf=diverged,
                  shape_text=f"({K}, S, {n}, {C})")
    S = q.shape[1]
    if S == 0:
        _fail(npz, "array `q` holds no seed (shape (K, 0, ...)); a run has at least one seed.")
    epoch = meta["model_kind"] == "epoch"
    adm = _array_iv(npz, arrays, "admissible", (n if epoch else N, C), "bool",
                    shape_text=f"({n}, {C}) (cells x successors, `model_kind` 'epoch')" if epoch
                    else None)
    empty = ~adm.any(axis=1)
    if empty.any():
        r = int(np.flatnonzero(empty)[0])
        _fail(npz, f"array `admissible` row [{r}] has no admissible successor "
                   f"({'cell' if epoch else 'agent'} {r}).")
    out = {"checkpoints": ck, "q": q, "admissible": adm}
    if "reached" in arrays:
        reached = _array_iv(npz, arrays, "reached", (K, S), "bool")
    else:
        reached = np.isfinite(q).any(axis=(2, 3))
    out["reached"] = reached
    out["seeds"] = _array_iv(npz, arrays, "seeds", (S,), "int", low=0) if "seeds" in arrays \
        else np.arange(S)
    for key in ("updates", "primitive_steps", "episodes", "truncations"):
        if key in arrays:
            out[key] = _array_iv(npz, arrays, key, (S,), "int", low=0)
    if "updates" in out:
        # a seed that reached checkpoint T_k has performed at least T_k updates
        need = np.where(reached, ck[:, None], 0).max(axis=0)
        bad = out["updates"] < need
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            _fail(npz, f"array `updates` entry [{s}] is {int(out['updates'][s])}, below "
                       f"checkpoint {int(need[s])} that seed {s} reached (`reached`).")
    for key in ("checkpoint_seconds", "eps0_value", "eps0_grad"):
        if key in arrays:
            out[key] = _array_iv(npz, arrays, key, (K, S), "real", low=0, nan=True,
                                 inf=diverged and key != "checkpoint_seconds")
    if "theta_distance" in arrays:
        out["theta_distance"] = _array_iv(npz, arrays, "theta_distance", (K, S, N), "real",
                                          low=0, nan=True, inf=diverged)
    for prefix in groups:
        have = [i for i in range(N) if f"{prefix}{i}" in arrays]
        if have and len(have) != N:
            miss = next(i for i in range(N) if i not in have)
            _fail(npz, f"missing array `{prefix}{miss}` (`{prefix}{have[0]}` is present; "
                       f"per-agent arrays come for all {N} agents).")
        group = []
        for i in have:
            key = f"{prefix}{i}"
            if prefix == "features_":
                group.append(_array_iv(npz, arrays, key, (None,) * arrays[key].ndim, "real"))
            else:
                group.append(_array_iv(npz, arrays, key, (S, None), "real",
                                       inf=diverged and prefix == "theta_",
                                       nan=diverged and prefix == "theta_",
                                       shape_text=f"({S}, P_{i})"))
        out[prefix] = tuple(group)
    for i, (a, b) in enumerate(zip(out["theta0_"], out["theta_"])):
        if a.shape != b.shape:
            _fail(npz, f"array `theta_{i}` has shape {b.shape}, `theta0_{i}` has {a.shape}; "
                       f"initial and final parameters must match.")
    present = [k for k in MESSAGE_FIELDS if f"msg_{k}" in arrays]
    out["messages"] = None
    if present:
        if len(present) != len(MESSAGE_FIELDS):
            miss = next(k for k in MESSAGE_FIELDS if k not in present)
            _fail(npz, f"missing array `msg_{miss}` (`msg_{present[0]}` is present; the message "
                       f"log has the columns {', '.join(MESSAGE_FIELDS)}).")
        M = arrays[f"msg_{MESSAGE_FIELDS[0]}"].shape[0] if arrays[f"msg_{MESSAGE_FIELDS[0]}"].ndim \
            else None
        msgs = {}
        for k in MESSAGE_FIELDS:
            kind = "int" if k in _MESSAGE_INTS else "real"
            msgs[k] = _array_iv(npz, arrays, f"msg_{k}", (M,), kind, low=_MESSAGE_INTS.get(k),
                                inf=diverged, nan=diverged)
        for k, top in (("sender", N), ("receiver", N - 1), ("successor", C - 1)):
            bad = msgs[k] > top
            if bad.any():
                _fail(npz, f"array `msg_{k}` entry {_where(bad)} is {int(msgs[k][bad][0])}; "
                           f"entries must be <= {top} (N = {N}"
                           f"{'' if C == N + 1 else f', J = {C} choices'}).")
        bad = msgs["successor"] % (N + 1) != msgs["sender"]
        if C > N + 1 and bad.any():
            j = int(np.flatnonzero(bad)[0])
            _fail(npz, f"array `msg_successor` entry [{j}] is the choice {int(msgs['successor'][j])}, "
                       f"whose successor j mod (N+1) = {int(msgs['successor'][j]) % (N + 1)} is not "
                       f"`msg_sender` {int(msgs['sender'][j])}.")
        bad = msgs["observation"] >= np.asarray(nO)[msgs["receiver"]]
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            _fail(npz, f"array `msg_observation` entry [{j}] is {int(msgs['observation'][j])}; "
                       f"agent {int(msgs['receiver'][j])} (`msg_receiver`) has "
                       f"{nO[int(msgs['receiver'][j])]} observations.")
        out["messages"] = msgs
    return out


def load_run(path) -> RunRecord:
    """Read a run written by :func:`save_run` (or by any tool following the format).

    Both files are read by the strict readers of :mod:`icsmdp_theory.documents`
    (no pickles, nesting and integer size bounded, duplicate JSON keys refused,
    ``.npy`` headers checked before any allocation), then every key is checked
    against the format table: known keys only, JSON types (a string or boolean
    is never a number), array shapes and dtypes (no complex, text or objects),
    counters ``>= 0``, increasing checkpoints, and ``q`` without ``inf``
    (``nan`` marks inadmissible, unvisited or unreached entries; ``inf`` is
    allowed only with status ``"diverged"``, as are non-finite parameters
    and messages).

    Raises
    ------
    InvalidArgumentError
        One line naming the file, the key (JSON key or array) and the index of
        the first problem.
    """
    npz, js = _paths(path)
    for p in (npz, js):
        if not p.is_file():
            _fail(p, "file not found (a run is PATH.npz + PATH.json).")
    meta = _sidecar_iv(js, read_json(js, InvalidArgumentError))
    arrays = read_npz(npz, InvalidArgumentError, what="run record")
    kw = _arrays_iv(npz, arrays, meta)
    return RunRecord(
        success=meta["success"], status=meta["status"], message=meta["message"],
        iterations=meta["iterations"], settings=meta["settings"], elapsed=meta["elapsed"],
        instance=meta["instance"], learner=meta["learner"], gamma=meta["gamma"],
        num_agents=meta["num_agents"], num_observations=meta["num_observations"],
        base_seed=meta["base_seed"], theta0=kw.pop("theta0_"), theta=kw.pop("theta_"),
        features=kw.pop("features_"), messages=kw.pop("messages"), timings=meta["timings"],
        model_kind=meta["model_kind"], num_epoch_states=meta["num_epoch_states"], **kw)


# ---------------------------------------------------------------- policies
def _check_matches(model: ICSMDP | EpochModel, num_observations, admissible,
                   model_kind: str = "icsmdp") -> None:
    kind = "epoch" if isinstance(model, EpochModel) else "icsmdp"
    if model_kind != kind:
        raise InvalidArgumentError(
            f"the run learned on {_KIND_TEXT[model_kind]} (`model_kind` {model_kind!r}); "
            f"`{model.name}` is {_KIND_TEXT[kind]}.")
    if tuple(num_observations) != tuple(model.num_observations):
        raise InvalidArgumentError(
            f"the run's observation counts {list(num_observations)} do not match the instance's "
            f"{list(model.num_observations)} (`{model.name}`).")
    adm = cell_admissible(model, rule=cell_rule(model)) if kind == "epoch" else model.choice_admissible
    if np.shape(admissible) != adm.shape or not np.array_equal(admissible, adm):
        raise InvalidArgumentError(
            f"the run's admissible successors do not match the instance's (`{model.name}`).")


def num_choices(model: ICSMDP | EpochModel) -> int:
    """Columns of ``Q``: ``J = max_i K_i (N+1)`` choices (``N+1`` without modes, and for an
    explicit epoch model)."""
    return int(getattr(model, "num_choices", model.num_successors))


def choice_cell_admissible(model: ICSMDP | EpochModel) -> np.ndarray:
    """``adm[cell, j]``: the choices a cell may take, ``(n_cells, J)``.

    A primitive model: its agent's admissible choices ``j = a*(N+1) + c'``
    (:attr:`~icsmdp_theory.model.ICSMDP.choice_admissible`; today's
    :func:`~icsmdp_theory.cells.cell_admissible` for a one-mode model); an explicit
    epoch model: :func:`~icsmdp_theory.cells.cell_admissible` with its cell rule.
    """
    if isinstance(model, EpochModel):
        return cell_admissible(model, rule=cell_rule(model))
    return np.repeat(model.choice_admissible, model.num_observations, axis=0)


def cells_from_epoch_q(model: ICSMDP, q_epoch: np.ndarray) -> np.ndarray:
    """Push ``q[s, c']`` over epoch states to cells when every cell holds one epoch state.

    Valid when ``nX = 1`` and every ``phi_i`` is injective with ``nL_j = 1``
    for ``j != i`` (e.g. no private states): then ``Q*`` is a function of the
    cell. Returns ``(n_cells, J)`` (``J = N+1`` without modes).

    Raises
    ------
    InvalidArgumentError
        If some cell holds two epoch states with different values.
    """
    N = model.num_agents
    offs = cell_offsets(model.num_observations)
    F = model.num_full_states
    J = num_choices(model)
    q = np.asarray(q_epoch).reshape(F, N, J)
    out = np.full((int(offs[-1]), J), np.nan)
    grids = np.indices((model.num_latent, model.num_interface) + model.num_private).reshape(2 + N, F)
    for i, a in enumerate(model.agents):
        cell = offs[i] + a.observation[grids[1], grids[2 + i]]
        vals = q[:, i, :]
        out[cell] = vals
        back = out[cell]
        same = np.isclose(back, vals, rtol=0, atol=1e-12) | (np.isnan(back) & np.isnan(vals))
        if not same.all():
            raise InvalidArgumentError(
                f"agent {i} (`{a.name}`): a cell holds epoch states with different values; the "
                f"values are not a function of the observation cell.")
    return out


def greedy_cell_policies(q_cells: np.ndarray, cell_admissible: np.ndarray) -> np.ndarray:
    """Greedy successor per cell (lowest admissible index within ``1e-10`` of the max).

    ``q_cells[..., n_cells, J]`` -> ``int[..., n_cells]`` (``J = N+1``, or the choices
    ``j = a*(N+1) + c'`` of a model with modes). ``nan`` values
    (not reached) are treated as ``-inf``; a row with no finite admissible
    value picks its lowest admissible successor.

    >>> greedy_cell_policies(np.array([[1.0, 2.0, np.nan]]), np.array([[True, True, False]])).tolist()
    [1]
    """
    q = np.where(np.isnan(q_cells), -np.inf, q_cells)
    pol = greedy(q, cell_admissible)
    first = np.argmax(cell_admissible, axis=-1)
    finite = np.any(np.isfinite(q) & cell_admissible, axis=-1)
    return np.where(finite, pol, first)


def epoch_policy(model: ICSMDP, cell_policy: np.ndarray) -> np.ndarray:
    """``sigma[f, i] = pi_i(phi_i(m, l_i))`` from a per-cell policy ``(n_cells,)``: ``(F, N)``."""
    N = model.num_agents
    offs = cell_offsets(model.num_observations)
    cell_policy = np.asarray(cell_policy, dtype=np.int64)
    if cell_policy.shape != (int(offs[-1]),):
        raise InvalidArgumentError(f"`cell_policy` must have shape ({int(offs[-1])},), "
                                   f"got {cell_policy.shape}.")
    F = model.num_full_states
    grids = np.indices((model.num_latent, model.num_interface) + model.num_private).reshape(2 + N, F)
    sigma = np.empty((F, N), dtype=np.int64)
    for i, a in enumerate(model.agents):
        sigma[:, i] = cell_policy[offs[i] + a.observation[grids[1], grids[2 + i]]]
    return sigma


@dataclass(frozen=True, kw_only=True, repr=False)
class PolicyEvaluation(Result):
    """Exact values of the greedy policies of a run's seeds at one checkpoint.

    Attributes
    ----------
    checkpoint : int
        The update count ``T`` evaluated.
    policies : ndarray (S, n_cells) int
        Greedy successor per cell and seed (the choice ``j = a*(N+1) + c'`` with modes).
    values : ndarray (S, num_epoch_states)
        ``V_sigma(s)`` at every epoch state ``s = f*N + i`` (``nan`` for a seed
        that had not reached the checkpoint).
    v0 : ndarray (S,)
        ``sum_s rho0(s) V_sigma(s)``.
    optimal_values : ndarray (num_epoch_states,)
        ``V*`` (``Q*_lat`` solved by policy iteration).
    optimal_v0 : float
    gap_v0 : ndarray (S,)
        ``optimal_v0 - v0`` (``>= 0`` up to solver tolerance).
    max_gap : ndarray (S,)
        ``max_s (V*(s) - V_sigma(s))``.
    method : str
        How the policy systems were solved.
    """

    checkpoint: int
    policies: np.ndarray
    values: np.ndarray
    v0: np.ndarray
    optimal_values: np.ndarray
    optimal_v0: float
    gap_v0: np.ndarray
    max_gap: np.ndarray
    method: str


def evaluate_greedy_policies(model: ICSMDP, record: RunRecord | np.ndarray, *, checkpoint: int = -1,
                             optimum=None, exact_limit: int = 200_000, rtol: float = 1e-12
                             ) -> PolicyEvaluation:
    """Evaluate each seed's greedy decentralized policy exactly in the full system.

    Parameters
    ----------
    model : ICSMDP
        The instance the run learned on.
    record : RunRecord or ndarray (S, n_cells, J)
        A run (its snapshot at ``checkpoint`` is used) or cell values directly
        (``J = N+1``; ``J = max_i K_i (N+1)`` choices with adaptable agents).
    checkpoint : int
        Index into ``record.checkpoints`` (default: the last).
    optimum : SolveResult or None
        ``solve(PolicyIteration(), model)`` if already computed.
    exact_limit, rtol : passed to :func:`solvers.iteration.evaluate_policy`.

    Returns
    -------
    PolicyEvaluation
        Distinct policies are evaluated once.
    """
    t0 = time.perf_counter()
    explicit = isinstance(model, EpochModel)
    if isinstance(record, RunRecord):
        _check_matches(model, record.num_observations, record.admissible, record.model_kind)
        k = record.checkpoint_index(checkpoint)
        q_cells, T = record.q[k], int(record.checkpoints[k])
        reached = np.asarray(record.reached[k], bool) if record.reached is not None else \
            np.ones(q_cells.shape[0], bool)
    else:
        q_cells, T = np.asarray(record, dtype=float), -1
        reached = np.ones(q_cells.shape[0] if q_cells.ndim == 3 else 0, bool)
        n, J = sum(model.num_observations), num_choices(model)
        if q_cells.ndim != 3 or q_cells.shape[1:] != (n, J):
            raise InvalidArgumentError(f"`record` must be a RunRecord or an array (S, {n}, "
                                       f"{J}), got shape {q_cells.shape}.")
    policies = greedy_cell_policies(q_cells, choice_cell_admissible(model))
    if optimum is None:
        optimum = solve(PolicyIteration(), model)
    uniq, inverse = np.unique(policies[reached], axis=0, return_inverse=True)
    vals = np.empty((uniq.shape[0], model.num_epoch_states))
    how = set()
    if explicit:  # sigma[s] = pi_i(o(s)) on the explicit model's epoch states
        rho0 = np.asarray(model.rho0, dtype=float)
        cells = cell_offsets(model.num_observations)[np.asarray(model.state_agent)] + \
            np.asarray(model.state_observation)
        W = None
        for u, pol in enumerate(uniq):
            ev = evaluate_epoch_policy(model, pol[cells], W, exact_limit=exact_limit)
            W = ev.x
            how.add(ev.how)
            vals[u] = np.asarray(ev.x).reshape(-1)
    else:
        chain = committed_chain(model)
        rho0 = initial_epoch_law(model).reshape(-1)
        W = chain.zeros()
        for u, pol in enumerate(uniq):
            sigma = epoch_policy(model, pol)
            # warm start from the previous policy's values (seeds' greedy policies are close)
            ev = evaluate_policy(chain, sigma, W, exact_limit=exact_limit, rtol=rtol)
            W = ev.x
            how.add(ev.how)
            vals[u] = chain.policy_values(W, sigma).reshape(-1)
    values = np.full((policies.shape[0], model.num_epoch_states), np.nan)
    values[reached] = vals[np.asarray(inverse).reshape(-1)]
    v0 = values @ rho0
    v_star = np.asarray(optimum.v)
    v0_star = float(rho0 @ v_star)
    return PolicyEvaluation(
        success=bool(optimum.success), status="evaluated",
        message=(f"{uniq.shape[0]} distinct greedy policies over {int(reached.sum())} seeds "
                 f"evaluated exactly ({', '.join(sorted(how))})"
                 + ("." if reached.all() else f"; {int((~reached).sum())} seeds had not reached "
                    f"the checkpoint (nan).")),
        iterations=int(uniq.shape[0]), settings={"checkpoint": T, "exact_limit": exact_limit,
                                                 "rtol": rtol},
        elapsed=time.perf_counter() - t0, checkpoint=T, policies=policies, values=values, v0=v0,
        optimal_values=v_star, optimal_v0=v0_star, gap_v0=v0_star - v0,
        max_gap=(v_star[None, :] - values).max(axis=1), method=", ".join(sorted(how)))
