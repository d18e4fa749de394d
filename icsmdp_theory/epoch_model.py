"""The explicit epoch model: a workflow known through its logs (SPEC section 10).

Agents ``0..N-1`` and STOP ``= N``; ``K`` recorded state labels ``k``; an
epoch state is ``s = (k, i)`` with ``i`` the active agent. For every
admissible successor ``c'`` of ``s`` the model holds the joint law
``P(k', tau | k, i, c')`` of the next label and the duration (for STOP a law
over ``tau`` alone; a fresh ``s0 ~ rho0`` follows), the option reward
``R(k, i, c')`` and ``rho0`` over epoch states. The next epoch state is
``(k', c')``; it must be an epoch state of the model. Derived quantities:

- discounted kernel ``D(s' | s, c') = sum_tau gamma^tau P(k', tau | k, i, c')``
  (``c' != STOP``; :meth:`EpochModel.discounted_kernel`);
- end discount ``E[gamma^tau | s, c']`` (STOP included; :meth:`EpochModel.end_discount`)
  and ``gamma_bar = max`` of it over admissible pairs (:meth:`EpochModel.gamma_bar`);
- the undiscounted law ``P(s' | s, c') = sum_tau P(k', tau | k, i, c')``
  (:meth:`EpochModel.transition_law`).

An observation map is ``phi_i: labels -> O_i`` per agent (default: each label
its own observation). Its raw values are kept (:attr:`EpochModel.observation`);
the cells ``(i, o)`` used by the solvers are *compacted per agent*: ``o`` is the
rank of ``phi_i(k)`` among the distinct values ``phi_i`` takes on agent ``i``'s
states (:attr:`EpochModel.state_observation`, :attr:`EpochModel.observation_values`).

Axis orders (stated once):

=======================  =================================================  ==============
field                    meaning                                            axes
=======================  =================================================  ==============
``state_label``          label ``k`` of epoch state ``s``                   ``[s]``
``state_agent``          active agent ``i`` of ``s``                        ``[s]``
``admissible``           ``c'`` admissible at ``s`` (STOP at ``N``)         ``[s, c']``
``rho0``                 initial law over epoch states                      ``[s]``
``reward``               ``R(s, c')``, NaN where inadmissible               ``[s, c']``
``components``           ``R_j(s, c')``, NaN where inadmissible             ``[s, c', j]``
``trans_*``              one entry ``(s, c', k', tau, p)`` per row          ``[t]``
``observation[i]``       raw ``phi_i(k)``                                   ``[k]``
``state_observation``    compacted ``o`` of ``s`` for its own agent         ``[s]``
=======================  =================================================  ==============

Epoch states are stored sorted by ``(k, i)``; transitions sorted by
``(state, successor, next epoch state, tau)`` (STOP rows have next state -1).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.documents import describe
from icsmdp_theory.errors import (InvalidArgumentError, InvalidEpochModelError,
                                  InvalidObservationMapError)
from icsmdp_theory.model import ROW_SUM_TOL, VALUE_SCALE_LIMIT, DerivedCache
from icsmdp_theory.validation import is_int, is_real

__all__ = ["EpochModel", "TRANSITION_KEYS", "STOP_NAME"]

#: The columns of ``transitions`` (constructor argument), all 1-D of one length.
TRANSITION_KEYS = ("state", "successor", "next_label", "tau", "prob")
#: The name of the STOP successor (reserved: no agent may be called so).
STOP_NAME = "STOP"


def _rebuild(args: dict) -> "EpochModel":
    """Unpickle an :class:`EpochModel` (see :meth:`EpochModel.__reduce__`)."""
    return EpochModel(**args)


def _is_sorted(*cols: np.ndarray) -> bool:
    """Whether the rows ``(cols[0][t], cols[1][t], ...)`` are in lexicographic order (one pass)."""
    if cols[0].size < 2:
        return True
    ok = np.ones(cols[0].size - 1, dtype=bool)     # rows t, t+1 are in order so far
    tie = np.ones(cols[0].size - 1, dtype=bool)    # rows t, t+1 are equal so far
    for c in cols:
        d = np.diff(c)
        ok &= ~(tie & (d < 0))
        tie &= d == 0
    return bool(ok.all())


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _readonly_csr(k: sp.csr_array) -> sp.csr_array:
    k.sum_duplicates()
    k.sort_indices()
    for arr in (k.data, k.indices, k.indptr):
        arr.setflags(write=False)
    return k


def _names(key: str, value: Any, *, what: str, allow_empty: bool) -> tuple[str, ...]:
    """A sequence of unique strings (agent names, labels, component names)."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind == "U":
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise InvalidEpochModelError(f"`{key}` must be a list of {what}, got {describe(value)}.")
    if not value and not allow_empty:
        raise InvalidEpochModelError(f"`{key}` must hold at least one {what[:-1]}.")
    bad = next((j for j, v in enumerate(value) if not isinstance(v, str)), None)
    if bad is not None:
        raise InvalidEpochModelError(f"`{key}` entry {bad} must be a string, got {describe(value[bad])}.")
    if len(set(value)) != len(value):
        seen: set = set()
        dup = next(j for j, v in enumerate(value) if v in seen or seen.add(v))
        raise InvalidEpochModelError(f"`{key}` entry {dup} repeats {value[dup]!r}; {what} must be unique.")
    return tuple(value)


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("any" if n == -1 else str(n) for n in shape) + ")"


