"""Instance families of the paper's experiments (section 5): synthetic IC-SMDP and routing.

The multi-LLM math-reasoning workflow (section 5.2) is an explicit epoch model:
:func:`icsmdp_theory.math_reasoning.math_reasoning`, re-exported here; the
CPU-programming family of section 5.3 (adaptable agents) is
:func:`icsmdp_theory.cpu_programming.cpu_programming`, re-exported here.

The paper's generators are not published; the families below are this
toolkit's own, fixed designs (changing them changes every reproduced number).

Synthetic IC-SMDP (paper section 5.1, :func:`synthetic_instance`)
-----------------------------------------------------------------
Two families, chosen by name (:data:`SYNTHETIC_FAMILIES`): ``"nested"`` (the
default since issue 15: its gaps are non-decreasing as ``rho`` falls) and
``"cos-mod"`` (the family before, kept unchanged by name; its gaps are not
monotone in ``rho``). Both: ``N`` agents, ``nX`` latent states, ``nM``
interface states, no private states (``nL = 1``), one internal action per
agent (``nA = 1``), discount ``gamma``, constant end probability
``beta = p_handoff``, ``n_bins = ceil(rho * nM)`` observation cells
(:func:`synthetic_bins`), the same map for every agent. Everything random is
drawn from ``numpy.random.default_rng(seed)`` in a fixed order.

Family ``"nested"`` (default)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
- **Observation** (:func:`nested_observation`): contiguous cells of ``m``
  whose boundaries are taken in one fixed order (:func:`nested_boundaries`:
  split the longest cell at its middle, leftmost first), ``n_bins - 1`` of
  them. The maps are *nested*: the map of a smaller ``rho`` is a coarsening
  of the map of every larger one, and the longest cell ``L(rho)`` does not
  shrink as ``rho`` falls.
- **Dynamics.** One primitive step of agent ``i`` from ``(x, m)``: with
  probability ``1 - q_i`` the artifact is kept (``m' = m``) and the latent
  state moves, ``x' ~ Kx_i(. | x)`` (sparse, ``nnz_per_row`` Dirichlet(1)
  weights per row, or the ring kernel below); with probability ``q_i ~
  U(0.1, 0.5)`` agent ``i`` rewrites the artifact, ``m'`` uniform on
  ``0..nM-1``, and ``x`` stays. Rows hold ``nnz_per_row + nM`` nonzeros.
  Agents differ in how long they keep the artifact (``q_i``), in their
  latent kernels and in their rewards.
- **Rewards.** ``r(x, m, i, c') = a[i, c'] u(m) + b[i, c'] + 0.2 z_i(x)`` with
  ``u(m) = 2 m / (nM - 1) - 1`` (``u = 0`` when ``nM = 1``), slopes
  ``a[i, c'] ~ U(-1, 1)``, offsets ``b[i, c'] ~ U(-0.5, 0.5)`` (one per agent
  and successor, STOP included) and ``z_i(x) ~ U(-1, 1)``: the best successor
  depends on where ``m`` lies on the segment (the upper envelope of lines).
- **Successors, initial law**: every agent and STOP admissible; ``(x, m)``
  uniform, the first agent uniform.

Why the gaps are non-decreasing as ``rho`` falls (SPEC section 5, both the
uniform and the stationary reference; the property test
``property_tests/icsmdp_theory/test_families.py`` checks it on random sizes
and seeds):

1. ``m`` stays uniform and independent of ``(x, i)`` under both references:
   the uniform reference is uniform on each cell; for the stationary one,
   ``rho0`` is uniform in ``m`` and a step either keeps ``m`` or redraws it
   uniformly, independently of ``x``, of the agent and of ``tau`` (``beta``
   is constant), so every epoch's law is ``(law of x, i) x uniform(m)``.
2. The option reward separates: ``E[u(m_t) | m_0] = (1 - q_i)^t u(m_0)``, so
   ``R_i((x, m), c') = a[i, c'] S_i u(m) + B_i(x, c')`` with
   ``S_i = 1 / (1 - gamma (1 - beta)(1 - q_i)) > 0``. By (1) the cell mean is
   ``a S_i ubar(C) + Bbar_i(c')``, with ``ubar(C)`` the midpoint of the cell's
   ``u`` values, hence
   ``epsilon_phi = max_{i, c'} [ |a[i, c']| S_i (L - 1) / (nM - 1) + max_x |B_i(x, c') - Bbar_i(c')| ]``
   with ``L`` the longest cell: non-decreasing in ``L``, so in ``1 / rho``.
3. The law of ``(o', tau)`` from ``s = (x, m, i)`` depends on ``s`` only
   through ``i`` and the cell of ``m``: ``tau`` is geometric(``beta``), and
   ``m_end`` is ``m`` (no rewrite, same cell) or uniform. Every state of a
   cell has the same law, equal to the cell's average: ``delta_phi = 0``,
   ``delta_phi_gamma = 0`` and ``eta = 0`` at every ``rho`` (non-decreasing,
   trivially). The knob turns the reward-aliasing term only.
4. ``gamma_bar = gamma beta / (1 - gamma (1 - beta))`` does not depend on the
   map, so ``alpha_tight = (epsilon_phi + eta) / (1 - gamma_bar)`` and
   ``alpha_paper = alpha_tv = epsilon_phi / (1 - gamma_bar)`` follow
   ``epsilon_phi``. ``alpha > 0`` at ``rho = 1`` (``x`` is never observed).

Family ``"cos-mod"`` (before issue 15)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
- **Dynamics.** One primitive step of agent ``i`` from ``(x, m)``: the latent
  state moves by a per-agent sparse random kernel ``x' ~ Kx_i(. | x)`` with
  ``nnz_per_row`` nonzeros per row (Dirichlet(1) weights); independently, the
  interface state drifts by the agent's own offset,
  ``m' = (m + d_i + e) mod nM`` with ``d_i`` uniform in ``0..nM-1`` and
  ``e = 1`` with probability ``q_i ~ U(0.1, 0.5)`` (else ``e = 0``). Kernel
  rows therefore hold ``2 * nnz_per_row`` nonzeros. Different agents move
  the artifact differently, so whom to hand off to matters for the future.
- **Rewards.** ``r(x, m, i, c') = cos(2 pi m / nM + theta[i, c']) + 0.2 z_i(x)``
  with phases ``theta[i, c'] ~ U(0, 2 pi)`` (one per agent and successor,
  STOP included) and ``z_i(x) ~ U(-1, 1)``. The best successor depends on
  where ``m`` sits on the circle; ``m mod n_bins`` merges interface states
  ``m, m + n_bins, ...`` whose angles differ by ``2 pi n_bins / nM`` (mod
  ``2 pi``): for ``rho`` near 1 the merged states are close on the circle
  (small gap), the gap grows until ``rho = 1/2`` (opposite angles merged) and
  stays at its maximum below (every cell then spans the circle); a sup-norm
  gap such as ``alpha`` saturates there. The latent term makes ``alpha > 0``
  even at ``rho = 1`` (``x`` is never observed).
- **Successors.** Every agent and STOP are admissible for every agent.
- **Initial law.** ``(x, m)`` uniform, the first agent uniform.
- **Observation.** ``phi_i(m) = m mod n_bins``, ``n_bins = ceil(rho * nM)``
  (:func:`synthetic_map`), the same for every agent; changing ``rho`` keeps
  the dynamics and rewards (the instance is drawn once per seed and re-mapped).
  Not monotone: the reward takes opposite values at ``m`` and ``m + nM/2``,
  so every even bin count averages the ``m``-dependence away (``|M| = 20``:
  ``rho`` 0.5 and 0.1 give the same ``alpha_tight``).

Both families
~~~~~~~~~~~~~
In both, changing ``rho`` keeps the dynamics and rewards (the instance is
drawn once per seed and re-mapped with :func:`synthetic_map`).

- **Slow-mixing variant** (``latent_moves="ring"``, used by T2's handoff
  scan): the latent kernel is instead ``x' = x + k (mod nX)``, ``k in {-1, 0,
  1}`` with Dirichlet(1) weights per row. With the default kernel every
  invocation scrambles ``x`` and the epoch chain mixes in 2 epochs whatever
  ``p_handoff``; on the ring ``x`` moves about one state per primitive step, so
  shorter invocations (larger ``p_handoff``) mix less per epoch (exact
  ``t_mix(1/4)`` = 3, 4, 5 at ``p_handoff`` = 0.10, 0.30, 0.55 on the
  reduced instance ``N = 4, nX = nM = 20``, seed 0); the STOP restart from
  ``rho0`` (probability ``1/(N+1)`` per epoch under the uniform behavior)
  caps it.

Routing (paper section 5, :func:`routing_instance`)
---------------------------------------------------
A connected graph on nodes ``0..n-1`` (:func:`routing_graph`); router ``i`` is
agent ``i``. No latent state (``nX = 1``), no private state, one internal
action. The interface state is the packet header ``m = 2 d + f``: destination
``d`` and detain flag ``f``. The observation is exact (``phi_i(m) = m``),
hence ``epsilon_phi = delta_phi = 0``.

- **Successors** of router ``i``: its graph neighbours and STOP (no self-handoff).
- **Invocation.** One primitive step (``beta = 1``). During the step the
  header evolves: an undetained packet (``f = 0``) becomes detained with
  probability ``p_detain`` (default 0.05); a detained packet (``f = 1``) is
  released (``f' = 0``) with probability 1. The destination never changes.
- **Rewards** (collected at the header the router received):
  ``-1`` for a hop to a neighbour; ``+goal_reward`` (default 10) for STOP at
  the destination; ``-(goal_reward + 1/(1 - gamma))`` for STOP anywhere else
  (worse than any route, even one that never ends). A router that receives a
  *detained* packet must first clear it (it waits in its queue): whatever it
  then does costs an extra ``-detain_penalty`` (default 2), and its step
  releases the flag. The flag thus changes values (so it must be observed
  for ``epsilon_phi = 0``) but not the best route.
- **Initial law.** Destination uniform, flag 0, source router uniform.
- **Horizon** ``H`` defaults to ``4 n``.

Under ``Q*`` the greedy policy at ``f = 0`` follows a shortest path (ties to
the lowest router index) and STOPs at the destination.
The routing study (:mod:`reports.studies.routing`) computes that ``Q*``
with the exact solvers and scores greedy policies over every (source,
destination) pair; this module only builds the instances (it imports nothing
from the solvers, estimators or reports).

Examples
--------
>>> model = synthetic_instance(rho=0.5, num_agents=2, num_latent=3, num_interface=6, seed=1)
>>> model.num_observations
(3, 3)
>>> synthetic_map(model, 0.5)[0].ravel().tolist()
[0, 1, 1, 2, 2, 2]
>>> synthetic_map(model, 0.5, family="cos-mod")[0].ravel().tolist()
[0, 1, 2, 0, 1, 2]
>>> g = routing_graph("chain", 5, seed=0)
>>> rm = routing_instance(g)
>>> rm.num_agents, rm.num_interface
(5, 10)
"""
from __future__ import annotations

