r"""Exact values of a fixed epoch policy, per reward component (SPEC section 11).

For a deterministic epoch policy ``sigma[s]`` (an admissible successor per
epoch state) of an explicit epoch model (SPEC 10), every reward ``R_j`` (the
scalar reward and each named component) has the value

- discounted (SPEC 11): ``v_j = (I - D_sigma)^{-1} R_j(., sigma)``, with
  ``D_sigma[s, s'] = sum_tau gamma^tau P(k', tau | s, sigma[s])``;
- undiscounted (``discounted=False``): the expected *total* of ``R_j`` until
  STOP, ``v_j = (I - P_sigma)^{-1} R_j(., sigma)`` on the states from which
  STOP can be reached, with ``P_sigma`` the law of the next epoch state
  (``sum_tau``). States from which STOP cannot be reached ("trapped": the
  policy loops forever there) contribute nothing; if the start law puts mass
  on states that reach a trap, the policy does not terminate almost surely
  (``terminates=False``) and a component that is not zero on the trapped
  states has an undefined total (NaN). For a reward paid only at STOP, e.g. a
  correctness indicator, the undiscounted value is the probability of ending
  with it, the *accuracy* of a workflow, well defined in every case.

The value at the start is ``rho0 . v_j``.

Examples
--------
One agent; from ``x`` it goes to ``y`` (one step), from ``y`` it may STOP
(reward 1) or go back to ``x``:

>>> from icsmdp_theory.epoch_model import EpochModel
>>> m = EpochModel(name="two", gamma=0.5, agents=["a"], labels=["x", "y"],
...     states=[[0, 0], [1, 0]], admissible=[[True, False], [True, True]], rho0=[1.0, 0.0],
...     reward=[[0.0, 0.0], [0.0, 1.0]], component_names=["cost"],
...     components=[[[-1.0], [0.0]], [[-1.0], [-1.0]]],
...     transitions={"state": [0, 1, 1], "successor": [0, 0, 1], "next_label": [1, 0, -1],
...                  "tau": [1, 1, 1], "prob": [1.0, 1.0, 1.0]})
>>> v = policy_value(m, [0, 1])                 # x -> y -> STOP
>>> v.values["reward"], v.values["cost"]        # 0.5 * 1;  -1 + 0.5 * (-1)
(0.5, -1.5)
>>> u = policy_value(m, [0, 1], discounted=False)
>>> u.values["reward"], u.values["cost"], u.terminates
(1.0, -2.0, True)
>>> w = policy_value(m, [0, 0], discounted=False)   # x -> y -> x -> ... never stops
>>> w.values["reward"], w.terminates, w.values["cost"]
(0.0, False, nan)
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import Result

__all__ = ["PolicyValue", "policy_value", "reward_columns"]


@dataclass(frozen=True, kw_only=True, repr=False)
class PolicyValue(Result):
    """Values of a fixed epoch policy (:func:`policy_value`).

    Attributes
    ----------
    names : tuple of str
        ``"reward"`` (the model's scalar reward) then the component names.
    values : dict
        Name -> value at the start, ``rho0 . v``.
    per_state : dict
        Name -> ``v[s]`` (NaN on trapped states for a component that is not zero there).
    discounted : bool
    terminates : bool
        Every state the start law can reach reaches STOP almost surely (always
        ``True`` when discounted: it is not needed there).
    trapped : ndarray of bool (S,)
        States from which STOP cannot be reached under the policy.
    """

    names: tuple
    values: dict
    per_state: dict
    discounted: bool
    terminates: bool
    trapped: np.ndarray


def reward_columns(model: EpochModel) -> tuple[tuple, np.ndarray]:
    """``(names, R)`` with ``R[s, c', j]``: the scalar reward (``"reward"``) then each component."""
    cols = [np.asarray(model.reward, float)[:, :, None]]
    names = ["reward"]
    if model.components is not None:
        cols.append(np.asarray(model.components, float))
        names.extend(model.component_names)
    return tuple(names), np.concatenate(cols, axis=2)


def _policy_iv(model: EpochModel, policy) -> np.ndarray:
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__} "
                                   "(export a primitive instance with icsmdp export-epoch).")
    sigma = np.asarray(policy)
    S = model.num_epoch_states
    if sigma.shape != (S,) or sigma.dtype.kind not in "iu":
        raise InvalidArgumentError(f"`policy` must be an integer array of shape ({S},), got "
                                   f"{sigma.dtype} {sigma.shape}.")
    bad = np.flatnonzero((sigma < 0) | (sigma > model.num_agents))
    if bad.size == 0:
        bad = np.flatnonzero(~model.admissible[np.arange(S), sigma])
    if bad.size:
        s = int(bad[0])
        d = model.describe_state(s)
        raise InvalidArgumentError(f"`policy` entry {s} (label {d['label']!r}, agent "
                                   f"{d['agent_name']!r}): successor {int(sigma[s])} is not "
                                   "admissible there.")
    return sigma.astype(np.int64)


