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

Nothing else crosses between agents. The learner loop (:func:`run_icq`) holds
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

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.simulate import (CHOICE_COLUMNS, PRIMITIVE_COLUMNS, STEP_COLUMNS, BatchSimulator,
                                    CategoricalRows, SeedStreams, seed_sequences)
from solvers.common import TIE_TOL
from solvers.api import register
from solvers.approximators import LinearQ, MLPQ, TabularQ, mlp_init
from icsmdp_theory.cells import cell_offsets
from solvers.records import MESSAGE_FIELDS, RunRecord

__all__ = ["ICQ", "StepSize", "EpsilonGreedy", "FixedBehavior", "ICQAgent", "run_icq",
           "build_agents", "replay_agent", "LEARNERS", "SHARED_INIT_KEY"]

#: Learner kinds.
LEARNERS = ("tabular", "linear", "mlp")
_STEP_RULES = ("constant", "harmonic", "paper")
_STEP_INDEX = ("auto", "pair", "agent")
#: ``spawn_key`` head of the shared initial parameters.
SHARED_INIT_KEY = 2 ** 31


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _positive(name, v, *, allow_none=False, integer=False):
    if v is None and allow_none:
        return
    if integer and not _is_int(v):
        raise InvalidArgumentError(f"`{name}` must be an integer, got {v!r}.")
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not np.isfinite(v) or not v > 0:
        raise InvalidArgumentError(f"`{name}` must be a finite number > 0, got {v!r}.")


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
        _positive("c", self.c)
        _positive("k0", self.k0)
        _positive("max_step", self.max_step, allow_none=True)
        if self.rule == "paper":
            _positive("nu", self.nu)
            _positive("lambda0", self.lambda0)

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
        for name in ("epsilon", "final_epsilon"):
            v = getattr(self, name)
            if v is None and name == "final_epsilon":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0 <= v <= 1:
                raise InvalidArgumentError(f"`{name}` must lie in [0, 1], got {v!r}.")
        if not _is_int(self.decay_steps) or self.decay_steps < 0:
            raise InvalidArgumentError(f"`decay_steps` must be an integer >= 0, got {self.decay_steps!r}.")

    def at(self, k: np.ndarray) -> np.ndarray | float:
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
        behavior, e.g. ``estimators.behavior.uniform_behavior(model)``).
        Mass on inadmissible successors is rejected.
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
    stall_steps : int
        A seed that makes no update for ``20 H + stall_steps`` primitive steps
        (e.g. invocations that outlast the horizon) stops the run with status
        ``"stalled"``.
    progress : bool or None
        tqdm bar on stderr; ``None``: on long runs with a terminal.
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
    stall_steps: int = 100_000
    progress: bool | None = None

    def __post_init__(self):
        if self.learner not in LEARNERS:
            raise InvalidArgumentError(f"`learner` must be one of {LEARNERS}, got {self.learner!r}.")
        _positive("updates", self.updates, integer=True)
        if _is_int(self.seeds):
            _positive("seeds", self.seeds, integer=True)
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
                if not _is_int(c) or not 0 <= c <= self.updates:
                    raise InvalidArgumentError(
                        f"`checkpoints` must hold integers in 0..{self.updates} (`updates`), got {c!r}.")
            object.__setattr__(self, "checkpoints", tuple(int(c) for c in cks))
        if not _is_int(self.seed) or self.seed < 0:
            raise InvalidArgumentError(f"`seed` must be an integer >= 0, got {self.seed!r}.")
        if isinstance(self.init, bool) or not np.isfinite(self.init):
            raise InvalidArgumentError(f"`init` must be a finite number, got {self.init!r}.")
        try:
            hidden = tuple(int(h) for h in self.hidden)
        except (TypeError, ValueError):
            hidden = ()
        if not hidden or min(hidden) < 1 or any(not _is_int(h) for h in self.hidden):
            raise InvalidArgumentError(
                f"`hidden` must be a non-empty sequence of widths >= 1, got {self.hidden!r}.")
        object.__setattr__(self, "hidden", hidden)
        _positive("omega", self.omega, allow_none=True)
        _positive("stall_steps", self.stall_steps, integer=True)

    # ------------------------------------------------------------ derived
    @property
    def seed_ids(self) -> tuple[int, ...]:
        return tuple(range(self.seeds)) if _is_int(self.seeds) else tuple(self.seeds)

    @property
    def step_size(self) -> StepSize:
        if self.step is not None:
            return self.step
        if self.learner == "tabular":
            return StepSize(rule="harmonic", c=10.0, k0=10.0)
        return StepSize(rule="constant", c=0.05 if self.learner == "linear" else 0.01)

    @property
    def checkpoint_counts(self) -> np.ndarray:
        T = self.updates
        if self.checkpoints is None:
            cks = np.unique(np.round(np.geomspace(max(1.0, T / 1000.0), T, 10)).astype(np.int64))
        else:
            cks = np.asarray(self.checkpoints, dtype=np.int64)
        return np.unique(np.concatenate([cks, [T]]))

    def to_dict(self) -> dict:
        """JSON-ready settings; arrays are summarized by shape and SHA-256."""
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
        return out