import heapq
import math

import networkx as nx
import numpy as np
import scipy.sparse as sp

from icsmdp_theory.cpu_programming import cpu_programming
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import observation_mod, random_sparse_rows
from icsmdp_theory.math_reasoning import math_reasoning
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.validation import is_int, is_real, positive_int, unit_interval

__all__ = ["synthetic_instance", "synthetic_map", "synthetic_bins", "nested_boundaries",
           "nested_observation", "SYNTHETIC_FAMILIES", "DEFAULT_SYNTHETIC_FAMILY", "routing_graph",
           "routing_instance", "check_routing_graph", "GRAPH_KINDS", "routing_destination",
           "routing_header", "math_reasoning", "cpu_programming"]

#: Graph families of the routing experiment.
GRAPH_KINDS = ("erdos_renyi", "barabasi_albert", "watts_strogatz", "chain")
#: Synthetic families by name (module docstring); the first is the default.
SYNTHETIC_FAMILIES = ("nested", "cos-mod")
#: The default synthetic family.
DEFAULT_SYNTHETIC_FAMILY = "nested"


# ============================================================== synthetic
def synthetic_bins(rho: float, num_interface: int) -> int:
    """``n_bins = ceil(rho * |M|)`` (at least 1; ``rho`` in ``(0, 1]``).

    >>> synthetic_bins(0.1, 50), synthetic_bins(1.0, 50), synthetic_bins(0.05, 50)
    (5, 50, 3)
    """
    rho = unit_interval("rho", rho)
    # guard against 0.3*50 = 15.000000000000002 -> 16
    return max(1, min(num_interface, math.ceil(round(rho * num_interface, 9))))