def policy_value(model: EpochModel, policy, *, discounted: bool = True) -> PolicyValue:
    """Exact values of the deterministic epoch policy ``policy`` for every reward (module docstring).

    Parameters
    ----------
    model : EpochModel
    policy : int array (S,)
        ``sigma[s]``, an admissible successor of each epoch state (STOP is ``N``).
    discounted : bool
        SPEC 11's discounted values (default), or expected totals until STOP.

    Returns
    -------
    PolicyValue
    """
    t0 = time.perf_counter()
    sigma = _policy_iv(model, policy)
    S = model.num_epoch_states
    rows = np.arange(S) * model.num_successors + sigma
    kernel = model.discounted_kernel() if discounted else model.transition_law()
    K = sp.csr_array(kernel[rows])
    names, R = reward_columns(model)
    r = R[np.arange(S), sigma, :]
    trapped = np.zeros(S, bool)
    terminates = True
    if not discounted:
        edges = sp.csr_array(K, copy=True)
        edges.data = np.ones_like(edges.data)
        trapped = ~_closure(edges, sigma == model.num_agents)      # cannot reach STOP
        start = np.asarray(model.rho0) > 0
        terminates = not trapped[_closure(sp.csr_array(edges.T), start)].any()
    live = np.flatnonzero(~trapped)
    v = np.zeros((S, len(names)))
    if live.size:
        A = sp.csc_array(sp.eye_array(live.size, format="csc") - K[live][:, live])
        v[live] = spl.splu(A).solve(np.ascontiguousarray(r[live]))
    if trapped.any():
        nonzero = np.any(r[trapped] != 0, axis=0)
        v[np.ix_(trapped, nonzero)] = np.nan
        if not terminates:
            # a state reaching a trap with a component that is not zero there: undefined total
            bad = _closure(edges, trapped)[live]        # live states that may fall into a trap
            v[np.ix_(live[bad], np.flatnonzero(nonzero))] = np.nan
    rho0 = np.asarray(model.rho0, float)
    values = {}
    for j, name in enumerate(names):
        col = v[:, j]
        mass = rho0 > 0
        values[name] = float(rho0[mass] @ col[mass]) if not np.isnan(col[mass]).any() else np.nan
    per_state = {name: v[:, j].copy() for j, name in enumerate(names)}
    kind = "discounted" if discounted else "undiscounted"
    msg = f"exact {kind} values of the policy" + ("" if terminates else
                                                   "; it does not stop almost surely")
    return PolicyValue(success=True, status="computed", message=msg,
                       settings={"discounted": discounted}, elapsed=time.perf_counter() - t0,
                       names=names, values=values, per_state=per_state, discounted=discounted,
                       terminates=terminates, trapped=trapped)


def _closure(edges: sp.csr_array, mask: np.ndarray) -> np.ndarray:
    """States with a path (``edges[s, s'] > 0`` steps, zero or more) into the states of ``mask``."""
    out = np.asarray(mask, bool).copy()
    while True:
        new = out | (edges @ out.astype(np.float64) > 0)
        if (new == out).all():
            return out
        out = new