def _digest(arrays) -> list:
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
    admissible : bool array (N+1,)
        Its admissible successors (copied).
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
        return self._est.best(seeds, o)

    def _uniform(self, u: np.ndarray) -> np.ndarray:
        # floor(u n) <= n - 1 for every u <= 1 - 2**-53 (Generator.random's largest value)
        return self._adm_idx[(u * self._adm_idx.size).astype(np.int64)]

    def choose(self, seeds: np.ndarray, o: np.ndarray, u_coin: np.ndarray,
               u_pick: np.ndarray) -> np.ndarray:
        """Commit to a successor at an epoch start, from two uniforms per seed."""
        if self._adm_idx.size == 1:  # nothing to choose
            return self._adm_idx.repeat(seeds.size)
        if isinstance(self._behavior, FixedBehavior):
            return self._uniform(u_coin) if self._law is None else self._law.sample(o, u_coin)
        pick = self._est.greedy(seeds, o, TIE_TOL)
        if self._decaying:
            k = self._decisions[seeds]
            self._decisions[seeds] = k + 1
            eps = self._behavior.at(k)
        else:
            eps = self._behavior.epsilon
        return np.where(u_coin < eps, self._uniform(u_pick), pick)

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
        """``Q_i[seed, o, c']``, ``nan`` where inadmissible."""
        return self._est.table(seeds)

    def parameters(self, seeds=None) -> np.ndarray:
        return self._est.parameters(seeds)

    def initial_parameters(self, seeds=None) -> np.ndarray:
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
            ev[r] = np.nanmax(np.abs(q - qbar)[:, self._adm_idx])
            eg[r] = np.sqrt(((J - J0) ** 2).sum(axis=2))[:, self._adm_idx].max()
        return ev, eg, dist


def _resolve_per_agent(model: ICSMDP, settings: ICQ):
    """Validate features / fixed behavior against the model: per-agent lists."""
    N, C = model.num_agents, model.num_successors
    feats = [None] * N
    if settings.features is not None:
        if len(settings.features) != N:
            raise InvalidArgumentError(f"`features` must hold one array per agent ({N}), "
                                       f"got {len(settings.features)}.")
        for i, f in enumerate(settings.features):
            f = np.array(f, dtype=float)
            nO = model.agents[i].num_observations
            want = "(nO_i, N+1, d)" if settings.learner == "linear" else "(nO_i, d_in)"
            ok = (f.ndim == 3 and f.shape[:2] == (nO, C)) if settings.learner == "linear" \
                else (f.ndim == 2 and f.shape[0] == nO)
            if settings.learner == "tabular" or not ok or not np.all(np.isfinite(f)):
                raise InvalidArgumentError(
                    f"`features[{i}]` (agent `{model.agents[i].name}`) must be a finite array "
                    f"{want} with nO_i = {nO}, N+1 = {C} for learner {settings.learner!r}; "
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
            a = model.agents[i]
            shape = (a.num_observations, C)
            if p.shape != shape:
                raise InvalidArgumentError(f"`behavior.probabilities[{i}]` must have shape "
                                           f"{list(shape)}, got {list(p.shape)}.")
            bad = ~np.isfinite(p) | (p < 0) | (~a.successors[None, :] & (p > 0))
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
    feats, probs = _resolve_per_agent(model, settings)
    seed_ids = settings.seed_ids
    S, C = len(seed_ids), model.num_successors
    step = settings.step_size
    agents = []
    for i, a in enumerate(model.agents):
        nO = a.num_observations
        adm = np.array(a.successors, dtype=bool)
        if settings.learner == "tabular":
            est = TabularQ(S, nO, adm, init=settings.init)
        elif settings.learner == "linear":
            psi = feats[i]
            if psi is None:
                psi = np.eye(nO * C).reshape(nO, C, nO * C)
            est = LinearQ(S, psi, adm, omega=settings.omega)
        else:
            inputs = feats[i]
            d_in = nO if inputs is None else inputs.shape[1]

            def draw(key):
                rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=key))
                return mlp_init(rng, d_in, settings.hidden, C, one_hot=inputs is None)
            if settings.shared_init:
                theta0 = draw((SHARED_INIT_KEY, i))
            else:
                theta0 = np.stack([draw((k, 0, i)) for k in seed_ids])
            est = MLPQ(S, nO, adm, theta0=theta0, hidden=settings.hidden, inputs=inputs,
                       omega=settings.omega)
        agents.append(ICQAgent(index=i, admissible=adm, gamma=model.gamma, estimator=est,
                               step=step, behavior=settings.behavior, probabilities=probs[i]))
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


