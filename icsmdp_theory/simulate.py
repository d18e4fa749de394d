"""Primitive-step simulation of an IC-SMDP for a batch of independent seeds (SPEC section 1).

Dynamics (commit-at-start semantics, SPEC section 1): a decision epoch starts
when agent ``i`` receives control; it observes ``o = phi_i(m, l_i)`` and
commits to a successor ``c'`` (chosen by the caller). Each primitive step then
draws ``a ~ pi_int[i](.|m, l_i)``, collects ``r(x, m, i, a, c')``, moves
``y = (x, m, l_i) -> y' ~ K[i][a](y, .)`` and ends the invocation with
probability ``beta_i(y')``. The epoch's duration is ``tau`` and its return
``R = sum_{s < tau} gamma^s r_{t_k + s}``. At the end control passes to ``c'``
(the private states of the other agents were frozen meanwhile) or, for
``c' = STOP``, the episode ends and the next starts from ``rho0``. An episode
holds at most ``H`` primitive steps (:meth:`BatchSimulator.truncated` flags
the seeds that reached it); what happens to an invocation cut there is the
learner's choice (:mod:`solvers.icq` discards it and restarts).

Adaptable agents (issue 15). With ``BatchSimulator(model, S, modes=True)``
the caller commits a choice ``j = a*(N+1) + c'`` instead of ``c'``: mode ``a``
draws the invocation's actions from ``pi_i^a`` (one block of action rows per
mode in :class:`SimulationTables`), rewards, kernels and end probabilities are
the agent's own, and control passes to ``c'``. The callers that commit
successors only (``icsmdp simulate``, ``simulate-trace``) keep refusing a
model with modes (:func:`simulation_tables`).

Vectorization. One call of :meth:`BatchSimulator.step` advances every seed of
the batch by one primitive step with about twenty numpy operations, whatever
the agents: all agents' local states are concatenated into one global index
``G = offset_i + y`` and all sampling tables are flat. A categorical row
``r`` (a row of ``pi_int``, of a kernel ``K[i][a]``, of ``rho0``) is sampled
from the global array of cumulative ends, where row ``r``'s entries are
``r + (within-row cumulative probability)`` and its last entry is exactly
``r + 1``: a uniform ``u`` in ``[0, 1)`` selects the first entry whose end
exceeds ``r + u``, i.e. ``searchsorted(ends, r + u, side="right")`` clipped
to the row (against rounding of ``r + u`` up to ``r + 1``); for large
batches the same entry is found by a bisection confined to each row, which
avoids ``searchsorted``'s cache misses over the whole array
(:class:`CategoricalRows`). Zero-probability entries are dropped,
so an entry of positive probability ``p`` is drawn with probability ``p`` up
to the rounding of ``r + u`` (relative error ``~ r * 2**-52``).

Reproducibility. Seed ``k`` of a run with base seed ``seed`` owns
``SeedSequence(seed).spawn(n)[k]`` (:func:`seed_sequences`) and its own
generators (:class:`SeedStreams`): every primitive step consumes one row of
:data:`STEP_COLUMNS` uniforms per seed, filled per seed in blocks and consumed
in lockstep, and every episode start consumes one row of
``num_agents + 2`` uniforms from a second per-seed stream. What a seed draws
thus depends only on its own history, so seed ``k`` run alone follows exactly
the trajectory it follows inside any batch.

Examples
--------
>>> import numpy as np
>>> from icsmdp_theory.examples import load_example
>>> model = load_example("tiny-handoff")
>>> # planner at m=1 with successor STOP: one step ends w.p. 0.5 (reward 0 at m1);
>>> # E[gamma^tau] = g(m1) = 0.675/0.775 from the option reduction.
>>> ret, tau, end = sample_invocations(model, 0, 1, 2, 200_000, rng=0)
>>> bool(abs(np.mean(0.9 ** tau) - 0.675 / 0.775) < 5e-3)
True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP, require_single_mode

__all__ = ["BatchSimulator", "EpisodeClock", "SeedStreams", "SimulationTables", "CategoricalRows", "seed_sequences",
           "simulation_tables", "sample_invocations", "STEP_COLUMNS", "CHOICE_COLUMNS", "PRIMITIVE_COLUMNS"]

#: Uniform columns consumed per seed and primitive step: two for the
#: successor choice at an epoch start (``CHOICE_COLUMNS``), then the internal
#: action, the kernel row and the end-of-invocation coin.
STEP_COLUMNS = 5
#: Columns of a step's uniforms reserved for the behavior's choice of ``c'``.
CHOICE_COLUMNS = (0, 1)
#: Columns of a step's uniforms for :meth:`BatchSimulator.step` (action, kernel, end).
PRIMITIVE_COLUMNS = (2, 3, 4)


def seed_sequences(seed: int, seeds) -> list[np.random.SeedSequence]:
    """Per-seed ``SeedSequence`` objects: child ``k`` of ``SeedSequence(seed)``.

    ``seeds`` is a count ``n`` (children ``0..n-1``) or a sequence of child
    indices; child ``k`` equals ``SeedSequence(seed).spawn(n)[k]`` for every
    ``n > k``, so a subset of a batch reproduces those seeds exactly.

    >>> s = seed_sequences(7, 3)
    >>> s[2].generate_state(1).tolist() == np.random.SeedSequence(7).spawn(3)[2].generate_state(1).tolist()
    True
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        idx = range(int(seeds))
    else:
        idx = [int(k) for k in seeds]
    return [np.random.SeedSequence(seed, spawn_key=(k,)) for k in idx]


