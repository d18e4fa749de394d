"""Behavior policies ``b_i(c' | o)`` over successors (SPEC section 6).

A behavior policy is a list with one array per agent,
``behavior[i][o, c'] = b_i(c' | o)`` of shape ``(nO_i, N+1)`` (axes
``[observation, successor]``, STOP at index ``N``): every row is a
probability vector that puts no mass on an inadmissible successor.

- :func:`uniform_behavior`: uniform over the admissible successors (the
  default behavior of SPEC section 6);
- :func:`epsilon_greedy_behavior`: ``1 - eps`` on the greedy successor of a
  given ``Q(o, c')`` (lowest admissible index within ``1e-10`` of the maximum,
  SPEC section 3) plus ``eps`` spread uniformly over the admissible ones, so
  the greedy successor gets ``1 - eps + eps/|adm|``;
- :func:`epoch_behavior`: the policy seen from full epoch states,
  ``out[f, i, c'] = b_i(c' | phi_i(m, l_i))``.

Adaptable agents (issue 15): the columns run over the choices
``j = a*(N+1) + c'`` (mode ``a``, successor ``c'``), ``J = max_i K_i (N+1)`` of
them (:attr:`~icsmdp_theory.model.ICSMDP.num_choices`; ``J = N+1`` and
``j = c'`` without modes), and "admissible" means
:attr:`~icsmdp_theory.model.ICSMDP.choice_admissible`: the default behavior is
uniform over each agent's admissible pairs ``(a, c')`` (SPEC section 6: uniform
over the state's own admissible set). A one-mode model's arrays are today's.

:func:`validate_behavior` checks a user-supplied policy (shapes, finiteness,
non-negativity, admissibility, rows summing to 1 within ``1e-9``) and names
the agent, the observation and the successor at fault.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> model = load_example("tiny-handoff")   # planner: checker or STOP; checker: planner or STOP
>>> [b.tolist() for b in uniform_behavior(model)]
[[[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]], [[0.5, 0.0, 0.5], [0.5, 0.0, 0.5], [0.5, 0.0, 0.5]]]
>>> q = [np.array([[0., 1., 2.], [0., 3., 1.]]), np.zeros((3, 3))]
>>> epsilon_greedy_behavior(model, q, 0.2)[0].tolist()
[[0.0, 0.1, 0.9], [0.0, 0.9, 0.1]]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from icsmdp_theory.cells import epoch_observations
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP, ROW_SUM_TOL
from solvers.common import greedy

__all__ = ["uniform_behavior", "epsilon_greedy_behavior", "validate_behavior", "epoch_behavior",
           "state_behavior"]


def _where(model: ICSMDP, i: int) -> str:
    return f"agent {i} (`{model.agents[i].name}`)"


def uniform_behavior(model: ICSMDP) -> list[np.ndarray]:
    """Uniform over admissible choices: ``b_i(j | o) = 1/|adm_i|`` for admissible ``j``.

    Without modes ``j = c'`` (uniform over the admissible successors); with modes
    ``j = a*(N+1) + c'`` runs over the ``K_i |succ_i|`` admissible pairs ``(a, c')``.

    Returns
    -------
    list of ndarray, one per agent, shape ``(nO_i, J)`` (``J = N+1`` without modes)
    """
    out = []
    for a, adm in zip(model.agents, model.choice_admissible):
        row = adm.astype(float) / adm.sum()
        out.append(np.tile(row, (a.num_observations, 1)))
    return out


def _choice_name(model: ICSMDP, j: int) -> str:
    """``c'=2 (agent 2)`` for a one-mode model; ``j=5 (mode 1 `fast`, agent 2)`` with modes."""
    a, c = (int(v) for v in model.choice_decode(int(j)))
    succ = "STOP" if c == model.stop else f"agent {c}"
    if not model.has_modes:
        return f"c'={c} ({succ})"
    return f"j={int(j)} (mode {a}, successor {succ})"


