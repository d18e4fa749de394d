r"""The exact optimum over deterministic decentralized policies on a map's cells (SPEC 4, 10, 11).

A *decentralized* deterministic policy assigns one successor ``pi(i, o)`` to
every cell ``(i, o)`` of the model's observation map (``o =
model.state_observation[s]`` for the states ``s`` of agent ``i``); the epoch
policy is ``sigma[s] = pi(i(s), o(s))``. A cell admits the successors every
one of its states admits (SPEC 10's intersection rule,
:func:`icsmdp_theory.cells.cell_admissible`).

Policies that differ only on cells the start law never reaches have the same
values, so the enumeration assigns a successor only to the cells reachable
from ``rho0`` under the partial policy (depth first: take the lowest reached
unassigned cell, branch over its admissible successors, STOP first and then
the agents by index, extend the reached set through the chosen successor; a
policy is complete when no reached cell is unassigned). The other cells take
their first admissible successor in that order (STOP when admissible). Every yielded policy thus differs from every other on
a reachable cell, and every deterministic decentralized policy has the values
of exactly one of them.

The optimum over them is found by evaluating each one exactly for the objective

    J(sigma) = sum_j w_j v_j(sigma),

with ``v_j`` the value at the start (``rho0 . v``) of a reward column
(``"reward"`` or a component; :func:`estimators.policy_value.reward_columns`),
either discounted (SPEC 11) or undiscounted (the expected total until STOP;
``discounted=False``). The default objective is the *accuracy* of the
math-reasoning model: the undiscounted total of ``correct``. An undiscounted
objective that is undefined for a policy (NaN: the policy does not stop
almost surely and the objective's columns are not zero where it loops) makes
that policy ineligible. Ties (within ``1e-12``) go to the policy with the
fewest expected epochs until STOP (discounted like the objective), then to the
first in the enumeration order.

**Evaluation.** A policy's values at the start depend only on the states it
reaches, ``Reach`` (known from the enumeration and closed under the policy):
``v = (I - K_Reach)^{-1} r_Reach`` with ``K`` the discounted kernel ``D``
(discounted) or the law ``P`` of the next epoch state (undiscounted), the same
formulas as :func:`estimators.policy_value.policy_value`. The enumeration
solves that small system directly (dense LU on ``Reach`` with one BLAS thread,
sparse LU for a large model), several times faster than a full
:func:`~estimators.policy_value.policy_value` call on the whole model. Undiscounted, with ``policy_value``'s conventions: the
states of ``Reach`` that cannot reach STOP (trapped; the policy loops there)
contribute nothing, and a column that is not zero on them has no total (NaN:
the start reaches them). The optimum's reported ``values`` are
always :func:`~estimators.policy_value.policy_value`'s, and the two are
checked to agree (within ``1e-9``; tested on every policy of the
math-reasoning model).

The number of policies is counted first and refused above ``max_policies``
(:class:`~icsmdp_theory.errors.StateSpaceTooLargeError`), before any evaluation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from threadpoolctl import threadpool_limits

from icsmdp_theory.cells import cell_admissible, cell_offsets
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.results import Result
from icsmdp_theory.validation import is_int, is_real
from estimators.policy_value import policy_value, reward_columns

__all__ = ["DecentralizedOptimum", "best_decentralized_policy",
           "enumerate_decentralized_policies", "count_decentralized_policies",
           "decentralized_cells", "MAX_POLICIES"]

#: Default largest number of policies :func:`best_decentralized_policy` evaluates.
MAX_POLICIES = 100_000
_TIE = 1e-12
_EPOCHS = "<epochs>"
#: Kernels with at most this many entries are sliced as dense arrays (8 bytes each).
_DENSE_ENTRIES = 4_000_000


@dataclass(frozen=True, kw_only=True, repr=False)
class DecentralizedOptimum(Result):
    """The best deterministic decentralized policy (:func:`best_decentralized_policy`).

    Attributes
    ----------
    policy : int ndarray (S,)
        The optimal epoch policy ``sigma[s]`` (constant on each cell).
    cell_policy : int ndarray (num_cells,)
        Its successor per cell (flat cell index ``offset_i + o``); unreached cells hold
        their default (STOP when admissible, else the lowest agent).
    reached_cells : bool ndarray (num_cells,)
        Cells reachable from ``rho0`` under the policy.
    value : float
        The objective ``J`` of the policy.
    values : dict
        Value at the start of every reward column under the policy (``policy_value``).
    objective : dict
        ``weights`` (column -> weight) and ``discounted``.
    num_policies : int
        Policies enumerated and evaluated.
    num_eligible : int
        Policies with a defined objective.
    """

    policy: np.ndarray
    cell_policy: np.ndarray
    reached_cells: np.ndarray
    value: float
    values: dict
    objective: dict
    num_policies: int
    num_eligible: int


def decentralized_cells(model: EpochModel) -> tuple[np.ndarray, np.ndarray]:
    """``(cell[s], adm[cell, c'])``: each epoch state's flat cell and each cell's admissible set.

    Raises
    ------
    InvalidArgumentError
        ``model`` is not an :class:`EpochModel`.
    InvalidInstanceError
        A cell whose states have no admissible successor in common.
    """
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__}.")
    offsets = cell_offsets(model.num_observations)
    cell = offsets[np.asarray(model.state_agent)] + np.asarray(model.state_observation)
    return cell.astype(np.int64), cell_admissible(model)


class _Walker:
    """Depth-first enumeration of the policies on reachable cells (module docstring)."""

    def __init__(self, model: EpochModel):
        self.model = model
        self.cell, self.adm = decentralized_cells(model)
        self.stop = model.num_agents
        S, n1 = model.num_epoch_states, model.num_successors
        law = model.transition_law()
        self.indptr, self.indices = law.indptr, law.indices
        self.n1 = n1
        self.S = S
        self.num_cells = self.adm.shape[0]
        # branching order per cell: STOP first, then the agents by index (ties go to stopping)
        self.order = [[c for c in [self.stop] + list(range(self.stop)) if self.adm[x, c]]
                      for x in range(self.adm.shape[0])]
        self.default = np.array([o[0] for o in self.order], np.int64)
        self.start = np.flatnonzero(np.asarray(model.rho0) > 0)
        self.rho0 = np.asarray(model.rho0, float)
        names, columns = reward_columns(model)
        # one more column: -1 per epoch (the tie-break "fewest epochs")
        self.names = names + (_EPOCHS,)
        self.columns = np.concatenate([columns, -np.ones(columns.shape[:2] + (1,))], axis=2)
        self._kernels: dict = {}
        self.states_of_cell = [[] for _ in range(self.num_cells)]
        for s, c in enumerate(self.cell.tolist()):
            self.states_of_cell[c].append(s)

    def _expand(self, reached: np.ndarray, choice: np.ndarray, stack: list) -> None:
        cell, indptr, indices, n1, stop = self.cell, self.indptr, self.indices, self.n1, self.stop
        while stack:
            s = stack.pop()
            c = choice[cell[s]]
            if c < 0 or c == stop:
                continue
            row = s * n1 + c
            for s2 in indices[indptr[row]:indptr[row + 1]]:
                if not reached[s2]:
                    reached[s2] = True
                    stack.append(int(s2))

    def walk(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(choice per cell, reached states)`` for every policy on reachable cells."""
        choice = np.full(self.num_cells, -1, np.int64)
        reached = np.zeros(self.S, bool)
        reached[self.start] = True
        yield from self._walk(choice, reached)

    def _walk(self, choice, reached):
        pending = self.cell[reached]
        pending = pending[choice[pending] < 0]
        if pending.size == 0:
            yield choice, reached
            return
        x = int(pending.min())
        for c in self.order[x]:
            ch = choice.copy()
            ch[x] = c
            re = reached.copy()
            self._expand(re, ch, [s for s in self.states_of_cell[x] if re[s]])
            yield from self._walk(ch, re)

    def kernel(self, discounted: bool):
        """``D`` or ``P`` (rows ``s*(N+1) + c'``), dense when it is small (faster to slice)."""
        key = bool(discounted)
        if key not in self._kernels:
            k = self.model.discounted_kernel() if discounted else self.model.transition_law()
            self._kernels[key] = k.toarray() if k.shape[0] * k.shape[1] <= _DENSE_ENTRIES else k
        return self._kernels[key]

    def values(self, sigma: np.ndarray, reached: np.ndarray, discounted: bool) -> dict:
        """Values at the start of every reward column (module docstring, "Evaluation")."""
        idx = np.flatnonzero(reached)
        kernel = self.kernel(discounted)
        K = kernel[idx * self.n1 + sigma[idx]][:, idx]
        r = self.columns[idx, sigma[idx], :]
        undefined = np.zeros(r.shape[1], bool)
        if not discounted:
            live = sigma[idx] == self.stop                  # states that reach STOP
            while True:
                grown = live | (K @ live.astype(float) > 0)
                if grown.sum() == live.sum():
                    break
                live = grown
            if not live.all():
                # every reached state is reachable from the start, so the start reaches the
                # trapped ones: a column that is not zero there has no total (NaN); the
                # others are totals over the live states (trapped states contribute 0)
                undefined = np.any(r[~live] != 0, axis=0)
                keep = np.flatnonzero(live)
                K, r, idx = K[keep][:, keep], r[keep], idx[keep]
        start = np.zeros(r.shape[1])
        if idx.size and isinstance(K, np.ndarray):
            start = self.rho0[idx] @ np.linalg.solve(np.eye(idx.size) - K, r)
        elif idx.size:
            A = sp.csc_array(sp.eye_array(idx.size, format="csc") - K)
            start = self.rho0[idx] @ spl.splu(A).solve(np.ascontiguousarray(r))
        start[undefined] = np.nan
        return {name: float(start[j]) for j, name in enumerate(self.names)}

    def epoch_policy(self, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        full = np.where(choice >= 0, choice, self.default)
        return full[self.cell], full


def _limit_iv(name: str, value) -> int:
    if not is_int(value) or value < 1:
        raise InvalidArgumentError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def count_decentralized_policies(model: EpochModel, *, limit: int | None = None) -> int:
    """The number of deterministic decentralized policies that differ on reachable cells.

    Parameters
    ----------
    model : EpochModel
    limit : int, optional
        Stop counting above it and raise.

    Raises
    ------
    StateSpaceTooLargeError
        More than ``limit`` policies.
    """
    if limit is not None:
        limit = _limit_iv("limit", limit)
    n = 0
    for _ in _Walker(model).walk():
        n += 1
        if limit is not None and n > limit:
            raise StateSpaceTooLargeError(
                f"{model.name}: more than {limit} deterministic decentralized policies on the "
                f"reachable cells; the exact enumeration is refused (raise `max_policies`, or "
                f"use a coarser map or the learned policies).")
    return n


def enumerate_decentralized_policies(model: EpochModel, *, max_policies: int | None = MAX_POLICIES
                                     ) -> Iterator[np.ndarray]:
    """Every deterministic decentralized policy that differs on reachable cells (module docstring).

    Parameters
    ----------
    model : EpochModel
    max_policies : int or None
        Count first and refuse above it (``None``: no limit, no count).

    Yields
    ------
    int ndarray (S,)
        The epoch policy ``sigma[s]``; unreached cells take their first admissible
        successor (STOP when admissible, else the lowest agent).

    Raises
    ------
    StateSpaceTooLargeError
        More than ``max_policies`` policies (raised before the first one is yielded).
    """
    if max_policies is not None:
        count_decentralized_policies(model, limit=max_policies)
    walker = _Walker(model)
    for choice, _ in walker.walk():
        yield walker.epoch_policy(choice)[0]


def _objective_iv(model, objective, weights, discounted, max_policies):
    names, _ = reward_columns(model)
    if weights is None:
        if objective is None:
            objective = "correct" if "correct" in names else "reward"
        if objective not in names:
            raise InvalidArgumentError(f"`objective` must be one of {', '.join(names)}, got "
                                       f"{objective!r}.")
        weights = {objective: 1.0}
    else:
        if objective is not None:
            raise InvalidArgumentError("give either `objective` or `weights`, not both.")
        if not isinstance(weights, Mapping) or not weights:
            raise InvalidArgumentError(f"`weights` must be a non-empty mapping of reward columns "
                                       f"({', '.join(names)}) to numbers, got {weights!r}.")
        for k, w in weights.items():
            if k not in names:
                raise InvalidArgumentError(f"`weights`: unknown reward column {k!r} (columns: "
                                           f"{', '.join(names)}).")
            if not is_real(w):
                raise InvalidArgumentError(f"`weights`[{k!r}] must be a finite number, got {w!r}.")
        weights = {k: float(w) for k, w in weights.items()}
    if discounted is None:
        discounted = set(weights) != {"correct"}
    if not isinstance(discounted, bool):
        raise InvalidArgumentError(f"`discounted` must be a bool or None, got {discounted!r}.")
    if max_policies is not None:
        max_policies = _limit_iv("max_policies", max_policies)
    return weights, discounted, max_policies


def best_decentralized_policy(model: EpochModel, *, objective: str | None = None,
                              weights: Mapping[str, float] | None = None,
                              discounted: bool | None = None,
                              max_policies: int | None = MAX_POLICIES) -> DecentralizedOptimum:
    """The exact optimum over deterministic decentralized policies on the model's cells.

    Parameters
    ----------
    model : EpochModel
        Its observation map defines the cells.
    objective : str, optional
        One reward column (``"reward"`` or a component). Default: ``"correct"``
        when the model has that component (the accuracy), else ``"reward"``.
    weights : mapping, optional
        Column -> weight: the objective ``sum_j w_j v_j`` (instead of ``objective``).
    discounted : bool, optional
        Discounted values (SPEC 11) or undiscounted totals until STOP. Default:
        undiscounted for the objective ``correct`` alone (the accuracy), discounted otherwise.
    max_policies : int or None
        Refuse (before evaluating) when more policies would be enumerated.

    Returns
    -------
    DecentralizedOptimum
        ``status="computed"``.

    Raises
    ------
    StateSpaceTooLargeError
        Too many policies.
    InvalidArgumentError
        Bad arguments, or no policy with a defined objective.
    """
    t0 = time.perf_counter()
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__}.")
    weights, discounted, max_policies = _objective_iv(model, objective, weights, discounted,
                                                      max_policies)
    if max_policies is not None:
        count_decentralized_policies(model, limit=max_policies)
    walker = _Walker(model)
    best = None
    n = eligible = 0
    with threadpool_limits(limits=1):     # many small solves: threads only add overhead
        for choice, reached in walker.walk():
            n += 1
            sigma, _full = walker.epoch_policy(choice)
            vals = walker.values(sigma, reached, discounted)
            value = sum(w * vals[k] for k, w in weights.items())
            if not np.isfinite(value):
                continue
            eligible += 1
            shorter = vals[_EPOCHS]            # minus the (discounted) expected epochs; NaN: never
            shorter = shorter if np.isfinite(shorter) else -np.inf
            if best is None or value > best[0] + _TIE or (
                    value >= best[0] - _TIE and shorter > best[3] + _TIE):
                best = (value, choice.copy(), sigma, shorter)
    if best is None:
        raise InvalidArgumentError(f"{model.name}: no decentralized policy has a defined "
                                   f"objective (every one loops forever with a nonzero reward).")
    value, choice, sigma, _ = best
    pv = policy_value(model, sigma, discounted=discounted)
    exact = sum(w * pv.values[k] for k, w in weights.items())
    if not abs(exact - value) <= 1e-9 * max(1.0, abs(exact)):   # pragma: no cover - a defect
        raise RuntimeError(f"{model.name}: the enumeration's value {value!r} of the optimum "
                           f"differs from policy_value's {exact!r}.")
    kind = "discounted" if discounted else "undiscounted"
    return DecentralizedOptimum(
        success=True, status="computed",
        message=f"exact optimum of the {kind} objective over {n} decentralized policies "
                f"({eligible} with a defined objective)",
        settings={"weights": weights, "discounted": discounted, "max_policies": max_policies},
        elapsed=time.perf_counter() - t0, iterations=n,
        policy=sigma, cell_policy=walker.epoch_policy(choice)[1], reached_cells=choice >= 0,
        value=float(exact), values=dict(pv.values),
        objective={"weights": weights, "discounted": discounted},
        num_policies=n, num_eligible=eligible)
