"""IC-Q (Algorithm 1): decentralized Q-learning with three-scalar value passing (SPEC section 7).

Each agent ``i`` is an :class:`ICQAgent` holding only its own estimator
``Q_i(o, c')`` over its observations ``o in O_i`` and successors ``c'``
(tabular, linear or MLP, :mod:`solvers.approximators`), for every seed of a
batch. An epoch of agent ``i`` in seed ``s``:

1. ``i`` observes ``o = phi_i(m, l_i)`` and chooses ``c'`` with its behavior
   (:meth:`ICQAgent.choose`: epsilon-greedy on its own ``Q_i`` or a fixed
   law);
2. the environment runs the invocation (:mod:`icsmdp_theory.simulate`), of
   duration ``tau`` and return ``R = sum_{s<tau} gamma^s r_{t_k+s}``;
3. the successor ``c'`` observes ``o'`` and computes
   ``b = max_{c'' admissible for c'} Q_{c'}(o', c'')`` (:meth:`ICQAgent.bootstrap`);
   for ``c' = STOP`` the message is ``b = 0``;
4. the predecessor receives exactly ``(b, tau, R)`` and takes one SGD step on
   ``(Q_i(o, c') - y)^2 / 2`` with ``y = R + gamma^tau b`` (:meth:`ICQAgent.update`;
   after STOP ``y = R``).

Adaptable agents (issue 15; README "Semantic choices"). An agent with
``K_i`` modes learns ``Q_i(o, j)`` over the choices ``j = a*(N+1) + c'``
(mode ``a < K_i``, successor ``c'``; the estimators are ``J = max_i K_i (N+1)``
wide, the choices ``a >= K_i`` and the inadmissible ``c'`` are masked,
``model.choice_admissible``): the behavior picks ``j`` among the admissible
choices, the committed mode ``a`` fixes the internal policy ``pi_i^a`` for the
invocation (:class:`~icsmdp_theory.simulate.BatchSimulator` with
``modes=True``), control passes to ``c' = j mod (N+1)``, whose bootstrap is
``b = max_{j''} Q_{c'}(o', j'')`` over its admissible choices, and the
message stays ``(b, tau, R)``. The fixed point is ``Q*_lat`` over
``(s, (a, c'))`` (:mod:`solvers.oracle`) where the map is exact (tested). A
one-mode model has ``J = N+1``, ``j = c'``, and runs exactly as before (bit
for bit, both engines).

Nothing else crosses between agents. The batch run (:class:`BatchRun`) holds
the agents in a list and passes them only arrays of seeds, their own
observations and choices, uniforms, and the three scalars; an agent holds no
reference to another agent, to the model or to the simulator (tested). With
``log_messages=True`` every message is recorded (:data:`solvers.records.MESSAGE_FIELDS`)
and :func:`replay_agent` rebuilds one agent, alone, from its messages and its
own journal, reproducing its estimates bit for bit.

Batch loop. Every iteration advances all seeds by one primitive step
(:meth:`~icsmdp_theory.simulate.BatchSimulator.step`); the seeds whose
invocation ended are sorted by successor, and each successor agent computes
``b`` for its contiguous slice (before any update, as in Algorithm 1); they
are then sorted by predecessor and each predecessor updates its slice; last,
the agents starting an epoch (after a handoff or a restart) choose, after the
updates. A seed takes part in at most one handoff per iteration and every
per-seed computation is elementwise or a per-seed product, so the grouping
never changes a seed's numbers.

Engines. ``ICQ(engine=...)``: every learner runs by default on the
compiled loop (:mod:`solvers.compiled`, a numba kernel per seed, seeds one
after another), which reproduces this batched numpy loop bit for bit (same
streams, trajectories, ``Q`` at every checkpoint, parameters, ``eps_0``,
message log and counters; tested); the linear and MLP learners call numpy's
own BLAS from the kernel with numpy's arguments, and stay on the numpy loop
where numpy's ``matmul`` would not use BLAS (a dimension of 1,
:func:`solvers.compiled.compiled_supports`); ``engine="numpy"`` keeps the
batched loop.

Choices fixed here (the paper leaves them open):

- **Updates.** ``T`` counts updates (handoffs) *per seed*; a seed stops once
  it has made ``T`` updates, and snapshots are taken when a seed's count
  reaches each checkpoint. Each seed is an independent run.
- **Horizon.** An episode holds at most ``H`` primitive steps. An invocation
  that ends at or before the ``H``-th step is a normal epoch (its update uses
  the successor's ``b`` at the real end state), after which the episode
  restarts from ``rho0`` if ``H`` was reached. An invocation still running
  after the ``H``-th step is *discarded*: no update, no message, a fresh
  episode from ``rho0``. Bootstrapping there would need the predecessor's own
  value of a mid-invocation state, which no estimator represents, so every
  target used is an unbiased sample of the SMDP Bellman target; the cost is a
  slight under-sampling of long invocations (counted in ``truncations``).
- **Step-size index.** ``k`` in ``c/(k + k0)`` and ``1/(2 nu lambda0 (k+1))``
  counts the previous updates of the same ``(o, c')`` pair of the same agent
  (``index="pair"``, the default for tabular) or all previous updates of the
  agent (``index="agent"``, the default for linear and MLP), in that seed. A
  global epoch clock would have to cross the interface, so it is not offered.
- **Epsilon schedule.** ``epsilon_k`` decays linearly from ``epsilon`` to
  ``final_epsilon`` over the agent's first ``decay_steps`` decisions.
- **Fixed behavior.** ``FixedBehavior()`` picks uniformly among admissible
  successors, independently of ``Q``: the sampled epochs then follow the epoch
  chain of SPEC section 6 with restarts after STOP (and, additionally, at the
  horizon ``H``; with a horizon never reached the long-run law of the sampled
  pairs is exactly ``mu``).
- **Explicit epoch models** (SPEC section 10). ``solve(ICQ(...), epoch_model)``
  runs the same loop on an :class:`~icsmdp_theory.epoch_simulate.EpochBatchSimulator`
  (:func:`make_simulator`): an invocation is drawn whole at its start,
  ``(k', tau) ~ P(. | s, c')`` from column :data:`BEGIN_COLUMN` of the step's
  uniforms, it ends ``tau`` batch steps later and its message carries
  ``R = R(s, c')``, the model's option reward. Agent ``i`` learns over its
  cells ``(i, o)`` with the compacted observations (``state_observation``,
  ``num_observations``), and its greedy pick, bootstrap and exploration run
  over the *cell's* admissible set, the intersection of its states' sets
  (:func:`icsmdp_theory.cells.cell_admissible`). An explicit model has no
  horizon: ``ICQ(horizon=...)`` sets it (default 10,000 primitive steps).
- **Seeds.** Seed ``k`` uses ``SeedSequence(seed).spawn(n)[k]``; its children
  1 and 2 feed the simulation (:class:`icsmdp_theory.simulate.SeedStreams`)
  and ``spawn_key (k, 0, i)`` the random initial parameters of agent ``i``;
  with ``shared_init=True`` (default) every seed starts from the same
  ``theta_0``, drawn from ``spawn_key (2**31, i)``.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> from solvers.api import solve
>>> rec = solve(ICQ(updates=2000, seeds=4, checkpoints=(2000,)), load_example("tiny-handoff"))
>>> rec.success, rec.q.shape
(True, (1, 4, 5, 3))
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from tqdm import tqdm

from icsmdp_theory.cells import cell_admissible, cell_offsets
from icsmdp_theory.epoch_level import cell_rule
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.epoch_simulate import DEFAULT_HORIZON, EpochBatchSimulator
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.simulate import (CHOICE_COLUMNS, PRIMITIVE_COLUMNS, STEP_COLUMNS, BatchSimulator,
                                    CategoricalRows, SeedStreams, seed_sequences)
from icsmdp_theory.validation import is_int, is_real, positive_int, positive_real, unit_interval
from solvers.common import TIE_TOL
from solvers.api import register
from solvers.approximators import LinearQ, MLPQ, TabularQ, mlp_init
from solvers.compiled import CompiledLoop, compiled_supports
from solvers.records import MESSAGE_FIELDS, RunRecord

__all__ = ["ICQ", "StepSize", "EpsilonGreedy", "FixedBehavior", "ICQAgent", "BatchRun", "run_icq",
           "build_agents", "replay_agent", "make_simulator", "agent_sizes", "LEARNERS",
           "SHARED_INIT_KEY", "BEGIN_COLUMN", "ENGINES", "num_choices", "choice_cells"]

#: Learner kinds.
LEARNERS = ("tabular", "linear", "mlp")
#: Loop engines: ``"compiled"`` (:mod:`solvers.compiled`), ``"numpy"``
#: (:class:`BatchRun`'s batched numpy loop), ``"auto"`` (compiled whenever it applies).
ENGINES = ("auto", "compiled", "numpy")
_STEP_RULES = ("constant", "harmonic", "paper")
_STEP_INDEX = ("auto", "pair", "agent")
#: ``spawn_key`` head of the shared initial parameters.
SHARED_INIT_KEY = 2 ** 31
#: Column of a step's uniforms that draws an explicit epoch model's invocation ``(k', tau)``
#: at the epoch start (the primitive simulator reads it as the first internal action instead).
BEGIN_COLUMN = PRIMITIVE_COLUMNS[0]


@dataclass(frozen=True, kw_only=True)
class StepSize:
    """Step-size rule ``eta_k`` (SPEC section 7).

    Parameters
    ----------
    rule : {"constant", "harmonic", "paper"}
        ``"constant"``: ``eta = c``; ``"harmonic"``: ``eta_k = c/(k + k0)``;
        ``"paper"``: ``eta_k = 1/(2 nu lambda0 (k+1))`` (Theorem 1).
    c, k0 : float
    nu, lambda0 : float or None
        Required by ``"paper"``.
    index : {"auto", "pair", "agent"}
        What ``k`` counts (see the module docstring); ``"auto"``: ``"pair"``
        for tabular, ``"agent"`` otherwise.
    max_step : float or None
        Optional cap ``eta_k <= max_step``.
    """

    rule: str = "harmonic"
    c: float = 1.0
    k0: float = 1.0
    nu: float | None = None
    lambda0: float | None = None
    index: str = "auto"
    max_step: float | None = None

    def __post_init__(self):
        if self.rule not in _STEP_RULES:
            raise InvalidArgumentError(f"`rule` must be one of {_STEP_RULES}, got {self.rule!r}.")
        if self.index not in _STEP_INDEX:
            raise InvalidArgumentError(f"`index` must be one of {_STEP_INDEX}, got {self.index!r}.")
        positive_real("c", self.c)
        positive_real("k0", self.k0)
        if self.max_step is not None:
            positive_real("max_step", self.max_step)
        if self.rule == "paper":
            positive_real("nu", self.nu)
            positive_real("lambda0", self.lambda0)

    def __call__(self, k: np.ndarray) -> np.ndarray:
        """``eta_k`` for an array of counts ``k``."""
        if self.rule == "constant":
            eta = np.full(np.shape(k), float(self.c))
        elif self.rule == "harmonic":
            eta = self.c / (k + self.k0)
        else:
            eta = 1.0 / (2.0 * self.nu * self.lambda0 * (k + 1.0))
        if self.max_step is not None:
            eta = np.minimum(eta, self.max_step)
        return eta


@dataclass(frozen=True, kw_only=True)
class EpsilonGreedy:
    """Epsilon-greedy on the agent's own ``Q_i(o, .)`` over admissible successors.

    ``epsilon_k = epsilon + (final_epsilon - epsilon) * min(1, k / decay_steps)``
    with ``k`` the agent's previous decisions in the seed (constant when
    ``decay_steps = 0``). Exploration picks uniformly among admissible
    successors; the greedy pick is the lowest index within ``1e-10`` of the max.
    """

    epsilon: float = 0.1
    final_epsilon: float | None = None
    decay_steps: int = 0

    def __post_init__(self):
        unit_interval("epsilon", self.epsilon, open_low=False)
        if self.final_epsilon is not None:
            unit_interval("final_epsilon", self.final_epsilon, open_low=False)
        positive_int("decay_steps", self.decay_steps, low=0)

    def at(self, k: np.ndarray) -> np.ndarray | float:
        """``epsilon_k`` after ``k`` previous decisions (array or the constant ``epsilon``)."""
        if self.final_epsilon is None or self.decay_steps == 0:
            return self.epsilon
        frac = np.minimum(1.0, k / self.decay_steps)
        return self.epsilon + (self.final_epsilon - self.epsilon) * frac


@dataclass(frozen=True, kw_only=True, eq=False)
class FixedBehavior:
    """A fixed behavior law ``b_i(c' | o)`` that ignores ``Q`` (off-policy runs).

    Parameters
    ----------
    probabilities : sequence of N arrays (nO_i, N+1) or None
        ``None``: uniform over admissible successors (SPEC section 6's default
        behavior, e.g. ``estimators.behavior.uniform_behavior(model)``); with
        adaptable agents, uniform over the admissible choices ``j = a*(N+1) + c'``
        and the arrays are ``(nO_i, J)``. Mass on inadmissible successors
        (choices) is rejected.
    """

    probabilities: Any = None


@dataclass(frozen=True, kw_only=True, eq=False)
class ICQ:
    """Settings of an IC-Q run: ``solve(ICQ(...), model)`` returns a :class:`~solvers.records.RunRecord`.

    Parameters
    ----------
    learner : {"tabular", "linear", "mlp"}
    updates : int
        ``T``: updates per seed.
    seeds : int or sequence of int
        Number of seeds (children ``0..S-1`` of ``SeedSequence(seed)``) or the
        child indices to run (a subset reproduces those seeds exactly).
    step : StepSize or None
        ``None``: tabular ``harmonic(c=10, k0=10)``; linear ``constant(0.05)``;
        MLP ``constant(0.01)``.
    behavior : EpsilonGreedy or FixedBehavior
    checkpoints : sequence of int or None
        Update counts at which ``Q`` is recorded (``T`` is always added);
        ``None``: 10 log-spaced counts up to ``T``.
    seed : int
        Base seed.
    init : float
        Initial value of a table's admissible entries.
    features : sequence of N arrays or None
        Linear: ``psi_i[o, c', d]`` (``None``: one-hot of ``(o, c')``, i.e. a
        table); MLP: inputs ``x_i[o, d_in]`` (``None``: one-hot of ``o``).
    hidden : tuple of int
        MLP hidden widths (default two layers of 64).
    omega : float or None
        Projection radius of ``theta_i`` around ``theta_i0`` (linear, MLP).
    shared_init : bool
        Same ``theta_0`` for every seed (MLP).
    log_messages : bool
        Record every message and journal entry.
    track_linearization : bool
        Record ``eps_0`` (``max |Q - Qbar|``, ``max ||grad Q - g0||``) at
        checkpoints (MLP; exactly 0 for tabular and linear).
    horizon : int or None
        Primitive-step cap ``H`` of an episode; ``None``: the instance's own ``H``
        (a primitive model) or 10,000 (an explicit epoch model, which has none).
    stall_steps : int
        A seed that makes no update for ``20 H + stall_steps`` primitive steps
        (e.g. invocations that outlast the horizon) stops the run with status
        ``"stalled"``.
    progress : bool or None
        tqdm bar on stderr; ``None``: on long runs with a terminal.
    engine : {"auto", "compiled", "numpy"}
        The loop: ``"compiled"`` runs each seed in a numba kernel
        (:mod:`solvers.compiled`), ``"numpy"`` the batched numpy loop of
        :class:`BatchRun`; both give the same numbers bit for bit. ``"auto"``:
        compiled whenever it supports the settings
        (:func:`solvers.compiled.compiled_supports`: not for a linear feature
        dimension, MLP input dimension or hidden width of 1), numpy otherwise.
    """

    learner: str = "tabular"
    updates: int = 10_000
    seeds: Any = 1
    step: StepSize | None = None
    behavior: EpsilonGreedy | FixedBehavior = EpsilonGreedy()
    checkpoints: Any = None
    seed: int = 0
    init: float = 0.0
    features: Any = None
    hidden: tuple = (64, 64)
    omega: float | None = None
    shared_init: bool = True
    log_messages: bool = False
    track_linearization: bool = True
    horizon: int | None = None
    stall_steps: int = 100_000
    progress: bool | None = None
    engine: str = "auto"

    def __post_init__(self):
        if self.learner not in LEARNERS:
            raise InvalidArgumentError(f"`learner` must be one of {LEARNERS}, got {self.learner!r}.")
        if self.engine not in ENGINES:
            raise InvalidArgumentError(f"`engine` must be one of {ENGINES}, got {self.engine!r}.")
        if self.engine == "compiled" and compiled_supports(self):
            raise InvalidArgumentError(f"`engine` 'compiled' cannot run these settings: "
                                       f"{compiled_supports(self)}; use engine 'numpy' or 'auto'.")
        positive_int("updates", self.updates)
        if is_int(self.seeds):
            positive_int("seeds", self.seeds)
        else:
            try:
                ids = [int(k) for k in self.seeds]
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"`seeds` must be a count >= 1 or a sequence of seed ids, got {self.seeds!r}.") from None
            if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
                raise InvalidArgumentError(
                    f"`seeds` must list distinct seed ids >= 0, got {list(self.seeds)!r}.")
            object.__setattr__(self, "seeds", tuple(ids))
        if self.step is not None and not isinstance(self.step, StepSize):
            raise InvalidArgumentError(f"`step` must be a StepSize or None, got {self.step!r}.")
        if not isinstance(self.behavior, (EpsilonGreedy, FixedBehavior)):
            raise InvalidArgumentError(
                f"`behavior` must be EpsilonGreedy or FixedBehavior, got {self.behavior!r}.")
        if self.checkpoints is not None:
            try:
                cks = [c for c in self.checkpoints]
            except TypeError:
                raise InvalidArgumentError(
                    f"`checkpoints` must be a sequence of update counts, got {self.checkpoints!r}.") from None
            for c in cks:
                if not is_int(c) or not 0 <= c <= self.updates:
                    raise InvalidArgumentError(
                        f"`checkpoints` must hold integers in 0..{self.updates} (`updates`), got {c!r}.")
            object.__setattr__(self, "checkpoints", tuple(int(c) for c in cks))
        positive_int("seed", self.seed, low=0)
        if not is_real(self.init):
            raise InvalidArgumentError(f"`init` must be a finite number, got {self.init!r}.")
        try:
            hidden = tuple(int(h) for h in self.hidden)
        except (TypeError, ValueError):
            hidden = ()
        if not hidden or min(hidden) < 1 or any(not is_int(h) for h in self.hidden):
            raise InvalidArgumentError(
                f"`hidden` must be a non-empty sequence of widths >= 1, got {self.hidden!r}.")
        object.__setattr__(self, "hidden", hidden)
        if self.omega is not None:
            positive_real("omega", self.omega)
        if self.horizon is not None:
            positive_int("horizon", self.horizon)
        positive_int("stall_steps", self.stall_steps)

    # ------------------------------------------------------------ derived
    @property
    def seed_ids(self) -> tuple[int, ...]:
        """The child indices of ``SeedSequence(seed)`` that are run, in batch order."""
        return tuple(range(self.seeds)) if is_int(self.seeds) else tuple(self.seeds)

    @property
    def engine_used(self) -> str:
        """The loop that runs: ``engine``, with ``"auto"`` resolved (compiled whenever it supports the settings)."""
        if self.engine == "auto":
            return "numpy" if compiled_supports(self) else "compiled"
        return self.engine

    def engine_for(self, model) -> str:
        """The loop that runs on ``model``: :attr:`engine_used`, except that a model the compiled
        loop would not take (:func:`solvers.compiled.compiled_supports` with the model; none
        today, adaptable agents included) runs on numpy under ``"auto"`` and is refused (one
        located line) under ``"compiled"``."""
        why = compiled_supports(self, model)
        if not why:
            return self.engine_used
        if self.engine == "compiled":
            raise InvalidArgumentError(f"`engine` 'compiled' cannot run on `{model.name}`: {why}; "
                                       f"use engine 'numpy' or 'auto'.")
        return "numpy"

    @property
    def step_size(self) -> StepSize:
        """The step rule used: ``step``, or the learner's default (see ``step``)."""
        if self.step is not None:
            return self.step
        if self.learner == "tabular":
            return StepSize(rule="harmonic", c=10.0, k0=10.0)
        return StepSize(rule="constant", c=0.05 if self.learner == "linear" else 0.01)

    @property
    def checkpoint_counts(self) -> np.ndarray:
        """Sorted distinct update counts at which ``Q`` is recorded; ``T`` is the last."""
        T = self.updates
        if self.checkpoints is None:
            cks = np.unique(np.round(np.geomspace(max(1.0, T / 1000.0), T, 10)).astype(np.int64))
        else:
            cks = np.asarray(self.checkpoints, dtype=np.int64)
        return np.unique(np.concatenate([cks, [T]]))

    def to_dict(self) -> dict:
        """JSON-ready settings; arrays are summarized by shape and SHA-256 (``horizon`` only when set)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "step":
                v = self.step_size
            if isinstance(v, (StepSize, EpsilonGreedy)):
                v = {"kind": type(v).__name__, **{g.name: getattr(v, g.name) for g in fields(v)}}
            elif isinstance(v, FixedBehavior):
                v = {"kind": "FixedBehavior",
                     "probabilities": None if v.probabilities is None else _digest(v.probabilities)}
            elif f.name == "features":
                v = None if v is None else _digest(v)
            out[f.name] = v
        out["seeds"] = list(self.seed_ids)
        out["checkpoints"] = self.checkpoint_counts.tolist()
        if self.horizon is None:  # the model's own H: settings as before the option existed
            del out["horizon"]
        if self.engine == "auto":  # likewise: the engine changes no number
            del out["engine"]
        return out


def _digest(arrays) -> list:
    """Shape and SHA-256 of each array (for :meth:`ICQ.to_dict`)."""
    out = []
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=float)
        out.append({"shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()})
    return out


# ---------------------------------------------------------------- agents
class ICQAgent:
    """One decentralized IC-Q agent over its own observations, for every seed of a batch.

    It is built from its own sizes only (observation count, admissible mask,
    discount) and owns its estimator, step-size counters and behavior; it
    holds no reference to other agents, the model or the environment.

    Parameters
    ----------
    index : int
        The agent's own id ``i``.
    admissible : bool array (N+1,) or (nO_i, N+1)
        Its admissible successors (copied), or one set per observation (the
        cells of an explicit epoch model); the estimator then covers their
        union and the greedy pick, ``b`` and exploration run over the cell's set.
    gamma : float
        Primitive discount (for ``y = R + gamma^tau b``).
    estimator : TabularQ, LinearQ or MLPQ
    step : StepSize
    behavior : EpsilonGreedy or FixedBehavior
        For a fixed law, ``probabilities`` is this agent's ``(nO_i, N+1)`` array.
    probabilities : ndarray (nO_i, N+1) or None
        Fixed behavior law (``None`` with FixedBehavior: uniform admissible).
    """

    def __init__(self, *, index: int, admissible, gamma: float, estimator, step: StepSize,
                 behavior, probabilities=None):
        self.index = int(index)
        adm = np.array(admissible, dtype=bool)
        self._cells = None  # per-observation admissible sets, when they differ
        if adm.ndim == 2:
            union = adm.any(axis=0)
            if not np.array_equal(adm, np.broadcast_to(union, adm.shape)):
                self._cells = _CellSets(adm)
            adm = union
        adm.setflags(write=False)
        self._adm = adm
        self._adm_idx = np.flatnonzero(adm)
        self._gamma = float(gamma)
        self._gamma_pow = self._gamma ** np.arange(64)
        self._est = estimator
        self._step = step
        S, nO, C = estimator.num_seeds, estimator.num_observations, adm.size
        self._pairwise = step.index == "pair" or (step.index == "auto" and estimator.kind == "tabular")
        # a table and its pair counts share one flat index (TabularQ.index)
        self._tabular_pairs = self._pairwise and estimator.kind == "tabular"
        self._counts = np.zeros(S * nO * C if self._pairwise else S, dtype=np.int64)
        self._nO, self._C = nO, C
        self._behavior = behavior
        self._decisions = np.zeros(S, dtype=np.int64)
        self._decaying = isinstance(behavior, EpsilonGreedy) and behavior.final_epsilon is not None \
            and behavior.decay_steps > 0
        self._law = None
        if isinstance(behavior, FixedBehavior) and probabilities is not None:
            self._law = CategoricalRows.dense(np.array(probabilities, dtype=float))

    # ------------------------------------------------------------ protocol
    def bootstrap(self, seeds: np.ndarray, o: np.ndarray) -> np.ndarray:
        """``b = max_{c'' admissible} Q_i(o', c'')`` for each seed (as the successor)."""
        if self._cells is not None:
            return self._cells.values(self._est, seeds, o).max(axis=1)
        return self._est.best(seeds, o)

    def _uniform(self, u: np.ndarray, o: np.ndarray) -> np.ndarray:
        """A uniform pick among the admissible successors (of the cell ``o``) from one uniform per seed."""
        if self._cells is not None:
            return self._cells.uniform(u, o)
        # floor(u n) <= n - 1 for every u <= 1 - 2**-53 (Generator.random's largest value)
        return self._adm_idx[(u * self._adm_idx.size).astype(np.int64)]

    def choose(self, seeds: np.ndarray, o: np.ndarray, u_coin: np.ndarray,
               u_pick: np.ndarray) -> np.ndarray:
        """Commit to a successor at an epoch start, from two uniforms per seed."""
        if self._adm_idx.size == 1:  # nothing to choose
            return self._adm_idx.repeat(seeds.size)
        if isinstance(self._behavior, FixedBehavior):
            return self._uniform(u_coin, o) if self._law is None else self._law.sample(o, u_coin)
        if self._cells is not None:
            v = self._cells.values(self._est, seeds, o)
            pick = (v >= v.max(axis=1, keepdims=True) - TIE_TOL).argmax(axis=1)
        else:
            pick = self._est.greedy(seeds, o, TIE_TOL)
        if self._decaying:
            k = self._decisions[seeds]
            self._decisions[seeds] = k + 1
            eps = self._behavior.at(k)
        else:
            eps = self._behavior.epsilon
        return np.where(u_coin < eps, self._uniform(u_pick, o), pick)

    def update(self, seeds: np.ndarray, o: np.ndarray, successor: np.ndarray, b: np.ndarray,
               tau: np.ndarray, R: np.ndarray) -> None:
        """One SGD step on ``(Q_i(o, c') - y)^2/2``, ``y = R + gamma^tau b``, per listed seed.

        ``o`` and ``successor`` are this agent's own observation and choice at
        the start of the epoch; ``(b, tau, R)`` is the message it received.
        """
        try:
            g = self._gamma_pow[tau]
        except IndexError:
            self._gamma_pow = self._gamma ** np.arange(2 * int(tau.max()) + 1)
            g = self._gamma_pow[tau]
        y = R + g * b
        est = self._est
        if self._tabular_pairs:
            cell = est.index(seeds, o, successor)
            k = self._counts[cell]
            self._counts[cell] = k + 1
            est.sgd_at(cell, y, self._step(k))
            return
        if self._pairwise:
            cell = (seeds * self._nO + o) * self._C + successor
            k = self._counts[cell]
            self._counts[cell] = k + 1
        else:
            k = self._counts[seeds]
            self._counts[seeds] = k + 1
        est.sgd(seeds, o, successor, y, self._step(k))

    # ------------------------------------------------------------ inspection
    def table(self, seeds: np.ndarray | None = None) -> np.ndarray:
        """``Q_i[seed, o, c']``, ``nan`` where inadmissible (for the cell ``o``)."""
        if self._cells is not None:
            return np.where(self._cells.mask, self._est.table(seeds), np.nan)
        return self._est.table(seeds)

    def parameters(self, seeds=None) -> np.ndarray:
        """``theta_i`` per seed: ``(S, P_i)`` (all seeds when ``seeds`` is ``None``)."""
        return self._est.parameters(seeds)

    def load_parameters(self, seeds: np.ndarray, theta: np.ndarray) -> None:
        """Set ``theta_i`` of the listed seeds (``(n, P_i)``, linear and MLP; the compiled loop's results)."""
        self._est.set_parameters(seeds, theta)

    def initial_parameters(self, seeds=None) -> np.ndarray:
        """``theta_i0`` per seed: ``(S, P_i)`` (all seeds when ``seeds`` is ``None``)."""
        return self._est.initial_parameters(seeds)

    def linearization_error(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per seed: ``max |Q - Qbar|``, ``max ||grad Q - g0||`` over ``(o, c')``, and ``||theta - theta0||``.

        ``Qbar(theta) = Q(theta0) + g0 . (theta - theta0)`` is the linearization at ``theta0``.
        """
        th, th0 = self.parameters(seeds), self.initial_parameters(seeds)
        dist = np.sqrt(((th - th0) ** 2).sum(axis=1))
        n = len(seeds)
        if self._est.kind != "mlp":
            return np.zeros(n), np.zeros(n), dist
        ev, eg = np.empty(n), np.empty(n)
        cache = {}
        for r in range(n):
            key = th0[r].tobytes()
            if key not in cache:
                cache[key] = (self._est.values_at(th0[r]), self._est.jacobian(th0[r]))
            q0, J0 = cache[key]
            q, J = self._est.values_at(th[r]), self._est.jacobian(th[r])
            qbar = q0 + J0 @ (th[r] - th0[r])
            if self._cells is None:
                ev[r] = np.nanmax(np.abs(q - qbar)[:, self._adm_idx])
                eg[r] = np.sqrt(((J - J0) ** 2).sum(axis=2))[:, self._adm_idx].max()
            else:
                ev[r] = np.nanmax(np.abs(q - qbar)[self._cells.mask])
                eg[r] = np.sqrt(((J - J0) ** 2).sum(axis=2))[self._cells.mask].max()
        return ev, eg, dist


class _CellSets:
    """Per-observation admissible sets of one agent (the cells of an explicit epoch model)."""

    def __init__(self, mask: np.ndarray):
        self.mask = np.array(mask, dtype=bool)
        self.mask.setflags(write=False)
        self.count = self.mask.sum(axis=1)
        # admissible successors of each cell in increasing order, left-aligned
        order = np.argsort(~self.mask, axis=1, kind="stable")
        self.listed = order[:, :max(1, int(self.count.max()))]

    def values(self, est, seeds: np.ndarray, o: np.ndarray) -> np.ndarray:
        """``Q(o, c')`` per seed with ``-inf`` outside the cell's set: ``(n, N+1)``."""
        return np.where(self.mask[o], est.values(seeds, o), -np.inf)

    def uniform(self, u: np.ndarray, o: np.ndarray) -> np.ndarray:
        """A uniform pick among the cell's admissible successors, one uniform per seed."""
        return self.listed[o, (u * self.count[o]).astype(np.int64)]


def agent_sizes(model: ICSMDP | EpochModel) -> list[tuple[str, int, np.ndarray]]:
    """``(name, nO_i, admissible)`` per agent: what an agent is built from.

    ``admissible`` is ``(J,)`` for a primitive model (the agent's own admissible
    choices ``j = a*(N+1) + c'``, ``model.choice_admissible[i]``; ``J = N+1`` and
    its admissible successors without adaptable agents) and
    ``(nO_i, N+1)`` for an explicit epoch model (each cell's set, the
    intersection of its states' sets, :func:`icsmdp_theory.cells.cell_admissible`).

    Raises
    ------
    InvalidArgumentError
        A fitted model (union rule, :func:`icsmdp_theory.epoch_level.cell_rule`)
        with a cell whose states' sets differ: some choice would have no law.
    """
    if isinstance(model, EpochModel):
        cadm = cell_admissible(model)
        if cell_rule(model) == "union":
            differ = np.flatnonzero((cell_admissible(model, rule="union") != cadm).any(axis=1))
            if differ.size:
                offs = cell_offsets(model.num_observations)
                i = int(np.searchsorted(offs, differ[0], side="right") - 1)
                raise InvalidArgumentError(
                    f"IC-Q cannot run on `{model.name}`: it is a fitted model whose cells follow the "
                    f"union rule, and cell (agent {i} `{model.agent_names[i]}`, observation "
                    f"{int(differ[0] - offs[i])}) holds states that do not admit every successor "
                    f"of the cell (no law to simulate there); refine the observation map or fit "
                    f"with declared admissible sets.")
        offs = cell_offsets(model.num_observations)
        return [(name, int(model.num_observations[i]), cadm[offs[i]:offs[i + 1]])
                for i, name in enumerate(model.agent_names)]
    return [(a.name, a.num_observations, np.array(model.choice_admissible[i], dtype=bool))
            for i, a in enumerate(model.agents)]


def num_choices(model: ICSMDP | EpochModel) -> int:
    """The width of every agent's estimator: ``J = max_i K_i (N+1)`` choices ``j = a*(N+1) + c'``
    for a primitive model (``N+1`` without adaptable agents), ``N+1`` for an explicit epoch model."""
    return model.num_successors if isinstance(model, EpochModel) else int(model.num_choices)


def choice_cells(model: ICSMDP | EpochModel) -> np.ndarray:
    """``adm[cell, j]``: choice ``j`` admissible in the cell, ``(n_cells, J)`` (see :func:`num_choices`).

    A primitive model: the cell's agent's admissible choices
    (``model.choice_admissible``; its admissible successors without adaptable
    agents); an explicit epoch model: :func:`icsmdp_theory.cells.cell_admissible`.
    """
    if isinstance(model, EpochModel):
        return cell_admissible(model)
    return np.repeat(model.choice_admissible, model.num_observations, axis=0)


def _resolve_per_agent(model: ICSMDP, settings: ICQ):
    """Validate features / fixed behavior against the model: per-agent lists."""
    N, C = model.num_agents, num_choices(model)
    # the width's name in messages: today's N+1 unless some agent has modes
    width = "N+1" if C == model.num_successors else "J = max_i K_i (N+1)"
    sizes = agent_sizes(model)
    feats = [None] * N
    if settings.features is not None:
        if len(settings.features) != N:
            raise InvalidArgumentError(f"`features` must hold one array per agent ({N}), "
                                       f"got {len(settings.features)}.")
        for i, f in enumerate(settings.features):
            f = np.array(f, dtype=float)
            name, nO, _ = sizes[i]
            want = f"(nO_i, {width.split(' ')[0]}, d)" if settings.learner == "linear" else "(nO_i, d_in)"
            ok = (f.ndim == 3 and f.shape[:2] == (nO, C)) if settings.learner == "linear" \
                else (f.ndim == 2 and f.shape[0] == nO)
            if settings.learner == "tabular" or not ok or not np.all(np.isfinite(f)):
                raise InvalidArgumentError(
                    f"`features[{i}]` (agent `{name}`) must be a finite array "
                    f"{want} with nO_i = {nO}, {width} = {C} for learner {settings.learner!r}; "
                    f"got shape {f.shape}.")
            feats[i] = f
    probs = [None] * N
    beh = settings.behavior
    if isinstance(beh, FixedBehavior) and beh.probabilities is not None:
        if len(beh.probabilities) != N:
            raise InvalidArgumentError(f"`behavior.probabilities` must hold one array per agent "
                                       f"({N}), got {len(beh.probabilities)}.")
        for i, p in enumerate(beh.probabilities):
            p = np.array(p, dtype=float)
            _, nO, adm = sizes[i]
            shape = (nO, C)
            if p.shape != shape:
                raise InvalidArgumentError(f"`behavior.probabilities[{i}]` must have shape "
                                           f"{list(shape)}, got {list(p.shape)}.")
            bad = ~np.isfinite(p) | (p < 0) | (~np.broadcast_to(adm, shape) & (p > 0))
            if bad.any():
                o, c = np.argwhere(bad)[0]
                raise InvalidArgumentError(
                    f"`behavior.probabilities[{i}]` must be non-negative and zero at inadmissible "
                    f"successors: entry [o={o}, c'={c}] is {p[o, c]!r}.")
            sums = p.sum(axis=1)
            if np.any(np.abs(sums - 1) > 1e-9):
                o = int(np.argmax(np.abs(sums - 1) > 1e-9))
                raise InvalidArgumentError(f"rows of `behavior.probabilities[{i}]` must sum to 1: "
                                           f"row o={o} sums to {sums[o]!r}.")
            probs[i] = p
    return feats, probs


def build_agents(settings: ICQ, model: ICSMDP) -> list[ICQAgent]:
    """The run's agents, each built from its own sizes (see :class:`ICQAgent`)."""
    features, probabilities = _resolve_per_agent(model, settings)
    return _agents_from(settings, model, features, probabilities)


def _initial_mlp_parameters(settings: ICQ, key: tuple, d_in: int, C: int, one_hot: bool) -> np.ndarray:
    """``theta_0`` of one MLP drawn from ``SeedSequence(settings.seed, spawn_key=key)``."""
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=key))
    return mlp_init(rng, d_in, settings.hidden, C, one_hot=one_hot)


def _agents_from(settings: ICQ, model: ICSMDP, features: list, probabilities: list) -> list[ICQAgent]:
    """The agents from validated per-agent features and fixed-behavior laws (:func:`_resolve_per_agent`)."""
    seed_ids = settings.seed_ids
    S, C = len(seed_ids), num_choices(model)
    step = settings.step_size
    agents = []
    for i, (_, nO, cell_adm) in enumerate(agent_sizes(model)):
        adm = cell_adm if cell_adm.ndim == 1 else cell_adm.any(axis=0)  # the estimator's pairs
        if settings.learner == "tabular":
            est = TabularQ(S, nO, adm, init=settings.init)
        elif settings.learner == "linear":
            psi = features[i]
            if psi is None:
                psi = np.eye(nO * C).reshape(nO, C, nO * C)
            est = LinearQ(S, psi, adm, omega=settings.omega)
        else:
            inputs = features[i]
            d_in = nO if inputs is None else inputs.shape[1]
            if settings.shared_init:
                theta0 = _initial_mlp_parameters(settings, (SHARED_INIT_KEY, i), d_in, C, inputs is None)
            else:
                theta0 = np.stack([_initial_mlp_parameters(settings, (k, 0, i), d_in, C, inputs is None)
                                   for k in seed_ids])
            est = MLPQ(S, nO, adm, theta0=theta0, hidden=settings.hidden, inputs=inputs,
                       omega=settings.omega)
        agents.append(ICQAgent(index=i, admissible=cell_adm, gamma=model.gamma, estimator=est,
                               step=step, behavior=settings.behavior, probabilities=probabilities[i]))
    return agents


# ---------------------------------------------------------------- the loop
def _runs(keys: np.ndarray, n: int):
    """``[(key, lo, hi), ...]``: the runs of equal values in sorted ``keys`` (values in ``0..n-1``)."""
    m = keys.size
    if m == 0:
        return ()
    first, last = int(keys[0]), int(keys[-1])
    if first == last:
        return ((first, 0, m),)
    bounds = np.searchsorted(keys, np.arange(first, last + 2)).tolist()
    return [(first + j, bounds[j], bounds[j + 1]) for j in range(last - first + 1)
            if bounds[j] < bounds[j + 1]]


def make_simulator(model: ICSMDP | EpochModel, num_seeds: int, *, horizon: int | None = None):
    """The environment of an IC-Q run: ``(simulator, H)``.

    A primitive model: :class:`~icsmdp_theory.simulate.BatchSimulator` (primitive
    steps), ``H = horizon`` or the instance's own. An explicit epoch model:
    :class:`~icsmdp_theory.epoch_simulate.EpochBatchSimulator` (invocations drawn
    whole, on the same primitive-step clock), ``H = horizon`` or
    :data:`~icsmdp_theory.epoch_simulate.DEFAULT_HORIZON`.
    """
    if isinstance(model, EpochModel):
        H = DEFAULT_HORIZON if horizon is None else int(horizon)
        return EpochBatchSimulator(model, num_seeds, horizon=H), H
    if isinstance(model, ICSMDP):
        return BatchSimulator(model, num_seeds, modes=True), \
            int(model.horizon if horizon is None else horizon)
    raise InvalidArgumentError(f"`model` must be an ICSMDP or an EpochModel, got "
                               f"{type(model).__name__}.")


class _Progress:
    """Optional tqdm bar on stderr counting the updates of all seeds."""

    def __init__(self, total: int, enabled: bool | None, desc: str):
        if enabled is None:
            enabled = total >= 2_000_000 and sys.stderr.isatty()
        self.bar = None
        if enabled:
            self.bar = tqdm(total=total, desc=desc, unit="upd", unit_scale=True, file=sys.stderr)
        self.done = 0

    def update(self, done: int):
        """Advance the bar to ``done`` updates in all."""
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done

    def close(self):
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


_EMPTY = np.zeros(0, np.int64)
#: dtypes of the message-log fields, in the order of :data:`solvers.records.MESSAGE_FIELDS`.
_MESSAGE_DTYPES = (np.int64, np.int64, np.int64, np.int64, float, np.int64, float, np.int64, np.int64)
#: Every this many batch steps (a power of 2): progress bar and stall check.
_CHECK_EVERY = 512


class BatchRun:
    """One IC-Q run of every seed of a batch, one synchronous primitive step at a time (SPEC section 7).

    The object holds what Algorithm 1 carries from one step to the next: the
    environment (a :class:`~icsmdp_theory.simulate.BatchSimulator` and the
    seeds' :class:`~icsmdp_theory.simulate.SeedStreams`), the agents (a list;
    they are passed only arrays, see the module docstring), the per-seed
    counters, the ``Q`` snapshots at the checkpoints and the message log.
    :meth:`run` is

    1. :meth:`start`: the snapshot at update 0 (if it is a checkpoint) and the
       first episode of every seed;
    2. :meth:`step` until every seed has made ``T`` updates: the environment
       moves every seed by one primitive step; the epochs that ended are
       closed (:meth:`_end_epochs`: successors bootstrap ``b``, predecessors
       update on ``(b, tau, R)``, the counts advance and checkpoints are
       taken); episodes restart after STOP or at the horizon
       (:meth:`_restart_episodes`); the agents starting an epoch choose
       (:meth:`_start_epochs`). Every 512 steps :meth:`_stalled` stops a run
       in which a seed makes no progress; Ctrl-C stops it as ``"interrupted"``;
    3. :meth:`finish`: the :class:`~solvers.records.RunRecord`.

    A seed's numbers depend only on its own streams: every per-seed
    computation is elementwise or a per-seed product, whatever the grouping.

    Parameters
    ----------
    settings : ICQ
    model : ICSMDP or EpochModel
        The simulator is built from it (:func:`make_simulator`); the agents get
        only their own sizes.

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> run = BatchRun(ICQ(updates=50, seeds=2, checkpoints=(10,)), load_example("tiny-handoff"))
    >>> rec = run.run()
    >>> rec.status, rec.updates.tolist(), bool(rec.reached.all())
    ('completed', [50, 50], True)
    """

    def __init__(self, settings: ICQ, model: ICSMDP | EpochModel):
        """Set up the run: agents, checkpoint book, simulator and seed streams, counters, log."""
        self.t_start = time.perf_counter()
        self.settings, self.model = settings, model
        if not isinstance(model, (ICSMDP, EpochModel)):
            raise InvalidArgumentError(f"`model` must be an ICSMDP or an EpochModel, got "
                                       f"{type(model).__name__}.")
        self.engine = settings.engine_for(model)  # refuses engine 'compiled' where it cannot run
        self.num_agents = model.num_agents
        self.seed_ids = np.array(settings.seed_ids, dtype=np.int64)
        S, T = self.seed_ids.size, settings.updates
        self.num_seeds, self.num_updates = S, T
        self.features, self.probabilities = _resolve_per_agent(model, settings)
        self.agents = _agents_from(settings, model, self.features, self.probabilities)
        self._init_checkpoints()
        N = self.num_agents
        self.sim, self.horizon = make_simulator(model, S, horizon=settings.horizon)
        # an explicit model's invocation is drawn at its start, from BEGIN_COLUMN
        self._begin_uniform = isinstance(self.sim, EpochBatchSimulator)
        self.streams = SeedStreams(seed_sequences(settings.seed, self.seed_ids),
                                   step_width=STEP_COLUMNS, event_width=N + 2)
        self.obs_of = self.sim.tables.obs_of
        # per-seed counters
        self.updates = np.zeros(S, np.int64)
        self.finish_clock = np.zeros(S, np.int64)  # batch clock at the seed's T-th update
        self.truncations = np.zeros(S, np.int64)
        self.alive = np.ones(S, bool)
        self.num_alive = S
        self.obs = np.zeros(S, np.int64)  # the active agent's observation at its epoch start
        self.choice = np.zeros(S, np.int64)  # its choice j = a*(N+1) + c' (j = c' without modes)
        self.log = [] if settings.log_messages else None
        # stall watch: batch clock when each seed was last seen updating
        self.stall_limit = 20 * self.horizon + settings.stall_steps
        self.last_update = np.zeros(S, np.int64)
        self.seen_updates = self.updates.copy()
        self.trunc_due = self.horizon  # no episode can reach the horizon before this clock
        self.status, self.message = "completed", ""
        self.t_loop = self.cpu_loop = None
        # the compiled loop: built, and its kernel loaded, before the loop's clock starts
        self.compiled = CompiledLoop(self) if self.engine == "compiled" else None

    def _init_checkpoints(self) -> None:
        """The checkpoint book: ``Q`` snapshots ``(K, S, cells, J)`` and per-checkpoint data."""
        S, N = self.num_seeds, self.num_agents
        self.offsets = cell_offsets(self.model.num_observations)
        self.explicit = isinstance(self.model, EpochModel)
        self.cell_admissible = choice_cells(self.model)
        self.checkpoints = self.settings.checkpoint_counts
        K = self.checkpoints.size
        # count -> checkpoint index by search (not a length-T table: T may be 1e9)
        self._checkpoint_pad = np.append(self.checkpoints, -1)
        self.q = np.full((K, S, int(self.offsets[-1]), num_choices(self.model)), np.nan)
        self.reached = np.zeros((K, S), bool)
        self.checkpoint_seconds = np.full((K, S), np.nan)
        self.eps0_value = np.full((K, S), np.nan)
        self.eps0_grad = np.full((K, S), np.nan)
        self.theta_distance = np.full((K, S, N), np.nan)

    def checkpoint_index(self, counts: np.ndarray) -> np.ndarray:
        """The checkpoint index of each update count in ``counts`` (``-1``: not a checkpoint)."""
        idx = np.searchsorted(self.checkpoints, counts)
        return np.where(self._checkpoint_pad[idx] == counts, idx, -1)

    # ------------------------------------------------------------ driving
    def run(self) -> RunRecord:
        """Start, step until every seed is done (or stalls, or Ctrl-C), finish into a record."""
        self.t_loop, self.cpu_loop = time.perf_counter(), time.process_time()
        progress = _Progress(self.num_seeds * self.num_updates, self.settings.progress,
                             f"IC-Q {self.settings.learner}")
        try:  # Ctrl-C (and SIGTERM under the CLI, which raises KeyboardInterrupt) keeps the record
            if self.compiled is not None:
                self.compiled.run(progress.update)
            else:
                self.start()
                while self.step():
                    if self.sim.clock & (_CHECK_EVERY - 1) == 0:
                        progress.update(int(self.updates.sum()))
                        if self._stalled():
                            break
        except KeyboardInterrupt:
            self.status = "interrupted"
            self.message = ("interrupted (Ctrl-C or SIGTERM); checkpoints reached so far are "
                            "kept.")
        progress.update(int(self.updates.sum()))
        progress.close()
        return self.finish()

    def start(self) -> None:
        """Snapshot at update 0 if it is a checkpoint; every seed starts its first episode."""
        every = np.arange(self.num_seeds)
        if self.checkpoint_index(np.zeros(1, np.int64))[0] >= 0:
            self._snapshot(every, np.zeros(self.num_seeds, np.int64))
        u = self.streams.step()
        self.sim.restart(every, self.streams.events(every))
        self._start_epochs(every, u)

    def step(self) -> bool:
        """Advance every live seed by one primitive step; ``False`` once all made ``T`` updates.

        The environment moves; the epochs that ended are closed (handoff,
        bootstrap, update, counts, checkpoints); the seeds after STOP or at
        the horizon restart; then every agent starting an epoch chooses.
        """
        u = self.streams.step()
        ca, ck, ce = PRIMITIVE_COLUMNS
        ended = self.sim.step(u[ca], u[ck], u[ce])
        if self.num_alive < self.num_seeds:
            ended &= self.alive
        h = ended.nonzero()[0]
        handed = stopped = _EMPTY
        if h.size:
            handed, stopped = self._end_epochs(h)
            if self.num_alive == 0:
                return False
        restarted, handed = self._restart_episodes(ended, stopped, handed)
        if handed.size == 0:
            start = restarted
        else:
            start = handed if restarted.size == 0 else np.concatenate([handed, restarted])
        if start.size:
            self._start_epochs(start, u)
        return True

    # ------------------------------------------------------------ epochs
    def _start_epochs(self, idx: np.ndarray, u: np.ndarray) -> None:
        """The active agents of seeds ``idx`` observe and commit to a choice (this step's uniforms).

        The choice is ``j = a*(N+1) + c'`` (mode ``a``, successor ``c'``; ``j = c'``
        without adaptable agents); the simulator runs mode ``a`` and hands over to ``c'``.
        """
        sim, N = self.sim, self.num_agents
        ag = sim.agent[idx]
        if N > 1:
            order = np.argsort(ag, kind="stable")
            idx, ag = idx[order], ag[order]
        o = self.obs_of[sim.G[idx]]
        c0, c1 = CHOICE_COLUMNS
        uc, up = u[c0][idx], u[c1][idx]
        c = np.empty(idx.size, np.int64)
        for i, lo, hi in _runs(ag, N):
            c[lo:hi] = self.agents[i].choose(idx[lo:hi], o[lo:hi], uc[lo:hi], up[lo:hi])
        self.obs[idx] = o
        self.choice[idx] = c
        if self._begin_uniform:
            sim.begin(idx, c, u[BEGIN_COLUMN][idx])
        else:
            sim.begin(idx, c)

    def _end_epochs(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Close the epochs of seeds ``h`` (their invocation ended at this step).

        Returns the seeds handed to a successor and those that stopped, both
        still running (a seed that made its ``T``-th update is retired).
        """
        sim = self.sim
        pred = sim.agent[h]
        if self.num_agents > 1:  # group by predecessor: contiguous runs for the updates
            order = np.argsort(pred, kind="stable")
            h, pred = h[order], pred[order]
        c = sim.successor[h]
        j = self.choice[h]
        tau = sim.clock - sim.epoch_start[h]
        R = sim.ret[h]
        b, handed, stopped = self._hand_off(h, c)
        self._update(h, pred, c, j, b, tau, R)
        return self._count_updates(h, handed, stopped)

    def _hand_off(self, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Control passes to the successors ``c``, which bootstrap ``b`` before any update.

        Returns ``b`` (aligned with ``h``; ``0`` after STOP), the handed-over
        seeds (grouped by successor) and the stopped seeds.
        """
        N = self.num_agents
        go = c < N
        b = np.zeros(h.size)
        gi = go.nonzero()[0]
        handed = h[gi]
        if gi.size:
            cn = c[gi]
            self.sim.handoff(handed, cn)
            if N > 1:  # group by successor for the bootstrap
                order = np.argsort(cn, kind="stable")
                gi, cn = gi[order], cn[order]
                handed = h[gi]
            o2 = self.obs_of[self.sim.G[handed]]
            bn = np.empty(gi.size)
            for j, lo, hi in _runs(cn, N):
                bn[lo:hi] = self.agents[j].bootstrap(handed[lo:hi], o2[lo:hi])
            b[gi] = bn
        stopped = h[~go] if gi.size < h.size else _EMPTY
        return b, handed, stopped

    def _update(self, h, pred, c, j, b, tau, R) -> None:
        """Each predecessor takes its SGD step on its message ``(b, tau, R)`` at its own ``(o, j)``.

        The log records the sender ``c'`` and, in the receiver's journal, its
        choice ``j`` (``j = c'`` without adaptable agents).
        """
        oh = self.obs[h]
        for i, lo, hi in _runs(pred, self.num_agents):
            self.agents[i].update(h[lo:hi], oh[lo:hi], j[lo:hi], b[lo:hi], tau[lo:hi], R[lo:hi])
        if self.log is not None:
            self.log.append((self.seed_ids[h], self.updates[h], c, pred, b, tau, R, oh, j))

    def _count_updates(self, h, handed, stopped) -> tuple[np.ndarray, np.ndarray]:
        """Count one update for seeds ``h``; snapshot at checkpoints; retire seeds at ``T``."""
        k = self.updates[h] + 1
        self.updates[h] = k
        kc = self.checkpoint_index(k)
        if kc.max() >= 0:  # some checkpoint reached (T is one)
            snap = kc >= 0
            self._snapshot(h[snap], kc[snap])
            done = k >= self.num_updates
            if done.any():
                finished = h[done]
                self.alive[finished] = False
                self.finish_clock[finished] = self.sim.clock
                self.num_alive -= finished.size
                if self.num_alive:
                    handed, stopped = handed[self.alive[handed]], stopped[self.alive[stopped]]
        return handed, stopped

    def _restart_episodes(self, ended, stopped, handed) -> tuple[np.ndarray, np.ndarray]:
        """Fresh episodes from ``rho0`` after STOP and where the horizon ``H`` was reached.

        An invocation still running at the horizon is discarded (counted in
        ``truncations``). Returns the restarted seeds and the handed-over
        seeds that did not restart.
        """
        sim, H = self.sim, self.horizon
        clock = sim.clock
        restarted = stopped
        at_horizon = clock >= self.trunc_due
        if at_horizon:
            due = sim.episode_start <= clock - H
            due &= self.alive
            tr = due.nonzero()[0]
            if tr.size:
                cut = tr[~ended[tr]]
                self.truncations[cut] += 1
                due[stopped] = True
                restarted = due.nonzero()[0]
                handed = handed[~due[handed]]
        if restarted.size:
            sim.restart(restarted, self.streams.events(restarted))
        if at_horizon:
            self.trunc_due = int(sim.episode_start[self.alive].min()) + H
        return restarted, handed

    # ------------------------------------------------------------ checkpoints and watch
    def _snapshot(self, seeds: np.ndarray, k_idx: np.ndarray) -> None:
        """Record ``Q`` of ``seeds`` at checkpoints ``k_idx``, its time, and ``eps_0`` if tracked."""
        offs = self.offsets
        for i, ag in enumerate(self.agents):
            self.q[k_idx, seeds, offs[i]:offs[i + 1], :] = ag.table(seeds)
        self.reached[k_idx, seeds] = True
        self.checkpoint_seconds[k_idx, seeds] = time.perf_counter() - self.t_loop
        if self.settings.track_linearization:
            ev, eg = np.zeros(seeds.size), np.zeros(seeds.size)
            for i, ag in enumerate(self.agents):
                a, g, d = ag.linearization_error(seeds)
                ev, eg = np.maximum(ev, a), np.maximum(eg, g)
                self.theta_distance[k_idx, seeds, i] = d
            self.eps0_value[k_idx, seeds], self.eps0_grad[k_idx, seeds] = ev, eg

    def load_parameters(self, seeds: np.ndarray, parameters: np.ndarray) -> None:
        """Set every agent's parameters for the listed seeds from ``parameters[n, P]`` (agents' vectors concatenated)."""
        lo = 0
        for ag in self.agents:
            hi = lo + ag.parameters(seeds[:1]).shape[1]
            ag.load_parameters(seeds, parameters[:, lo:hi])
            lo = hi

    def record_checkpoints(self, parameters: np.ndarray) -> None:
        """``Q`` and ``eps_0`` at every reached checkpoint from saved parameters ``parameters[K, S, P]``.

        The compiled loop (:mod:`solvers.compiled`) saves each seed's parameters
        at its checkpoints; they are loaded into the agents and recorded by
        :meth:`_snapshot`, the numpy loop's own code (the times stay those the
        compiled loop recorded).
        """
        for k in np.flatnonzero(self.reached.any(axis=1)):
            seeds = np.flatnonzero(self.reached[k])
            self.load_parameters(seeds, parameters[k, seeds])
            seconds = self.checkpoint_seconds[k, seeds].copy()
            self._snapshot(seeds, np.full(seeds.size, k))
            self.checkpoint_seconds[k, seeds] = seconds

    def _stalled(self) -> bool:
        """Whether a live seed made no update for ``20 H + stall_steps`` steps (status ``"stalled"``)."""
        clock = self.sim.clock
        moved = self.updates != self.seen_updates
        self.last_update[moved] = clock
        self.seen_updates = self.updates.copy()
        stalled = self.alive & (self.last_update < clock - self.stall_limit)
        if not stalled.any():
            return False
        s = int(np.flatnonzero(stalled)[0])
        self.status = "stalled"
        self.message = (f"seed {int(self.seed_ids[s])} made no update in {self.stall_limit} "
                        f"primitive steps (invocations longer than the horizon H={self.horizon}?); "
                        f"stopped.")
        return True

    # ------------------------------------------------------------ the record
    def _message_arrays(self) -> dict | None:
        """The message log as one array per field of :data:`solvers.records.MESSAGE_FIELDS`."""
        if self.log is None:
            return None
        cols = list(zip(*self.log)) if self.log else [[] for _ in MESSAGE_FIELDS]
        return {f: (np.concatenate(cols[j]).astype(dt) if len(cols[j]) else np.zeros(0, dt))
                for j, (f, dt) in enumerate(zip(MESSAGE_FIELDS, _MESSAGE_DTYPES))}

    def finish(self) -> RunRecord:
        """The run's :class:`~solvers.records.RunRecord` (status ``"diverged"`` if a last ``Q`` is not finite)."""
        settings, model, sim = self.settings, self.model, self.sim
        self.finish_clock[self.alive] = sim.clock
        loop_seconds = time.perf_counter() - self.t_loop
        loop_cpu = time.process_time() - self.cpu_loop
        total_updates = int(self.updates.sum())
        status, message = self.status, self.message
        if status == "completed":
            if not np.all(np.isfinite(self.q[-1][:, self.cell_admissible])):
                status = "diverged"
                message = "some estimates are not finite at the last checkpoint."
            else:
                message = (f"{self.num_seeds} seeds x {self.num_updates} updates ({settings.learner}); "
                           f"{total_updates / max(loop_seconds, 1e-12):,.0f} updates/s.")
        param = settings.learner != "tabular"
        timings = {"setup_seconds": self.t_loop - self.t_start, "loop_seconds": loop_seconds,
                   "loop_cpu_seconds": loop_cpu,
                   "updates_per_second": total_updates / max(loop_seconds, 1e-12),
                   "updates_per_cpu_second": total_updates / max(loop_cpu, 1e-12),
                   "total_updates": total_updates, "batch_steps": sim.clock, "engine": self.engine}
        return RunRecord(
            success=status == "completed", status=status, message=message, iterations=sim.clock,
            settings=({**settings.to_dict(), "horizon": self.horizon} if self.explicit
                      else settings.to_dict()),
            elapsed=time.perf_counter() - self.t_start,
            instance=model.name, learner=settings.learner, gamma=model.gamma,
            num_agents=self.num_agents, num_observations=tuple(model.num_observations),
            admissible=self.cell_admissible if self.explicit else np.array(model.choice_admissible),
            model_kind="epoch" if self.explicit else "icsmdp",
            num_epoch_states=int(model.num_epoch_states), checkpoints=self.checkpoints, q=self.q,
            seeds=self.seed_ids, base_seed=settings.seed, reached=self.reached,
            updates=self.updates, primitive_steps=self.finish_clock, episodes=sim.episodes.copy(),
            truncations=self.truncations, checkpoint_seconds=self.checkpoint_seconds,
            eps0_value=self.eps0_value, eps0_grad=self.eps0_grad,
            theta_distance=self.theta_distance,
            theta0=tuple(ag.initial_parameters() for ag in self.agents) if param else (),
            theta=tuple(ag.parameters() for ag in self.agents) if param else (),
            features=tuple(f.copy() for f in self.features) if settings.features is not None else (),
            messages=self._message_arrays(), timings=timings)


def run_icq(settings: ICQ, model: ICSMDP | EpochModel) -> RunRecord:
    """Run IC-Q (see the module docstring); same as ``solve(settings, model)`` and ``BatchRun(settings, model).run()``."""
    return BatchRun(settings, model).run()


@register(ICQ, ICSMDP)
def _solve_icq(settings: ICQ, model: ICSMDP) -> RunRecord:
    """``solve(ICQ(...), model)``: :func:`run_icq`."""
    return run_icq(settings, model)


@register(ICQ, EpochModel)
def _solve_icq_epoch(settings: ICQ, model: EpochModel) -> RunRecord:
    """``solve(ICQ(...), epoch_model)``: :func:`run_icq` on an explicit epoch model."""
    return run_icq(settings, model)


def replay_agent(settings: ICQ, model: ICSMDP | EpochModel, messages: dict, agent: int) -> np.ndarray:
    """Rebuild agent ``agent`` alone from its messages and own journal; return its final table.

    Parameters
    ----------
    settings : ICQ
        The run's settings (for the agent's own estimator, step and init).
    model : ICSMDP or EpochModel
        Used only for the agent's own sizes (observation count, admissible set).
    messages : dict of arrays
        A run's message log (:data:`solvers.records.MESSAGE_FIELDS`).
    agent : int

    Returns
    -------
    ndarray (S, nO_i, N+1)
        ``Q_i`` of every seed after feeding, message by message in log
        order, ``update(seed, o, c', b, tau, R)`` (``(S, nO_i, J)`` and the
        journal's choice ``j`` in place of ``c'`` with adaptable agents).
    """
    me = build_agents(settings, model)[agent]  # the others are dropped immediately
    pos_of = {int(s): p for p, s in enumerate(settings.seed_ids)}
    mine = np.flatnonzero(np.asarray(messages["receiver"]) == agent)
    for r in mine:
        seed = np.array([pos_of[int(messages["seed"][r])]])
        me.update(seed, np.array([messages["observation"][r]]), np.array([messages["successor"][r]]),
                  np.array([messages["b"][r]], float), np.array([messages["tau"][r]]),
                  np.array([messages["R"][r]], float))
    return me.table()