class SeedStreams:
    """Per-seed uniform streams, filled in blocks and consumed in lockstep.

    Seed ``k``'s sequence is split like ``spawn(3)`` (children with
    ``spawn_key + (j,)``, whatever was spawned from it before): child 0 is left to the
    caller (e.g. random initial parameters), child 1 feeds the *step* stream
    (one row of ``step_width`` uniforms per primitive step, for every seed at
    once) and child 2 the *event* stream (one row of ``event_width`` uniforms
    per event of that seed, e.g. an episode start; each seed has its own read
    position).

    Parameters
    ----------
    sequences : list of numpy.random.SeedSequence
        One per seed (see :func:`seed_sequences`).
    step_width, event_width : int
    block : int or None
        Rows per refill of the step stream (default: about 32 MB of buffer,
        between 16 and 1024 rows).

    Notes
    -----
    Each seed's generator fills its own ``[block, step_width]`` rows; one
    transposition then lays the block out ``[block, step_width, S]`` so that
    each column of a step is a contiguous length-``S`` array.
    """

    def __init__(self, sequences, *, step_width: int, event_width: int, block: int | None = None):
        # children derived from (entropy, spawn_key), never from spawn()'s mutable counter
        children = [[np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (j,),
                                            pool_size=ss.pool_size) for j in range(3)]
                    for ss in sequences]
        self.num_seeds = S = len(sequences)
        self._step_gens = [np.random.default_rng(c[1]) for c in children]
        self._event_gens = [np.random.default_rng(c[2]) for c in children]
        self.step_width, self.event_width = step_width, event_width
        if block is None:
            block = int(np.clip(4_000_000 // max(1, step_width * S), 16, 1024))
        self._block = block
        self._fill = np.empty((S, block * step_width))
        self._buf = None
        self._pos = block
        self._event_block = 256
        self._ebuf = np.empty((S, self._event_block, event_width))
        self._ebuf_rows = self._ebuf.reshape(S * self._event_block, event_width)  # a view
        self._eptr = np.full(S, self._event_block, dtype=np.int64)

    def step(self) -> np.ndarray:
        """The next step's uniforms, shape ``(step_width, S)`` (valid until the next refill)."""
        if self._pos == self._block:
            for k, g in enumerate(self._step_gens):
                g.random(out=self._fill[k])
            self._buf = np.ascontiguousarray(self._fill.T).reshape(
                self._block, self.step_width, self.num_seeds)
            self._pos = 0
        u = self._buf[self._pos]
        self._pos += 1
        return u

    def events(self, idx: np.ndarray) -> np.ndarray:
        """One fresh row of event uniforms for each seed in ``idx`` (distinct): ``(len(idx), event_width)``."""
        B = self._event_block
        ptr = self._eptr[idx]
        if ptr.max() >= B:
            empty = ptr == B
            for k in idx[empty]:
                self._event_gens[k].random(out=self._ebuf[k])
            ptr[empty] = 0
        self._eptr[idx] = ptr + 1
        return self._ebuf_rows[idx * B + ptr]


class CategoricalRows:
    """Rows of categorical laws, sampled for many rows at once by one ``searchsorted``.

    Parameters
    ----------
    indptr, cols, probs : CSR-like description of the rows (``probs`` of a
        row are normalized by their sum; zero entries are dropped).

    Examples
    --------
    >>> t = CategoricalRows.dense(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    >>> t.sample(np.array([0, 0, 1]), np.array([0.2, 0.7, 0.9])).tolist()
    [0, 1, 2]
    """

    def __init__(self, indptr: np.ndarray, cols: np.ndarray, probs: np.ndarray):
        indptr = np.asarray(indptr, dtype=np.int64)
        n_rows = indptr.size - 1
        row = np.repeat(np.arange(n_rows), np.diff(indptr))
        keep = probs > 0
        row, cols, probs = row[keep], np.asarray(cols)[keep], np.asarray(probs, float)[keep]
        counts = np.bincount(row, minlength=n_rows)
        if np.any(counts == 0):
            raise InvalidArgumentError("a sampling row has no positive probability.")
        indptr = np.concatenate([[0], np.cumsum(counts)])
        sums = np.bincount(row, weights=probs, minlength=n_rows)
        p = probs / sums[row]
        cs = np.cumsum(p)
        start = np.concatenate([[0.0], cs[indptr[1:-1] - 1]])
        ends = row + (cs - start[row])
        self.last = indptr[1:] - 1
        ends[self.last] = np.arange(1, n_rows + 1, dtype=float)
        self.ends = ends
        self.cols = np.ascontiguousarray(cols, dtype=np.int64)
        self.first = indptr[:-1]
        self.deterministic = bool(np.all(counts == 1))
        self.num_rows = n_rows
        #: bisection steps that locate an entry within the longest row
        self._steps = int(np.ceil(np.log2(counts.max()))) if n_rows else 0

    @classmethod
    def dense(cls, probs: np.ndarray, col_offset: int = 0) -> "CategoricalRows":
        probs = np.asarray(probs, float)
        n, k = probs.shape
        return cls(np.arange(0, n * k + 1, k), np.tile(np.arange(k) + col_offset, n), probs.ravel())

    def sample(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Column drawn in each row ``rows[j]`` by the uniform ``u[j]`` (broadcast together).

        The entry is the first of the row whose end exceeds ``rows + u``: one
        global ``searchsorted`` for few queries, a bisection confined to each
        row (``ceil(log2(longest row))`` vectorized steps) for many; both
        return the same entry.
        """
        if self.deterministic:
            return self.cols[rows]
        target = rows + u
        last = self.last[rows]
        if target.size < 256 or self._steps > 8:
            k = np.searchsorted(self.ends, target, side="right")
            np.minimum(k, last, out=k)
            return self.cols[k]
        lo, hi = np.broadcast_arrays(self.first[rows], last)
        lo, hi = lo.copy(), hi.copy()
        ends = self.ends
        for _ in range(self._steps):
            mid = (lo + hi) >> 1
            right = ends[mid] <= target
            lo = np.where(right, mid + 1, lo)
            hi = np.where(right, hi, mid)
        return self.cols[np.minimum(lo, hi)]


@dataclass(frozen=True, eq=False)
class SimulationTables:
    """Flat lookup tables of a model for :class:`BatchSimulator` (built once per model).

    The global local-state index is ``G = state_offset[i] + y`` with
    ``y = (x*nM + m)*nL_i + l``; the global action-row index is
    ``A = action_offset[i] + a*nY_i + y``.

    Attributes
    ----------
    num_xm : int
        ``nX * nM``.
    place : ndarray (N * nX * nM,)
        ``place[j*nX*nM + (x*nM + m)] = state_offset[j] + (x*nM + m)*nL_j``:
        ``G`` of agent ``j`` at ``(x, m)`` is ``place[...] + l_j``.
    xm_of, l_of : ndarray (sum nY_i,)
        Decoding of ``G`` into ``x*nM + m`` and ``l``.
    beta_of : ndarray (sum nY_i,)
        ``beta_i(y)`` at ``G``.
    obs_of : ndarray (sum nY_i,)
        ``phi_i(m, l)`` (agent-local label) at ``G``.
    reward : ndarray (sum nA_i nY_i * (N+1),)
        ``reward[A*(N+1) + c'] = r(x, m, i, a, c')``.
    actions, kernel, initial : categorical tables
        Rows ``k * mode_stride + G`` -> ``A`` (mode ``k``'s internal policy
        ``pi_i^k``; a one-mode model has only ``k = 0``, i.e. rows ``G``); rows
        ``A`` -> ``G'`` (``K[i][a]``); rows ``0`` (``(x, m)`` joint), ``1+j``
        (``l_j``), ``N+1`` (agent) of ``rho0``.
    num_modes : int
        ``max_i K_i``: blocks of action rows (1 without adaptable agents). An
        agent with ``K_i < max K`` repeats its mode 0 in the blocks ``k >= K_i``
        (never sampled: those choices are inadmissible).
    mode_stride : int
        ``sum_i nY_i``: the row offset of one mode block of ``actions``.
    """

    num_agents: int
    num_xm: int
    gamma: float
    horizon: int
    state_offset: np.ndarray
    place: np.ndarray
    xm_of: np.ndarray
    l_of: np.ndarray
    beta_of: np.ndarray
    obs_of: np.ndarray
    reward: np.ndarray
    actions: CategoricalRows
    kernel: CategoricalRows
    initial: CategoricalRows
    num_modes: int = 1
    mode_stride: int = 0


def simulation_tables(model: ICSMDP, *, modes: bool = False) -> SimulationTables:
    """The (cached) :class:`SimulationTables` of ``model``.

    ``modes=False`` (the callers that commit successors only: ``icsmdp
    simulate``, ``simulate-trace``) refuses a model with adaptable agents
    (:func:`~icsmdp_theory.model.require_single_mode`); ``modes=True`` (IC-Q,
    whose agents commit choices ``j = a*(N+1) + c'``) builds one block of
    action rows per mode. A one-mode model gets the same tables either way.
    """
    if not modes:
        require_single_mode(model, "the simulator (`icsmdp simulate`, `simulate-trace`)")
    return model.derived.get(("simulation_tables",), lambda: _simulation_tables(model),
                             observation=True)


def _simulation_tables(model: ICSMDP) -> SimulationTables:
    N, nX, nM = model.num_agents, model.num_latent, model.num_interface
    nYs = np.array([a.num_local_states for a in model.agents], dtype=np.int64)
    nAs = np.array([a.num_actions for a in model.agents], dtype=np.int64)
    nLs = np.array(model.num_private, dtype=np.int64)
    soff = np.concatenate([[0], np.cumsum(nYs)])
    aoff = np.concatenate([[0], np.cumsum(nYs * nAs)])
    xm_of, l_of, beta_of, obs_of, rewards = [], [], [], [], []
    K = max(model.num_modes)
    act_cols, act_p, k_counts, k_cols, k_p = [], [], [], [], []
    act_p_modes = [[] for _ in range(K)]
    for i, a in enumerate(model.agents):
        nY, nA = int(nYs[i]), int(nAs[i])
        x, m, l = model.local_decode(i, np.arange(nY))
        xm_of.append(x * nM + m), l_of.append(l)
        beta_of.append(model.end_probability_local(i))
        obs_of.append(a.observation[m, l])
        act_cols.append(aoff[i] + np.arange(nA)[None, :] * nY + np.arange(nY)[:, None])
        for k in range(K):  # (nY, nA) per mode; modes k >= K_i repeat mode 0 (never drawn)
            act_p_modes[k].append(model.policy_on_local_states(i, k if k < a.num_modes else 0))
        # reward rows in action-major order A = aoff + a*nY + y: r[x, m, a, c']
        rewards.append(np.swapaxes(a.reward[x, m], 0, 1).reshape(-1))
        for k in a.kernel:
            k_counts.append(np.diff(k.indptr))
            k_cols.append(k.indices + soff[i])
            k_p.append(k.data)
    nA_per_G = np.tile(np.repeat(nAs, nYs), K)
    act_cols = [c for _ in range(K) for c in act_cols]
    act_p = [p for block in act_p_modes for p in block]
    actions = CategoricalRows(np.concatenate([[0], np.cumsum(nA_per_G)]),
                           np.concatenate([c.ravel() for c in act_cols]),
                           np.concatenate([p.ravel() for p in act_p]))
    kernel = CategoricalRows(np.concatenate([[0], np.cumsum(np.concatenate(k_counts))]),
                          np.concatenate(k_cols), np.concatenate(k_p))
    rows = [model.rho_latent_interface.ravel()] + [a.rho_private for a in model.agents] + \
        [model.rho_agent]
    initial = CategoricalRows(np.concatenate([[0], np.cumsum([r.size for r in rows])]),
                           np.concatenate([np.arange(r.size) for r in rows]),
                           np.concatenate(rows))
    place = (soff[:N, None] + np.arange(nX * nM)[None, :] * nLs[:, None]).ravel()
    tables = SimulationTables(
        num_agents=N, num_xm=nX * nM, gamma=model.gamma, horizon=model.horizon,
        state_offset=soff, place=place, xm_of=np.concatenate(xm_of), l_of=np.concatenate(l_of),
        beta_of=np.concatenate(beta_of), obs_of=np.concatenate(obs_of),
        reward=np.concatenate(rewards), actions=actions, kernel=kernel, initial=initial,
        num_modes=K, mode_stride=int(soff[-1]))
    return tables


class EpisodeClock:
    """The clocks a batch simulator keeps per seed: ``clock`` (primitive steps of the batch),
    ``episode_start`` and ``epoch_start``; shared by :class:`BatchSimulator` and
    :class:`icsmdp_theory.epoch_simulate.EpochBatchSimulator`."""

    @property
    def t(self) -> np.ndarray:
        """Primitive steps in the current episode, per seed."""
        return self.clock - self.episode_start

    @property
    def tau(self) -> np.ndarray:
        """Primitive steps in the current epoch, per seed."""
        return self.clock - self.epoch_start


class BatchSimulator(EpisodeClock):
    """The primitive-step dynamics for ``num_seeds`` independent copies of an IC-SMDP.

    The simulator owns the environment's state per seed and nothing of the
    learners: it never sees a value estimate. The caller commits successors
    (:meth:`begin`), advances all seeds (:meth:`step`), and passes control at
    ended invocations (:meth:`handoff`) or restarts episodes (:meth:`restart`).
    Every call of :meth:`step` advances every seed by one primitive step and
    the batch clock by one.

    Parameters
    ----------
    model : ICSMDP
    num_seeds : int
    modes : bool
        ``False`` (default): :meth:`begin` takes successors ``c'`` and a model
        with adaptable agents is refused. ``True``: :meth:`begin` takes choices
        ``j = a*(N+1) + c'`` (issue 15): mode ``a`` fixes the internal policy
        ``pi_i^a`` of the invocation and control passes to ``c' = j mod (N+1)``;
        for a one-mode model ``j = c'`` and nothing changes.

    Attributes (one entry per seed)
    -------------------------------
    agent : int array (S,)
        Active agent ``i``.
    successor : int array (S,)
        Committed successor ``c'`` of the running epoch (``N`` = STOP).
    mode : int array (S,)
        Committed mode ``a`` of the running epoch (0 without adaptable agents).
    private : int array (S, N)
        Private states ``l_j``; the active agent's entry is stale during an
        invocation (its current value is in ``G``) and written back at the end.
    G : int array (S,)
        Global local-state index of the active agent (see :class:`SimulationTables`).
    ret, discount : float arrays (S,)
        ``R = sum_{s<tau} gamma^s r`` of the running epoch and ``gamma^tau``.
    episode_start, epoch_start : int arrays (S,)
        Batch clock at the start of the episode and of the epoch.
    episodes : int array (S,)
        Episodes started.
    clock : int
        Primitive steps taken by the batch (each seed took as many).
    """

    def __init__(self, model: ICSMDP, num_seeds: int, *, modes: bool = False):
        self.tables = tb = simulation_tables(model, modes=modes)
        self.num_seeds = S = int(num_seeds)
        self.num_agents = N = tb.num_agents
        self.horizon = tb.horizon
        self.gamma = tb.gamma
        self.clock = 0
        self._c = N + 1
        init = tb.initial
        single = init.first == init.last  # rows of rho0 with one outcome
        self._initial_random = np.flatnonzero(~single)
        self._initial_fixed = np.where(single, init.cols[init.first], 0)
        self.agent = np.zeros(S, np.int64)
        self.successor = np.full(S, N, np.int64)
        self.mode = np.zeros(S, np.int64)
        #: several modes: the action row of seed n is ``mode_row[n] + G[n]``
        self._modes = tb.num_modes > 1
        self._mode_row = np.zeros(S, np.int64)
        self.private = np.zeros((S, N), np.int64)
        self._private_flat = self.private.reshape(-1)  # a view: private[s, j] at s*N + j
        self.G = np.zeros(S, np.int64)
        self.ret = np.zeros(S)
        self.discount = np.ones(S)
        self.episode_start = np.zeros(S, np.int64)
        self.epoch_start = np.zeros(S, np.int64)
        self.episodes = np.zeros(S, np.int64)

    # ------------------------------------------------------------ epochs
    def _place(self, idx: np.ndarray, ag: np.ndarray, xm: np.ndarray) -> None:
        """``G`` of seeds ``idx`` for active agents ``ag`` at ``x*nM + m = xm``."""
        tb = self.tables
        self.G[idx] = tb.place[ag * tb.num_xm + xm] + self._private_flat[idx * self.num_agents + ag]

    def restart(self, idx: np.ndarray, u: np.ndarray) -> None:
        """Start a fresh episode from ``rho0`` for seeds ``idx`` with uniforms ``u[n, N+2]``.

        Column ``j`` of ``u`` draws row ``j`` of the initial table (``(x, m)``,
        then ``l_0..l_{N-1}``, then the agent); rows with a single outcome
        ignore their column.
        """
        N = self.num_agents
        init = self.tables.initial
        draws = np.empty((idx.size, N + 2), np.int64)
        draws[:] = self._initial_fixed
        rand = self._initial_random
        if rand.size:
            draws[:, rand] = init.sample(rand, u[:, rand])
        self.private[idx] = draws[:, 1:N + 1]
        ag, xm = draws[:, N + 1], draws[:, 0]
        self.agent[idx] = ag
        self._place(idx, ag, xm)
        self.episode_start[idx] = self.clock
        self.episodes[idx] += 1

    def observe(self, idx: np.ndarray) -> np.ndarray:
        """``o = phi_i(m, l_i)`` of the active agent of each seed in ``idx`` (agent-local labels)."""
        return self.tables.obs_of[self.G[idx]]

    def begin(self, idx: np.ndarray, successors: np.ndarray) -> None:
        """Commit seeds ``idx`` to ``successors`` and start their epoch (``tau = 0``, ``R = 0``).

        With adaptable agents (``modes=True``) ``successors`` holds the choices
        ``j = a*(N+1) + c'``: the seed runs mode ``a``'s internal policy and
        hands over to ``c'``.
        """
        if self._modes:
            a, successors = np.divmod(successors, self._c)
            self.mode[idx] = a
            self._mode_row[idx] = a * self.tables.mode_stride
        self.successor[idx] = successors
        self.epoch_start[idx] = self.clock
        self.ret[idx] = 0.0
        self.discount[idx] = 1.0

    def step(self, u_action: np.ndarray, u_kernel: np.ndarray, u_end: np.ndarray) -> np.ndarray:
        """One primitive step of every seed; returns ``ended`` (bool, S): the invocation ended.

        Each argument is a length-``S`` array of uniforms.
        """
        tb = self.tables
        A = tb.actions.sample(self.G + self._mode_row if self._modes else self.G, u_action)
        r = tb.reward[A * self._c + self.successor]
        r *= self.discount
        self.ret += r
        self.discount *= self.gamma
        self.clock += 1
        self.G = G = tb.kernel.sample(A, u_kernel)
        return u_end < tb.beta_of[G]

    def handoff(self, idx: np.ndarray, successors: np.ndarray) -> None:
        """Pass control of seeds ``idx`` (ended; ``successors`` = their committed ``c' != STOP``)."""
        tb = self.tables
        G = self.G[idx]
        self._private_flat[idx * self.num_agents + self.agent[idx]] = tb.l_of[G]
        self.agent[idx] = successors
        self._place(idx, successors, tb.xm_of[G])

    def truncated(self) -> np.ndarray:
        """Seeds whose episode has reached the horizon ``H`` (bool, S)."""
        return self.episode_start <= self.clock - self.horizon


def sample_invocations(model: ICSMDP, agent: int, local_state: int, successor: int,
                       num_samples: int, *, rng=None, max_steps: int = 100_000,
                       mode: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample independent invocations of ``agent`` from local state ``y`` committed to ``successor``.

    With ``mode=a`` the invocation runs mode ``a``'s internal policy
    ``pi_i^a`` (adaptable agents, issue 15); ``mode=None`` reads the agent's
    only mode and refuses an agent with several, naming it.

    Parameters
    ----------
    model : ICSMDP
    agent : int
    local_state : int
        ``y = (x*nM + m)*nL_i + l``.
    successor : int
        The committed ``c'`` (enters the rewards only).
    num_samples : int
    rng : Generator, int or None
    max_steps : int
        Stop (raise) if some invocation is still running after this many steps.
    mode : int or None
        The committed mode ``a`` (``0 <= a < K_i``).

    Returns
    -------
    ret : ndarray (n,)
        ``R = sum_{s<tau} gamma^s r``.
    tau : ndarray of int (n,)
        Durations.
    end_state : ndarray of int (n,)
        Local state ``y'`` at the end.
    """
    if not (0 <= agent < model.num_agents):
        raise InvalidArgumentError(f"`agent` must lie in 0..{model.num_agents - 1}, got {agent}.")
    if mode is None:
        model.mode_policy(agent)  # refuses an agent with several modes, naming it
        mode = 0
    else:
        model.mode_policy(agent, mode)  # checks 0 <= mode < K_i
    nY = model.agents[agent].num_local_states
    if not (0 <= local_state < nY):
        raise InvalidArgumentError(f"`local_state` must lie in 0..{nY - 1}, got {local_state}.")
    if not (0 <= successor <= model.num_agents):
        raise InvalidArgumentError(f"`successor` must lie in 0..{model.num_agents}, got {successor}.")
    rng = np.random.default_rng(rng)
    n = int(num_samples)
    sim = BatchSimulator(model, n, modes=True)
    sim.agent[:] = agent
    sim.G[:] = sim.tables.state_offset[agent] + local_state
    sim.begin(np.arange(n), np.full(n, model.choice(mode, successor)))
    ret, tau, end = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64)
    running = np.ones(n, bool)
    for step in range(1, max_steps + 1):
        ended = sim.step(rng.random(n), rng.random(n), rng.random(n))
        done = np.flatnonzero(ended & running)
        ret[done], tau[done] = sim.ret[done], step
        end[done] = sim.G[done] - sim.tables.state_offset[agent]
        running[done] = False
        if not running.any():
            return ret, tau, end
    raise InvalidArgumentError(f"`max_steps`: {int(running.sum())} invocations still running "
                               f"after {max_steps} steps.")