def _family_iv(family: str) -> str:
    if family not in SYNTHETIC_FAMILIES:
        raise InvalidArgumentError(f"`family` must be one of {', '.join(map(repr, SYNTHETIC_FAMILIES))}, "
                                   f"got {family!r}.")
    return family


def nested_boundaries(num_interface: int) -> np.ndarray:
    """The cell boundaries of the ``"nested"`` maps, in the order they are taken.

    A boundary ``b`` in ``1..nM-1`` separates ``m = b - 1`` from ``m = b``.
    Starting from one cell ``0..nM-1``, repeatedly split the longest cell
    (leftmost among equals) ``[lo, hi)`` at ``lo + (hi - lo) // 2``. The map
    with ``k`` cells uses the first ``k - 1`` boundaries, so every map is a
    coarsening of every map with more cells.

    >>> nested_boundaries(10).tolist()
    [5, 2, 7, 3, 8, 1, 4, 6, 9]
    """
    nM = positive_int("num_interface", num_interface)
    heap = [(-nM, 0)]
    order = []
    while heap:
        neg, lo = heapq.heappop(heap)
        n = -neg
        if n < 2:
            continue
        b = lo + n // 2
        order.append(b)
        heapq.heappush(heap, (-(b - lo), lo))
        heapq.heappush(heap, (-(lo + n - b), b))
    return np.asarray(order, dtype=np.int64)


