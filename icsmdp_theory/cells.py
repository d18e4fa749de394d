"""Observation cells: the disjoint union of ``(i, o)``, ``o in O_i`` (SPEC sections 4-6).

Cell ``(i, o)`` has the flat index ``cell_offsets[i] + o`` with
``cell_offsets = [0, nO_0, nO_0 + nO_1, ...]`` (length ``N + 1``; the last
entry is the number of cells). This module is the one place that layout is
written; it also maps every full epoch state ``s = (f, i)`` (flattened
``s = f*N + i``, :mod:`icsmdp_theory.epoch`) to its observation and its cell.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> model = load_example("tiny-handoff")
>>> cell_offsets(model.num_observations).tolist()
[0, 2, 5]
>>> epoch_observations(model).tolist()      # obs[f, i] = phi_i(m(f), l_i(f))
[[0, 0], [1, 1], [1, 2]]
>>> cell_of_epoch_states(model).tolist()    # cell[f, i] = offset_i + obs[f, i]
[[0, 2], [1, 3], [1, 4]]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidInstanceError
from icsmdp_theory.model import ICSMDP

__all__ = ["cell_offsets", "epoch_observations", "cell_of_epoch_states", "cell_admissible"]


def cell_offsets(num_observations: Sequence[int]) -> np.ndarray:
    """``[0, nO_0, nO_0 + nO_1, ..., sum_i nO_i]``: int64 array of length ``N + 1``."""
    counts = np.asarray(num_observations, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def epoch_observations(model: ICSMDP) -> np.ndarray:
    """``obs[f, i] = phi_i(m, l_i)`` for every full state ``f``: int array ``(num_full_states, N)``."""
    N = model.num_agents
    full_shape = (model.num_latent, model.num_interface) + tuple(model.num_private)
    out = np.empty((model.num_full_states, N), dtype=np.int64)
    for i, a in enumerate(model.agents):
        shape = [1, model.num_interface] + [a.num_private if j == i else 1 for j in range(N)]
        out[:, i] = np.broadcast_to(a.observation.reshape(shape), full_shape).reshape(-1)
    return out


def cell_of_epoch_states(model: ICSMDP) -> np.ndarray:
    """``phi(s)`` as a flat cell index for every epoch state: ``(num_full_states, N)``, axes ``[f, i]``."""
    return epoch_observations(model) + cell_offsets(model.num_observations)[:-1][None, :]


def cell_admissible(model: ICSMDP | EpochModel, *, rule: str = "intersection") -> np.ndarray:
    """``adm[cell, c']``: successor ``c'`` admissible for the cell; ``(num_cells, N+1)``.

    A primitive model: the cell's agent's admissible set. An explicit epoch model
    (SPEC section 10): with ``rule="intersection"`` the intersection of the
    admissible sets of the cell's epoch states (an agent that sees only ``o`` may
    pick only what is admissible everywhere in the cell); with ``rule="union"``
    (a fitted model's cells, :func:`icsmdp_theory.epoch_level.cell_rule`) their union.

    Raises
    ------
    InvalidInstanceError
        An epoch-model cell whose states have no admissible successor in common.
    """
    if not isinstance(model, EpochModel):
        return np.repeat(model.admissible, model.num_observations, axis=0)
    offsets = cell_offsets(model.num_observations)
    cells = offsets[np.asarray(model.state_agent)] + np.asarray(model.state_observation)
    if rule == "union":
        out = np.zeros((int(offsets[-1]), model.num_successors), dtype=bool)
        np.logical_or.at(out, cells, np.asarray(model.admissible, dtype=bool))
        return out
    out = np.ones((int(offsets[-1]), model.num_successors), dtype=bool)
    np.logical_and.at(out, cells, np.asarray(model.admissible, dtype=bool))
    empty = np.flatnonzero(~out.any(axis=1))
    if empty.size:
        cell = int(empty[0])
        i = int(np.searchsorted(offsets, cell, side="right") - 1)
        raise InvalidInstanceError(
            f"cell (agent {i} `{model.agent_names[i]}`, observation {cell - int(offsets[i])}): the "
            f"states of the cell have no admissible successor in common (SPEC section 10); "
            f"refine the observation map.")
    return out
