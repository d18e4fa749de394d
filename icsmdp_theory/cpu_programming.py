r"""The multi-agent CPU-programming family (paper section 5.3, issue 15): adaptable agents.

Six agents, the paper's CPU components, transform an initial memory state
into a target state. The paper does not publish its instance; this design is
this toolkit's own (fixed: changing it changes every reproduced number).

Interface state (the artifact)
------------------------------
Three registers :data:`CPU_REGISTERS` ``(A, B, MEM)`` holding integers
``0..V-1`` (``V = values``, the *integer range*) and the target ``t`` in
``0..V-1``; flattened as ``m = ((A V + B) V + MEM) V + t`` (:func:`cpu_encode`,
:func:`cpu_decode`), so ``nM = V^4``. One latent state (``nX = 1``), no
private states (``nL = 1``): the epoch state is ``(m, active agent)``.

Agents and modes (:data:`CPU_AGENTS`, :data:`CPU_MODES`)
--------------------------------------------------------
Every agent is adaptable (the file's ``modes`` key, issue 15): mode ``k`` is
the deterministic local action ``k`` (``internal_policy[k, m, 0, k] = 1``),
and one invocation is one primitive step (``beta = 1``), so the pair
``(mode, successor)`` is exactly the paper's joint choice ``u = (a, c')``.
Arithmetic saturates at ``0`` and ``V-1`` (``clip``):

============  ================  ==========================================
agent         modes             operation
============  ================  ==========================================
starter       go                nothing (it starts every episode)
loader_a      inc, dec          ``A := clip(A +- 1)``
loader_b      inc, dec          ``B := clip(B +- 1)``
alu           add, sub          ``A := clip(A + B)``, ``A := clip(A - B)``
selector      swap, copy        ``(A, B) := (B, A)``, ``B := A``
writer        write             ``MEM := A``
============  ================  ==========================================

The target never changes. Successors: every agent except the starter
(self-handoff allowed: a loader may count on); only the writer may hand to
STOP (it commits the program and ends the episode).

Rewards (:func:`cpu_programming`): ``-step_cost`` for every invocation, plus
``goal_reward`` when the writer hands to STOP and, after its step,
``MEM = t`` ("reward for reaching the target, cost per invocation"). A STOP
with ``MEM != t`` earns nothing more. The reward is a function of the state
at the start of the step and the action, as SPEC section 1 requires: the step
is deterministic, so ``MEM`` after it is known.

Initial law: ``(A, B, MEM)`` uniform on ``0..V-1``, ``t`` uniform on the
given ``targets`` (default every value: the training subsets of the study
restrict it), the starter first. Horizon ``H = 4 V + 8`` by default.

Visible blocks and register locality (:func:`cpu_block`, :func:`cpu_visible_map`)
----------------------------------------------------------------------------------
Agent ``i`` observes a *visible block* of ``width`` registers plus the
target: the window ``{(h_i + shift + k) mod 3 : k < width}`` of the register
ring ``A, B, MEM``, starting at its home register ``h_i``
(:data:`CPU_HOME`: ``A`` for starter, loader_a, alu, selector; ``B`` for
loader_b; ``MEM`` for the writer, whose window of width 2 is ``{MEM, A}``).
The observation label is ``o = (v_1 V + v_2 ...) V + t`` over the block's
values in window order (every label is used: ``nO_i = V^(width + 1)``).
``width = 3`` is the whole state (injective: every gap is zero). The
*locality* of agent ``i`` (:func:`cpu_locality`) is the fraction of the
registers its modes read or write (:data:`CPU_TOUCHED`) that lie in its
block (``1`` for the starter, which touches none); ``shift = 0`` keeps each
agent's block on its own registers, a positive shift moves it away.

Features for a learner (:func:`cpu_features`), numbers so that a network can
carry what it learned on some targets to others: ``encoding="absolute"`` (per
observation, the visible register values and the target divided by ``V - 1``,
then each visible register minus the target, divided by ``V - 1``) or
``encoding="relative"`` (the differences only: the observation relative to
the target).

Examples
--------
>>> model = cpu_programming(values=3)
>>> model.num_agents, model.num_interface, model.num_modes, model.num_choices
(6, 81, (1, 2, 2, 2, 2, 1), 14)
>>> cpu_decode(cpu_encode(2, 1, 0, 2, 3), 3)
(2, 1, 0, 2)
>>> cpu_step(np.array([1]), np.array([2]), np.array([0]), "alu", "add", 3)
(array([2]), array([2]), array([0]))
>>> cpu_block("writer", 2), cpu_locality("alu", 1)
((2, 0), 0.5)
>>> [o.shape for o in cpu_visible_map(3, width=1)][:2]
[(81, 1), (81, 1)]
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.validation import is_int, is_real, positive_int, unit_interval

__all__ = ["CPU_AGENTS", "CPU_MODES", "CPU_REGISTERS", "CPU_HOME", "CPU_TOUCHED",
           "cpu_programming", "cpu_encode", "cpu_decode", "cpu_step", "cpu_block",
           "cpu_locality", "cpu_visible_map", "cpu_features", "cpu_targets", "CPU_ENCODINGS"]

#: The six agents, in index order (STOP is index 6).
CPU_AGENTS = ("starter", "loader_a", "loader_b", "alu", "selector", "writer")
#: Each agent's modes (mode ``k`` = local action ``k``).
CPU_MODES = {"starter": ("go",), "loader_a": ("inc", "dec"), "loader_b": ("inc", "dec"),
             "alu": ("add", "sub"), "selector": ("swap", "copy"), "writer": ("write",)}
#: Feature encodings of :func:`cpu_features`.
CPU_ENCODINGS = ("absolute", "relative")
#: The registers, in ring order (indices 0, 1, 2); the target is observed besides.
CPU_REGISTERS = ("A", "B", "MEM")
#: Home register of each agent (where its visible block starts with ``shift = 0``).
CPU_HOME = {"starter": 0, "loader_a": 0, "loader_b": 1, "alu": 0, "selector": 0, "writer": 2}
#: Registers each agent's modes read or write.
CPU_TOUCHED = {"starter": (), "loader_a": (0,), "loader_b": (1,), "alu": (0, 1),
               "selector": (0, 1), "writer": (0, 2)}


def _values_iv(values: Any) -> int:
    V = positive_int("values", values)
    if V < 2:
        raise InvalidArgumentError(f"`values` (the integer range 0..V-1) must be >= 2, got {values!r}.")
    return V


def cpu_encode(a, b, mem, t, values: int):
    """``m = ((A V + B) V + MEM) V + t`` (arrays broadcast)."""
    V = int(values)
    return ((np.asarray(a) * V + np.asarray(b)) * V + np.asarray(mem)) * V + np.asarray(t)


def cpu_decode(m, values: int) -> tuple:
    """``(A, B, MEM, t)`` of interface state(s) ``m`` (inverse of :func:`cpu_encode`)."""
    V = int(values)
    m = np.asarray(m)
    rest, t = np.divmod(m, V)
    rest, mem = np.divmod(rest, V)
    a, b = np.divmod(rest, V)
    if m.ndim == 0:
        return int(a), int(b), int(mem), int(t)
    return a, b, mem, t


def _agent_index(agent: Any) -> int:
    if is_int(agent) and 0 <= int(agent) < len(CPU_AGENTS):
        return int(agent)
    if agent in CPU_AGENTS:
        return CPU_AGENTS.index(agent)
    raise InvalidArgumentError(f"`agent` must be one of {CPU_AGENTS} or an index 0..5, got {agent!r}.")


def cpu_step(a, b, mem, agent: Any, mode: Any, values: int) -> tuple:
    """One step of ``agent`` in ``mode`` (name or index) on registers ``(A, B, MEM)``.

    Returns the new ``(A, B, MEM)`` arrays (the table in the module docstring).
    """
    i = _agent_index(agent)
    name = CPU_AGENTS[i]
    modes = CPU_MODES[name]
    k = modes.index(mode) if mode in modes else (int(mode) if is_int(mode) else -1)
    if not 0 <= k < len(modes):
        raise InvalidArgumentError(f"agent `{name}` has modes {modes}, got mode {mode!r}.")
    V = int(values)
    a, b, mem = (np.asarray(x, dtype=np.int64).copy() for x in (a, b, mem))
    op = modes[k]
    if name == "loader_a":
        a = np.clip(a + (1 if op == "inc" else -1), 0, V - 1)
    elif name == "loader_b":
        b = np.clip(b + (1 if op == "inc" else -1), 0, V - 1)
    elif name == "alu":
        a = np.clip(a + b if op == "add" else a - b, 0, V - 1)
    elif name == "selector":
        a, b = (b, a) if op == "swap" else (a, a.copy())
    elif name == "writer":
        mem = a.copy()
    return a, b, mem


def cpu_targets(values: int, fraction: float, seed: int = 0) -> np.ndarray:
    """A training subset of the integer range: ``max(1, round(fraction V))`` targets drawn
    without replacement from ``0..V-1`` by ``default_rng(seed)``, sorted.

    >>> cpu_targets(10, 0.2, seed=0).size, cpu_targets(10, 1.0).tolist() == list(range(10))
    (2, True)
    """
    V = _values_iv(values)
    f = unit_interval("fraction", fraction)
    positive_int("seed", seed, low=0)
    n = max(1, min(V, int(round(f * V))))
    if n == V:
        return np.arange(V)
    return np.sort(np.random.default_rng(seed).choice(V, size=n, replace=False))


def cpu_block(agent: Any, width: int, shift: int = 0) -> tuple:
    """The registers agent ``agent`` sees: ``((h + shift + k) mod 3 for k < width)``."""
    i = _agent_index(agent)
    w = positive_int("width", width)
    if w > len(CPU_REGISTERS):
        raise InvalidArgumentError(f"`width` must be 1..{len(CPU_REGISTERS)}, got {width!r}.")
    s = positive_int("shift", shift, low=0)
    h = CPU_HOME[CPU_AGENTS[i]]
    return tuple((h + s + k) % len(CPU_REGISTERS) for k in range(w))


def cpu_locality(agent: Any, width: int, shift: int = 0) -> float:
    """Fraction of the registers ``agent``'s modes touch that lie in its visible block."""
    touched = CPU_TOUCHED[CPU_AGENTS[_agent_index(agent)]]
    block = set(cpu_block(agent, width, shift))
    return 1.0 if not touched else sum(r in block for r in touched) / len(touched)