def nested_observation(num_interface: int, num_private: int, num_bins: int) -> np.ndarray:
    """The ``"nested"`` map with ``num_bins`` contiguous cells (:func:`nested_boundaries`).

    Returns
    -------
    ndarray, shape (nM, num_private)
        ``phi(m, l)`` = the index of ``m``'s cell (cells numbered left to right).

    >>> nested_observation(10, 1, 3).ravel().tolist()
    [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    """
    nM = positive_int("num_interface", num_interface)
    nL = positive_int("num_private", num_private)
    if not is_int(num_bins) or not 1 <= num_bins <= nM:
        raise InvalidArgumentError(f"`num_bins` must lie in 1..{nM}, got {num_bins!r}.")
    cuts = np.sort(nested_boundaries(nM)[:int(num_bins) - 1])
    cell = np.searchsorted(cuts, np.arange(nM), side="right")
    return np.repeat(cell[:, None], nL, axis=1)


def synthetic_map(model: ICSMDP, rho: float,
                  family: str = DEFAULT_SYNTHETIC_FAMILY) -> list[np.ndarray]:
    """Observation maps with ``n_bins = ceil(rho * nM)`` cells for every agent of ``model``.

    ``family="nested"``: contiguous nested cells (:func:`nested_observation`);
    ``family="cos-mod"``: ``phi_i(m, l) = m mod n_bins``.

    Parameters
    ----------
    model : ICSMDP
        A synthetic instance (any instance: only ``nM`` and ``nL_i`` are used).
    rho : float
        Retention in ``(0, 1]``.
    family : {"nested", "cos-mod"}
        The synthetic family whose map to build (:data:`SYNTHETIC_FAMILIES`).

    Returns
    -------
    list of ndarray, shape (nM, nL_i)
        Use with ``model.with_observation(synthetic_map(model, rho, family))``.
    """
    family = _family_iv(family)
    nb = synthetic_bins(rho, model.num_interface)
    build = nested_observation if family == "nested" else observation_mod
    return [build(model.num_interface, a.num_private, nb) for a in model.agents]


