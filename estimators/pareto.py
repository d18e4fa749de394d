r"""Exact supported Pareto fronts of reward components (SPEC section 11).

An epoch model (SPEC 10) with named reward components ``R_j(s, c')`` gives
every deterministic stationary policy ``sigma`` a point
``p(sigma) = (v_1, ..., v_J)``, the exact values at the start of the chosen
components (:func:`estimators.policy_value.policy_value`). A weight vector
``w >= 0`` turns them into the scalar reward ``sum_j w_j R_j``
(:func:`weighted_model`); since values are linear in the reward,
``w . p(sigma)`` is the value of ``sigma`` for that reward. The **supported
front** is the set of points that maximize ``w . p`` for some ``w``: the
vertices of the upper convex hull of all policies' points. Points between
two vertices that no weight selects (non-convex, "unsupported" points) may
exist; a weight scan cannot see them, and the result says so.

Coordinates (``discounted``)
----------------------------
- ``discounted=True`` (default, SPEC 11): ``v_j`` are discounted values and
  the optimum per weight is the discounted optimum, as every decision in the
  toolkit;
- ``discounted=False``: ``v_j`` are the expected *totals* until STOP (for a
  correctness indicator paid at STOP: the **accuracy** of a workflow, the
  quantity of the paper's Table 1), and the optimum per weight maximizes the
  weighted total over the policies that stop almost surely. The two fronts
  differ: discounting charges every extra call a factor ``gamma``, so a
  policy that buys 0.003 of accuracy with two more calls can lose under
  ``gamma = 0.999`` and win under totals. The math-reasoning CLI default is
  totals (``icsmdp pareto``); the library default follows SPEC 11.

Optimum per weight
------------------
- centralized (``obs=None``): every epoch state decides. Discounted:
  ``solve(PolicyIteration(), weighted_model(model, w))``. Totals: policy
  iteration for the total reward (a stochastic-shortest-path form) from a
  policy that stops almost surely, switching only on strict improvement;
  exact when the weighted reward of every move before STOP is ``<= 0`` (costs
  are paid along the way, gains at STOP, like ``correct``/``tokens``/``calls``),
  since a strict improvement then never closes a loop that avoids STOP
  (a closed class would need a positive mean reward). Other models raise
  with the offending state; use ``discounted=True`` for them.
- decentralized (``obs`` given): every cell ``(i, o)`` of the map decides
  (SPEC 10: a cell's successors are the intersection of its states' sets);
  the exact optimum over the deterministic decentralized policies is the
  best of the finite set enumerated by
  :func:`estimators.decentralized.enumerate_decentralized_policies` (with
  reachability pruning; models small enough, ``max_policies``). Each policy
  is evaluated once (``policy_value``); the optimum for a weight is then the
  maximum of ``w . p`` over these points, which is what
  :func:`estimators.decentralized.best_decentralized_policy` computes with
  that weight, without enumerating again per weight. For totals, a policy
  with an undefined total (it may loop with a nonzero component) is ineligible.

The weight scan (two components: exact)
---------------------------------------
Components are scanned in scaled units ``R_j / scale_j`` with
``scale_j = max |R_j|`` over admissible pairs (one invocation; ``1`` for a
zero component), so that a grid is spread over the interesting weights; raw
weights are ``w_j / scale_j``. For two components ``w = (1 - t, t)``:

1. the optimum at ``weights`` grid values of ``t`` in ``[0, 1]``;
2. between adjacent grid optima ``p`` (at the smaller ``t``) and ``q`` with
   different points, the optimum at the weight where they tie,
   ``t* = (p_1 - q_1) / ((p_1 - q_1) - (p_2 - q_2))`` (scaled units). If it
   is worth more than ``p`` and ``q`` there, it is a new vertex ``r`` and the
   two intervals ``(p, r)``, ``(r, q)`` are refined the same way; otherwise
   ``p q`` is an edge of the hull and ``t*`` the weight where the optimum
   changes. This is the dichotomic (NISE) scheme: the optimal value
   ``V(t) = max_sigma w(t) . p(sigma)`` is convex and piecewise linear in ``t``,
   each refinement either finds a new piece or closes an interval, so every
   supported vertex is found, not only those a grid point hits, with at most
   ``2 V - 1`` extra solves for ``V`` vertices;
3. points are deduplicated (same values within ``tol``); a point optimal only
   at a single ``t`` (weakly dominated, or on an edge between two vertices) is
   dropped. Each vertex keeps its weight range ``[t_lo, t_hi]`` (the ``t``
   where it is optimal) and its policy; consecutive vertices give the
   trade-off rate ``(v_2' - v_2) / (v_1' - v_1)`` in raw units (e.g. tokens
   per unit of accuracy).

For ``J >= 3`` components the scan is the simplex lattice with ``weights - 1``
divisions per axis and no refinement (vertices optimal only between lattice
points can be missed; the result says so); a point's weight range is the box
of the lattice weights where it was optimal.

Examples
--------
One agent at one label chooses between STOP now (value 1, no cost) and a
call that costs 1 and then stops with value 2 (after one step,
``gamma = 0.5``): two points, ``(1, 0)`` and ``(0.5 * 2, -1)`` discounted.
The second is dominated on both coordinates, so the front has one point.

>>> from icsmdp_theory.epoch_model import EpochModel
>>> m = EpochModel(name="pick", gamma=0.5, agents=["a"], labels=["x", "y"],
...     states=[[0, 0], [1, 0]], admissible=[[True, True], [False, True]], rho0=[1.0, 0.0],
...     reward=[[0.0, 1.0], [0.0, 2.0]], component_names=["gain", "cost"],
...     components=[[[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [2.0, -1.0]]],
...     transitions={"state": [0, 0, 1], "successor": [0, 1, 1], "next_label": [1, -1, -1],
...                  "tau": [1, 1, 1], "prob": [1.0, 1.0, 1.0]})
>>> f = pareto_front(m, components=("gain", "cost"), weights=3)
>>> [(p.values["gain"], p.values["cost"]) for p in f.points]
[(1.0, 0.0)]

In totals the call pays: ``(2, -1)`` against ``(1, 0)``, both on the front. In
scaled units (``gain / 2``, ``cost / 1``) they tie where
``(1 - t) 1 - t = (1 - t) 0.5``, at ``t = 1/3``; the rate ``-1``: a unit of gain costs a unit of cost:

>>> g = pareto_front(m, components=("gain", "cost"), discounted=False)
>>> [(p.values["gain"], p.values["cost"], round(p.weight_range[1], 6)) for p in g.points]
[(2.0, -1.0, 0.333333), (1.0, 0.0, 1.0)]
>>> g.rates, g.scales
((-1.0,), (2.0, 1.0))
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import Result
from icsmdp_theory.validation import is_int
from estimators.decentralized import MAX_POLICIES, enumerate_decentralized_policies
from estimators.policy_value import policy_value, reward_columns
from solvers.api import PolicyIteration, solve
import solvers.epoch_smdp  # noqa: F401  (registers the EpochModel solvers)

__all__ = ["ParetoPoint", "ParetoFront", "pareto_front", "weighted_model", "weighted_reward",
           "reachable_choices", "total_reward_optimum", "DEFAULT_WEIGHTS", "UNSUPPORTED_NOTE"]

#: Default number of grid weights of the scan.
DEFAULT_WEIGHTS = 11
#: What every front says about the points a weight scan cannot see.
UNSUPPORTED_NOTE = ("supported front only: unsupported (non-convex) points, optimal for no "
                    "weight, may exist between consecutive points")
_MAX_SOLVES = 2000


@dataclass(frozen=True)
class ParetoPoint:
    """One vertex of a supported front.

    Attributes
    ----------
    values : dict
        Component name -> exact value at the start (discounted or total, as the front).
    policy : int ndarray (S,)
        The epoch policy ``sigma[s]`` (for a decentralized front: constant on each cell).
    weight_range : tuple of float or None
        ``(t_lo, t_hi)``: optimal for ``w = (1 - t, t)`` (scaled units) on this
        interval; ``None`` for three or more components.
    weights : tuple of tuples
        The scaled weight vectors at the two ends of the range (``J >= 3``: the
        componentwise min and max over the lattice weights where it was optimal).
    """

    values: dict
    policy: np.ndarray
    weight_range: tuple | None
    weights: tuple


@dataclass(frozen=True, kw_only=True, repr=False)
class ParetoFront(Result):
    """A supported Pareto front (:func:`pareto_front`).

    Attributes
    ----------
    components : tuple of str
        The components, in the order of the weights.
    points : tuple of ParetoPoint
        Vertices, for two components sorted by increasing ``t`` (decreasing first component).
    rates : tuple of float
        For two components, between consecutive points: ``(v_2' - v_2) / (v_1' - v_1)``
        in raw units, negative along a front: the second component given up per unit of
        the first gained (e.g. tokens per unit of accuracy).
    scales : tuple of float
        ``scale_j``: the scan's weights apply to ``R_j / scale_j``.
    discounted : bool
    decentralized : bool
    num_solves : int
        Exact optima computed (grid and refinement).
    exact : bool
        Every supported vertex was found (two components, no solve cap reached).
    note : str
        :data:`UNSUPPORTED_NOTE`.
    """

    components: tuple
    points: tuple
    rates: tuple
    scales: tuple
    discounted: bool
    decentralized: bool
    num_solves: int
    exact: bool
    note: str


# ---------------------------------------------------------------- weighted reward
def _component_index(model: EpochModel, components) -> tuple[tuple, np.ndarray]:
    """``(names, R[s, c', j])`` of the chosen components (``"reward"`` names the scalar reward)."""
    names, R = reward_columns(model)
    if isinstance(components, str) or not isinstance(components, (list, tuple)):
        raise InvalidArgumentError(f"`components` must be a list of component names, got "
                                   f"{components!r}.")
    if len(components) < 2:
        raise InvalidArgumentError(f"`components` must name at least two components, got "
                                   f"{list(components)!r}.")
    idx = []
    for c in components:
        if c not in names:
            raise InvalidArgumentError(f"`components`: unknown component {c!r} (this model has: "
                                       f"{', '.join(names)}).")
        idx.append(names.index(c))
    if len(set(idx)) != len(idx):
        raise InvalidArgumentError(f"`components` repeats a name: {list(components)!r}.")
    return tuple(components), R[:, :, idx]


def weighted_reward(model: EpochModel, weights: Any, components: Sequence[str]) -> np.ndarray:
    """``r[s, c'] = sum_j w_j R_j(s, c')`` over the named components; NaN where inadmissible.

    Parameters
    ----------
    model : EpochModel
    weights : float array (J,)
        Finite weights (any sign), raw units.
    components : sequence of str
        ``J`` component names (``"reward"``: the scalar reward).
    """
    names, R = _component_index(model, list(components))
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(names),) or not np.isfinite(w).all():
        raise InvalidArgumentError(f"`weights` must be {len(names)} finite numbers, got {weights!r}.")
    r = np.where(model.admissible, np.nan_to_num(R) @ w, np.nan)
    return r


def weighted_model(model: EpochModel, weights: Any, components: Sequence[str]) -> EpochModel:
    """``model`` with the scalar reward ``sum_j w_j R_j`` (SPEC 11); components and maps kept.

    The dynamics, admissible sets (NaN rewards where inadmissible), observation
    maps and components are those of ``model``; only ``reward`` changes.

    Examples
    --------
    >>> from icsmdp_theory.epoch_model import EpochModel
    >>> m = EpochModel(name="w", gamma=0.5, agents=["a"], labels=["x"], states=[[0, 0]],
    ...     admissible=[[False, True]], rho0=[1.0], reward=[[0.0, 0.0]],
    ...     component_names=["u", "v"], components=[[[0.0, 0.0], [1.0, -2.0]]],
    ...     transitions={"state": [0], "successor": [1], "next_label": [-1], "tau": [1],
    ...                  "prob": [1.0]})
    >>> weighted_model(m, [0.5, 0.25], ["u", "v"]).reward.tolist()
    [[nan, 0.0]]
    """
    r = weighted_reward(model, weights, components)
    return EpochModel(
        name=model.name, gamma=model.gamma, agents=model.agent_names, labels=model.labels,
        states=np.stack([model.state_label, model.state_agent], axis=1),
        admissible=model.admissible, rho0=model.rho0,
        transitions={"state": model.trans_state, "successor": model.trans_successor,
                     "next_label": model.trans_next_label, "tau": model.trans_tau,
                     "prob": model.trans_prob},
        reward=r, observation=model.observation, component_names=model.component_names,
        components=model.components, counts=model.counts, validate=False)


# ---------------------------------------------------------------- total reward
def _proper_actions(model: EpochModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(safe, allowed, sigma0)``: almost-sure STOP reachability.

    ``safe[s]``: some policy stops almost surely from ``s``; ``allowed[s, c']``:
    ``c'`` keeps every next state safe (STOP always, on safe states);
    ``sigma0``: a policy that stops almost surely from every safe state (an
    attractor strategy: each step has a positive chance to get closer to STOP).
    """
    S, n1, N = model.num_epoch_states, model.num_successors, model.num_agents
    P = model.transition_law()
    adm = np.asarray(model.admissible)
    stop_ok = adm[:, N]
    # pair -> next states (boolean support)
    support = sp.csr_array(P.astype(bool).astype(np.int8))
    safe = np.ones(S, bool)
    while True:
        leaves = (support @ (~safe).astype(np.int8)).reshape(S, n1) > 0
        allowed = adm & ~leaves & safe[:, None]
        allowed[:, N] = stop_ok & safe
        rank = np.full(S, -1)
        sigma0 = np.full(S, -1)
        reach = allowed[:, N].copy()
        rank[reach] = 0
        sigma0[reach] = N
        step = 0
        while True:
            step += 1
            hits = (support @ reach.astype(np.int8)).reshape(S, n1) > 0
            hits &= allowed
            hits[:, N] = False
            new = hits.any(axis=1) & ~reach
            if not new.any():
                break
            sigma0[new] = np.argmax(hits[new], axis=1)
            rank[new] = step
            reach |= new
        if (reach == safe).all():
            break
        safe = reach
    sigma0 = np.where(sigma0 >= 0, sigma0, np.argmax(adm, axis=1))
    return safe, allowed, sigma0


def total_reward_optimum(model: EpochModel, reward: Any, *, max_iter: int = 1000
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Policy maximizing the expected total of ``reward[s, c']`` until STOP (module docstring).

    Over the policies that stop almost surely from the start; exact when every
    allowed move before STOP has ``reward <= 0`` (checked).

    Parameters
    ----------
    model : EpochModel
    reward : float array (S, N+1)
        NaN where inadmissible.
    max_iter : int

    Returns
    -------
    (sigma, v) : int ndarray (S,), float ndarray (S,)
        The policy and its totals (NaN on states from which no policy stops a.s.).

    Raises
    ------
    InvalidArgumentError
        No policy stops almost surely from the start, or a move before STOP has
        a positive weighted reward (the state is named).
    """
    S, N = model.num_epoch_states, model.num_agents
    r = np.asarray(reward, float)
    safe, allowed, sigma = _proper_actions(model)
    start = np.asarray(model.rho0) > 0
    if (start & ~safe).any():
        s = int(np.flatnonzero(start & ~safe)[0])
        d = model.describe_state(s)
        raise InvalidArgumentError(
            f"no policy stops almost surely from the start state {s} (label {d['label']!r}, "
            f"agent {d['agent_name']!r}): undiscounted totals are undefined; use discounted values.")
    moves = allowed.copy()
    moves[:, N] = False
    scale = float(np.nanmax(np.abs(np.where(allowed, r, 0.0)), initial=0.0)) or 1.0
    bad = np.argwhere(moves & (np.nan_to_num(r) > 1e-12 * scale))
    if bad.size:
        s, c = int(bad[0][0]), int(bad[0][1])
        d = model.describe_state(s)
        raise InvalidArgumentError(
            f"undiscounted fronts need weighted rewards <= 0 before STOP (costs along the way, "
            f"gains at STOP): state {s} (label {d['label']!r}, agent {d['agent_name']!r}), "
            f"successor {model.successor_name(c)!r} has {float(r[s, c]):.6g}; use discounted values.")
    P = sp.csr_array(model.transition_law())
    live = np.flatnonzero(safe)
    n1 = model.num_successors
    rz = np.where(allowed, np.nan_to_num(r), -np.inf)
    v = np.full(S, np.nan)
    for _ in range(max_iter):
        rows = live * n1 + sigma[live]
        A = sp.csc_array(sp.eye_array(live.size, format="csc") - P[rows][:, live])
        vl = spl.splu(A).solve(rz[live, sigma[live]])
        v = np.full(S, np.nan)
        v[live] = vl
        vz = np.nan_to_num(v)
        q = rz + (P @ vz).reshape(S, n1)
        q[:, N] = rz[:, N]
        best = q[live].max(axis=1)
        tol = 1e-10 * (1.0 + np.abs(vl).max(initial=0.0))
        improve = best > q[live, sigma[live]] + tol
        if not improve.any():
            return sigma, v
        idx = live[improve]
        sigma = sigma.copy()
        sigma[idx] = np.argmax(q[idx], axis=1)
    raise InvalidArgumentError(f"total-reward policy iteration did not settle in {max_iter} "
                               "improvement steps.")


# ---------------------------------------------------------------- reachable choices
def reachable_choices(model: EpochModel, policy: Any, *, cells: bool = False) -> list[dict]:
    """What ``policy`` does where it goes: the states (or cells) reachable from ``rho0``.

    Parameters
    ----------
    model : EpochModel
    policy : int array (S,)
    cells : bool
        ``True``: one entry per reachable cell ``(agent, raw observation)``
        (a decentralized policy is constant on a cell); else per epoch state.

    Returns
    -------
    list of dict
        ``{"agent", "observation" | "label", "successor"}`` (names), sorted.
    """
    sigma = np.asarray(policy, dtype=np.int64)
    seen = model.reachable_states(sigma)
    out: dict = {}
    for s in np.flatnonzero(seen):
        i = int(model.state_agent[s])
        k = int(model.state_label[s])
        if cells:
            key = (i, int(model.observation[i][k]))
            entry = {"agent": model.agent_names[i], "observation": key[1]}
        else:
            key = (i, k)
            entry = {"agent": model.agent_names[i], "label": model.labels[k]}
        entry["successor"] = model.successor_name(int(sigma[s]))
        out.setdefault(key, entry)
    return [out[k] for k in sorted(out)]


# ---------------------------------------------------------------- the front
def _pareto_front_iv(model, components, obs, weights, discounted):
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__} "
                                   "(export a primitive instance with icsmdp export-epoch).")
    names, R = _component_index(model, components)
    if not is_int(weights) or int(weights) < 2:
        raise InvalidArgumentError(f"`weights` must be an integer >= 2, got {weights!r}.")
    if not isinstance(discounted, (bool, np.bool_)):
        raise InvalidArgumentError(f"`discounted` must be True or False, got {discounted!r}.")
    cell_model = None
    if obs is not None:
        if isinstance(obs, str):
            if obs != "model":
                raise InvalidArgumentError(f"`obs` must be None, 'model' (the model's own maps) "
                                           f"or one map per agent, got {obs!r}.")
            cell_model = model
        else:
            cell_model = model.with_observation(obs)
    return names, R, int(weights), bool(discounted), cell_model


def pareto_front(model: EpochModel, *, components: Sequence[str] = ("correct", "tokens"),
                 obs: Any = None, weights: int = DEFAULT_WEIGHTS, discounted: bool = True,
                 max_policies: int | None = MAX_POLICIES) -> ParetoFront:
    """The exact supported Pareto front of ``components`` (module docstring; SPEC 11).

    Parameters
    ----------
    model : EpochModel
        With named components (``"reward"`` names the scalar reward).
    components : sequence of str
        At least two; exact for two.
    obs : None, "model" or sequence of N int arrays (K,)
        ``None``: centralized policies (every epoch state decides). ``"model"``:
        decentralized on the cells of the model's own observation maps; maps
        over labels: decentralized on their cells.
    weights : int
        Grid weights of the scan (``>= 2``); two components are refined exactly.
    discounted : bool
        Discounted values (SPEC 11, default) or totals until STOP (accuracy).
    max_policies : int or None
        Decentralized fronts: refuse (before evaluating) models with more policies
        on the reachable cells (:func:`estimators.decentralized.enumerate_decentralized_policies`).

    Returns
    -------
    ParetoFront
        ``status="computed"``.
    """
    t0 = time.perf_counter()
    names, R, n, discounted, cell_model = _pareto_front_iv(model, components, obs, weights,
                                                           discounted)
    J = len(names)
    adm = np.asarray(model.admissible)
    scales = np.array([float(np.abs(np.where(adm, np.nan_to_num(R[:, :, j]), 0.0)).max())
                       for j in range(J)])
    scales[scales == 0] = 1.0
    opt = _optimizer(model, names, scales, discounted, cell_model, max_policies)
    if J == 2:
        points, solves, exact = _scan_two(opt, n, scales)
    else:
        points, solves = _scan_simplex(opt, n, J, scales)
        exact = False
    pts = tuple(ParetoPoint(values={nm: float(p[j]) for j, nm in enumerate(names)},
                            policy=_frozen(pol), weight_range=rng, weights=wts)
                for p, pol, rng, wts in points)
    rates = []
    if J == 2:
        for a, b in zip(pts[:-1], pts[1:]):
            d1 = b.values[names[0]] - a.values[names[0]]
            d2 = b.values[names[1]] - a.values[names[1]]
            rates.append(float(d2 / d1) if d1 != 0 else float("inf"))
    kind = "discounted values" if discounted else "totals until STOP"
    where = "decentralized on the map's cells" if cell_model is not None else "centralized"
    msg = (f"supported front of {', '.join(names)} ({kind}, {where}): {len(pts)} points from "
           f"{solves} exact optima" + ("" if exact else "; the scan may miss vertices") +
           f"; {UNSUPPORTED_NOTE}")
    return ParetoFront(success=True, status="computed", message=msg, iterations=solves,
                       settings={"components": list(names), "weights": n,
                                 "discounted": discounted, "obs": obs is not None},
                       elapsed=time.perf_counter() - t0, components=names, points=pts,
                       rates=tuple(rates), scales=tuple(float(x) for x in scales),
                       discounted=discounted, decentralized=cell_model is not None,
                       num_solves=solves, exact=exact, note=UNSUPPORTED_NOTE)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.int64, copy=True)
    a.setflags(write=False)
    return a


