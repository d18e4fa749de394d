r"""The epoch-level interface: what every exact estimator reads from a model (SPEC sections 3-6, 10).

Two kinds of model describe the same decision-epoch SMDP:

- the primitive IC-SMDP (:class:`~icsmdp_theory.model.ICSMDP`), through the
  exact option reduction (SPEC section 2), and
- the explicit epoch model (:class:`~icsmdp_theory.epoch_model.EpochModel`,
  SPEC section 10), whose laws ``P(k', tau | k, i, c')`` are given.

:func:`epoch_level` wraps either in an :class:`EpochLevel`; the AIS
construction, every gap and ``alpha`` form, the minimax gaps and the policy
loss (:mod:`estimators.ais`, :mod:`estimators.gaps`, :mod:`estimators.minimax`)
read *only* this interface, so each quantity has one implementation.

The interface is organized per active agent ``i``. Agent ``i``'s epoch states
are indexed by pairs ``(y, r)``: a *local* index ``y`` on which the agent's
observation, admissible set and option reward depend, and a *rest* index ``r``
on which they do not (the other agents' private states of a primitive model;
a single value for an explicit model). For a successor ``j != STOP`` the end
of the invocation is described by a *slot* ``l`` (the successor's frozen
private state of a primitive model; a single slot otherwise) and the
successor's observation ``o'``:

- ``pushed_end_kernel``: ``D_phi(o' | y, l, j) = sum_tau gamma^tau P(o', tau | y, l, j)``;
- ``duration_laws``: ``P(o', tau | y, l, j)`` one ``tau`` at a time.

Adaptable agents (issue 15): the action of agent ``i`` is the *choice*
``j = a*(N+1) + c'`` (mode ``a``, successor ``c'``) over ``J = max_i K_i (N+1)``
columns (:attr:`EpochLevel.num_choices`; ``J = N+1`` and ``j = c'`` without
modes). A block's ``admissible`` and ``reward`` have ``J`` columns (mode ``a``'s
option reduction in columns ``a*(N+1) .. a*(N+1) + N``), and a family's
``successors`` are choices sharing one mode (:attr:`SuccessorFamily.mode`): the
end law of choice ``j`` is mode ``a``'s, seen by successor ``c' = j mod (N+1)``.
An explicit epoch model has one mode.

Both kinds share the flat epoch-state index ``s`` (a primitive model's
``s = f*N + i``; an explicit model's sorted ``(k, i)`` list), so the oracle's
``Q*(s, c')``, reference laws and policies are arrays over ``s``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from icsmdp_theory.cells import cell_of_epoch_states
from icsmdp_theory.epoch import EpochSpace, MAX_EPOCH_STATES, initial_epoch_law
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import gamma_bar, option_reduction

__all__ = ["EpochLevel", "AgentBlock", "SuccessorFamily", "PrimitiveEpochs", "ExplicitEpochs",
           "epoch_level", "EPOCH_MODELS", "FITTED_COUNTS", "CELL_RULES", "cell_rule"]

#: The rules for a cell's admissible successors (:class:`EpochLevel`).
CELL_RULES = ("intersection", "union")

#: The model types the exact estimators accept.
EPOCH_MODELS = (ICSMDP, EpochModel)
#: ``counts["format"]`` of a model fitted to a trace (:func:`estimators.fit.fit_epoch_model`):
#: such a model's cells follow the ``"union"`` rule (:class:`EpochLevel`).
FITTED_COUNTS = "icsmdp-fit-counts/1"


@dataclass(frozen=True, eq=False)
class AgentBlock:
    """Agent ``i``'s epoch states as ``(y, r)`` pairs.

    Attributes
    ----------
    agent : int
    observation : ndarray of int, shape (nY,)
        ``o = phi_i`` of local state ``y`` (compacted labels ``0..nO_i-1``).
    admissible : ndarray of bool, shape (nY, J)
        The state's own admissible choices ``j = a*(N+1) + c'`` (``J = N+1``, ``j = c'``
        without modes).
    reward : ndarray, shape (nY, J)
        Option reward ``R_{i,a}(y, c')`` of mode ``a`` (any value where inadmissible).
    epoch_state : ndarray of int, shape (nY, nRest)
        Flat epoch-state index of ``(y, r)``.
    """

    agent: int
    observation: np.ndarray
    admissible: np.ndarray
    reward: np.ndarray
    epoch_state: np.ndarray

    @property
    def num_local(self) -> int:
        return int(self.observation.shape[0])

    @property
    def num_rest(self) -> int:
        return int(self.epoch_state.shape[1])


@dataclass(frozen=True, eq=False)
class SuccessorFamily:
    """Choices ``j`` of agent ``i`` whose end laws are equal (computed once).

    Attributes
    ----------
    key : bytes
        Equal keys (for the same agent) mean equal laws.
    successors : tuple of int
        The choices ``j = a*(N+1) + c'`` (``c' != STOP``, all with mode ``a = mode``;
        ``j = c'`` without modes).
    num_slots : int
        ``num_l``: slots of the successor's frozen state.
    num_observations : int
        ``nO_j``.
    pushed : ndarray, shape (nY, num_l, nO_j)
        ``D_phi``.
    mode : int
        The mode whose option reduction gives the laws (0 without modes).
    """

    key: bytes
    successors: tuple
    num_slots: int
    num_observations: int
    pushed: np.ndarray
    mode: int = 0


class EpochLevel:
    """Common surface of :class:`PrimitiveEpochs` and :class:`ExplicitEpochs`.

    ``cell_rule`` says which successors a cell admits when its states' own sets
    differ: ``"intersection"`` (SPEC section 10: only what every state of the cell
    admits) or ``"union"`` (a fitted model: its states' sets are the successors the
    trace happened to show, so a cell admits what any of its states was seen to
    use, and each state counts for the successors it has; see :data:`FITTED_COUNTS`).
    With equal sets within every cell (every primitive model) both rules agree.
    """

    cell_rule: str = "intersection"

    model: object
    num_agents: int
    num_epoch_states: int
    gamma: float
    num_observations: tuple
    #: ``N + 1``
    num_successors: int
    #: ``J = max_i K_i (N+1)``: the choice dimension (``N + 1`` without modes)
    num_choices: int
    #: ``(K_0, ..., K_{N-1})``
    num_modes: tuple

    def successor_of(self, j: int) -> int:
        """The successor ``c' = j mod (N+1)`` of choice ``j``."""
        return int(j) % self.num_successors

    def mode_of(self, j: int) -> int:
        """The mode ``a = j // (N+1)`` of choice ``j``."""
        return int(j) // self.num_successors

    def agent_names(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def block(self, i: int) -> AgentBlock:  # pragma: no cover - overridden
        raise NotImplementedError

    def families(self, i: int) -> list[SuccessorFamily]:  # pragma: no cover - overridden
        raise NotImplementedError

    def duration_laws(self, i: int, family: SuccessorFamily) -> Iterator[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def slot_weights(self, i: int, j: int, w: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def describe(self, i: int, y: int, successor: int, slot: int | None = None) -> dict:  # pragma: no cover
        raise NotImplementedError

    def gamma_bar(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def epoch_cells(self, offsets: np.ndarray) -> np.ndarray:
        """Flat cell index of every epoch state, shape ``(S,)``."""
        out = np.empty(self.num_epoch_states, dtype=np.int64)
        for i in range(self.num_agents):
            b = self.block(i)
            out[b.epoch_state] = (offsets[i] + b.observation)[:, None]
        return out

    def initial_law(self) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


class PrimitiveEpochs(EpochLevel):
    """The epoch level of a primitive IC-SMDP through its option reduction (SPEC section 2)."""

    def __init__(self, model: ICSMDP, *, max_epoch_states: int = MAX_EPOCH_STATES):
        self.model = model
        self.space = EpochSpace(model, max_epoch_states=max_epoch_states)
        self.num_agents = model.num_agents
        self.num_epoch_states = model.num_epoch_states
        self.gamma = model.gamma
        self.num_observations = tuple(model.num_observations)
        self.num_successors = model.num_successors
        self.num_choices = model.num_choices
        self.num_modes = tuple(model.num_modes)
        self._blocks: dict = {}
        self._families: dict = {}

    def agent_names(self) -> list[str]:
        return list(self.model.agent_names())

    def block(self, i: int) -> AgentBlock:
        if i not in self._blocks:
            model = self.model
            S, J = model.num_successors, model.num_choices
            reds = [option_reduction(model, i, a) for a in range(model.num_modes[i])]
            nY = reds[0].num_local_states
            _, m, l = model.local_decode(i, np.arange(nY))
            f = self.space.full_of_view[i].reshape(nY, -1)
            adm = np.broadcast_to(model.choice_admissible[i], (nY, J))
            if J == S:                   # one mode: today's array
                reward = reds[0].option_reward()
            else:                        # mode a in columns a*S .. a*S + N; zeros past K_i
                reward = np.zeros((nY, J))
                for a, red in enumerate(reds):
                    reward[:, a * S:(a + 1) * S] = red.option_reward()
            self._blocks[i] = AgentBlock(agent=i, observation=model.agents[i].observation[m, l],
                                         admissible=adm, reward=reward,
                                         epoch_state=f * model.num_agents + i)
        return self._blocks[i]

    def _labels(self, i: int) -> np.ndarray:
        model = self.model
        nY = option_reduction(model, i, 0).num_local_states
        _, m, l = model.local_decode(i, np.arange(nY))
        return m * model.agents[i].num_private + l

    def families(self, i: int) -> list[SuccessorFamily]:
        """Successors grouped by equal label matrices; ``D`` pushed through each group's labels.

        Either one sparse solve per group (few columns) or one pushforward of the end
        kernel onto the ``(m', l'_i)`` labels, whichever has fewer columns. With modes,
        one set of groups per mode ``a`` (mode ``a``'s reduction; choices ``a*(N+1) + c'``).
        """
        if i in self._families:
            return self._families[i][0]
        model = self.model
        N, S = model.num_agents, model.num_successors
        labels = self._labels(i)
        nL_i = model.agents[i].num_private
        groups: dict[bytes, list] = {}
        H_of = {}
        for c in range(N):
            if not model.admissible[i, c]:
                continue
            H = _label_matrix(model, i, c)
            key = H.tobytes() + bytes(str(H.shape), "ascii")
            H_of[key] = H
            groups.setdefault(key, []).append(c)
        total_cols = sum(H_of[k].shape[1] for k in groups)
        out = []
        H_fam = {}                       # family key -> label matrix
        for a in range(model.num_modes[i]):
            red = option_reduction(model, i, a)
            nY = red.num_local_states
            if total_cols <= model.num_interface * nL_i:
                pushed = {k: red.solve_continue(red.end_matrix @ H_of[k][labels]) for k in groups}
            else:
                dlab = red.end_kernel_pushforward(labels, model.num_interface * nL_i)
                pushed = {k: dlab @ H_of[k] for k in groups}
            for key, cs in groups.items():
                c = cs[0]
                num_l = model.agents[c].num_private if c != i else 1
                num_o = model.num_observations[c]
                fkey = key if a == 0 else key + b"|mode %d" % a
                H_fam[fkey] = H_of[key]
                out.append(SuccessorFamily(key=fkey, successors=tuple(a * S + c for c in cs),
                                           num_slots=num_l, num_observations=num_o,
                                           pushed=pushed[key].reshape(nY, num_l, num_o), mode=a))
        self._families[i] = (out, H_fam, labels)
        return out

    def duration_laws(self, i: int, family: SuccessorFamily) -> Iterator[np.ndarray]:
        """``P(o', tau | y, l_j) = [(Kbar diag(1-beta))^(tau-1) Kbar diag(beta) H](y, (l_j, o'))``."""
        self.families(i)
        _, H_of, labels = self._families[i]
        red = option_reduction(self.model, i, family.mode)
        Hy = H_of[family.key][labels]
        nY = Hy.shape[0]
        cont = red.continue_matrix_undiscounted
        term = red.end_matrix_undiscounted @ Hy
        while True:
            yield term.reshape(nY, family.num_slots, family.num_observations)
            term = cont @ term

    def slot_weights(self, i: int, j: int, w: np.ndarray) -> np.ndarray:
        """Reference weights ``w[y, r]`` summed to ``[y, l_c]`` (``[y, 1]`` for ``c == i``),
        ``c = j mod (N+1)`` the successor of choice ``j``."""
        j = self.successor_of(j)
        if j == i:
            return w.sum(axis=1)[:, None]
        rest = tuple(a.num_private for k, a in enumerate(self.model.agents) if k != i)
        pos = j if j < i else j - 1
        w = w.reshape((w.shape[0],) + rest)
        axes = tuple(1 + k for k in range(len(rest)) if k != pos)
        return w.sum(axis=axes) if axes else w

    def describe(self, i: int, y: int, successor: int, slot: int | None = None) -> dict:
        """A full epoch state ``{x, m, l, agent, successor}`` (other private states 0).

        ``successor`` is a choice ``j = a*(N+1) + c'``; with modes the dict also names
        the mode: ``mode`` (``a``) and ``mode_name`` (``None`` for an unnamed mode).
        """
        model = self.model
        a, successor = self.mode_of(successor), self.successor_of(successor)
        x, m, l_i = (int(v) for v in model.local_decode(i, int(y)))
        l = [0] * model.num_agents
        l[i] = l_i
        if slot is not None and successor != i and successor < model.num_agents:
            l[successor] = int(slot)
        out = {"x": x, "m": m, "l": l, "agent": int(i), "successor": int(successor)}
        if model.has_modes:
            names = model.agents[i].modes
            out["mode"] = a
            out["mode_name"] = None if names is None else names[a]
        return out

    def gamma_bar(self) -> float:
        return float(gamma_bar(self.model))

    def epoch_cells(self, offsets: np.ndarray) -> np.ndarray:
        return cell_of_epoch_states(self.model).reshape(-1)

    def initial_law(self) -> np.ndarray:
        return initial_epoch_law(self.model).reshape(-1)


class ExplicitEpochs(EpochLevel):
    """The epoch level of an explicit epoch model (SPEC section 10): laws read off the table."""

    def __init__(self, model: EpochModel, *, max_epoch_states: int = MAX_EPOCH_STATES):
        if model.num_epoch_states > max_epoch_states:
            raise InvalidArgumentError(
                f"the exact methods need at most {max_epoch_states:,} epoch states; this model "
                f"has {model.num_epoch_states:,}.")
        self.model = model
        self.num_agents = model.num_agents
        self.num_epoch_states = model.num_epoch_states
        self.gamma = model.gamma
        self.num_observations = tuple(model.num_observations)
        self.num_successors = self.num_choices = model.num_agents + 1
        self.num_modes = (1,) * model.num_agents
        counts = model.counts or {}
        self.cell_rule = "union" if counts.get("format") == FITTED_COUNTS else "intersection"
        self._states = [np.flatnonzero(model.state_agent == i) for i in range(model.num_agents)]
        self._local = np.empty(model.num_epoch_states, dtype=np.int64)
        for st in self._states:
            self._local[st] = np.arange(st.size)
        self._blocks: dict = {}
        self._families: dict = {}

    def agent_names(self) -> list[str]:
        return list(self.model.agent_names)

    def block(self, i: int) -> AgentBlock:
        if i not in self._blocks:
            st = self._states[i]
            m = self.model
            self._blocks[i] = AgentBlock(agent=i, observation=m.state_observation[st],
                                         admissible=m.admissible[st], reward=m.reward[st],
                                         epoch_state=st[:, None])
        return self._blocks[i]

    def _entries(self, i: int, j: int):
        """Transition entries of agent ``i``'s states committed to ``j``: ``(y, o', tau, p)``."""
        m = self.model
        if not hasattr(self, "_pair_order"):       # entries grouped by (agent, successor), once
            group = m.state_agent[m.trans_state] * m.num_successors + m.trans_successor
            self._pair_order = np.argsort(group, kind="stable")
            self._pair_bounds = np.searchsorted(group[self._pair_order],
                                                np.arange(m.num_agents * m.num_successors + 1))
        g = i * m.num_successors + j
        sel = self._pair_order[self._pair_bounds[g]:self._pair_bounds[g + 1]]
        y = self._local[m.trans_state[sel]]
        o2 = m.state_observation[m.trans_next[sel]]
        return y, o2, m.trans_tau[sel], m.trans_prob[sel]

    def families(self, i: int) -> list[SuccessorFamily]:
        """One family per successor ``j != STOP`` admissible somewhere in agent ``i``'s states."""
        if i not in self._families:
            st = self._states[i]
            nY = st.size
            out = []
            for j in range(self.num_agents):
                if not self.model.admissible[st, j].any():
                    continue
                y, o2, tau, p = self._entries(i, j)
                nO = self.num_observations[j]
                pushed = np.zeros((nY, 1, nO))
                np.add.at(pushed, (y, 0, o2), p * self.gamma ** tau.astype(float))
                out.append(SuccessorFamily(key=b"successor %d" % j, successors=(j,), num_slots=1,
                                           num_observations=nO, pushed=pushed))
            self._families[i] = out
        return self._families[i]

    def duration_laws(self, i: int, family: SuccessorFamily) -> Iterator[np.ndarray]:
        """``P(o', tau | y, j)`` for ``tau = 1, 2, ...`` up to the largest ``tau`` in the table,
        then zeros (a state that does not admit ``j`` has an all-zero law)."""
        (j,) = family.successors
        y, o2, tau, p = self._entries(i, j)
        nY = self._states[i].size
        order = np.argsort(tau, kind="stable")
        y, o2, tau, p = y[order], o2[order], tau[order], p[order]
        t_max = int(tau.max(initial=0))
        bounds = np.searchsorted(tau, np.arange(1, t_max + 2))
        for t in range(1, t_max + 1):
            law = np.zeros((nY, 1, family.num_observations))
            a, b = bounds[t - 1], bounds[t]
            np.add.at(law, (y[a:b], 0, o2[a:b]), p[a:b])
            yield law
        while True:
            yield np.zeros((nY, 1, family.num_observations))

    def slot_weights(self, i: int, j: int, w: np.ndarray) -> np.ndarray:
        return w.sum(axis=1)[:, None]

    def describe(self, i: int, y: int, successor: int, slot: int | None = None) -> dict:
        s = int(self._states[i][int(y)])
        k = int(self.model.state_label[s])
        return {"label": self.model.labels[k], "agent": int(i), "successor": int(successor)}

    def gamma_bar(self) -> float:
        return float(self.model.gamma_bar())

    def initial_law(self) -> np.ndarray:
        return np.asarray(self.model.rho0, dtype=float)


def cell_rule(model: ICSMDP | EpochModel) -> str:
    """The model's rule for a cell's admissible successors (see :class:`EpochLevel`).

    ``"union"`` for an explicit model fitted from a trace (its ``counts`` carry
    :data:`FITTED_COUNTS`), ``"intersection"`` otherwise (SPEC section 10). Read
    with :func:`icsmdp_theory.cells.cell_admissible` ``(model, rule=cell_rule(model))``.
    """
    if isinstance(model, EpochModel) and (model.counts or {}).get("format") == FITTED_COUNTS:
        return "union"
    return "intersection"


def epoch_level(model: ICSMDP | EpochModel, *, max_epoch_states: int = MAX_EPOCH_STATES
                ) -> EpochLevel:
    """The :class:`EpochLevel` of ``model`` (cached on the model's observation store).

    A model with adaptable agents has choices ``j = a*(N+1) + c'`` (module docstring).

    Raises
    ------
    InvalidArgumentError
        ``model`` is neither an :class:`ICSMDP` nor an :class:`EpochModel`.
    StateSpaceTooLargeError
        More epoch states than ``max_epoch_states``.
    """
    if isinstance(model, ICSMDP):
        kind = PrimitiveEpochs
    elif isinstance(model, EpochModel):
        kind = ExplicitEpochs
    else:
        raise InvalidArgumentError(
            f"`model` must be an ICSMDP or an EpochModel, got {type(model).__name__}.")
    return model.derived.get(("epoch_level", max_epoch_states),
                             lambda: kind(model, max_epoch_states=max_epoch_states),
                             observation=True)


def _label_matrix(model: ICSMDP, i: int, j: int) -> np.ndarray:
    """0/1 matrix ``H[(m', l'_i), (l_j, o')]``: the successor ``j``'s observation of an end state.

    For ``j != i`` the successor's private state ``l_j`` is frozen (it is part of
    the rest of the full state), so there is one column block per ``l_j``:
    ``H[(m', l'_i), (l_j, o')] = 1[phi_j(m', l_j) = o']``. For ``j == i`` the
    successor is the agent itself and observes its new private state:
    ``H[(m', l'_i), (0, o')] = 1[phi_i(m', l'_i) = o']``.
    """
    nM = model.num_interface
    nL_i = model.agents[i].num_private
    phi_j = model.agents[j].observation
    nO = model.agents[j].num_observations
    if j == i:
        H = np.zeros((nM, nL_i, 1, nO))
        mm, ll = np.meshgrid(np.arange(nM), np.arange(nL_i), indexing="ij")
        H[mm, ll, 0, phi_j[mm, ll]] = 1.0
    else:
        nL_j = model.agents[j].num_private
        H = np.zeros((nM, nL_i, nL_j, nO))
        mm, lj = np.meshgrid(np.arange(nM), np.arange(nL_j), indexing="ij")
        H[mm, :, lj, phi_j[mm, lj]] = 1.0
    return H.reshape(nM * nL_i, -1)
