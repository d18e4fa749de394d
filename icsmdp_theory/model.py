"""The finite IC-SMDP: one validated, immutable object (SPEC sections 1 and 9).

Axis orders (stated once, used everywhere):

========================  ==========================================  ===================
field                     meaning                                     axes
========================  ==========================================  ===================
``rho_latent_interface``  initial law of ``(x, m)``                   ``[x, m]``
``rho_agent``             initial active agent (never STOP)           ``[i]``
``rho_private``           initial private state of agent ``i``        ``[l]``
``internal_policy``       ``pi_i(a | m, l)``                          ``[m, l, a]``
``mode_policies``         ``pi_i^k(a | m, l)`` of mode ``k``          ``[k, m, l, a]``
``kernel[a]``             ``P(y_next | y, a)``, sparse CSR            ``[y, y_next]``
``reward``                ``r(x, m, i, a, c')``                       ``[x, m, a, c']``
``end_probability``       ``beta_i(x', m', l')`` after a step         ``[x, m, l]``
``observation``           ``phi_i(m, l)``                             ``[m, l]``
``successors``            admissible successors, STOP at index ``N``  ``[c']``
========================  ==========================================  ===================

Adaptable agents (issue 15; README "Semantic choices"): an agent may have
``K_i >= 1`` *modes* (the optional file key ``modes``, a list of distinct
names); mode ``k`` has its own internal policy ``mode_policies[k]``, and
rewards, kernels and end probabilities are shared by the modes. At the start
of an invocation the agent picks a *choice* ``j = a*(N+1) + c'`` (mode ``a``,
successor ``c'``); the model's choice dimension is
``J = max_i K_i * (N+1)`` (:attr:`ICSMDP.num_choices`), with the entries
``a >= K_i`` inadmissible (:attr:`ICSMDP.choice_admissible`). A one-mode
model (every ``K_i = 1``: every file without ``modes``) has ``J = N+1`` and
is exactly today's model. Per-mode arrays are read with ``mode=a``
(:meth:`ICSMDP.mean_kernel`, :func:`icsmdp_theory.options.option_reduction`);
without ``mode`` they refuse an agent with several modes
(:func:`require_single_mode` does so for a whole consumer, with one line).

The agent-local state is ``y = (x*nM + m)*nL_i + l`` (:meth:`ICSMDP.local_index`);
it is the only place this flattening is written. A full state
``f = (x, m, l_0, ..., l_{N-1})`` is flattened in C order, and an epoch state
``s = (f, i)`` as ``s = f*N + i`` (see :mod:`icsmdp_theory.epoch`).

Construction validates, in this order: sizes and ``gamma``; initial laws;
then per agent: sizes, ``modes`` (when given), ``rho_private``,
``internal_policy`` (``[K, nM, nL, nA]`` with ``modes``), ``reward``
(value scale ``max |r| / (1 - gamma) <= 1e100``), ``end_probability`` (in
``[0, 1]``), ``kernel``, ``observation`` labels (``0..nO-1``, every label
used), ``successors`` (booleans, at least one true). Every array entry must
be a number (a boolean, string or list where a number belongs is refused at
its index; integer-valued entries are range-checked on the value as given
before any cast), every shape must match, probabilities are non-negative
with rows summing to 1 within ``1e-9``; finally
Assumption 1(ii): from every local state the invocation ends with
probability 1 (the undiscounted continue matrix ``Kbar diag(1 - beta)`` has
no trap set), for every mode. Every violation raises :class:`InvalidInstanceError` whose
message names the key, the agent and the offending index.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from icsmdp_theory.documents import describe, format_int
from icsmdp_theory.errors import (InvalidArgumentError, InvalidInstanceError,
                                  InvalidObservationMapError)

__all__ = ["Agent", "ICSMDP", "DerivedCache", "KernelEntries", "ROW_SUM_TOL", "AGENT_KEYS",
           "OPTIONAL_AGENT_KEYS", "VALUE_SCALE_LIMIT", "INT64_MAX", "require_single_mode",
           "agents_with_modes", "MODES_SUPPORTED"]

#: Tolerance on probability rows summing to 1 (SPEC section 9).
ROW_SUM_TOL = 1e-9

#: Largest accepted value scale ``max |r| / (1 - gamma)`` (a bound on every ``|V|`` and
#: ``|Q|``): far inside the double range, so values, their squares and the bounds built
#: from them (factors up to ``1/(1 - gamma)^2 <= 1e32``) stay finite.
VALUE_SCALE_LIMIT = 1e100

#: Largest accepted size or horizon (sizes and indices are int64 inside).
INT64_MAX = 2**63 - 1

#: The keys of one agent in the JSON format, in validation order.
AGENT_KEYS = ("name", "n_private", "n_actions", "rho_private", "internal_policy",
              "kernel", "reward", "end_probability", "observation", "successors")

#: Optional keys of one agent: ``modes`` (adaptable agents, issue 15), a list of
#: ``K >= 1`` distinct non-empty names; with it ``internal_policy`` is ``[K, nM, nL, nA]``.
OPTIONAL_AGENT_KEYS = ("modes",)


class DerivedCache:
    """The derived values of one model, keyed by everything they depend on (STYLE 19).

    Two stores, each a dict owned by exactly one model:

    - ``dynamics``: values that depend only on the model's dynamics (kernels,
      internal policies, rewards, end probabilities, ``gamma``, successors and
      initial laws), e.g. mean kernels, option reductions, end laws, the
      committed-successor chain;
    - ``observation``: values that also depend on the observation maps, e.g.
      observation lookups, simulation tables, behavior-keyed laws, cells.

    :meth:`ICSMDP.with_observation` gives the new model a cache whose
    ``dynamics`` store is a *new* dict holding the parent's entries (the
    values are immutable, or objects whose lazy state depends on the dynamics
    only) and whose ``observation`` store is empty: a value derived from the
    observation maps is never reachable from a model with other maps, and no
    dict is shared between two models.

    Every key must hold every argument the value depends on besides the model
    itself (e.g. ``("stationary", behavior bytes, shapes, limit)``).
    Computation runs outside the lock (a value may be computed on worker
    threads that also read the cache); the first value stored wins, so every
    caller sees the same object.
    """

    __slots__ = ("_lock", "_dynamics", "_observation")

    def __init__(self, dynamics: Mapping | None = None):
        self._lock = threading.Lock()
        self._dynamics: dict = dict(dynamics or {})
        self._observation: dict = {}

    def get(self, key: Hashable, compute: Callable[[], Any], *, observation: bool) -> Any:
        """The value stored under ``key``, computing and storing it on first use.

        Parameters
        ----------
        key : hashable
            Everything the value depends on besides the model.
        compute : callable
            Called without arguments when ``key`` is absent.
        observation : bool
            Whether the value depends on the observation maps.
        """
        store = self._observation if observation else self._dynamics
        with self._lock:
            if key in store:
                return store[key]
        value = compute()
        with self._lock:
            return store.setdefault(key, value)

    def for_other_observation(self) -> "DerivedCache":
        """A new cache for a model with the same dynamics and other observation maps."""
        with self._lock:
            return DerivedCache(self._dynamics)

    def keys(self, *, observation: bool) -> list:
        """The keys stored (for tests and diagnostics)."""
        with self._lock:
            return list((self._observation if observation else self._dynamics).keys())


@dataclass(frozen=True, eq=False)
class KernelEntries:
    """The sparse file form of a kernel as four columns (how ``.npz`` stores it).

    Entry ``k`` says ``P(y2[k] | y[k], a[k]) = p[k]``; ``shape`` is ``[nA, nY, nY]``.
    Validated exactly like ``{"shape": shape, "entries": [[a, y, y2, p], ...]}``
    (same checks, same messages); ``sparse`` is the form the model keeps for
    writing the kernel back (``Agent.kernel_is_sparse``).
    """

    shape: Any
    a: Any
    y: Any
    y2: Any
    p: Any
    sparse: bool = True


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _frozen_csr(k: sp.csr_array) -> sp.csr_array:
    """``k`` (canonical CSR, owned by the model) with read-only buffers."""
    k.sort_indices()
    for arr in (k.data, k.indices, k.indptr):
        arr.setflags(write=False)
    return k


@dataclass(frozen=True, eq=False)
class Agent:
    """One validated agent of an :class:`ICSMDP` (built by the model).

    Attributes
    ----------
    name : str
    rho_private : ndarray, shape (nL,)
        Initial law of the private state, ``rho_private[l]``.
    mode_policies : ndarray, shape (K, nM, nL, nA)
        ``mode_policies[k, m, l, a] = pi_i^k(a | m, l)``, the internal policy of
        mode ``k`` (``K = 1`` for a pre-configured agent).
    kernel : tuple of scipy.sparse.csr_array, each (nY, nY)
        ``kernel[a][y, y_next]``, ``y = (x*nM + m)*nL + l``.
    reward : ndarray, shape (nX, nM, nA, N+1)
        ``reward[x, m, a, c'] = r(x, m, i, a, c')``.
    end_probability : ndarray, shape (nX, nM, nL)
        ``end_probability[x, m, l] = beta_i(x, m, l)`` at the state reached.
    observation : ndarray of int, shape (nM, nL)
        ``observation[m, l] = phi_i(m, l)`` in ``0..nO-1``.
    successors : ndarray of bool, shape (N+1,)
        Admissible successors; index ``N`` is STOP.
    kernel_is_sparse : bool
        Whether the kernel was given in the sparse file form (kept for
        writing it back in the same form).
    modes : tuple of str or None
        The mode names of the file's ``modes`` key; ``None`` when the file
        has none (one unnamed mode; written back without the key).
    """

    name: str
    rho_private: np.ndarray
    mode_policies: np.ndarray
    kernel: tuple
    reward: np.ndarray
    end_probability: np.ndarray
    observation: np.ndarray
    successors: np.ndarray
    kernel_is_sparse: bool
    modes: tuple | None = None

    @property
    def num_modes(self) -> int:
        """``K_i``: number of modes (1 for a pre-configured agent)."""
        return self.mode_policies.shape[0]

    @property
    def internal_policy(self) -> np.ndarray:
        """``pi_i(a | m, l)``, shape ``(nM, nL, nA)``: the policy of the agent's only mode.

        Raises
        ------
        InvalidArgumentError
            The agent has several modes (read ``mode_policies[k]`` instead).
        """
        if self.num_modes != 1:
            raise InvalidArgumentError(
                f"agent `{self.name}` has {self.num_modes} modes ({', '.join(self.modes)}): its "
                f"internal policy depends on the mode; read `mode_policies[k]`.")
        return self.mode_policies[0]

    @property
    def num_private(self) -> int:
        """``nL_i``."""
        return self.rho_private.shape[0]

    @property
    def num_actions(self) -> int:
        """``nA_i``."""
        return self.mode_policies.shape[3]

    @property
    def num_local_states(self) -> int:
        """``nY_i = nX*nM*nL_i``."""
        return self.kernel[0].shape[0]

    @property
    def num_observations(self) -> int:
        """``nO_i``: number of observation labels."""
        return int(self.observation.max()) + 1


class ICSMDP:
    """A finite interface-constrained SMDP (SPEC section 1), validated and immutable.

    Parameters
    ----------
    name : str
    gamma : float
        Primitive discount, ``0 < gamma < 1``.
    horizon : int
        Primitive-step cap ``H`` (simulation only).
    n_latent, n_interface : int
        ``nX`` and ``nM``.
    rho_latent_interface : array_like, shape (nX, nM)
    rho_agent : array_like, shape (N,)
    agents : sequence of mappings
        Each with the keys :data:`AGENT_KEYS` (and optionally ``modes``,
        :data:`OPTIONAL_AGENT_KEYS`); ``kernel`` is a dense
        ``[nA][nY][nY]`` array, a sequence of ``nA`` scipy sparse matrices, or
        the sparse file form ``{"shape": [nA, nY, nY], "entries": [[a, y, y2, p], ...]}``.

    Attributes
    ----------
    agents : tuple of Agent
    admissible : ndarray of bool, shape (N, N+1)
        ``admissible[i, c']``: successor ``c'`` admissible for agent ``i`` (read-only).
    num_modes : tuple of int
        ``(K_0, ..., K_{N-1})``, each ``>= 1`` (issue 15).
    num_choices : int
        ``J = max_i K_i * (N+1)``: choices ``j = a*(N+1) + c'`` (``N+1`` without modes).
    choice_admissible : ndarray of bool, shape (N, J)
        ``choice_admissible[i, a*(N+1) + c'] = a < K_i and admissible[i, c']``
        (equal to ``admissible`` for a one-mode model).
    derived : DerivedCache
        This model's cache of derived values.

    Raises
    ------
    InvalidInstanceError
        On any violation, with the key, agent and index in the message.

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> model = load_example("tiny-handoff")
    >>> model.num_agents, model.num_interface, model.num_epoch_states
    (2, 3, 6)
    """

    def __init__(self, *, name: str, gamma: float, horizon: int, n_latent: int,
                 n_interface: int, rho_latent_interface: Any, rho_agent: Any,
                 agents: Sequence[Mapping[str, Any]]):
        v = _Validator()
        self.name = v.string("name", name)
        self.gamma = v.gamma(gamma)
        self.horizon = v.positive_int("horizon", horizon)
        self.num_latent = v.positive_int("n_latent", n_latent)
        self.num_interface = v.positive_int("n_interface", n_interface)
        if not isinstance(agents, (list, tuple)) or len(agents) == 0:
            raise InvalidInstanceError("`agents` must be a non-empty list of agent objects.")
        self.num_agents = len(agents)
        nX, nM, N = self.num_latent, self.num_interface, self.num_agents
        self.rho_latent_interface = _frozen(
            v.distribution("rho_latent_interface", rho_latent_interface, (nX, nM), joint=True))
        self.rho_agent = _frozen(v.distribution("rho_agent", rho_agent, (N,), joint=True))
        built = []
        for i, spec in enumerate(agents):
            built.append(v.agent(i, spec, nX, nM, N))
        self.agents: tuple[Agent, ...] = tuple(built)
        self.admissible = _frozen(np.array([ag.successors for ag in self.agents], dtype=bool))
        self.num_modes = tuple(ag.num_modes for ag in self.agents)
        self.num_choices = max(self.num_modes) * (N + 1)
        choice = np.zeros((N, self.num_choices), dtype=bool)
        for i, ag in enumerate(self.agents):
            choice[i, :ag.num_modes * (N + 1)] = np.tile(ag.successors, ag.num_modes)
        self.choice_admissible = _frozen(choice)
        self._derived = DerivedCache()
        for i, agent in enumerate(self.agents):
            for k in range(agent.num_modes):
                _check_termination(self, i, k)
        self._frozen = True

    def __setattr__(self, key, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"ICSMDP is immutable; cannot set `{key}`.")
        object.__setattr__(self, key, value)

    @property
    def derived(self) -> DerivedCache:
        """This model's cache of derived values (see :class:`DerivedCache`)."""
        return self._derived

    def __delattr__(self, key):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"ICSMDP is immutable; cannot delete `{key}`.")
        object.__delattr__(self, key)

    # ----------------------------------------------------------------- sizes
    @property
    def num_successors(self) -> int:
        """``|C| = N + 1`` (STOP has index ``N``)."""
        return self.num_agents + 1

    @property
    def stop(self) -> int:
        """Index of STOP among successors."""
        return self.num_agents

    @property
    def has_modes(self) -> bool:
        """Whether some agent has several modes (``K_i > 1``, issue 15)."""
        return max(self.num_modes) > 1

    def choice(self, mode: int, successor: int) -> int:
        """The choice index ``j = mode*(N+1) + successor`` (issue 15).

        >>> from icsmdp_theory.examples import load_example
        >>> load_example("tiny-handoff").choice(0, 2)
        2
        """
        return int(mode) * self.num_successors + int(successor)

    def choice_decode(self, j: Any) -> tuple:
        """Inverse of :meth:`choice`: ``j -> (mode, successor)``."""
        return tuple(np.divmod(j, self.num_successors))

    @property
    def num_private(self) -> tuple[int, ...]:
        """``(nL_0, ..., nL_{N-1})``."""
        return tuple(a.num_private for a in self.agents)

    @property
    def num_full_states(self) -> int:
        """``nX * nM * prod_i nL_i`` (Python int, exact)."""
        n = self.num_latent * self.num_interface
        for a in self.agents:
            n *= a.num_private
        return n

    @property
    def num_epoch_states(self) -> int:
        """Full epoch states ``s = (x, m, l_0..l_{N-1}, i)``: ``num_full_states * N``."""
        return self.num_full_states * self.num_agents

    @property
    def num_observations(self) -> tuple[int, ...]:
        """``(nO_0, ..., nO_{N-1})``."""
        return tuple(a.num_observations for a in self.agents)

    def agent_names(self) -> list[str]:
        """Ordered agent ids (PettingZoo-style)."""
        return [a.name for a in self.agents]

    # ------------------------------------------------------------ indexing
    def local_index(self, i: int, x: Any, m: Any, l: Any) -> Any:
        """Flatten ``(x, m, l_i)`` to agent ``i``'s local state ``y = (x*nM + m)*nL_i + l``.

        >>> from icsmdp_theory.examples import load_example
        >>> load_example("tiny-handoff").local_index(0, 0, 2, 0)
        2
        """
        return (x * self.num_interface + m) * self.agents[i].num_private + l

    def local_decode(self, i: int, y: Any) -> tuple:
        """Inverse of :meth:`local_index`: ``y -> (x, m, l)``."""
        nL = self.agents[i].num_private
        xm, l = np.divmod(y, nL)
        x, m = np.divmod(xm, self.num_interface)
        return x, m, l

    # ------------------------------------------------- per-agent local arrays
    def mode_policy(self, i: int, mode: int | None = None) -> np.ndarray:
        """``pi_i^k(a | m, l)`` of mode ``k = mode``: shape ``(nM, nL_i, nA_i)``.

        ``mode=None`` reads the agent's only mode and refuses an agent with
        several (:class:`~icsmdp_theory.errors.InvalidArgumentError`, naming it).
        """
        a = self.agents[i]
        if mode is None:
            return a.internal_policy
        if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)) \
                or not 0 <= mode < a.num_modes:
            raise InvalidArgumentError(f"`mode` of agent {i} (`{a.name}`) must lie in "
                                       f"0..{a.num_modes - 1}, got {mode!r}.")
        return a.mode_policies[int(mode)]

    def policy_on_local_states(self, i: int, mode: int | None = None) -> np.ndarray:
        """``pi_i(a | y)`` broadcast over ``x``: shape ``(nY_i, nA_i)`` (of mode ``mode``)."""
        a = self.agents[i]
        pol = self.mode_policy(i, mode)
        pol = np.broadcast_to(pol[None], (self.num_latent,) + pol.shape)
        return pol.reshape(-1, a.num_actions)

    def mean_kernel(self, i: int, mode: int | None = None) -> sp.csr_array:
        """``Kbar_i[y, y'] = sum_a pi_i(a|m, l) K_i[a][y, y']`` (cached), CSR.

        With ``mode=k`` the policy is mode ``k``'s; ``None`` reads the only mode.
        """
        self.mode_policy(i, mode)  # checks `mode`; refuses None on a multi-mode agent
        mode_k = 0 if mode is None else int(mode)
        key = ("mean_kernel", i) if mode_k == 0 else ("mean_kernel", i, mode_k)

        def compute():
            pol = self.policy_on_local_states(i, mode_k)
            total = None
            for a, k in enumerate(self.agents[i].kernel):
                term = sp.diags_array(pol[:, a]) @ k
                total = term if total is None else total + term
            total = sp.csr_array(total)
            total.sum_duplicates()
            total.eliminate_zeros()
            return _frozen_csr(total)
        return self._derived.get(key, compute, observation=False)

    def mean_reward(self, i: int, mode: int | None = None) -> np.ndarray:
        """``rbar_i[y, c'] = sum_a pi_i(a|m, l) r(x, m, i, a, c')``: shape ``(nY_i, N+1)``.

        With ``mode=k`` the policy is mode ``k``'s; ``None`` reads the only mode.
        """
        a = self.agents[i]
        # [x, m, l, c'] = sum_a pol[m, l, a] * reward[x, m, a, c']
        r = np.einsum("mla,xmac->xmlc", self.mode_policy(i, mode), a.reward)
        return r.reshape(-1, self.num_successors)

    def end_probability_local(self, i: int) -> np.ndarray:
        """``beta_i(y)`` flattened over local states: shape ``(nY_i,)``."""
        return self.agents[i].end_probability.reshape(-1)

    # ------------------------------------------------------------ variants
    def with_observation(self, maps: Sequence[Any]) -> "ICSMDP":
        """A copy whose observation maps are replaced by ``maps`` (one ``[nM][nL_i]`` per agent).

        Raises
        ------
        InvalidObservationMapError
            Wrong agent count, wrong shape, non-integer or unused labels.
        """
        if not isinstance(maps, (list, tuple)) or len(maps) != self.num_agents:
            got = len(maps) if isinstance(maps, (list, tuple)) else type(maps).__name__
            raise InvalidObservationMapError(
                f"`maps` must hold one observation map per agent: expected {self.num_agents}, got {got}.")
        v = _Validator(error=InvalidObservationMapError, prefix="maps")
        checked = [v.observation(i, self.agents[i].name, m, self.num_interface,
                                 self.agents[i].num_private) for i, m in enumerate(maps)]
        new = object.__new__(ICSMDP)
        for k, val in self.__dict__.items():
            if k in ("_frozen", "agents", "_derived"):
                continue
            object.__setattr__(new, k, val)
        object.__setattr__(new, "agents", tuple(
            _replace_observation(a, o) for a, o in zip(self.agents, checked)))
        # the dynamics are unchanged: carry the values that depend on them only, in a new
        # container; nothing derived from the observation maps is carried
        object.__setattr__(new, "_derived", self._derived.for_other_observation())
        object.__setattr__(new, "_frozen", True)
        return new

    def summary(self) -> str:
        """One line describing the sizes (the modes ``K`` only when some agent has several)."""
        modes = f"K={list(self.num_modes)}, " if self.has_modes else ""
        return (f"{self.name}: N={self.num_agents} agents, nX={self.num_latent}, "
                f"nM={self.num_interface}, nL={list(self.num_private)}, "
                f"nO={list(self.num_observations)}, {modes}gamma={self.gamma}, H={self.horizon}, "
                f"{self.num_epoch_states} epoch states")

    def __repr__(self) -> str:
        return f"ICSMDP({self.summary()})"