def _block_labels(values: int, width: int, shift: int):
    """Per agent: ``phi_i[m]`` over every ``m`` and the block's register tuple."""
    V = int(values)
    regs = np.stack(cpu_decode(np.arange(V ** 4), V)[:3])       # (3, nM)
    t = np.arange(V ** 4) % V
    out = []
    for i in range(len(CPU_AGENTS)):
        block = cpu_block(i, width, shift)
        o = np.zeros(V ** 4, dtype=np.int64)
        for r in block:
            o = o * V + regs[r]
        out.append((o * V + t, block))
    return out


def cpu_visible_map(values: int, width: int = 3, shift: int = 0) -> list:
    """The visible-block observation maps ``[nM, 1]`` per agent (module docstring).

    ``model.with_observation(cpu_visible_map(V, w, s))`` re-maps a
    :func:`cpu_programming` instance.
    """
    V = _values_iv(values)
    return [o.reshape(-1, 1) for o, _ in _block_labels(V, width, shift)]


def cpu_features(values: int, width: int = 3, shift: int = 0, encoding: str = "absolute") -> list:
    """Learner inputs per agent: ``encoding="absolute"``: ``[nO_i, 2 width + 1]``, the visible
    register values and the target divided by ``V - 1``, then each visible register minus the
    target, divided by ``V - 1``; ``"relative"``: ``[nO_i, width]``, the differences only.

    Row ``o`` describes observation label ``o`` of :func:`cpu_visible_map` (same arguments).

    >>> cpu_features(3, 1, encoding="relative")[1][:4].ravel().tolist()
    [0.0, -0.5, -1.0, 0.5]
    """
    if encoding not in CPU_ENCODINGS:
        raise InvalidArgumentError(f"`encoding` must be one of {CPU_ENCODINGS}, got {encoding!r}.")
    V = _values_iv(values)
    w = positive_int("width", width)
    out = []
    for i in range(len(CPU_AGENTS)):
        block = cpu_block(i, w, shift)
        labels = np.arange(V ** (len(block) + 1))
        digits = []
        rest = labels
        for _ in range(len(block) + 1):
            rest, d = np.divmod(rest, V)
            digits.append(d)
        digits = digits[::-1]                     # block registers in window order, then t
        vis, t = np.stack(digits[:-1], axis=1), digits[-1][:, None]
        cols = [vis, t, vis - t] if encoding == "absolute" else [vis - t]
        out.append(np.hstack(cols).astype(float) / (V - 1))
    return out


