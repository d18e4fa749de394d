"""Run records of IC-Q learners, their files, and the exact value of learned policies (SPEC section 7).

A :class:`RunRecord` holds, for every seed of a run, the value estimates
``Q_i(o, c')`` at checkpoint update counts over the disjoint union of the
agents' observation cells ``(i, o)``, in agent-major order
``cell = sum_{j < i} nO_j + o`` (:func:`cell_offsets`).

File format ``icsmdp-run/1``
----------------------------
A run is two files side by side: ``PATH.npz`` (numpy ``savez``, read with
``allow_pickle=False``) and ``PATH.json`` (UTF-8, the sidecar). An external
IC-Q implementation writes a record the checker can read by providing at
least the entries marked *required*.

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
                            float64         ``c'`` is inadmissible for ``i`` or not reached
``admissible``              (N, C) bool     ``succ[i][c']``                                          yes
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
it observed and chose at the start of that epoch), never sent.

Policy evaluation
-----------------
:func:`evaluate_greedy_policies` maps each seed's greedy decentralized policy
``pi_i(o) = argmax_{c' admissible} Q_i(o, c')`` (lowest index within
``1e-10`` of the max, :func:`solvers.common.greedy`) to the epoch policy
``sigma[f, i] = pi_i(phi_i(m, l_i))`` and evaluates it exactly in the full
system with :func:`solvers.iteration.evaluate_policy`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import atomic_write
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result, to_jsonable
from solvers.api import PolicyIteration, solve
from solvers.committed_chain import committed_chain
from solvers.common import greedy
from solvers.iteration import evaluate_policy

__all__ = ["RunRecord", "PolicyEvaluation", "RUN_FORMAT", "save_run", "load_run",
           "greedy_cell_policies", "epoch_policy", "evaluate_greedy_policies", "cells_from_epoch_q"]

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
    admissible : ndarray (N, N+1) bool
    checkpoints : ndarray (K,) int
    q : ndarray (K, S, n_cells, N+1)
        ``nan`` where inadmissible or not reached.
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
        """``admissible[i(cell), c']``: ``(n_cells, N+1)``."""
        return self.admissible[self.cell_agent]

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
                "success", "status", "message", "iterations", "elapsed", "settings", "timings")
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
    raise InvalidArgumentError(f"run record {str(path)!r}: {msg}")


def load_run(path) -> RunRecord:
    """Read a run written by :func:`save_run` (or by any tool following the format).

    Raises
    ------
    InvalidArgumentError
        Missing files or keys, wrong format tag, inconsistent shapes.
    """
    npz, js = _paths(path)
    for p in (npz, js):
        if not p.exists():
            _fail(p, "file not found (a run is PATH.npz + PATH.json).")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(js, f"not valid JSON ({exc}).")
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        _fail(js, f"`format` must be {RUN_FORMAT!r}, got {meta.get('format') if isinstance(meta, dict) else meta!r}.")
    for k in ("instance", "learner", "gamma", "num_agents", "num_observations"):
        if k not in meta:
            _fail(js, f"missing key `{k}`.")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        _fail(npz, f"cannot read arrays ({exc}).")
    for k in ("checkpoints", "q", "admissible"):
        if k not in arrays:
            _fail(npz, f"missing array `{k}`.")
    N = int(meta["num_agents"])
    nO = tuple(int(v) for v in meta["num_observations"])
    q = np.asarray(arrays["q"], dtype=float)
    K = arrays["checkpoints"].shape[0]
    if len(nO) != N:
        _fail(js, f"`num_observations` must list {N} counts, got {len(nO)}.")
    if q.ndim != 4 or q.shape[0] != K or q.shape[2] != sum(nO) or q.shape[3] != N + 1:
        _fail(npz, f"`q` must have shape ({K}, S, {sum(nO)}, {N + 1}), got {q.shape}.")
    if arrays["admissible"].shape != (N, N + 1):
        _fail(npz, f"`admissible` must have shape ({N}, {N + 1}), got {arrays['admissible'].shape}.")
    S = q.shape[1]
    kw = {k: arrays[k] for k in _ARRAY_FIELDS if k in arrays}
    kw["admissible"] = kw["admissible"].astype(bool)
    kw["q"] = q
    kw.setdefault("seeds", np.arange(S))
    if "reached" not in kw:
        kw["reached"] = np.isfinite(q).any(axis=(2, 3))
    msgs = None
    if all(f"msg_{k}" in arrays for k in MESSAGE_FIELDS):
        msgs = {k: arrays[f"msg_{k}"] for k in MESSAGE_FIELDS}

    def group(prefix):
        out = [arrays.get(f"{prefix}{i}") for i in range(N)]
        return tuple(out) if any(a is not None for a in out) else ()
    return RunRecord(
        success=bool(meta.get("success", True)), status=str(meta.get("status", "completed")),
        message=str(meta.get("message", "")), iterations=int(meta.get("iterations") or 0),
        settings=meta.get("settings") or {}, elapsed=float(meta.get("elapsed") or 0.0),
        instance=str(meta["instance"]), learner=str(meta["learner"]), gamma=float(meta["gamma"]),
        num_agents=N, num_observations=nO, base_seed=meta.get("base_seed"),
        theta0=group("theta0_"), theta=group("theta_"), features=group("features_"),
        messages=msgs, timings=meta.get("timings") or {}, **kw)