def _latent_kernel(rng, nX: int, nnz: int, latent_moves: str):
    """``Kx_i``: random sparse rows, or the ring ``x' = x + k (mod nX)``, ``k in {-1, 0, 1}``."""
    if latent_moves == "random":
        return random_sparse_rows(rng, nX, nX, nnz)           # x' | x
    w = rng.exponential(size=(nX, 3))
    w /= w.sum(axis=1, keepdims=True)
    cols = (np.arange(nX)[:, None] + np.array([-1, 0, 1])[None, :]) % nX
    kx = sp.csr_array((w.ravel(), (np.repeat(np.arange(nX), 3), cols.ravel())), shape=(nX, nX))
    kx.sum_duplicates()
    return kx


def synthetic_instance(*, rho: float, p_handoff: float = 0.3, num_agents: int = 10,
                       num_latent: int = 120, num_interface: int = 50, horizon: int = 60,
                       seed: int = 0, nnz_per_row: int = 8, gamma: float = 0.95,
                       latent_moves: str = "random",
                       family: str = DEFAULT_SYNTHETIC_FAMILY) -> ICSMDP:
    """The synthetic IC-SMDP family of the paper's section 5.1 (design: module docstring).

    The draw depends on ``seed``, the sizes, ``latent_moves`` and ``family``
    only; ``rho`` sets the observation map and ``p_handoff`` the end
    probability, so sweeping either keeps the rest of the instance fixed.

    ``family="nested"`` (default) is the family whose gaps are non-decreasing
    as ``rho`` falls; ``family="cos-mod"`` the family before issue 15 (same
    draws, same numbers as then).

    ``latent_moves="random"`` (default) draws the latent kernel with
    ``nnz_per_row`` random successors per row (it scrambles ``x`` within an
    invocation); ``"ring"`` is the slow-mixing variant of T2's handoff scan:
    ``x' = x + k (mod nX)``, ``k in {-1, 0, 1}`` with Dirichlet(1) weights per
    row, so ``x`` diffuses by about one state per primitive step and the epoch
    chain mixes more slowly when invocations are shorter (larger ``p_handoff``).
    """
    if latent_moves not in ("random", "ring"):
        raise InvalidArgumentError(
            f"`latent_moves` must be 'random' or 'ring', got {latent_moves!r}.")
    family = _family_iv(family)
    rho = unit_interval("rho", rho)
    beta = unit_interval("p_handoff", p_handoff)
    N = positive_int("num_agents", num_agents)
    nX = positive_int("num_latent", num_latent)
    nM = positive_int("num_interface", num_interface)
    positive_int("horizon", horizon)
    positive_int("seed", seed, low=0)
    nnz = positive_int("nnz_per_row", nnz_per_row)
    gamma = unit_interval("gamma", gamma, open_high=True)
    rng = np.random.default_rng(seed)
    nb = synthetic_bins(rho, nM)
    if family == "nested":
        agents = _nested_agents(rng, N, nX, nM, nnz, beta, latent_moves, nb)
        name = f"synthetic-nested-N{N}-X{nX}-M{nM}-rho{rho:g}-p{beta:g}-s{seed}"
    else:
        agents = _cos_mod_agents(rng, N, nX, nM, nnz, beta, latent_moves, nb)
        name = f"synthetic-N{N}-X{nX}-M{nM}-rho{rho:g}-p{beta:g}-s{seed}"
    return ICSMDP(name=name, gamma=float(gamma),
                  horizon=int(horizon), n_latent=nX, n_interface=nM,
                  rho_latent_interface=np.full((nX, nM), 1.0 / (nX * nM)),
                  rho_agent=np.full(N, 1.0 / N), agents=agents)


