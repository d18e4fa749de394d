r"""Invocation-level simulation of an explicit epoch model for a batch of seeds (SPEC sections 7, 10).

An :class:`~icsmdp_theory.epoch_model.EpochModel` knows its invocations only
through the joint law ``P(k', tau | k, i, c')`` and the option reward
``R(k, i, c')``; there are no primitive steps to simulate. The
:class:`EpochBatchSimulator` nevertheless keeps the *primitive-step clock* of
:class:`~icsmdp_theory.simulate.BatchSimulator` and exposes the same surface
(``restart``, ``observe``, ``begin``, ``step``, ``handoff``, ``truncated`` and the
per-seed arrays ``agent``, ``successor``, ``G``, ``ret``, ``episode_start``,
``epoch_start``, ``episodes``, ``clock``), so one IC-Q loop
(:mod:`solvers.icq`) drives either model:

- :meth:`~EpochBatchSimulator.begin` commits seed ``n`` in epoch state ``s`` to
  ``c'`` and draws the whole invocation at once: one transition entry
  ``(k', tau)`` of the row ``(s, c')`` (a vectorized categorical draw over the
  sorted transition rows, :class:`~icsmdp_theory.simulate.CategoricalRows`,
  one uniform per seed);
- :meth:`~EpochBatchSimulator.step` advances the clock by one primitive step;
  a seed's invocation ends at the step where its ``tau`` has elapsed, and its
  ``ret`` is then set to ``R(s, c')`` (the invocation's expected discounted
  reward: the explicit model has no per-step rewards, so the message ``R``
  of SPEC section 7 is the option reward itself);
- :meth:`~EpochBatchSimulator.handoff` moves the seed to the next epoch state
  ``(k', c')``; after STOP the caller restarts from ``rho0``
  (:meth:`~EpochBatchSimulator.restart`).

The "local state" ``G`` of a seed is its epoch state ``s`` and
``tables.obs_of[s]`` the compacted observation ``o`` of ``s`` for its own agent
(:attr:`~icsmdp_theory.epoch_model.EpochModel.state_observation`), so the caller
looks observations up exactly as for a primitive model.

The horizon ``H`` (a primitive-step cap per episode, used by the caller's
truncation) is not part of an explicit model; it is an argument here
(default :data:`DEFAULT_HORIZON`).

Reproducibility. The simulator draws nothing itself: :meth:`begin` takes one
uniform per seed and :meth:`restart` one row of event uniforms per seed
(column 0 draws ``s0 ~ rho0``), both from the caller's per-seed streams
(:class:`~icsmdp_theory.simulate.SeedStreams`), so a seed's trajectory depends
only on its own streams, alone or inside any batch. Rows with a single entry
(deterministic laws) ignore their uniform, as in the primitive simulator.

Examples
--------
>>> import numpy as np
>>> from icsmdp_theory.epoch_model import EpochModel
>>> m = EpochModel(name="hand", gamma=0.9, agents=["solo"], labels=["a", "b"],
...     states=[[0, 0], [1, 0]], admissible=[[True, True], [True, True]],
...     rho0=[1.0, 0.0], reward=[[0.0, 1.0], [0.5, 2.0]],
...     transitions={"state": [0, 1, 1, 0, 1], "successor": [0, 0, 0, 1, 1],
...                  "next_label": [1, 0, 1, -1, -1], "tau": [1, 2, 1, 1, 3],
...                  "prob": [1.0, 0.5, 0.5, 1.0, 1.0]})
>>> sim = EpochBatchSimulator(m, 2)
>>> seeds = np.arange(2)
>>> sim.restart(seeds, np.zeros((2, 1)))           # both start in state 0 (label a)
>>> sim.begin(seeds, np.array([0, 1]), np.array([0.3, 0.3]))   # seed 0 hands to solo, seed 1 STOPs
>>> sim.step().tolist(), sim.ret.tolist()          # both invocations last one step
([True, True], [0.0, 1.0])
>>> sim.handoff(np.array([0]), np.array([0])); int(sim.G[0])   # seed 0 is now in (b, solo)
1
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.simulate import CategoricalRows, EpisodeClock
from icsmdp_theory.validation import positive_int

__all__ = ["EpochBatchSimulator", "EpochSimulationTables", "epoch_simulation_tables",
           "sample_epoch_invocations", "DEFAULT_HORIZON", "EPOCH_EVENT_COLUMNS"]

#: Primitive-step cap of an episode when the caller gives none (an explicit model has no ``H``).
DEFAULT_HORIZON = 10_000
#: Event uniforms read per restart (column 0: ``s0 ~ rho0``); callers may pass wider rows.
EPOCH_EVENT_COLUMNS = 1


@dataclass(frozen=True, eq=False)
class EpochSimulationTables:
    """Flat lookup tables of an explicit epoch model for :class:`EpochBatchSimulator`.

    Attributes
    ----------
    num_agents : int
    gamma : float
    obs_of : ndarray (S,)
        Compacted observation ``o`` of epoch state ``s`` for its own agent.
    state_agent : ndarray (S,)
        Active agent of ``s``.
    reward : ndarray (S*(N+1),)
        ``R(s, c')`` at ``s*(N+1) + c'`` (``nan`` where inadmissible).
    row_of : ndarray (S*(N+1),)
        Row of :attr:`transitions` of the pair ``(s, c')`` (``-1`` where inadmissible).
    transitions : CategoricalRows
        One row per admissible pair, over transition entries ``t`` (columns are
        indices into :attr:`next_state` and :attr:`tau`).
    next_state, tau : ndarray (num_transitions,)
        ``(k', c')`` as an epoch state (``-1`` for STOP) and the duration of entry ``t``.
    initial : CategoricalRows
        One row: ``rho0`` over epoch states.
    """

    num_agents: int
    gamma: float
    obs_of: np.ndarray
    state_agent: np.ndarray
    reward: np.ndarray
    row_of: np.ndarray
    transitions: CategoricalRows
    next_state: np.ndarray
    tau: np.ndarray
    initial: CategoricalRows


def epoch_simulation_tables(model: EpochModel) -> EpochSimulationTables:
    """The (cached) :class:`EpochSimulationTables` of ``model``."""
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__}.")
    return model.derived.get(("epoch_simulation_tables",), lambda: _tables(model), observation=True)


def _tables(model: EpochModel) -> EpochSimulationTables:
    C = model.num_successors
    pair = np.asarray(model.trans_state, np.int64) * C + np.asarray(model.trans_successor, np.int64)
    # entries are sorted by (state, successor, ...): each admissible pair is one contiguous run
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    pairs = pair[starts]
    indptr = np.r_[starts, pair.size]
    row_of = np.full(model.num_epoch_states * C, -1, np.int64)
    row_of[pairs] = np.arange(pairs.size)
    transitions = CategoricalRows(indptr, np.arange(pair.size), np.asarray(model.trans_prob, float))
    rho0 = np.asarray(model.rho0, float)
    initial = CategoricalRows(np.array([0, rho0.size]), np.arange(rho0.size), rho0)
    return EpochSimulationTables(
        num_agents=model.num_agents, gamma=model.gamma,
        obs_of=np.asarray(model.state_observation, np.int64),
        state_agent=np.asarray(model.state_agent, np.int64),
        reward=np.asarray(model.reward, float).reshape(-1), row_of=row_of,
        transitions=transitions, next_state=np.asarray(model.trans_next, np.int64),
        tau=np.asarray(model.trans_tau, np.int64), initial=initial)


class EpochBatchSimulator(EpisodeClock):
    """The invocation-level dynamics of an explicit epoch model for ``num_seeds`` independent seeds.

    Same surface as :class:`~icsmdp_theory.simulate.BatchSimulator` (see the
    module docstring), except that :meth:`begin` takes one uniform per seed (the
    draw of ``(k', tau)``) and :meth:`step` none.

    Parameters
    ----------
    model : EpochModel
    num_seeds : int
    horizon : int or None
        Primitive-step cap ``H`` of an episode (:meth:`truncated`); ``None``:
        :data:`DEFAULT_HORIZON`.

    Attributes (one entry per seed)
    -------------------------------
    agent : int array (S,)
        Active agent ``i``.
    G : int array (S,)
        Current epoch state ``s = (k, i)``.
    successor : int array (S,)
        Committed successor ``c'`` of the running epoch (``N`` = STOP).
    next_state, duration : int arrays (S,)
        The running invocation's drawn ``(k', c')`` (``-1`` after STOP) and ``tau``.
    ret : float array (S,)
        ``R(s, c')`` of the invocation that ended last (set when it ends).
    episode_start, epoch_start, epoch_end : int arrays (S,)
        Batch clock at the start of the episode, the start and the end of the epoch.
    episodes : int array (S,)
        Episodes started.
    clock : int
        Primitive steps taken by the batch.
    """

    #: :meth:`begin` reads one uniform per seed.
    begin_uniforms = True

    def __init__(self, model: EpochModel, num_seeds: int, *, horizon: int | None = None):
        self.tables = epoch_simulation_tables(model)
        self.num_seeds = S = int(num_seeds)
        self.num_agents = N = model.num_agents
        self.horizon = DEFAULT_HORIZON if horizon is None else positive_int("horizon", horizon)
        self.gamma = float(model.gamma)
        self.clock = 0
        self._c = N + 1
        self.agent = np.zeros(S, np.int64)
        self.G = np.zeros(S, np.int64)
        self.successor = np.full(S, N, np.int64)
        self.next_state = np.full(S, -1, np.int64)
        self.duration = np.zeros(S, np.int64)
        self.ret = np.zeros(S)
        self._pending = np.zeros(S)
        self.episode_start = np.zeros(S, np.int64)
        self.epoch_start = np.zeros(S, np.int64)
        # no invocation is running before the first begin: it never "ends"
        self.epoch_end = np.full(S, np.iinfo(np.int64).max, np.int64)
        self.episodes = np.zeros(S, np.int64)

    def restart(self, idx: np.ndarray, u: np.ndarray) -> None:
        """A fresh episode from ``rho0`` for seeds ``idx``; column 0 of ``u[n, :]`` draws ``s0``."""
        s0 = self.tables.initial.sample(np.zeros(idx.size, np.int64), u[:, 0])
        self.G[idx] = s0
        self.agent[idx] = self.tables.state_agent[s0]
        self.episode_start[idx] = self.clock
        self.episodes[idx] += 1

    def observe(self, idx: np.ndarray) -> np.ndarray:
        """Compacted observation ``o`` of the active agent of each seed in ``idx``."""
        return self.tables.obs_of[self.G[idx]]

    def begin(self, idx: np.ndarray, successors: np.ndarray, u: np.ndarray) -> None:
        """Commit seeds ``idx`` to ``successors`` (admissible at their states) and draw ``(k', tau)``.

        ``u`` holds one uniform per seed of ``idx``.

        Raises
        ------
        InvalidArgumentError
            A successor inadmissible at the seed's epoch state.
        """
        tb = self.tables
        pair = self.G[idx] * self._c + successors
        rows = tb.row_of[pair]
        if rows.size and rows.min() < 0:
            j = int(np.flatnonzero(rows < 0)[0])
            raise InvalidArgumentError(
                f"seed {int(idx[j])}: successor c'={int(successors[j])} is inadmissible at epoch "
                f"state {int(self.G[idx[j]])}.")
        t = tb.transitions.sample(rows, u)
        d = tb.tau[t]
        self.successor[idx] = successors
        self.next_state[idx] = tb.next_state[t]
        self.duration[idx] = d
        self._pending[idx] = tb.reward[pair]
        self.epoch_start[idx] = self.clock
        self.epoch_end[idx] = self.clock + d

    def step(self, *_unused) -> np.ndarray:
        """Advance the batch clock by one primitive step; returns ``ended`` (bool, S).

        A seed's invocation ends at the step where its drawn ``tau`` has elapsed;
        its ``ret`` becomes ``R(s, c')``. Uniforms passed (as to
        :meth:`BatchSimulator.step`) are ignored.
        """
        self.clock += 1
        ended = self.epoch_end == self.clock
        np.copyto(self.ret, self._pending, where=ended)
        return ended

    def handoff(self, idx: np.ndarray, successors: np.ndarray) -> None:
        """Pass control of seeds ``idx`` (ended, ``c' != STOP``) to the drawn ``(k', c')``."""
        self.G[idx] = self.next_state[idx]
        self.agent[idx] = successors

    def truncated(self) -> np.ndarray:
        """Seeds whose episode has reached the horizon ``H`` (bool, S)."""
        return self.episode_start <= self.clock - self.horizon


def sample_epoch_invocations(model: EpochModel, state: int, successor: int, num_samples: int, *,
                             rng=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample independent invocations from epoch state ``state`` committed to ``successor``.

    Runs :class:`EpochBatchSimulator` (``num_samples`` seeds placed at ``state``).

    Returns
    -------
    ret : ndarray (n,)
        ``R(s, c')`` (the same for every sample).
    tau : ndarray of int (n,)
    next_state : ndarray of int (n,)
        ``(k', c')`` as an epoch state, ``-1`` for STOP.
    """
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__}.")
    S = model.num_epoch_states
    if not (_is_index(state, S)):
        raise InvalidArgumentError(f"`state` must lie in 0..{S - 1}, got {state!r}.")
    if not (_is_index(successor, model.num_successors)):
        raise InvalidArgumentError(f"`successor` must lie in 0..{model.num_agents}, got {successor!r}.")
    if not model.admissible[state, successor]:
        raise InvalidArgumentError(f"`successor` {successor} is inadmissible at epoch state {state} "
                                   f"({model.describe_state(state)}).")
    n = positive_int("num_samples", num_samples)
    rng = np.random.default_rng(rng)
    sim = EpochBatchSimulator(model, n)
    idx = np.arange(n)
    sim.G[:] = state
    sim.agent[:] = model.state_agent[state]
    sim.begin(idx, np.full(n, successor), rng.random(n))
    tau = sim.duration.copy()
    for _ in range(int(tau.max())):
        sim.step()
    return sim.ret.copy(), tau, sim.next_state.copy()


def _is_index(value, size: int) -> bool:
    """Whether ``value`` is an integer in ``0..size-1`` (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < size