def _per_agent_arrays(model: ICSMDP, arrays, name: str) -> list[np.ndarray]:
    """One float array ``(nO_i, N+1)`` per agent (copies), with located errors."""
    if not isinstance(arrays, (list, tuple)) or len(arrays) != model.num_agents:
        got = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
        raise InvalidArgumentError(
            f"`{name}` must be a list of {model.num_agents} arrays (one per agent), got {got}.")
    out = []
    for i, (a, x) in enumerate(zip(model.agents, arrays)):
        try:
            x = np.array(x, dtype=float)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"`{name}[{i}]` ({_where(model, i)}) must be a numeric array.") from None
        shape = (a.num_observations, model.num_choices)
        if x.shape != shape:
            axis = "choices j = a*(N+1) + c'" if model.has_modes else "successors"
            raise InvalidArgumentError(
                f"`{name}[{i}]` ({_where(model, i)}) must have shape {list(shape)} "
                f"(observations, {axis}), got {list(x.shape)}.")
        out.append(x)
    return out


def _epsilon_greedy_behavior_iv(model, q_obs, epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"`epsilon` must be a number in [0, 1], got {epsilon!r}.")
    epsilon = float(epsilon)
    if not 0.0 <= epsilon <= 1.0:
        raise InvalidArgumentError(f"`epsilon` must lie in [0, 1], got {epsilon!r}.")
    out = _per_agent_arrays(model, q_obs, "q_obs")
    for i, (adm, q) in enumerate(zip(model.choice_admissible, out)):
        bad = ~np.isfinite(q) & adm[None, :]
        if bad.any():
            o, c = np.argwhere(bad)[0]
            what = "choices" if model.has_modes else "successors"
            col = f"j={c}" if model.has_modes else f"c'={c}"
            raise InvalidArgumentError(
                f"`q_obs[{i}]` ({_where(model, i)}) must be finite on admissible {what}: "
                f"entry [o={o}, {col}] is {float(q[o, c])!r}.")
    return out, epsilon


def epsilon_greedy_behavior(model: ICSMDP, q_obs: Sequence[np.ndarray],
                            epsilon: float) -> list[np.ndarray]:
    """Epsilon-greedy behavior of per-agent values ``q_obs[i][o, c']``.

    ``b_i(c' | o) = eps/|adm_i| + (1 - eps) [c' = greedy_i(o)]`` on admissible
    ``c'`` and 0 elsewhere; ``greedy_i(o)`` is the lowest admissible index
    within ``1e-10`` of the admissible maximum (:func:`solvers.common.greedy`).
    With modes, ``c'`` reads as the choice ``j = a*(N+1) + c'`` throughout.

    Parameters
    ----------
    model : ICSMDP
    q_obs : list of array_like, one per agent, shape ``(nO_i, J)`` (``J = N+1`` without modes)
        Values on inadmissible choices are ignored (may be ``nan``).
    epsilon : float in ``[0, 1]``

    Raises
    ------
    InvalidArgumentError
        Wrong count or shape, a non-finite admissible value, ``epsilon`` outside ``[0, 1]``.
    """
    q_obs, epsilon = _epsilon_greedy_behavior_iv(model, q_obs, epsilon)
    out = []
    for adm, q, u in zip(model.choice_admissible, q_obs, uniform_behavior(model)):
        adm = np.broadcast_to(adm, q.shape)
        g = greedy(np.where(adm, q, 0.0), adm)
        b = epsilon * u
        b[np.arange(q.shape[0]), g] += 1.0 - epsilon
        out.append(b)
    return out