def agents_with_modes(model: ICSMDP) -> list[int]:
    """The agents with several modes (``K_i > 1``), in order (empty for a one-mode model)."""
    return [i for i, k in enumerate(model.num_modes) if k > 1]


#: What accepts a model with adaptable agents (named in :func:`require_single_mode`'s refusals).
MODES_SUPPORTED = ("the exact oracle (`icsmdp solve`), the option reduction, the AIS "
                   "construction, gaps and mixing (`icsmdp gaps`, every reference law) and "
                   "IC-Q with the exact evaluation of its greedy policies (`icsmdp run`, "
                   "`--evaluate` too) and the Theorem 1 checker (`icsmdp check`)")


def require_single_mode(model: Any, what: str) -> None:
    """Refuse a model with an adaptable agent in a consumer that does not support modes yet.

    One located line: the first agent with several modes (index, name, mode
    names) and ``what`` is not supported. A one-mode :class:`ICSMDP` (and any
    other model type, e.g. an explicit epoch model) passes.

    Parameters
    ----------
    model : ICSMDP or any model
    what : str
        The consumer, e.g. ``"IC-Q"`` or ``"the AIS construction and gaps"``.

    Raises
    ------
    InvalidArgumentError

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> require_single_mode(load_example("tiny-handoff"), "IC-Q")   # one mode: passes
    """
    if not isinstance(model, ICSMDP) or not model.has_modes:
        return
    i = agents_with_modes(model)[0]
    a = model.agents[i]
    raise InvalidArgumentError(
        f"{what} does not support adaptable agents yet: agent {i} (`{a.name}`) has "
        f"{a.num_modes} modes ({', '.join(a.modes)}); what takes modes: {MODES_SUPPORTED}.")