def _agent(i: int, N: int, nX: int, nM: int, K, reward, beta: float, observation) -> dict:
    return dict(name=f"agent{i}", n_private=1, n_actions=1, rho_private=np.ones(1),
                internal_policy=np.ones((nM, 1, 1)), kernel=[K], reward=reward,
                end_probability=np.full((nX, nM, 1), beta), observation=observation,
                successors=np.ones(N + 1, bool))


def _nested_agents(rng, N: int, nX: int, nM: int, nnz: int, beta: float, latent_moves: str,
                   nb: int) -> list:
    """The agents of family ``"nested"`` (module docstring)."""
    nY = nX * nM
    xs, ms = np.divmod(np.arange(nY), nM)
    u = (2.0 * np.arange(nM) / (nM - 1) - 1.0) if nM > 1 else np.zeros(1)
    agents = []
    for i in range(N):
        kx = sp.coo_array(_latent_kernel(rng, nX, nnz, latent_moves)[xs])  # rows by x
        q_i = float(rng.uniform(0.1, 0.5))
        a = rng.uniform(-1, 1, size=N + 1)
        b = rng.uniform(-0.5, 0.5, size=N + 1)
        z = rng.uniform(-1, 1, size=nX)
        r_idx, xp, w = kx.row, kx.col, kx.data
        keep_rows, keep_cols = r_idx, xp * nM + ms[r_idx]           # (x', m), weight (1-q) w
        new_rows = np.repeat(np.arange(nY), nM)                      # (x, m''), weight q / nM
        new_cols = (xs[:, None] * nM + np.arange(nM)[None, :]).ravel()
        rows = np.concatenate([keep_rows, new_rows])
        cols = np.concatenate([keep_cols, new_cols])
        vals = np.concatenate([w * (1 - q_i), np.full(new_rows.size, q_i / nM)])
        K = sp.csr_array((vals, (rows, cols)), shape=(nY, nY))
        K.sum_duplicates()
        K.eliminate_zeros()
        reward = (a[None, None, :] * u[None, :, None] + b[None, None, :]
                  + 0.2 * z[:, None, None])[:, :, None, :]           # [x, m, a, c']
        agents.append(_agent(i, N, nX, nM, K, reward, beta, nested_observation(nM, 1, nb)))
    return agents


def _cos_mod_agents(rng, N: int, nX: int, nM: int, nnz: int, beta: float, latent_moves: str,
                    nb: int) -> list:
    """The agents of family ``"cos-mod"`` (module docstring; the draws of before issue 15)."""
    nY = nX * nM
    ys = np.arange(nY)
    xs, ms = np.divmod(ys, nM)
    ang = 2 * np.pi * np.arange(nM) / nM
    agents = []
    for i in range(N):
        kx = _latent_kernel(rng, nX, nnz, latent_moves)
        d_i = int(rng.integers(0, nM))
        q_i = float(rng.uniform(0.1, 0.5))
        theta = rng.uniform(0, 2 * np.pi, size=N + 1)
        z = rng.uniform(-1, 1, size=nX)
        # kernel rows: (x, m) -> (x', (m + d_i + e) mod nM), e in {0, 1}
        kx_rows = kx[xs]                                        # (nY, nX) rows by x
        kx_rows = sp.coo_array(kx_rows)
        r_idx, xp, w = kx_rows.row, kx_rows.col, kx_rows.data
        m0 = (ms[r_idx] + d_i) % nM
        m1 = (m0 + 1) % nM
        rows = np.concatenate([r_idx, r_idx])
        cols = np.concatenate([xp * nM + m0, xp * nM + m1])
        vals = np.concatenate([w * (1 - q_i), w * q_i])
        if nM == 1:  # m0 == m1: merge
            vals = np.concatenate([w, np.zeros_like(w)])
        K = sp.csr_array((vals, (rows, cols)), shape=(nY, nY))
        K.sum_duplicates()
        K.eliminate_zeros()
        reward = (np.cos(ang[None, :, None] + theta[None, None, :])
                  + 0.2 * z[:, None, None])[:, :, None, :]       # [x, m, a, c']
        agents.append(_agent(i, N, nX, nM, K, reward, beta, observation_mod(nM, 1, nb)))
    return agents