def _optimizer(model: EpochModel, names: tuple, scales: np.ndarray, discounted: bool,
               cell_model: EpochModel | None, max_policies: int | None
               ) -> Callable[[np.ndarray], tuple]:
    """``opt(w) -> (point (J,) raw units, policy (S,))``: exact optimum for scaled weights ``w``."""
    cache: dict = {}

    def point(sigma: np.ndarray) -> np.ndarray:
        v = policy_value(model, sigma, discounted=discounted)
        return np.array([v.values[nm] for nm in names])

    cloud = None
    if cell_model is not None:
        # every decentralized policy differing on reachable cells, evaluated once; the
        # optimum for a weight is then a maximum over this finite set of points
        sigmas, pts = [], []
        for sigma in enumerate_decentralized_policies(cell_model, max_policies=max_policies):
            p = point(sigma)
            if np.isfinite(p).all():          # totals of a policy that may loop: ineligible
                sigmas.append(sigma)
                pts.append(p)
        if not pts:
            raise InvalidArgumentError(f"{model.name}: no decentralized policy has finite "
                                       f"values of {', '.join(names)} (each loops forever with "
                                       "a nonzero component).")
        cloud = (np.array(pts), sigmas)

    def opt(w: np.ndarray) -> tuple:
        raw = np.asarray(w, float) / scales
        key = tuple(np.round(raw, 15))
        if key in cache:
            return cache[key]
        if cloud is not None:
            obj = cloud[0] @ raw
            best = float(obj.max())
            j = int(np.flatnonzero(obj >= best - 1e-12 * (1.0 + abs(best)))[0])
            out = (cloud[0][j], cloud[1][j])
            cache[key] = out
            return out
        elif discounted:
            sigma = np.asarray(solve(PolicyIteration(), weighted_model(model, raw, names)).policy,
                               dtype=np.int64)
        else:
            sigma, _ = total_reward_optimum(model, weighted_reward(model, raw, names))
        out = (point(sigma), sigma)
        cache[key] = out
        return out

    return opt