def _cpu_programming_iv(values, goal_reward, step_cost, gamma, horizon, targets, width, shift):
    V = _values_iv(values)
    for name, v in (("goal_reward", goal_reward), ("step_cost", step_cost)):
        if not is_real(v) or v < 0:
            raise InvalidArgumentError(f"`{name}` must be a finite number >= 0, got {v!r}.")
    gamma = unit_interval("gamma", gamma, open_high=True)
    H = 4 * V + 8 if horizon is None else positive_int("horizon", horizon)
    if targets is None:
        tg = np.arange(V)
    else:
        tg = np.unique(np.asarray(targets))
        if tg.size == 0 or not np.issubdtype(tg.dtype, np.integer) or tg.min() < 0 or tg.max() >= V:
            raise InvalidArgumentError(
                f"`targets` must be a non-empty list of integers in 0..{V - 1}, got {targets!r}.")
    cpu_block(0, width, shift)
    return V, float(gamma), H, tg


def cpu_programming(*, values: int = 5, goal_reward: float = 10.0, step_cost: float = 0.5,
                    gamma: float = 0.95, horizon: int | None = None,
                    targets: Sequence[int] | None = None, width: int = 3,
                    shift: int = 0) -> ICSMDP:
    """The CPU-programming IC-SMDP (design: module docstring).

    Parameters
    ----------
    values : int
        ``V >= 2``: registers and target hold ``0..V-1``; ``nM = V^4``.
    goal_reward : float
        Paid on STOP when ``MEM = t`` after the step.
    step_cost : float
        Paid (negated) by every invocation.
    gamma : float
    horizon : int, optional
        ``H`` (default ``4 V + 8``).
    targets : sequence of int, optional
        The targets of the initial law (default all of ``0..V-1``).
    width, shift : int
        The visible-block observation map (:func:`cpu_visible_map`).

    Returns
    -------
    ICSMDP
        ``N = 6`` agents with modes :data:`CPU_MODES` (``J = 2 * 7 = 14`` choices).
    """
    V, gamma, H, tg = _cpu_programming_iv(values, goal_reward, step_cost, gamma, horizon,
                                          targets, width, shift)
    nM, N = V ** 4, len(CPU_AGENTS)
    a, b, mem, t = cpu_decode(np.arange(nM), V)
    writer = CPU_AGENTS.index("writer")
    maps = cpu_visible_map(V, width, shift)
    agents = []
    for i, name in enumerate(CPU_AGENTS):
        modes = CPU_MODES[name]
        K = len(modes)
        kernels, reward = [], np.zeros((1, nM, K, N + 1))
        for k in range(K):
            a2, b2, mem2 = cpu_step(a, b, mem, i, k, V)
            dest = cpu_encode(a2, b2, mem2, t, V)
            kernels.append(sp.csr_array((np.ones(nM), (np.arange(nM), dest)), shape=(nM, nM)))
            reward[0, :, k, :] = -float(step_cost)
            if i == writer:
                reward[0, :, k, N] += np.where(mem2 == t, float(goal_reward), 0.0)
        policy = np.zeros((K, nM, 1, K))
        for k in range(K):
            policy[k, :, 0, k] = 1.0
        agents.append(dict(name=name, modes=list(modes), n_private=1, n_actions=K,
                           rho_private=np.ones(1), internal_policy=policy, kernel=kernels,
                           reward=reward, end_probability=np.ones((1, nM, 1)),
                           observation=maps[i], successors=np.r_[False, np.ones(N - 1, bool), i == writer]))
    rho = np.zeros((1, nM))
    rho[0, np.isin(t, tg)] = 1.0
    rho /= rho.sum()
    rho_agent = np.zeros(N)
    rho_agent[0] = 1.0
    tag = "all" if tg.size == V else "-".join(map(str, tg.tolist()))
    return ICSMDP(name=f"cpu-V{V}-w{width}-s{shift}-t{tag}", gamma=gamma, horizon=H, n_latent=1,
                  n_interface=nM, rho_latent_interface=rho, rho_agent=rho_agent, agents=agents)