# ---------------------------------------------------------------- policies
def _check_matches(model: ICSMDP, num_observations, admissible) -> None:
    if tuple(num_observations) != tuple(model.num_observations):
        raise InvalidArgumentError(
            f"the run's observation counts {list(num_observations)} do not match the instance's "
            f"{list(model.num_observations)} (`{model.name}`).")
    adm = model.admissible
    if np.shape(admissible) != adm.shape or not np.array_equal(admissible, adm):
        raise InvalidArgumentError(
            f"the run's admissible successors do not match the instance's (`{model.name}`).")


def cells_from_epoch_q(model: ICSMDP, q_epoch: np.ndarray) -> np.ndarray:
    """Push ``q[s, c']`` over epoch states to cells when every cell holds one epoch state.

    Valid when ``nX = 1`` and every ``phi_i`` is injective with ``nL_j = 1``
    for ``j != i`` (e.g. no private states): then ``Q*`` is a function of the
    cell. Returns ``(n_cells, N+1)``.

    Raises
    ------
    InvalidArgumentError
        If some cell holds two epoch states with different values.
    """
    N = model.num_agents
    offs = cell_offsets(model.num_observations)
    F = model.num_full_states
    q = np.asarray(q_epoch).reshape(F, N, N + 1)
    out = np.full((int(offs[-1]), N + 1), np.nan)
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

    ``q_cells[..., n_cells, N+1]`` -> ``int[..., n_cells]``. ``nan`` values
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
        Greedy successor per cell and seed.
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
    record : RunRecord or ndarray (S, n_cells, N+1)
        A run (its snapshot at ``checkpoint`` is used) or cell values directly.
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
    adm = model.admissible
    if isinstance(record, RunRecord):
        _check_matches(model, record.num_observations, record.admissible)
        k = record.checkpoint_index(checkpoint)
        q_cells, T = record.q[k], int(record.checkpoints[k])
        reached = np.asarray(record.reached[k], bool) if record.reached is not None else \
            np.ones(q_cells.shape[0], bool)
    else:
        q_cells, T = np.asarray(record, dtype=float), -1
        reached = np.ones(q_cells.shape[0] if q_cells.ndim == 3 else 0, bool)
        n = sum(model.num_observations)
        if q_cells.ndim != 3 or q_cells.shape[1:] != (n, model.num_successors):
            raise InvalidArgumentError(f"`record` must be a RunRecord or an array (S, {n}, "
                                       f"{model.num_successors}), got shape {q_cells.shape}.")
    cell_adm = adm[np.repeat(np.arange(model.num_agents), model.num_observations)]
    policies = greedy_cell_policies(q_cells, cell_adm)
    chain = committed_chain(model)
    if optimum is None:
        optimum = solve(PolicyIteration(), model)
    rho0 = initial_epoch_law(model).reshape(-1)
    uniq, inverse = np.unique(policies[reached], axis=0, return_inverse=True)
    vals = np.empty((uniq.shape[0], model.num_epoch_states))
    how = set()
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