def _scan_two(opt, n: int, scales: np.ndarray):
    """Grid then exact refinement at tie weights (module docstring); vertices with ranges."""
    solves = 0

    def w(t):
        return np.array([1.0 - t, t])

    def solve_at(t):
        nonlocal solves
        solves += 1
        p, pol = opt(w(t))
        return p / scales, p, pol

    grid = np.linspace(0.0, 1.0, n)
    sols = [solve_at(t) for t in grid]
    tol_scale = 1.0 + max(np.abs(s[0]).max() for s in sols)
    tol = 1e-9 * tol_scale
    found = {}          # key -> (scaled, raw, policy)

    def key(ps):
        return tuple(np.round(ps / tol, 0))

    def add(sol):
        found.setdefault(key(sol[0]), sol)

    for s in sols:
        add(s)
    exact = True
    stack = [(sols[j], sols[j + 1]) for j in range(n - 1)
             if np.abs(sols[j][0] - sols[j + 1][0]).max() > tol]
    while stack:
        p, q = stack.pop()
        dp = p[0] - q[0]
        den = dp[0] - dp[1]
        if den <= tol:          # q not to the right of p: a tie or a degenerate pair
            continue
        t = float(np.clip(dp[0] / den, 0.0, 1.0))
        if solves >= _MAX_SOLVES:
            exact = False
            break
        r = solve_at(t)
        add(r)
        base = w(t) @ p[0]
        if w(t) @ r[0] > base + tol and np.abs(r[0] - p[0]).max() > tol \
                and np.abs(r[0] - q[0]).max() > tol:
            stack.append((p, r))
            stack.append((r, q))
    verts = _hull_two([(s[0], s[1], s[2]) for s in found.values()], tol)
    out = [(p, pol, (lo, hi), (tuple(w(lo)), tuple(w(hi)))) for lo, hi, p, pol in verts]
    return out, solves, exact