def _replace_observation(agent: Agent, obs: np.ndarray) -> Agent:
    d = dict(agent.__dict__)
    d["observation"] = _frozen(obs)
    return Agent(**d)


# ---------------------------------------------------------------- validation
_NUMBER_TYPES = (int, float, np.integer, np.floating)
_BOOL_TYPES = (bool, np.bool_)
_LISTS = (list, tuple, np.ndarray)


def _is_number(x: Any) -> bool:
    return isinstance(x, _NUMBER_TYPES) and not isinstance(x, _BOOL_TYPES)


def _given(x: Any) -> str:
    """A number as written in the file (integers in full up to 40 digits)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, _BOOL_TYPES):
        return format_int(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    return describe(x)


def _float_ok(x: Any) -> bool:
    try:
        float(x)
    except OverflowError:
        return False
    return True


def _regular_shape(value: Any) -> list | None:
    """The shape of a nested list if it is regular (``None`` when ragged); iterative."""
    shape: list[int] = []
    level = [value]
    while level:
        lists = [isinstance(x, _LISTS) for x in level]
        if not any(lists):
            return shape
        if not all(lists):
            return None
        lens = {len(x) for x in level}
        if len(lens) != 1:
            return None
        shape.append(lens.pop())
        level = [y for x in level for y in (x.tolist() if isinstance(x, np.ndarray) else x)]
    return shape


class _Validator:
    """Located checks; every failure raises ``error`` with key, agent and index.

    Arrays arrive either as nested lists (a JSON document, or Python callers)
    or as numpy arrays (``.npz`` files, callers): both go through the same
    checks and messages. Entries must be numbers (booleans, strings, lists,
    complex numbers are refused at their index), integer-valued fields are
    range-checked on the value as given, before any cast.
    """

    def __init__(self, error: type = InvalidInstanceError, prefix: str = ""):
        self.error = error
        self.prefix = prefix
        self.gamma_value = 0.0

    def fail(self, msg: str):
        raise self.error(msg)

    # ------------------------------------------------------------ scalars
    def string(self, key, value):
        if not isinstance(value, str):
            self.fail(f"`{key}` must be a string, got {type(value).__name__}.")
        return value

    def positive_int(self, key, value, where=""):
        if isinstance(value, _BOOL_TYPES) or not isinstance(value, (int, np.integer)) or value < 1:
            shown = format_int(value) if isinstance(value, (int, np.integer)) and \
                not isinstance(value, _BOOL_TYPES) else repr(value)
            self.fail(f"`{key}`{where} must be an integer >= 1, got {shown}.")
        if value > INT64_MAX:
            self.fail(f"`{key}`{where} must be an integer in 1..{INT64_MAX}, got {format_int(value)}.")
        return int(value)

    def gamma(self, value):
        if isinstance(value, _BOOL_TYPES) or not isinstance(value, _NUMBER_TYPES):
            self.fail(f"`gamma` must be a number in (0, 1), got {value!r}.")
        if not _float_ok(value):
            self.fail(f"`gamma` must lie in (0, 1), got {format_int(value)}.")
        g = float(value)
        if not (0.0 < g < 1.0):
            self.fail(f"`gamma` must lie in (0, 1), got {g!r}.")
        self.gamma_value = g
        return g

    # ------------------------------------------------------------- arrays
    def structure(self, key, where, value, shape):
        """``value`` checked to have ``shape``: an ndarray, or the flat list of its leaves (C order)."""
        shape = tuple(int(n) for n in shape)
        if isinstance(value, np.ndarray) and value.dtype.kind != "O":
            if value.ndim == 0:
                value = value.item()
            elif value.shape != shape:
                self.fail(f"`{key}`{where} must have shape {list(shape)}, got {list(value.shape)}.")
            else:
                return value
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            self.fail(f"`{key}`{where} must be an array of shape {list(shape)}, got {describe(value)}.")
        level = [value]
        for d, n in enumerate(shape):
            nxt: list = []
            for j, item in enumerate(level):
                if isinstance(item, np.ndarray):
                    item = item.tolist()
                if not isinstance(item, (list, tuple)) or len(item) != n:
                    self._mismatch(key, where, value, shape, d, j, item)
                nxt.extend(item)
            level = nxt
        return level  # leaves may still be lists (deeper than shape): callers check types

    def _mismatch(self, key, where, value, shape, d, j, item):
        natural = _regular_shape(value)
        if natural is not None:
            self.fail(f"`{key}`{where} must have shape {list(shape)}, got {natural}.")
        idx = [int(t) for t in np.unravel_index(j, shape[:d])] if d else []
        if d == len(shape):
            what = f"is {describe(item)}, expected a single value"
        elif isinstance(item, _LISTS):
            what = f"has {len(item)} entries, expected {shape[d]}"
        else:
            what = f"is {describe(item)}, expected a list of {shape[d]} entries"
        if d == 0:
            self.fail(f"`{key}`{where} must have shape {list(shape)}, got a ragged array of "
                      f"{len(value)} entries.")
        self.fail(f"`{key}`{where} must have shape {list(shape)}: entry {idx} {what}.")

    def _bad_entry(self, key, where, shape, k, x, expected="a number"):
        idx = [int(t) for t in np.unravel_index(k, shape)]
        self.fail(f"`{key}`{where}: entry {idx} is {describe(x)}, expected {expected}.")

    def array(self, key, value, shape, where=""):
        """A finite float array of ``shape`` whose entries are all numbers."""
        shape = tuple(int(n) for n in shape)
        leaves = self.structure(key, where, value, shape)
        if isinstance(leaves, np.ndarray):
            if leaves.dtype.kind not in "iuf":
                self._bad_entry(key, where, shape, 0, leaves.reshape(-1)[0])
            arr = leaves.astype(float)
        else:
            if not set(map(type, leaves)) <= {float, int}:
                for k, x in enumerate(leaves):
                    if isinstance(x, _LISTS):
                        self._mismatch(key, where, value, shape, len(shape), k, x)
                    if not _is_number(x):
                        self._bad_entry(key, where, shape, k, x)
            try:
                arr = np.array(leaves, dtype=float).reshape(shape)
            except OverflowError:
                k = next(k for k, x in enumerate(leaves) if not _float_ok(x))
                idx = [int(t) for t in np.unravel_index(k, shape)]
                self.fail(f"`{key}`{where}: entry {idx} is {describe(leaves[k])}, beyond the "
                          f"double-precision range.")
        if not np.all(np.isfinite(arr)):
            idx = tuple(int(t) for t in np.argwhere(~np.isfinite(arr))[0])
            self.fail(f"`{key}`{where} must be finite: entry {list(idx)} is {float(arr[idx])!r}.")
        return arr

    def nonnegative(self, key, arr, where=""):
        if np.any(arr < 0):
            idx = tuple(int(t) for t in np.argwhere(arr < 0)[0])
            self.fail(f"`{key}`{where} must be non-negative: entry {list(idx)} is {float(arr[idx])!r}.")

    def distribution(self, key, value, shape, where="", joint=False):
        arr = self.array(key, value, shape, where)
        self.nonnegative(key, arr, where)
        if joint:
            s = arr.sum()
            if abs(s - 1.0) > ROW_SUM_TOL:
                self.fail(f"`{key}`{where} must sum to 1, sums to {float(s)!r}.")
        else:
            sums = arr.sum(axis=-1)
            bad = np.abs(sums - 1.0) > ROW_SUM_TOL
            if np.any(bad):
                idx = tuple(int(t) for t in np.argwhere(bad)[0])
                self.fail(f"rows of `{key}`{where} must sum to 1: row {list(idx)} sums to {float(sums[idx])!r}.")
        return arr

    def reward(self, key, value, shape, where=""):
        """Rewards whose value scale ``max |r| / (1 - gamma)`` is at most :data:`VALUE_SCALE_LIMIT`."""
        arr = self.array(key, value, shape, where)
        if arr.size:
            k = int(np.argmax(np.abs(arr)))
            with np.errstate(over="ignore"):
                scale = abs(float(arr.flat[k])) / (1.0 - self.gamma_value)
            if not scale <= VALUE_SCALE_LIMIT:
                idx = [int(t) for t in np.unravel_index(k, arr.shape)]
                self.fail(f"`{key}`{where}: entry {idx} is {float(arr.flat[k])!r}, so "
                          f"max |r| / (1 - gamma) = {scale:.3g} exceeds {VALUE_SCALE_LIMIT:g}; "
                          f"rewards must keep values finite in double precision with margin.")
        return arr

    def observation(self, i, name, value, nM, nL, key="observation"):
        where = f" of agent {i} (`{name}`)"
        full_key = f"{self.prefix}[{i}]" if self.prefix else key
        leaves = self.structure(full_key, where, value, (nM, nL))
        if isinstance(leaves, np.ndarray):
            leaves = leaves.reshape(-1).tolist()
        hi = nM * nL - 1
        for k, x in enumerate(leaves):
            if isinstance(x, _LISTS):
                self._mismatch(full_key, where, value, (nM, nL), 2, k, x)
            m, l = divmod(k, nL)
            at = f"`{full_key}`{where}: label at m={m}, l={l} is"
            if not _is_number(x) or (isinstance(x, (float, np.floating)) and not float(x).is_integer()):
                self.fail(f"{at} {describe(x)}, expected an integer label.")
            if x < 0:
                self.fail(f"{at} {_given(x)}, must be >= 0.")
            if x > hi:
                self.fail(f"`{full_key}`{where}: labels must be 0..{hi} with every label used "
                          f"(nM*nL = {hi + 1} cells); label at m={m}, l={l} is {_given(x)}.")
        obs = np.array([int(x) for x in leaves], dtype=np.int64).reshape(nM, nL)
        n_o = int(obs.max()) + 1
        used = np.zeros(n_o, bool)
        used[obs.ravel()] = True
        if not used.all():
            missing = int(np.flatnonzero(~used)[0])
            self.fail(f"`{full_key}`{where}: labels must be 0..{n_o - 1} with every label used; "
                      f"label {missing} is unused.")
        return obs

    def successors(self, key, value, N, where=""):
        if (not isinstance(value, _LISTS) or (isinstance(value, np.ndarray) and value.ndim != 1)
                or len(value) != N + 1):
            shown = repr(value.tolist() if isinstance(value, np.ndarray) else value)
            if len(shown) > 80:
                shown = describe(value)
            self.fail(f"`{key}`{where} must be a list of {N + 1} booleans (agents then STOP), "
                      f"got {shown}.")
        items = value.tolist() if isinstance(value, np.ndarray) else list(value)
        for k, x in enumerate(items):
            if not isinstance(x, _BOOL_TYPES):
                self.fail(f"`{key}`{where}: entry [{k}] is {describe(x)}, expected a boolean "
                          f"(true or false).")
        succ = np.array(items, dtype=bool)
        if not succ.any():
            self.fail(f"`{key}`{where} must admit at least one successor; all {N + 1} are false.")
        return succ

    # ------------------------------------------------------------- kernel
    def _entry_columns(self, where, entries):
        """The four columns of the sparse form ``[[a, y, y2, p], ...]`` (lists or 1-d arrays)."""
        if isinstance(entries, np.ndarray) and entries.dtype.kind != "O":
            if entries.shape == (0,):
                return [entries] * 4
            if entries.ndim == 2 and entries.shape[1] == 4:
                return [entries[:, c] for c in range(4)]
            entries = entries.tolist()
        if not isinstance(entries, (list, tuple)):
            self.fail(f"`kernel.entries`{where} must be a list of [a, y, y2, p] quadruples, "
                      f"got {describe(entries)}.")
        for k, e in enumerate(entries):
            if (not isinstance(e, _LISTS) or (isinstance(e, np.ndarray) and e.ndim != 1)
                    or len(e) != 4):
                self.fail(f"`kernel.entries`{where}: entry {k} must be a quadruple [a, y, y2, p], "
                          f"got {describe(e)}.")
        return [[e[c] for e in entries] for c in range(4)]

    def _entry_column(self, where, name, col):
        """One column as a numeric ndarray, each entry a number (as given in messages)."""
        if isinstance(col, np.ndarray) and col.dtype.kind != "O":
            if col.ndim != 1:
                self.fail(f"`kernel.entries`{where}: column `{name}` must be a 1-d array, got "
                          f"shape {list(col.shape)}.")
            if col.dtype.kind not in "iuf" and col.size:
                self.fail(f"`kernel.entries`{where}: entry 0 has {name} = {describe(col[0])}, "
                          f"expected a number.")
            return col if col.size else col.astype(float)
        if not isinstance(col, _LISTS):
            self.fail(f"`kernel.entries`{where}: column `{name}` must be a 1-d array, got "
                      f"{describe(col)}.")
        col = list(col.tolist() if isinstance(col, np.ndarray) else col)
        if not set(map(type, col)) <= {float, int}:
            for k, x in enumerate(col):
                if not _is_number(x):
                    self.fail(f"`kernel.entries`{where}: entry {k} has {name} = {describe(x)}, "
                              f"expected a number.")
        try:
            return np.array(col, dtype=float)
        except OverflowError:
            k = next(k for k, x in enumerate(col) if not _float_ok(x))
            self.fail(f"`kernel.entries`{where}: entry {k} has {name}={_given(col[k])}, beyond "
                      f"the double-precision range.")

    def _kernel_shape(self, where, shape, nA, nY):
        ok = (isinstance(shape, (list, tuple)) and len(shape) == 3
              and all(isinstance(n, (int, np.integer)) and not isinstance(n, _BOOL_TYPES)
                      for n in shape) and [int(n) for n in shape] == [nA, nY, nY])
        if not ok:
            self.fail(f"`kernel.shape`{where} must be {[nA, nY, nY]}, got {_short_repr(shape)}.")

    def _sparse_kernel(self, where, columns, nA, nY):
        names = ("a", "y", "y2", "p")
        cols = [self._entry_column(where, nm, c) for nm, c in zip(names, columns)]
        lengths = [len(c) for c in cols]
        if len(set(lengths)) != 1:
            self.fail(f"`kernel.entries`{where}: columns a, y, y2, p must have equal lengths, "
                      f"got {lengths}.")

        def given(c, k):
            x = columns[c][k]
            return _given(x.item() if isinstance(x, np.generic) else x)

        finite = np.ones(lengths[0], bool)
        for c in cols:
            if c.dtype.kind == "f":
                finite &= np.isfinite(c)
        if not finite.all():
            k = int(np.flatnonzero(~finite)[0])
            self.fail(f"`kernel.entries`{where}: entry {k} is not finite.")
        integral = np.ones(lengths[0], bool)
        for c in cols[:3]:
            if c.dtype.kind == "f":
                integral &= c == np.floor(c)
        if not integral.all():
            k = int(np.flatnonzero(~integral)[0])
            c = next(c for c in range(3) if cols[c].dtype.kind == "f" and cols[c][k] != np.floor(cols[c][k]))
            self.fail(f"`kernel.entries`{where}: entry {k} has a non-integer index "
                      f"{names[c]}={given(c, k)}.")
        for c, lim in ((0, nA), (1, nY), (2, nY)):
            bad = (cols[c] < 0) | (cols[c] >= lim)
            if np.any(bad):
                k = int(np.flatnonzero(bad)[0])
                self.fail(f"`kernel.entries`{where}: entry {k} has {names[c]}={given(c, k)} "
                          f"outside 0..{lim - 1}.")
        a_, y_, y2_ = (cols[c].astype(np.int64) for c in range(3))
        p = cols[3].astype(float)
        if np.any(p < 0):
            k = int(np.flatnonzero(p < 0)[0])
            self.fail(f"`kernel.entries`{where}: entry {k} has negative probability {float(p[k])!r}.")
        flat = (a_ * nY + y_) * nY + y2_
        uniq, counts = np.unique(flat, return_counts=True)
        if np.any(counts > 1):
            dup = int(uniq[int(np.flatnonzero(counts > 1)[0])])
            a0, rest = divmod(dup, nY * nY)
            y0, y20 = divmod(rest, nY)
            self.fail(f"`kernel.entries`{where}: (a={a0}, y={y0}, y2={y20}) is repeated.")
        mats = []
        for a in range(nA):
            sel = a_ == a
            mats.append(sp.csr_array((p[sel], (y_[sel], y2_[sel])), shape=(nY, nY)))
        return mats

    def kernel(self, i, name, value, nA, nY):
        where = f" of agent {i} (`{name}`)"
        key = "kernel"
        mats = []
        is_sparse = False
        if isinstance(value, KernelEntries):
            is_sparse = bool(value.sparse)
            self._kernel_shape(where, list(value.shape), nA, nY)
            mats = self._sparse_kernel(where, [value.a, value.y, value.y2, value.p], nA, nY)
        elif isinstance(value, Mapping):
            is_sparse = True
            extra = set(value) - {"shape", "entries"}
            if extra:
                self.fail(f"`kernel`{where}: unknown key `{sorted(map(str, extra))[0]}` in the sparse "
                          f"form (allowed: shape, entries).")
            shape = value.get("shape")
            self._kernel_shape(where, shape.tolist() if isinstance(shape, np.ndarray) else shape,
                               nA, nY)
            columns = self._entry_columns(where, value.get("entries", []))
            mats = self._sparse_kernel(where, columns, nA, nY)
        elif isinstance(value, (list, tuple)) and len(value) > 0 and all(sp.issparse(k) for k in value):
            is_sparse = True
            if len(value) != nA:
                self.fail(f"`kernel`{where} must hold {nA} matrices (one per action), got {len(value)}.")
            for a, k in enumerate(value):
                if k.shape != (nY, nY):
                    self.fail(f"`kernel[{a}]`{where} must have shape [{nY}, {nY}], got {list(k.shape)}.")
                if k.dtype.kind not in "iuf":
                    self.fail(f"`kernel[{a}]`{where} must hold real numbers, got dtype {k.dtype}.")
                k = sp.csr_array(k, dtype=float, copy=True)
                k.sum_duplicates()
                if not np.all(np.isfinite(k.data)):
                    self.fail(f"`kernel[{a}]`{where} must be finite.")
                if np.any(k.data < 0):
                    self.fail(f"`kernel[{a}]`{where} must be non-negative (action {a}).")
                mats.append(k)
        else:
            arr = self.array(key, value, (nA, nY, nY), where)
            self.nonnegative(key, arr, where)
            mats = [sp.csr_array(arr[a]) for a in range(nA)]
        for a, k in enumerate(mats):
            k.eliminate_zeros()
            _frozen_csr(k)
            sums = np.asarray(k.sum(axis=1)).ravel()
            bad = np.abs(sums - 1.0) > ROW_SUM_TOL
            if np.any(bad):
                y = int(np.flatnonzero(bad)[0])
                self.fail(f"rows of `kernel` must sum to 1: agent {i} (`{name}`), action {a}, "
                          f"row y={y} sums to {float(sums[y])!r}.")
        return tuple(mats), is_sparse

    # -------------------------------------------------------------- agent
    def agent(self, i, spec, nX, nM, N):
        if not isinstance(spec, Mapping):
            self.fail(f"`agents[{i}]` must be an object with keys {list(AGENT_KEYS)}.")
        unknown = [k for k in spec if k not in AGENT_KEYS + OPTIONAL_AGENT_KEYS]
        if unknown:
            self.fail(f"`agents[{i}]`: unknown key `{unknown[0]}` (allowed: "
                      f"{', '.join(AGENT_KEYS + OPTIONAL_AGENT_KEYS)}).")
        missing = [k for k in AGENT_KEYS if k not in spec]
        if missing:
            self.fail(f"`agents[{i}]`: missing key `{missing[0]}`.")
        name = spec["name"]
        if not isinstance(name, str):
            self.fail(f"`agents[{i}].name` must be a string, got {_short_repr(name)}.")
        where = f" of agent {i} (`{name}`)"
        nL = self.positive_int("n_private", spec["n_private"], where)
        nA = self.positive_int("n_actions", spec["n_actions"], where)
        modes = self.modes(spec["modes"], where) if "modes" in spec else None
        rho_l = self.distribution("rho_private", spec["rho_private"], (nL,), where, joint=True)
        if modes is None:
            pol = self.distribution("internal_policy", spec["internal_policy"], (nM, nL, nA),
                                    where)[None]
        else:
            pol = self.distribution("internal_policy", spec["internal_policy"],
                                    (len(modes), nM, nL, nA), where)
        # rewards and end probabilities before the kernel: their given sizes bound nY = nX*nM*nL
        # before any (nY, nY) structure is built
        rew = self.reward("reward", spec["reward"], (nX, nM, nA, N + 1), where)
        beta = self.array("end_probability", spec["end_probability"], (nX, nM, nL), where)
        if np.any((beta < 0) | (beta > 1)):
            x, m, l = np.argwhere((beta < 0) | (beta > 1))[0]
            self.fail(f"`end_probability`{where} must lie in [0, 1]: entry [{x}, {m}, {l}] is {float(beta[x, m, l])!r}.")
        kern, is_sparse = self.kernel(i, name, spec["kernel"], nA, nX * nM * nL)
        obs = self.observation(i, name, spec["observation"], nM, nL)
        succ = self.successors("successors", spec["successors"], N, where)
        return Agent(name=name, rho_private=_frozen(rho_l), mode_policies=_frozen(pol),
                     kernel=kern, reward=_frozen(rew), end_probability=_frozen(beta),
                     observation=_frozen(obs), successors=_frozen(succ), kernel_is_sparse=is_sparse,
                     modes=modes)

    def modes(self, value, where):
        """``modes``: a non-empty list of distinct non-empty strings (issue 15)."""
        if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind == "U":
            value = value.tolist()
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            self.fail(f"`modes`{where} must be a non-empty list of mode names, got "
                      f"{_short_repr(value)}.")
        seen: dict = {}
        for k, x in enumerate(value):
            if not isinstance(x, str):
                self.fail(f"`modes`{where}: entry [{k}] is {describe(x)}, expected a string.")
            if not x:
                self.fail(f"`modes`{where}: entry [{k}] is the empty string; mode names must "
                          f"be non-empty.")
            if x in seen:
                self.fail(f"`modes`{where}: entry [{k}] repeats the name {_short_repr(x)} "
                          f"of entry [{seen[x]}]; mode names must be distinct.")
            seen[x] = k
        return tuple(str(x) for x in value)


def _short_repr(value: Any) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 80 else describe(value)


def _check_termination(model: ICSMDP, i: int, mode: int = 0) -> None:
    """Assumption 1(ii): every invocation of agent ``i`` (in mode ``mode``) ends with probability 1.

    The undiscounted continue matrix ``M = Kbar diag(1 - beta)`` has spectral
    radius < 1 iff from every local state some path of continue edges
    (``Kbar[y, y'] > 0`` and ``beta(y') < 1``) reaches a state whose row of
    ``M`` leaks mass (``sum_y' Kbar[y, y'] beta(y') > 0``). Reverse
    breadth-first search from a virtual sink finds the states that can.
    """
    kbar = model.mean_kernel(i, mode)
    beta = model.end_probability_local(i)
    nY = kbar.shape[0]
    coo = kbar.tocoo()
    cont = (coo.data > 0) & (beta[coo.col] < 1.0)
    leaks = np.zeros(nY, bool)
    np.logical_or.at(leaks, coo.row, (coo.data > 0) & (beta[coo.col] > 0.0))
    # reversed graph: edge y' -> y for each continue edge y -> y'; sink -> leaking y
    sink = nY
    rows = np.concatenate([coo.col[cont], np.full(int(leaks.sum()), sink)])
    cols = np.concatenate([coo.row[cont], np.flatnonzero(leaks)])
    graph = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(nY + 1, nY + 1))
    reached = breadth_first_order(graph, sink, directed=True, return_predecessors=False)
    ok = np.zeros(nY + 1, bool)
    ok[reached] = True
    if not ok[:nY].all():
        y = int(np.flatnonzero(~ok[:nY])[0])
        x, m, l = model.local_decode(i, y)
        agent = model.agents[i]
        in_mode = f" in mode {mode} (`{agent.modes[mode]}`)" if agent.modes is not None else ""
        raise InvalidInstanceError(
            f"`end_probability`/`kernel` of agent {i} (`{agent.name}`): the invocation{in_mode} "
            f"never ends from local state y={y} (x={x}, m={m}, l={l}); Assumption 1(ii) requires "
            f"it to end with probability 1.")