def validate_behavior(model: ICSMDP, behavior: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    """Check a behavior policy and return it as float arrays (``None`` -> uniform).

    Requirements, checked in this order: one array per agent; shape
    ``(nO_i, N+1)`` (``(nO_i, J)`` over the choices ``j = a*(N+1) + c'`` with modes);
    finite; non-negative; zero on inadmissible successors (choices); each row sums
    to 1 within ``1e-9``.

    Raises
    ------
    InvalidArgumentError
        Naming the agent, and the observation and successor at fault.
    """
    if behavior is None:
        return uniform_behavior(model)
    out = _per_agent_arrays(model, behavior, "behavior")
    for i, (adm, b) in enumerate(zip(model.choice_admissible, out)):
        where = _where(model, i)
        if not np.all(np.isfinite(b)):
            o, c = np.argwhere(~np.isfinite(b))[0]
            raise InvalidArgumentError(
                f"`behavior[{i}]` ({where}) must be finite: entry [o={o}, c'={c}] is {float(b[o, c])!r}.")
        if np.any(b < 0):
            o, c = np.argwhere(b < 0)[0]
            raise InvalidArgumentError(
                f"`behavior[{i}]` ({where}) must be non-negative: entry [o={o}, c'={c}] is {float(b[o, c])!r}.")
        bad = (b > 0) & ~adm[None, :]
        if bad.any():
            o, c = np.argwhere(bad)[0]
            what = "choice" if model.has_modes else "successor"
            raise InvalidArgumentError(
                f"`behavior[{i}]` ({where}) puts mass {float(b[o, c])!r} on inadmissible {what} "
                f"{_choice_name(model, c)} at observation o={o}.")
        sums = b.sum(axis=1)
        off = np.abs(sums - 1.0) > ROW_SUM_TOL
        if off.any():
            o = int(np.flatnonzero(off)[0])
            raise InvalidArgumentError(
                f"rows of `behavior[{i}]` ({where}) must sum to 1: observation o={o} sums to "
                f"{float(sums[o])!r}.")
    return out


def epoch_behavior(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """``out[f, i, c'] = b_i(c' | phi_i(m, l_i))`` on full epoch states ``s = f*N + i``.

    Parameters
    ----------
    behavior : list of ndarray ``(nO_i, J)`` or None (uniform)

    Returns
    -------
    ndarray, shape ``(num_full_states, N, J)`` (``J = N+1`` without modes; choice
    ``j = a*(N+1) + c'`` with modes)
    """
    behavior = validate_behavior(model, behavior)
    obs = epoch_observations(model)
    out = np.empty(obs.shape + (model.num_choices,))
    for i, b in enumerate(behavior):
        out[:, i, :] = b[obs[:, i]]
    return out


def state_behavior(model: ICSMDP | EpochModel, behavior=None) -> np.ndarray:
    """``b(c' | s)`` on every epoch state: shape ``(num_epoch_states, N+1)``, rows summing to 1.

    A primitive model: :func:`epoch_behavior` flattened (``s = f*N + i``; ``(n, J)``
    over the choices with modes). An explicit
    epoch model (SPEC section 10): ``None`` is uniform over each state's *own*
    admissible set; a list of per-agent arrays ``(nO_i, N+1)`` over the (compacted)
    observations is read through ``state_observation``; an array ``(S, N+1)`` is
    taken as given. Mass on a successor inadmissible at a state is an error naming
    the state's label and agent.
    """
    if isinstance(model, ICSMDP):
        return epoch_behavior(model, behavior).reshape(-1, model.num_choices)
    S, N1 = model.num_epoch_states, model.num_successors
    adm = np.asarray(model.admissible, dtype=bool)
    if behavior is None:
        return adm / adm.sum(axis=1, keepdims=True)
    if isinstance(behavior, np.ndarray) and behavior.shape == (S, N1):
        out = np.array(behavior, dtype=float)
    else:
        if len(behavior) != model.num_agents:
            raise InvalidArgumentError(
                f"`behavior` must hold one array per agent ({model.num_agents}), got {len(behavior)}.")
        out = np.empty((S, N1))
        for i, b in enumerate(behavior):
            b = np.asarray(b, dtype=float)
            if b.shape != (model.num_observations[i], N1):
                raise InvalidArgumentError(
                    f"`behavior[{i}]` must have shape ({model.num_observations[i]}, {N1}), got {b.shape}.")
            st = np.flatnonzero(model.state_agent == i)
            out[st] = b[model.state_observation[st]]
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise InvalidArgumentError("`behavior` must be finite and non-negative.")
    bad = (out > 0) & ~adm
    if bad.any():
        s, c = np.argwhere(bad)[0]
        d = model.describe_state(int(s))
        raise InvalidArgumentError(
            f"`behavior` puts mass {float(out[s, c])!r} on successor c'={c}, inadmissible at "
            f"state {s} (label {d['label']!r}, agent {d['agent']} `{d['agent_name']}`).")
    sums = out.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOL
    if off.any():
        s = int(np.flatnonzero(off)[0])
        raise InvalidArgumentError(f"rows of `behavior` must sum to 1: state {s} sums to {sums[s]!r}.")
    return out