# ================================================================ routing
def routing_graph(kind: str, n: int, seed: int = 0):
    """A connected ``networkx.Graph`` on nodes ``0..n-1`` of a family in :data:`GRAPH_KINDS`.

    - ``"erdos_renyi"``: ``G(n, p)`` with ``p = min(1, 2 ln(n) / n)``, redrawn
      (seeds ``seed, seed + 1, ...``) until connected;
    - ``"barabasi_albert"``: preferential attachment with ``m = 2`` (``1`` when
      ``n <= 2``), connected by construction;
    - ``"watts_strogatz"``: ``connected_watts_strogatz_graph(n, k, 0.1)`` with
      ``k = min(4, n - 1)`` (a complete graph when ``n <= 3``);
    - ``"chain"``: the path ``0 - 1 - ... - n-1``.

    >>> import networkx as nx
    >>> all(nx.is_connected(routing_graph(k, 12, seed=3)) for k in GRAPH_KINDS)
    True
    """
    if kind not in GRAPH_KINDS:
        raise InvalidArgumentError(f"`kind` must be one of {GRAPH_KINDS}, got {kind!r}.")
    n = positive_int("n", n, low=2)
    seed = positive_int("seed", seed, low=0)
    if kind == "chain":
        g = nx.path_graph(n)
    elif kind == "barabasi_albert":
        g = nx.barabasi_albert_graph(n, 2 if n > 2 else 1, seed=seed)
    elif kind == "watts_strogatz":
        if n <= 3:
            g = nx.complete_graph(n)
        else:
            g = nx.connected_watts_strogatz_graph(n, min(4, n - 1), 0.1, tries=1000, seed=seed)
    else:
        p = min(1.0, 2.0 * math.log(n) / n)
        for k in range(10_000):
            g = nx.gnp_random_graph(n, p, seed=seed + k)
            if nx.is_connected(g):
                break
        else:  # pragma: no cover - probability ~0 at this p
            raise InvalidArgumentError(f"could not draw a connected G({n}, {p:.3g}).")
    g = nx.Graph(g)
    g.graph["kind"] = kind
    g.graph["seed"] = seed
    return g


def routing_header(destination, flag):
    """Interface index ``m = 2 d + f`` of a packet header.

    Parameters
    ----------
    destination : int or array_like of int
        Destination router ``d``.
    flag : {0, 1} or array_like
        Detain flag ``f``.

    Returns
    -------
    ndarray of int
        ``2 d + f`` (broadcast).

    Examples
    --------
    >>> routing_header(3, 1).item(), routing_header([0, 2], 0).tolist()
    (7, [0, 4])
    """
    return 2 * np.asarray(destination) + np.asarray(flag)


def routing_destination(m):
    """``(destination, flag)`` of an interface index ``m = 2 d + f``.

    Parameters
    ----------
    m : int or array_like of int

    Returns
    -------
    tuple
        ``(d, f) = divmod(m, 2)``.

    Examples
    --------
    >>> tuple(int(v) for v in routing_destination(7))
    (3, 1)
    """
    return np.divmod(m, 2)