class _Progress:
    def __init__(self, total: int, enabled: bool | None, desc: str):
        if enabled is None:
            enabled = total >= 2_000_000 and sys.stderr.isatty()
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="upd", unit_scale=True, file=sys.stderr)
        self.done = 0

    def update(self, done: int):
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_icq(settings: ICQ, model: ICSMDP) -> RunRecord:
    """Run IC-Q (see the module docstring); same as ``solve(settings, model)``."""
    t_start = time.perf_counter()
    N, C, H = model.num_agents, model.num_successors, model.horizon
    seed_ids = np.array(settings.seed_ids, dtype=np.int64)
    S, T = seed_ids.size, settings.updates
    agents = build_agents(settings, model)
    nO = model.num_observations
    offs = cell_offsets(nO)
    cks = settings.checkpoint_counts
    K = cks.size
    ck_lookup = np.full(T + 1, -1, dtype=np.int64)
    ck_lookup[cks] = np.arange(K)
    q_snap = np.full((K, S, int(offs[-1]), C), np.nan)
    reached = np.zeros((K, S), bool)
    ck_seconds = np.full((K, S), np.nan)
    eps_v = np.full((K, S), np.nan)
    eps_g = np.full((K, S), np.nan)
    dist = np.full((K, S, N), np.nan)
    track = settings.track_linearization

    sim = BatchSimulator(model, S)
    streams = SeedStreams(seed_sequences(settings.seed, seed_ids), step_width=STEP_COLUMNS,
                          event_width=N + 2)
    log = [] if settings.log_messages else None
    updates = np.zeros(S, np.int64)
    last_update = np.zeros(S, np.int64)  # batch clock when the seed was last seen updating
    finish_clock = np.zeros(S, np.int64)  # batch clock when the seed made its T-th update
    truncations = np.zeros(S, np.int64)
    alive = np.ones(S, bool)
    obs = np.zeros(S, np.int64)
    obs_of = sim.tables.obs_of
    c0, c1 = CHOICE_COLUMNS
    ca, ck, ce = PRIMITIVE_COLUMNS
    t_loop = time.perf_counter()
    cpu_loop = time.process_time()

    def snapshot(seeds, k_idx):
        for i, ag in enumerate(agents):
            q_snap[k_idx, seeds, offs[i]:offs[i + 1], :] = ag.table(seeds)
        reached[k_idx, seeds] = True
        ck_seconds[k_idx, seeds] = time.perf_counter() - t_loop
        if track:
            ev, eg = np.zeros(seeds.size), np.zeros(seeds.size)
            for i, ag in enumerate(agents):
                a, g, d = ag.linearization_error(seeds)
                ev, eg = np.maximum(ev, a), np.maximum(eg, g)
                dist[k_idx, seeds, i] = d
            eps_v[k_idx, seeds], eps_g[k_idx, seeds] = ev, eg

    def start_epochs(idx, u):
        """Active agents of seeds ``idx`` observe and commit (choice uniforms of this step)."""
        ag = sim.agent[idx]
        if N > 1:
            order = np.argsort(ag, kind="stable")
            idx, ag = idx[order], ag[order]
        o = obs_of[sim.G[idx]]
        uc, up = u[c0][idx], u[c1][idx]
        c = np.empty(idx.size, np.int64)
        for i, lo, hi in _runs(ag, N):
            c[lo:hi] = agents[i].choose(idx[lo:hi], o[lo:hi], uc[lo:hi], up[lo:hi])
        obs[idx] = o
        sim.begin(idx, c)

    all_idx = np.arange(S)
    if ck_lookup[0] >= 0:
        snapshot(all_idx, np.zeros(S, np.int64))
    u = streams.step()
    sim.restart(all_idx, streams.events(all_idx))
    start_epochs(all_idx, u)

    progress = _Progress(S * T, settings.progress, f"IC-Q {settings.learner}")
    status, message = "completed", ""
    n_alive = S
    stall_limit = 20 * H + settings.stall_steps
    seen_updates = updates.copy()  # for the stall check, every 512 steps
    empty = np.zeros(0, np.int64)
    trunc_due = H  # no episode can reach the horizon before this clock
    try:
        while True:
            u = streams.step()
            ended = sim.step(u[ca], u[ck], u[ce])
            clock = sim.clock
            if n_alive < S:
                ended &= alive
            h = ended.nonzero()[0]
            hn = stop = empty
            if h.size:
                pred = sim.agent[h]
                if N > 1:  # group by predecessor: contiguous runs, sliced below
                    order = np.argsort(pred, kind="stable")
                    h, pred = h[order], pred[order]
                c = sim.successor[h]
                tau = clock - sim.epoch_start[h]
                R = sim.ret[h]
                go = c < N
                b = np.zeros(h.size)
                gi = go.nonzero()[0]
                hn = h[gi]
                if gi.size:
                    cn = c[gi]
                    sim.handoff(hn, cn)
                    if N > 1:  # group by successor for the bootstrap
                        order = np.argsort(cn, kind="stable")
                        gi, cn = gi[order], cn[order]
                        hn = h[gi]
                    o2 = obs_of[sim.G[hn]]
                    bn = np.empty(gi.size)
                    for j, lo, hi in _runs(cn, N):
                        bn[lo:hi] = agents[j].bootstrap(hn[lo:hi], o2[lo:hi])
                    b[gi] = bn
                if gi.size < h.size:
                    stop = h[~go]
                oh = obs[h]
                for i, lo, hi in _runs(pred, N):
                    agents[i].update(h[lo:hi], oh[lo:hi], c[lo:hi], b[lo:hi], tau[lo:hi], R[lo:hi])
                k = updates[h]
                if log is not None:
                    log.append((seed_ids[h], k, c, pred, b, tau, R, oh, c))
                k = k + 1  # (the log holds the previous array)
                updates[h] = k
                kc = ck_lookup[k]
                if kc.max() >= 0:  # some checkpoint reached (T is one)
                    snap = kc >= 0
                    snapshot(h[snap], kc[snap])
                    done = k >= T
                    if done.any():
                        fin = h[done]
                        alive[fin] = False
                        finish_clock[fin] = clock
                        n_alive -= fin.size
                        if n_alive == 0:
                            break
                        hn = hn[alive[hn]]
                        stop = stop[alive[stop]]
            r = stop
            if clock >= trunc_due:  # episodes at the horizon restart; unfinished epochs are cut
                due = sim.episode_start <= clock - H
                due &= alive
                tr = due.nonzero()[0]
                if tr.size:
                    cut = tr[~ended[tr]]
                    truncations[cut] += 1
                    due[stop] = True
                    r = due.nonzero()[0]
                    hn = hn[~due[hn]]
            if r.size:
                sim.restart(r, streams.events(r))
            if clock >= trunc_due:
                trunc_due = int(sim.episode_start[alive].min()) + H
            start = r if hn.size == 0 else (hn if r.size == 0 else np.concatenate([hn, r]))
            if start.size:
                start_epochs(start, u)
            if clock & 511 == 0:
                progress.update(int(updates.sum()))
                moved = updates != seen_updates
                last_update[moved] = clock
                seen_updates = updates.copy()
                stalled = alive & (last_update < clock - stall_limit)
                if stalled.any():
                    s = int(np.flatnonzero(stalled)[0])
                    status = "stalled"
                    message = (f"seed {int(seed_ids[s])} made no update in {stall_limit} primitive "
                               f"steps (invocations longer than the horizon H={H}?); stopped.")
                    break
    except KeyboardInterrupt:
        status = "interrupted"
        message = "interrupted by the user; checkpoints reached so far are kept."
    finish_clock[alive] = sim.clock
    iterations = sim.clock
    progress.update(int(updates.sum()))
    progress.close()
    loop_seconds = time.perf_counter() - t_loop
    loop_cpu = time.process_time() - cpu_loop
    total_updates = int(updates.sum())
    cell_adm = np.repeat(np.array([a.successors for a in model.agents]), nO, axis=0)
    if status == "completed":
        if not np.all(np.isfinite(q_snap[-1][:, cell_adm])):
            status = "diverged"
            message = "some estimates are not finite at the last checkpoint."
        else:
            message = (f"{S} seeds x {T} updates ({settings.learner}); "
                       f"{total_updates / max(loop_seconds, 1e-12):,.0f} updates/s.")
    messages = None
    if log is not None:
        cols = list(zip(*log)) if log else [[] for _ in MESSAGE_FIELDS]
        dtypes = (np.int64, np.int64, np.int64, np.int64, float, np.int64, float, np.int64, np.int64)
        messages = {f: (np.concatenate(cols[j]).astype(dt) if len(cols[j]) else np.zeros(0, dt))
                    for j, (f, dt) in enumerate(zip(MESSAGE_FIELDS, dtypes))}
    param = settings.learner != "tabular"
    timings = {"setup_seconds": t_loop - t_start, "loop_seconds": loop_seconds,
               "loop_cpu_seconds": loop_cpu,
               "updates_per_second": total_updates / max(loop_seconds, 1e-12),
               "updates_per_cpu_second": total_updates / max(loop_cpu, 1e-12),
               "total_updates": total_updates, "batch_steps": iterations}
    return RunRecord(
        success=status == "completed", status=status, message=message, iterations=iterations,
        settings=settings.to_dict(), elapsed=time.perf_counter() - t_start,
        instance=model.name, learner=settings.learner, gamma=model.gamma, num_agents=N,
        num_observations=tuple(nO), admissible=np.array([a.successors for a in model.agents]),
        checkpoints=cks, q=q_snap, seeds=seed_ids, base_seed=settings.seed, reached=reached,
        updates=updates, primitive_steps=finish_clock, episodes=sim.episodes.copy(),
        truncations=truncations, checkpoint_seconds=ck_seconds, eps0_value=eps_v,
        eps0_grad=eps_g, theta_distance=dist,
        theta0=tuple(ag.initial_parameters() for ag in agents) if param else (),
        theta=tuple(ag.parameters() for ag in agents) if param else (),
        features=tuple(f for f in _resolve_per_agent(model, settings)[0]) if
        settings.features is not None else (),
        messages=messages, timings=timings)


@register(ICQ, ICSMDP)
def _solve_icq(settings: ICQ, model: ICSMDP) -> RunRecord:
    return run_icq(settings, model)


def replay_agent(settings: ICQ, model: ICSMDP, messages: dict, agent: int) -> np.ndarray:
    """Rebuild agent ``agent`` alone from its messages and own journal; return its final table.

    Parameters
    ----------
    settings : ICQ
        The run's settings (for the agent's own estimator, step and init).
    model : ICSMDP
        Used only for the agent's own sizes (observation count, admissible set).
    messages : dict of arrays
        A run's message log (:data:`solvers.records.MESSAGE_FIELDS`).
    agent : int

    Returns
    -------
    ndarray (S, nO_i, N+1)
        ``Q_i`` of every seed after feeding, message by message in log
        order, ``update(seed, o, c', b, tau, R)``.
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