def _array(key: str, value: Any, shape: tuple, kinds: str, what: str) -> np.ndarray:
    """``value`` as an array of the given shape (``-1`` = any length) and dtype kinds."""
    arr = None
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged nesting
            raise InvalidEpochModelError(f"`{key}` must be a regular array of {what} with shape "
                                         f"{_shape_text(shape)}; its nesting is ragged.") from None
    if arr is None or arr.dtype.kind not in kinds or arr.dtype.hasobject:
        got = f"dtype {arr.dtype}" if arr is not None else describe(value)
        raise InvalidEpochModelError(f"`{key}` must be an array of {what}, got {got}.")
    if arr.ndim != len(shape) or any(n != -1 and n != m for n, m in zip(shape, arr.shape)):
        raise InvalidEpochModelError(f"`{key}` must have shape {_shape_text(shape)}, got "
                                     f"{tuple(arr.shape)}.")
    return arr


class EpochModel:
    """An explicit epoch SMDP (SPEC section 10): validated, immutable, arrays read-only.

    Parameters
    ----------
    name : str
        (Every parameter is keyword-only.)
    gamma : float
        Primitive discount, ``0 < gamma < 1`` (durations discount as ``gamma^tau``).
    agents : sequence of str
        Unique agent names (``"STOP"`` is reserved).
    labels : sequence of str
        The ``K`` unique state labels (canonical JSON text for exports and fits).
    states : int array (S, 2)
        Rows ``[k, i]``, unique, in any order; stored sorted by ``(k, i)``.
    admissible : bool array (S, N+1)
        ``admissible[s, c']`` aligned with ``states`` as given; each row has a ``True``.
    rho0 : float array (S,)
        Initial law (aligned with ``states`` as given), ``>= 0``, sums to 1 within ``1e-9``.
    transitions : mapping of 1-D arrays
        ``state`` (row of ``states`` as given), ``successor`` (``0..N``),
        ``next_label`` (``k'``, ``-1`` for STOP), ``tau`` (``>= 1``), ``prob`` (``> 0``).
        Rows sum to 1 for every admissible ``(s, c')``; none for inadmissible pairs;
        ``(k', c')`` must be an epoch state; a repeated ``(s, c', k', tau)`` is refused.
    reward : float array (S, N+1)
        ``R(s, c')``, finite where admissible (anything, e.g. NaN, elsewhere).
    observation : sequence of N int arrays (K,), optional
        Raw ``phi_i(k) >= 0``; default ``arange(K)`` for each agent.
    component_names : sequence of str
        ``J`` reward component names (SPEC section 11).
    components : float array (S, N+1, J) or None
    counts : mapping or None
        Evidence behind a fitted model (or, for an export, its truncation remainder),
        kept as given and written to files; JSON-compatible values.
    validate : bool
        ``False`` skips the checks (trusted internal construction only).

    Attributes
    ----------
    num_agents, num_successors, num_labels, num_epoch_states : int
        ``N``, ``N + 1``, ``K``, ``S``.
    trans_state, trans_successor, trans_next_label, trans_next, trans_tau, trans_prob : ndarray (T,)
        Transition entries sorted by ``(state, successor, next, tau)``; ``trans_next``
        is the epoch state ``(k', c')`` (``-1`` for STOP).
    state_observation : int ndarray (S,)
    num_observations : tuple of int
    observation_values : tuple of int ndarrays
    derived : DerivedCache

    Raises
    ------
    InvalidEpochModelError
        One line naming the key, the entry, the label and the agent.

    Examples
    --------
    One agent ``solo`` and two labels; from ``a`` it hands to itself and lands in
    ``b`` after one step, from ``b`` in ``a`` after 2 steps or ``b`` after 1 (each
    1/2); STOP takes 1 step from ``a`` and 3 from ``b``:

    >>> m = EpochModel(name="hand", gamma=0.9, agents=["solo"], labels=["a", "b"],
    ...     states=[[0, 0], [1, 0]], admissible=[[True, True], [True, True]],
    ...     rho0=[1.0, 0.0], reward=[[0.0, 1.0], [0.5, 2.0]],
    ...     transitions={"state": [0, 1, 1, 0, 1], "successor": [0, 0, 0, 1, 1],
    ...                  "next_label": [1, 0, 1, -1, -1], "tau": [1, 2, 1, 1, 3],
    ...                  "prob": [1.0, 0.5, 0.5, 1.0, 1.0]})
    >>> m.end_discount().round(4).tolist()       # E[gamma^tau | s, c']: 0.5*0.81 + 0.5*0.9
    [[0.9, 0.9], [0.855, 0.729]]
    >>> m.discounted_kernel().toarray().round(4).tolist()  # rows s*(N+1) + c'
    [[0.0, 0.9], [0.0, 0.0], [0.405, 0.45], [0.0, 0.0]]
    >>> m.gamma_bar(), m.describe_state(1)
    (0.9, {'label': 'b', 'agent': 0, 'agent_name': 'solo'})
    """

    def __init__(self, *, name: str, gamma: float, agents: Sequence[str], labels: Sequence[str],
                 states: Any, admissible: Any, rho0: Any, transitions: Mapping[str, Any],
                 reward: Any, observation: Sequence[Any] | None = None,
                 component_names: Sequence[str] = (), components: Any = None,
                 counts: Mapping | None = None, validate: bool = True):
        if validate:
            if not isinstance(name, str):
                raise InvalidEpochModelError(f"`name` must be a string, got {describe(name)}.")
            if not is_real(gamma) or not 0.0 < float(gamma) < 1.0:
                raise InvalidEpochModelError(f"`gamma` must be a number in (0, 1), got {describe(gamma)}.")
            agents = _names("agents", agents, what="agent names", allow_empty=False)
            if STOP_NAME in agents:
                raise InvalidEpochModelError(f"`agents` entry {agents.index(STOP_NAME)}: the name "
                                             f"{STOP_NAME!r} is reserved for the STOP successor.")
            labels = _names("labels", labels, what="labels", allow_empty=False)
            component_names = _names("component_names", component_names, what="component names",
                                     allow_empty=True)
        self.name = str(name)
        self.gamma = float(gamma)
        self.agent_names = tuple(agents)
        self.labels = tuple(labels)
        self.component_names = tuple(component_names)
        N, K = len(self.agent_names), len(self.labels)
        self.num_agents, self.num_successors, self.num_labels = N, N + 1, K
        check = _Checker(self) if validate else None

        st = _array("states", states, (-1, 2), "iu", "integers") if validate else np.asarray(states)
        if validate:
            check.states(st)
        st = st.astype(np.int64, copy=False)
        S = st.shape[0]
        self.num_epoch_states = S
        key = st[:, 0] * N + st[:, 1]
        order = np.argsort(key, kind="stable")
        self._given_of = order                       # sorted index -> given row
        self._key = _readonly(key[order])
        if validate:
            check.unique_states(st, order, self._key)
        sorted_of_given = np.empty(S, np.int64)
        sorted_of_given[order] = np.arange(S)
        self.state_label = _readonly(st[order, 0])
        self.state_agent = _readonly(st[order, 1])

        adm = _array("admissible", admissible, (S, N + 1), "b", "booleans") if validate \
            else np.asarray(admissible, dtype=bool)
        if validate:
            check.admissible(adm)
        self.admissible = _readonly(adm[order])

        r0 = _array("rho0", rho0, (S,), "fiu", "numbers") if validate else np.asarray(rho0)
        if validate:
            check.rho0(r0)
        self.rho0 = _readonly(r0.astype(float)[order])

        rew = _array("reward", reward, (S, N + 1), "fiu", "numbers") if validate else np.asarray(reward)
        if validate:
            check.reward("reward", rew, adm)
        self.reward = _readonly(np.where(self.admissible, rew.astype(float)[order], np.nan))

        J = len(self.component_names)
        if components is None:
            if validate and J:
                raise InvalidEpochModelError(f"`components` is missing but `component_names` names "
                                             f"{J} components.")
            self.components = None
        else:
            comp = _array("components", components, (S, N + 1, J), "fiu", "numbers") if validate \
                else np.asarray(components)
            if validate:
                check.reward("components", comp, adm[:, :, None])
            self.components = _readonly(np.where(self.admissible[:, :, None],
                                                 comp.astype(float)[order], np.nan))
        if validate and counts is not None and not isinstance(counts, Mapping):
            raise InvalidEpochModelError(f"`counts` must be a mapping, got {describe(counts)}.")
        self.counts = None if counts is None else dict(counts)

        self._set_transitions(transitions, sorted_of_given, check)
        self._set_observation(self._observation_arrays(observation, validate))
        self._derived = DerivedCache()
        self._frozen = True

    # ---------------------------------------------------------- construction
    def _set_transitions(self, transitions, sorted_of_given, check) -> None:
        N, S = self.num_agents, self.num_epoch_states
        if check is not None:
            cols = check.transition_columns(transitions)
            check.transition_entries(cols)
        else:
            cols = {k: np.asarray(transitions[k]) for k in TRANSITION_KEYS}
        state = sorted_of_given[cols["state"].astype(np.int64)]
        succ = cols["successor"].astype(np.int64)
        nxt_label = cols["next_label"].astype(np.int64)
        tau = cols["tau"].astype(np.int64)
        prob = cols["prob"].astype(float)
        stop = succ == N
        # the epoch state (k', c'): binary search among the sorted keys
        want = np.where(stop, -1, nxt_label * N + np.where(stop, 0, succ))
        pos = np.searchsorted(self._key, want)
        found = ~stop & (pos < S) & (self._key[np.minimum(pos, S - 1)] == want)
        nxt = np.where(found, pos, -1)
        if check is not None:
            check.next_states(found, stop)
        if _is_sorted(state, succ, nxt, tau):        # e.g. posterior draws: skip the O(n log n) sort
            order = np.arange(state.size)
        else:
            order = np.lexsort((tau, nxt, succ, state))
            state, succ, nxt_label, nxt, tau, prob = (a[order] for a in
                                                      (state, succ, nxt_label, nxt, tau, prob))
        if check is not None:
            check.transition_rows(order, state, succ, nxt, tau, prob)
        self.trans_state = _readonly(state)
        self.trans_successor = _readonly(succ)
        self.trans_next_label = _readonly(nxt_label)
        self.trans_next = _readonly(nxt)
        self.trans_tau = _readonly(tau)
        self.trans_prob = _readonly(prob)

    def _observation_arrays(self, observation, validate: bool, *,
                            error: type = InvalidEpochModelError, key: str = "observation"
                            ) -> tuple[np.ndarray, ...]:
        N, K = self.num_agents, self.num_labels
        if observation is None:
            ident = _readonly(np.arange(K, dtype=np.int64))
            return tuple(ident for _ in range(N))
        if not validate:
            return tuple(_readonly(np.asarray(o, dtype=np.int64)) for o in observation)
        if isinstance(observation, np.ndarray):
            observation = list(observation)
        if not isinstance(observation, (list, tuple)) or len(observation) != N:
            got = len(observation) if isinstance(observation, (list, tuple)) else describe(observation)
            raise error(f"`{key}` must hold one map per agent: expected {N}, got {got}.")
        out = []
        for i, o in enumerate(observation):
            where = f"`{key}` of agent {i} (`{self.agent_names[i]}`)"
            arr = o if isinstance(o, np.ndarray) else np.asarray(o) if isinstance(o, (list, tuple)) else None
            if arr is None or arr.dtype.kind not in "iu" or arr.shape != (K,):
                got = f"dtype {arr.dtype}, shape {tuple(arr.shape)}" if arr is not None else describe(o)
                raise error(f"{where} must be {K} integers (one per label), got {got}.")
            if arr.size and arr.min() < 0:
                k = int(np.argmax(arr < 0))
                raise error(f"{where}: label {k} ({self.labels[k]!r}) maps to {int(arr[k])}; "
                            f"observations must be integers >= 0.")
            out.append(_readonly(arr.astype(np.int64)))
        return tuple(out)

    def _set_observation(self, obs: tuple[np.ndarray, ...]) -> None:
        """Raw maps and their per-agent compaction (rank among the values on agent i's states)."""
        state_obs = np.empty(self.num_epoch_states, np.int64)
        values, counts = [], []
        for i, o in enumerate(obs):
            mask = self.state_agent == i
            vals, inv = np.unique(o[self.state_label[mask]], return_inverse=True)
            state_obs[mask] = inv.ravel()
            values.append(_readonly(vals))
            counts.append(int(vals.size))
        object.__setattr__(self, "observation", obs)
        object.__setattr__(self, "state_observation", _readonly(state_obs))
        object.__setattr__(self, "observation_values", tuple(values))
        object.__setattr__(self, "num_observations", tuple(counts))

    # ------------------------------------------------------------ immutability
    def __setattr__(self, key, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"EpochModel is immutable; cannot set `{key}`.")
        object.__setattr__(self, key, value)

    def __delattr__(self, key):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"EpochModel is immutable; cannot delete `{key}`.")
        object.__delattr__(self, key)

    @property
    def derived(self) -> DerivedCache:
        """This model's cache of derived values (:class:`~icsmdp_theory.model.DerivedCache`)."""
        return self._derived

    @property
    def stop(self) -> int:
        """Index of STOP among successors (``N``)."""
        return self.num_agents

    @property
    def num_transitions(self) -> int:
        """Number of transition entries ``T``."""
        return int(self.trans_prob.size)

    @property
    def truncation_remainder(self) -> float:
        """Probability mass an export moved onto kept entries (``counts["truncation_remainder"]``; 0 otherwise)."""
        if isinstance(self.counts, dict):
            value = self.counts.get("truncation_remainder", 0.0)
            if is_real(value):
                return float(value)
        return 0.0

    def successor_name(self, c: int) -> str:
        """The name of successor ``c`` (``"STOP"`` for ``N``)."""
        return STOP_NAME if c == self.num_agents else self.agent_names[c]

    # ---------------------------------------------------------------- lookup
    def state_index(self, k: int | str, i: int | str) -> int:
        """The epoch state ``s`` of label ``k`` (index or label string) and agent ``i`` (index or name).

        Raises
        ------
        InvalidArgumentError
            Unknown label or agent, or ``(k, i)`` not an epoch state of the model.
        """
        if isinstance(k, str):
            if k not in self.labels:
                raise InvalidArgumentError(f"`k`: unknown label {k!r}.")
            k = self.labels.index(k)
        if isinstance(i, str):
            if i not in self.agent_names:
                raise InvalidArgumentError(f"`i`: unknown agent {i!r} (agents: "
                                           f"{', '.join(self.agent_names)}).")
            i = self.agent_names.index(i)
        if not is_int(k) or not 0 <= k < self.num_labels:
            raise InvalidArgumentError(f"`k` must be a label index in 0..{self.num_labels - 1}, got {k!r}.")
        if not is_int(i) or not 0 <= i < self.num_agents:
            raise InvalidArgumentError(f"`i` must be an agent index in 0..{self.num_agents - 1}, got {i!r}.")
        want = int(k) * self.num_agents + int(i)
        pos = int(np.searchsorted(self._key, want))
        if pos >= self.num_epoch_states or self._key[pos] != want:
            raise InvalidArgumentError(f"(label {self.labels[k]!r}, agent {i} `{self.agent_names[i]}`) "
                                       f"is not an epoch state of the model.")
        return pos

    def describe_state(self, s: int) -> dict:
        """``{"label", "agent", "agent_name"}`` of epoch state ``s``."""
        if not is_int(s) or not 0 <= s < self.num_epoch_states:
            raise InvalidArgumentError(f"`s` must be an epoch state in 0..{self.num_epoch_states - 1}, "
                                       f"got {s!r}.")
        i = int(self.state_agent[s])
        return {"label": self.labels[int(self.state_label[s])], "agent": i,
                "agent_name": self.agent_names[i]}

    # -------------------------------------------------------------- variants
    def with_observation(self, maps: Sequence[Any]) -> "EpochModel":
        """The same dynamics with other observation maps (N int arrays over the K labels).

        The new model's cache keeps the values that depend on the dynamics only
        (:meth:`~icsmdp_theory.model.DerivedCache.for_other_observation`).

        Raises
        ------
        InvalidObservationMapError
            Wrong agent count, shape, dtype, or a negative value.
        """
        obs = self._observation_arrays(maps, True, error=InvalidObservationMapError, key="maps")
        new = object.__new__(EpochModel)
        for k, val in self.__dict__.items():
            if k not in ("_frozen", "_derived"):
                object.__setattr__(new, k, val)
        new._set_observation(obs)
        object.__setattr__(new, "_derived", self._derived.for_other_observation())
        object.__setattr__(new, "_frozen", True)
        return new

    def __reduce__(self):
        """Pickle as the constructor's arguments (the cache holds a lock and is not sent)."""
        args = dict(name=self.name, gamma=self.gamma, agents=self.agent_names, labels=self.labels,
                    states=np.stack([self.state_label, self.state_agent], axis=1),
                    admissible=self.admissible, rho0=self.rho0,
                    transitions={"state": self.trans_state, "successor": self.trans_successor,
                                 "next_label": self.trans_next_label, "tau": self.trans_tau,
                                 "prob": self.trans_prob},
                    reward=self.reward, observation=self.observation,
                    component_names=self.component_names, components=self.components,
                    counts=self.counts, validate=False)
        return (_rebuild, (args,))

    def reachable_states(self, policy: Any = None) -> np.ndarray:
        """Bool ``(S,)``: the epoch states reachable from ``rho0`` through admissible transitions
        (with ``policy``, an int array ``(S,)``: through the successor each state commits to).

        A trace of the workflow under a behavior that tries every admissible
        successor visits exactly these states in the long run, so a fitted model
        estimates the restriction of the truth to them (:meth:`restricted`).
        """
        S = self.num_epoch_states
        go = self.trans_next >= 0
        if policy is not None:  # only the successor each state commits to
            go &= self.trans_successor == np.asarray(policy)[self.trans_state]
        graph = sp.csr_array((np.ones(int(go.sum())), (self.trans_state[go], self.trans_next[go])),
                             shape=(S, S))
        seen = np.asarray(self.rho0) > 0
        frontier = seen.copy()
        while frontier.any():
            nxt = (graph.T @ frontier.astype(float)) > 0
            frontier = nxt & ~seen
            seen |= nxt
        return seen

    def restricted(self, keep: Any) -> "EpochModel":
        """The model on the epoch states ``keep`` (bool ``(S,)``), which must be closed.

        Closed: no admissible transition leaves ``keep`` (e.g. :meth:`reachable_states`).
        Labels, agents, maps and counts-free dynamics are kept; ``rho0`` is renormalized
        over ``keep`` (it already sums to 1 there for the reachable states).

        Raises
        ------
        InvalidArgumentError
            ``keep`` has the wrong shape, is empty, or is not closed.
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.num_epoch_states,) or not keep.any():
            raise InvalidArgumentError(f"`keep` must be a non-empty bool array of shape "
                                       f"({self.num_epoch_states},).")
        rows = keep[self.trans_state]
        leave = rows & (self.trans_next >= 0) & ~keep[np.maximum(self.trans_next, 0)]
        if leave.any():
            t = int(np.flatnonzero(leave)[0])
            raise InvalidArgumentError(
                f"`keep` is not closed: state {int(self.trans_state[t])} moves to state "
                f"{int(self.trans_next[t])}, which is not kept.")
        new_index = np.cumsum(keep) - 1
        rho0 = np.asarray(self.rho0)[keep]
        if rho0.sum() <= 0:
            raise InvalidArgumentError("`keep` holds no state of positive initial probability.")
        return EpochModel(
            name=self.name, gamma=self.gamma, agents=self.agent_names, labels=self.labels,
            states=np.stack([self.state_label[keep], self.state_agent[keep]], axis=1),
            admissible=self.admissible[keep], rho0=rho0 / rho0.sum(),
            transitions={"state": new_index[self.trans_state[rows]],
                         "successor": self.trans_successor[rows],
                         "next_label": self.trans_next_label[rows], "tau": self.trans_tau[rows],
                         "prob": self.trans_prob[rows]},
            reward=self.reward[keep], observation=self.observation,
            component_names=self.component_names,
            components=None if self.components is None else self.components[keep])

    # ------------------------------------------------------------- derived
    def _pair_rows(self) -> np.ndarray:
        return self.trans_state * self.num_successors + self.trans_successor

    def _law(self, discounted: bool) -> sp.csr_array:
        keep = self.trans_next >= 0
        w = self.trans_prob[keep]
        if discounted:
            w = w * np.power(self.gamma, self.trans_tau[keep].astype(float))
        S = self.num_epoch_states
        mat = sp.csr_array((w, (self._pair_rows()[keep], self.trans_next[keep])),
                           shape=(S * self.num_successors, S))
        return _readonly_csr(mat)

    def discounted_kernel(self) -> sp.csr_array:
        """``D[s*(N+1) + c', s'] = sum_tau gamma^tau P(k', tau | s, c')`` (STOP rows 0), cached.

        Returns
        -------
        csr_array, shape (S*(N+1), S), read-only.
        """
        return self._derived.get(("epoch_discounted_kernel",), lambda: self._law(True),
                                 observation=False)

    def transition_law(self) -> sp.csr_array:
        """``P[s*(N+1) + c', s'] = sum_tau P(k', tau | s, c')`` (STOP rows 0), cached.

        Returns
        -------
        csr_array, shape (S*(N+1), S), read-only.
        """
        return self._derived.get(("epoch_transition_law",), lambda: self._law(False),
                                 observation=False)

    def end_discount(self) -> np.ndarray:
        """``E[gamma^tau | s, c']`` over every admissible pair, STOP included; NaN elsewhere.

        Returns
        -------
        ndarray, shape (S, N+1), read-only (cached).
        """
        def compute():
            w = self.trans_prob * np.power(self.gamma, self.trans_tau.astype(float))
            out = np.bincount(self._pair_rows(), weights=w,
                              minlength=self.num_epoch_states * self.num_successors)
            out = out.reshape(self.num_epoch_states, self.num_successors)
            return _readonly(np.where(self.admissible, out, np.nan))
        return self._derived.get(("epoch_end_discount",), compute, observation=False)

    def gamma_bar(self) -> float:
        """``gamma_bar = max E[gamma^tau | s, c']`` over admissible pairs, STOP included (SPEC 10)."""
        return float(np.nanmax(self.end_discount()))

    def summary(self) -> str:
        """One line describing the sizes."""
        return (f"{self.name}: N={self.num_agents} agents, K={self.num_labels} labels, "
                f"S={self.num_epoch_states} epoch states, {self.num_transitions} transitions, "
                f"nO={list(self.num_observations)}, gamma={self.gamma}")

    def __repr__(self) -> str:
        return f"EpochModel({self.summary()})"


class _Checker:
    """The constructor's checks (vectorized) with located one-line messages."""

    def __init__(self, model: EpochModel):
        self.m = model

    def fail(self, msg: str):
        raise InvalidEpochModelError(msg)

    def where(self, k: int, i: int) -> str:
        m = self.m
        return f"label {int(k)} ({m.labels[int(k)]!r}), agent {int(i)} (`{m.agent_names[int(i)]}`)"

    def succ(self, c: int) -> str:
        return f"successor {int(c)} (`{self.m.successor_name(int(c))}`)"

    # states ---------------------------------------------------------------
    def states(self, st: np.ndarray) -> None:
        N, K = self.m.num_agents, self.m.num_labels
        if st.shape[0] == 0:
            self.fail("`states` must hold at least one epoch state.")
        for col, (name, hi) in enumerate((("label", K), ("agent", N))):
            bad = np.flatnonzero((st[:, col] < 0) | (st[:, col] >= hi))
            if bad.size:
                j = int(bad[0])
                self.fail(f"`states` entry {j}: {name} {int(st[j, col])} is unknown "
                          f"({name}s are 0..{hi - 1}).")
        self.st = st

    def unique_states(self, st, order, sorted_key) -> None:
        dup = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
        if dup.size:
            a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
            self.fail(f"`states` entries {a} and {b} repeat ({self.where(*st[a])}); each epoch "
                      f"state must appear once.")

    def state_where(self, g: int) -> str:
        return f"state {g} ({self.where(*self.st[g])})"

    def admissible(self, adm: np.ndarray) -> None:
        self.adm = adm
        empty = np.flatnonzero(~adm.any(axis=1))
        if empty.size:
            self.fail(f"`admissible`: {self.state_where(int(empty[0]))} has no admissible successor; "
                      f"every state needs at least one.")

    def rho0(self, r0: np.ndarray) -> None:
        r = r0.astype(float)
        bad = np.flatnonzero(~np.isfinite(r) | (r < 0))
        if bad.size:
            j = int(bad[0])
            self.fail(f"`rho0` at {self.state_where(j)} must be a finite probability >= 0, got "
                      f"{float(r[j])!r}.")
        total = float(r.sum())
        if not abs(total - 1.0) <= ROW_SUM_TOL:
            self.fail(f"`rho0` must sum to 1 (tolerance {ROW_SUM_TOL:g}), sums to {total!r}.")

    def reward(self, key: str, rew: np.ndarray, adm: np.ndarray) -> None:
        r = rew.astype(float)
        mask = np.broadcast_to(adm, r.shape)
        bad = np.argwhere(mask & ~np.isfinite(r))
        if bad.size:
            g, c = int(bad[0][0]), int(bad[0][1])
            extra = f", component {int(bad[0][2])} (`{self.m.component_names[int(bad[0][2])]}`)" \
                if r.ndim == 3 else ""
            self.fail(f"`{key}` at {self.state_where(g)}, {self.succ(c)}{extra} must be finite, "
                      f"got {float(r[tuple(bad[0])])!r}.")
        scale = float(np.abs(np.where(mask, r, 0.0)).max(initial=0.0)) / (1.0 - self.m.gamma)
        if scale > VALUE_SCALE_LIMIT:
            self.fail(f"`{key}`: max |R| / (1 - gamma) = {scale:.3g} exceeds {VALUE_SCALE_LIMIT:g}; "
                      f"rescale the rewards.")

    # transitions ----------------------------------------------------------
    def transition_columns(self, transitions) -> dict:
        if not isinstance(transitions, Mapping):
            self.fail(f"`transitions` must be a mapping of the columns {', '.join(TRANSITION_KEYS)}, "
                      f"got {describe(transitions)}.")
        unknown = [k for k in transitions if k not in TRANSITION_KEYS]
        if unknown:
            self.fail(f"`transitions`: unknown column `{unknown[0]}` (allowed: "
                      f"{', '.join(TRANSITION_KEYS)}).")
        missing = [k for k in TRANSITION_KEYS if k not in transitions]
        if missing:
            self.fail(f"`transitions`: missing column `{missing[0]}`.")
        cols = {}
        for k in TRANSITION_KEYS:
            kinds, what = ("fiu", "numbers") if k == "prob" else ("iu", "integers")
            cols[k] = _array(f"transitions.{k}", transitions[k], (-1,), kinds, what)
        lengths = {k: v.shape[0] for k, v in cols.items()}
        if len(set(lengths.values())) != 1:
            self.fail(f"`transitions` columns must have one length, got "
                      f"{', '.join(f'{k}: {n}' for k, n in lengths.items())}.")
        return cols

    def entry(self, j: int) -> str:
        cols = self.cols
        g, c = int(cols["state"][j]), int(cols["successor"][j])
        return f"`transitions` entry {j} ({self.state_where(g)}, {self.succ(c)})"

    def transition_entries(self, cols) -> None:
        m = self.m
        N, K, S = m.num_agents, m.num_labels, m.num_epoch_states
        self.cols = cols
        s, c, kn, tau = cols["state"], cols["successor"], cols["next_label"], cols["tau"]
        p = cols["prob"].astype(float)
        bad = np.flatnonzero((s < 0) | (s >= S))
        if bad.size:
            j = int(bad[0])
            self.fail(f"`transitions` entry {j}: state {int(s[j])} is not a row of `states` "
                      f"(0..{S - 1}).")
        bad = np.flatnonzero((c < 0) | (c > N))
        if bad.size:
            j = int(bad[0])
            self.fail(f"`transitions` entry {j}: unknown successor {int(c[j])} (successors are "
                      f"0..{N}, STOP = {N}).")
        inadm = np.flatnonzero(~self.adm[s, c])
        if inadm.size:
            self.fail(f"{self.entry(int(inadm[0]))}: the successor is not admissible at this state; "
                      f"only admissible pairs have transitions.")
        bad = np.flatnonzero(tau < 1)
        if bad.size:
            self.fail(f"{self.entry(int(bad[0]))}: `tau` must be an integer >= 1, got {int(tau[bad[0]])}.")
        bad = np.flatnonzero(~np.isfinite(p) | (p <= 0) | (p > 1 + ROW_SUM_TOL))
        if bad.size:
            self.fail(f"{self.entry(int(bad[0]))}: `prob` must be a probability > 0, got {float(p[bad[0]])!r}.")
        stop = c == N
        bad = np.flatnonzero(stop & (kn != -1))
        if bad.size:
            self.fail(f"{self.entry(int(bad[0]))}: a STOP row must have next label -1 (null), got "
                      f"{int(kn[bad[0]])}.")
        bad = np.flatnonzero(~stop & ((kn < 0) | (kn >= K)))
        if bad.size:
            self.fail(f"{self.entry(int(bad[0]))}: unknown next label {int(kn[bad[0]])} (labels are "
                      f"0..{K - 1}).")

    def next_states(self, found, stop) -> None:
        kn, c = self.cols["next_label"], self.cols["successor"]
        bad = np.flatnonzero(~stop & ~found)
        if bad.size:
            j = int(bad[0])
            self.fail(f"{self.entry(j)}: the next epoch state ({self.where(kn[j], c[j])}) is not an "
                      f"epoch state of the model; the successor must be active at the next label.")

    def transition_rows(self, order, state, succ, nxt, tau, prob) -> None:
        m = self.m
        same = (state[1:] == state[:-1]) & (succ[1:] == succ[:-1]) & (nxt[1:] == nxt[:-1]) \
            & (tau[1:] == tau[:-1])
        dup = np.flatnonzero(same)
        if dup.size:
            a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
            self.fail(f"{self.entry(b)} repeats entry {a} (same next label and tau); each "
                      f"(state, successor, next label, tau) must appear once.")
        n1 = m.num_successors
        sums = np.bincount(state * n1 + succ, weights=prob, minlength=m.num_epoch_states * n1)
        adm_sorted = self.adm[m._given_of]
        bad = np.argwhere(adm_sorted & ~(np.abs(sums.reshape(-1, n1) - 1.0) <= ROW_SUM_TOL))
        if bad.size:
            s, c = int(bad[0][0]), int(bad[0][1])
            total = float(sums[s * n1 + c])
            what = "has no transition rows" if total == 0.0 else f"has rows summing to {total:.12g}"
            self.fail(f"`transitions`: {self.state_where(int(m._given_of[s]))}, {self.succ(c)} "
                      f"{what}; the law of every admissible pair must sum to 1 (tolerance "
                      f"{ROW_SUM_TOL:g}).")