def _hull_two(points: list, tol: float) -> list:
    """Vertices of the upper hull in the directions ``w(t) = (1 - t, t)``, ``t`` in ``[0, 1]``.

    ``points``: ``(scaled, raw, policy)``. Gift wrapping over ``t``: start at
    the largest first coordinate (ties within ``tol``: largest second); the next vertex is
    the point overtaking the current one at the smallest ``t``
    (``w(t) . (o - p) = 0``; ties: the farthest), and so on. Returns
    ``(t_lo, t_hi, raw, policy)`` for the vertices optimal on an interval of
    positive length.
    """
    sc = np.array([p[0] for p in points])
    top = np.flatnonzero(sc[:, 0] >= sc[:, 0].max() - tol)
    cur = int(top[np.argmax(sc[top, 1])])
    t, out = 0.0, []
    while True:
        d = sc - sc[cur]
        b = d[:, 1] - d[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.where(b > 1e-15, -d[:, 0] / b, np.inf)
        root[cur] = np.inf
        root = np.where(root < t - 1e-12, np.inf, root)
        nxt_t = float(root.min())
        if nxt_t > 1.0:
            out.append((t, 1.0, points[cur][1], points[cur][2]))
            out = [list(o) for o in out if o[1] - o[0] > 1e-12]
            out[0][0], out[-1][1] = 0.0, 1.0
            return [tuple(o) for o in out]
        cand = np.flatnonzero(root <= nxt_t + 1e-12)
        nxt = int(max(cand, key=lambda j: (sc[j, 1], -sc[j, 0])))
        nxt_t = max(nxt_t, t)
        out.append((t, nxt_t, points[cur][1], points[cur][2]))
        cur, t = nxt, nxt_t


def _scan_simplex(opt, n: int, J: int, scales: np.ndarray):
    """Optima on the simplex lattice with ``n - 1`` divisions; no refinement."""
    div = n - 1
    lattice = [c for c in _compositions(div, J)]
    found: dict = {}
    tol = None
    for c in lattice:
        wv = np.array(c, float) / div
        p, pol = opt(wv)
        ps = p / scales
        if tol is None:
            tol = 1e-9 * (1.0 + np.abs(ps).max())
        k = tuple(np.round(ps / tol, 0))
        entry = found.setdefault(k, [p, pol, []])
        entry[2].append(wv)
    out = []
    for p, pol, ws in found.values():
        ws = np.array(ws)
        out.append((p, pol, None, (tuple(ws.min(axis=0)), tuple(ws.max(axis=0)))))
    # drop points dominated by another (weakly on all, strictly on one)
    keep = []
    for a in out:
        if not any(np.all(b[0] >= a[0] - 1e-12) and np.any(b[0] > a[0] + 1e-12) for b in out):
            keep.append(a)
    keep.sort(key=lambda x: tuple(-x[0]))
    return keep, len(lattice)


def _compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first,) + rest