def check_routing_graph(graph) -> int:
    """Validate a routing graph and return its number of nodes ``n``.

    Parameters
    ----------
    graph : networkx.Graph
        Undirected, connected, nodes ``0..n-1``, ``n >= 2``.

    Returns
    -------
    int
        ``n``.

    Raises
    ------
    InvalidArgumentError
        Directed or not a graph, fewer than 2 nodes, other node labels, disconnected.

    Examples
    --------
    >>> check_routing_graph(routing_graph("chain", 4))
    4
    """
    if not isinstance(graph, nx.Graph) or graph.is_directed():
        raise InvalidArgumentError("`graph` must be an undirected networkx.Graph.")
    n = graph.number_of_nodes()
    if n < 2:
        raise InvalidArgumentError(f"`graph` must have at least 2 nodes, got {n}.")
    if sorted(graph.nodes) != list(range(n)):
        raise InvalidArgumentError("`graph` nodes must be the integers 0..n-1 "
                                   "(use networkx.convert_node_labels_to_integers).")
    if not nx.is_connected(graph):
        raise InvalidArgumentError("`graph` must be connected.")
    return n


def routing_instance(graph, *, seed: int = 0, gamma: float = 0.95, horizon: int | None = None,
                     p_detain: float = 0.05, goal_reward: float = 10.0,
                     detain_penalty: float = 2.0) -> ICSMDP:
    """The routing IC-SMDP on ``graph`` (design: module docstring).

    ``seed`` is recorded in the name only: the instance is deterministic given
    the graph (the graph carries the randomness).
    """
    n = check_routing_graph(graph)
    gamma = unit_interval("gamma", gamma, open_high=True)
    p = unit_interval("p_detain", p_detain, open_low=False, open_high=True)
    for name, v in (("goal_reward", goal_reward), ("detain_penalty", detain_penalty)):
        if not is_real(v) or v < 0:
            raise InvalidArgumentError(f"`{name}` must be a finite number >= 0, got {v!r}.")
    H = 4 * n if horizon is None else positive_int("horizon", horizon)
    nM = 2 * n
    # header dynamics, the same for every router
    rows, cols, vals = [], [], []
    for d in range(n):
        m0, m1 = 2 * d, 2 * d + 1
        rows += [m0, m0, m1]
        cols += [m0, m1, m0]
        vals += [1 - p, p, 1.0]
    K = sp.csr_array((vals, (rows, cols)), shape=(nM, nM))
    K.eliminate_zeros()
    fail = goal_reward + 1.0 / (1.0 - gamma)
    dest, flag = routing_destination(np.arange(nM))
    agents = []
    for i in range(n):
        succ = np.zeros(n + 1, bool)
        succ[list(graph.neighbors(i))] = True
        succ[n] = True
        r = np.zeros((1, nM, 1, n + 1))
        r[0, :, 0, :n] = -1.0
        r[0, :, 0, n] = np.where(dest == i, goal_reward, -fail)
        r[0, flag == 1, 0, :] -= detain_penalty
        agents.append(dict(
            name=f"router{i}", n_private=1, n_actions=1, rho_private=np.ones(1),
            internal_policy=np.ones((nM, 1, 1)), kernel=[K.copy()], reward=r,
            end_probability=np.ones((1, nM, 1)),
            observation=np.arange(nM).reshape(nM, 1), successors=succ))
    rho_xm = np.zeros((1, nM))
    rho_xm[0, 0::2] = 1.0 / n
    kind = graph.graph.get("kind", "graph")
    return ICSMDP(name=f"routing-{kind}-n{n}-s{seed}", gamma=float(gamma), horizon=H, n_latent=1,
                  n_interface=nM, rho_latent_interface=rho_xm, rho_agent=np.full(n, 1.0 / n),
                  agents=agents)
