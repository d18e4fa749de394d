r"""Study: multi-agent routing on four graph families (paper section 5, exact observation).

Router ``i`` of a connected graph is agent ``i`` of
:func:`icsmdp_theory.families.routing_instance`; the header ``m = 2 d + f``
(destination, detain flag) is observed exactly, so ``epsilon_phi =
delta_phi = 0`` and the cells ``(i, m)`` are the epoch states.

**Exact Q\*.** With one latent state, one private state per agent and the
exact observation, the epoch state is ``(m, i)`` and the SMDP on cells *is*
the decision-epoch SMDP of SPEC section 3:

.. math::

    Q^*(i, m, c') = R_i(m, c') + [c' \ne \mathrm{STOP}]
        \sum_{m'} D_i(m' \mid m)\, \max_{c''} Q^*(c', m', c''),

with the option reward ``R_i`` and discounted end kernel ``D_i`` of the
exact option reduction (``icsmdp_theory.options.option_reduction``, SPEC
section 2). :func:`routing_smdp` assembles that :class:`~solvers.smdp.FiniteSMDP`
(``2 n^2`` states, ``n + 1`` actions) and :func:`routing_q_star` solves it
with the exact solvers (``solve(ValueIteration(tol=1e-10), ...)`` by default). It works for any ``n``, whereas the epoch-state solvers
(``solvers.oracle.centralized_oracle``) index one array axis per agent
(numpy's 64-axis limit); the study uses the oracle up to 40 routers and
:func:`routing_q_star` beyond.

**Scoring.** :func:`routing_accuracy` follows a greedy decentralized policy
from every source to every other destination (undetained packet) and scores
delivery (STOP at the destination within ``n`` moves) and the path-length
ratio to the networkx shortest path; :func:`decision_gap` is the smallest
``Q*`` margin between the best successor on a shortest path and the best one
off every shortest path (how small a value difference IC-Q must resolve).
Both are study-specific scores of a policy on this family, hence here rather
than in ``estimators``.

**Learning.** Tabular IC-Q (the compiled loop of :mod:`solvers.compiled`,
``ICQ(engine="auto")``) with epsilon-greedy exploration, a budget per family:

Sizes
-----
=======  ==========================================  ==========================================
mode     quick (default, CI)                          full (``--full``)
=======  ==========================================  ==========================================
routing  N=12 on the four graph families, 15000       N=100. ER, BA, WS: 4 seeds, 2,000,000
         updates, 4 seeds, epsilon 0.3, step          updates, epsilon 0.4, step 5/(k+5).
         10/(k+10)                                    Chain: 2 seeds, 500,000,000 updates,
                                                      epsilon 0.05, step min(20/(k+1), 1)
=======  ==========================================  ==========================================

Why these budgets (measured learning curves, seed 0 graphs, worst seed of the
accuracy at each count of updates per seed). Erdos-Renyi, Barabasi-Albert and
Watts-Strogatz reach 100 % on four seeds by 750,000 updates (250,000:
0.962 / 0.995 / 0.806; 500,000: 0.9999 / 1 / 0.9991), so 2,000,000 is a
margin of 2.7. The chain is the hard family: its smallest ``Q*`` margin is
0.020 (pairs 98 hops apart: ``2.9 x 0.95^k``), the returns carry the
detention noise (a bootstrapped header is detained with probability 0.05,
which moves the target by about 2), and a pair far from its destination is
visited only by packets that start beyond it. The step size trades the two
errors: a large ``c`` carries the destination's reward back along the 99
hops faster but averages the noise over fewer visits. With epsilon 0.05 and
``min(c/(k+1), 1)``, seed 0: ``c = 30`` (the earlier setting) reaches 0.9835
at 7.5e7 updates, peaks at 0.998 and falls back to 0.9935 at 3e8 (noise);
``c = 15`` is at 0.9994 after 3e8 (bias); ``c = 20`` reaches 0.9978 at 7.5e7
and 1.0 from 2.6e8 on. Over two seeds (4e8 updates) ``c = 20`` is at 1.0 on
both from 2.5e8 except one dip of seed 1 (0.9995 at 3.5e8), hence 5e8
updates per seed. Neither more exploration (epsilon 0.1 to 1, or a horizon
of 4 hops for more restarts), nor an optimistic (10) or pessimistic (-20,
-30) initial table, nor a per-router step count, nor a decay of epsilon to
0 did better per update (between 0.22 and 0.98 at 2e7 to 5e7 updates,
against 0.968 at 2e7 and 0.983 at 5e7 for ``c = 30``). Measured with
``routing_study("chain", n=100, seed=0, seeds=1, ...)`` (the variants: the
same ``ICQ`` call with ``init``, ``horizon``, ``StepSize(index="agent")`` or
``EpsilonGreedy(final_epsilon=0, decay_steps=...)``) on 2 cores shared with
other jobs (load average 3 to 6).

The study is a campaign (:mod:`reports.campaign`): :func:`routing_campaign` has
one task per graph family (:func:`routing_task`), each with the study seed;
:func:`routing_data` builds :class:`RoutingData` from the results only.
Computing (:func:`compute_routing`: campaign, then :func:`routing_data`) is
apart from rendering (:func:`render_routing`); :func:`routing` composes them
into the report section.

Examples
--------
>>> from icsmdp_theory.families import routing_graph, routing_instance
>>> g = routing_graph("chain", 4)
>>> res = routing_q_star(routing_instance(g))
>>> res.success, res.q.shape
(True, (32, 5))
>>> routing_accuracy(routing_instance(g), g, res.q).accuracy
1.0
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import networkx as nx
import numpy as np
import scipy.sparse as sp

from icsmdp_theory.cells import cell_admissible, cell_offsets
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.families import (GRAPH_KINDS, check_routing_graph, routing_destination,
                                    routing_graph, routing_instance)
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import option_reduction
from icsmdp_theory.results import SolveResult
from reports.builder import ReportContext, Section
from reports.campaign import Campaign, Task
from reports.studies.runner import run_study, study_number, study_options, study_result
from solvers import ValueIteration, solve
from solvers.icq import ICQ, EpsilonGreedy, StepSize
from solvers.oracle import centralized_oracle
from solvers.records import cells_from_epoch_q, greedy_cell_policies
from solvers.smdp import FiniteSMDP

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["PAPER_ROUTING_ACCURACY", "ROUTING_KEYS", "ORACLE_LIMIT", "ROUTING_Q_STAR_SOLVER",
           "FULL_SEEDS", "FULL_GRAPH_SEEDS", "FULL_UPDATES", "FULL_CHAIN_UPDATES",
           "FULL_CHAIN_EPSILON", "FULL_CHAIN_STEP", "FULL_CURVE",
           "RoutingAccuracy", "RoutingData", "routing_smdp", "routing_q_star", "routing_accuracy", "decision_gap",
           "routing_study", "routing_task", "routing_task_id", "routing_campaign",
           "routing_data", "compute_routing", "render_routing", "routing"]

#: The paper's routing accuracy.
PAPER_ROUTING_ACCURACY = 1.0

#: ``report.json`` keys of the routing section.
ROUTING_KEYS = ("num_routers", "graph_seed", "updates", "seeds", "epsilon", "families",
                "paper_accuracy", "timings_seconds")

#: Largest router count whose ``Q*`` the study takes from the epoch-state oracle.
ORACLE_LIMIT = 40
#: The exact solver of :func:`routing_q_star` when none is given.
ROUTING_Q_STAR_SOLVER = ValueIteration(tol=1e-10)

#: Full study (``--full``): IC-Q seeds on the chain (the config's ``seeds``).
FULL_SEEDS = 2
#: Full study: IC-Q seeds on Erdos-Renyi, Barabasi-Albert and Watts-Strogatz.
FULL_GRAPH_SEEDS = 4
#: Full study: updates per seed on Erdos-Renyi, Barabasi-Albert and Watts-Strogatz.
FULL_UPDATES = 2_000_000
#: Full study: updates per seed on the chain.
FULL_CHAIN_UPDATES = 500_000_000
#: Full study: the chain's epsilon-greedy exploration.
FULL_CHAIN_EPSILON = 0.05
#: Full study: the chain's harmonic step ``(c, k0, max_step)``, ``min(c/(k + k0), max_step)``.
FULL_CHAIN_STEP = (20.0, 1.0, 1.0)
#: Full study: fractions of the budget at which the greedy policy is scored (learning curve).
FULL_CURVE = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4)


# ================================================================ exact Q*
def _routing_smdp_iv(model: ICSMDP) -> None:
    if not isinstance(model, ICSMDP):
        raise InvalidArgumentError(f"`model` must be an ICSMDP, got {type(model).__name__}.")
    nM = model.num_interface
    exact = all(a.observation.shape == (nM, 1)
                and np.array_equal(a.observation[:, 0], np.arange(nM)) for a in model.agents)
    if model.num_latent != 1 or any(n != 1 for n in model.num_private) or not exact:
        raise InvalidArgumentError(
            "`model` must have one latent state, one private state per agent and the exact "
            "observation phi_i(m) = m (as icsmdp_theory.families.routing_instance builds), so "
            f"that its cells are its epoch states; got num_latent = {model.num_latent}, "
            f"num_private = {list(model.num_private)}, exact observation: {exact}.")


def routing_smdp(model: ICSMDP) -> FiniteSMDP:
    r"""The decision-epoch SMDP of a routing instance, on cells ``(i, m)`` (module docstring).

    State ``cell = i * nM + m`` (the cell layout of :mod:`icsmdp_theory.cells`
    under the exact observation), action ``c'`` (``N`` = STOP):

    - ``reward[cell, c'] = R_i(m, c')``, the option reward;
    - ``kernel[cell * (N+1) + c', c' * nM + m'] = D_i(m' | m)`` for admissible
      ``c' != STOP`` (STOP rows are zero);
    - ``admissible[cell, c']`` from the agent's successors.

    Parameters
    ----------
    model : ICSMDP
        One latent state, one private state per agent, exact observation.

    Returns
    -------
    FiniteSMDP
        ``N * nM`` states, ``N + 1`` actions.

    Raises
    ------
    InvalidArgumentError
        When the cells are not the epoch states (see ``model``).
    """
    _routing_smdp_iv(model)
    n, nM, C = model.num_agents, model.num_interface, model.num_successors
    reward = np.empty((n * nM, C))
    rows, cols, vals = [], [], []
    for i in range(n):
        red = option_reduction(model, i)
        reward[i * nM:(i + 1) * nM] = red.option_reward()                  # R_i(m, c')
        d = sp.coo_array(red.end_kernel_pushforward(np.arange(nM), nM))    # D_i(m' | m)
        for c in np.flatnonzero(model.admissible[i, :n]):
            rows.append((i * nM + d.row) * C + c)
            cols.append(c * nM + d.col)
            vals.append(d.data)
    kernel = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n * nM * C, n * nM))
    return FiniteSMDP(reward=reward, kernel=kernel, admissible=cell_admissible(model))


def routing_q_star(model: ICSMDP, *, solver: Any = None) -> SolveResult:
    """``Q*`` of a routing instance on cells ``(router, header)``, by an exact solver.

    Parameters
    ----------
    model : ICSMDP
        As for :func:`routing_smdp`.
    solver : ValueIteration, PolicyIteration or ModifiedPolicyIteration, optional
        Default :data:`ROUTING_Q_STAR_SOLVER`, value iteration to a certified
        ``1e-10``: a packet is delivered or dropped within the graph's diameter
        of hops under the optimal policy, so the sweeps converge in about as
        many steps as the longest shortest path (measured at N = 100 on 2
        loaded cores: 2.6 s on the chain, 0.3 s on Watts-Strogatz, against
        48 s and 15 s for policy iteration with its default evaluation).

    Returns
    -------
    SolveResult
        ``q[cell, c']`` of shape ``(sum nO, N+1)`` (``nan`` where inadmissible),
        ``v[cell]``, greedy ``policy[cell]``, the certified ``error_bound``;
        ``success=False`` (status ``max_iter`` or ``stagnated``) when the
        tolerance was not met. Equals ``cells_from_epoch_q(model,
        centralized_oracle(model).solution.q)`` up to both tolerances (tested).
    """
    return solve(ROUTING_Q_STAR_SOLVER if solver is None else solver, routing_smdp(model))


# ================================================================ scoring
@dataclass(frozen=True)
class RoutingAccuracy:
    """Routing accuracy of one greedy decentralized policy over all ordered pairs ``s != d``.

    Attributes
    ----------
    accuracy : float
        Fraction of pairs delivered (STOP at ``d`` within ``n`` moves).
    delivered, pairs : int
    mean_length_ratio : float
        Mean over delivered pairs of ``learned hops / shortest hops`` (``nan`` if none).
    max_length_ratio : float
    failures : list of (source, destination, reason)
        Up to 20 failed pairs; reason ``"stop"`` (STOP elsewhere) or ``"loop"``
        (more than ``n`` moves).
    """

    accuracy: float
    delivered: int
    pairs: int
    mean_length_ratio: float
    max_length_ratio: float
    failures: list = field(default_factory=list)


def routing_accuracy(model: ICSMDP, graph: nx.Graph, q_cells: np.ndarray) -> RoutingAccuracy:
    """Score the greedy policy of cell values ``q_cells`` on all (source, destination) pairs.

    Parameters
    ----------
    model : ICSMDP
        A routing instance on ``graph``.
    graph : networkx.Graph
    q_cells : ndarray, shape (sum nO, N+1)
        One seed's ``RunRecord.q[k, seed]``, ``cells_from_epoch_q(model, Q*)``
        or ``routing_q_star(model).q``. Greedy: lowest admissible index within
        ``1e-10`` of the max (``nan`` = not reached, treated as ``-inf``).

    Returns
    -------
    RoutingAccuracy
    """
    n = check_routing_graph(graph)
    if model.num_agents != n:
        raise InvalidArgumentError(f"`model` has {model.num_agents} routers, `graph` {n} nodes.")
    nO = model.num_observations
    q = np.asarray(q_cells, float)
    if q.shape != (sum(nO), n + 1):
        raise InvalidArgumentError(f"`q_cells` must have shape ({sum(nO)}, {n + 1}), got {q.shape}.")
    pol = greedy_cell_policies(q, cell_admissible(model))
    offs = cell_offsets(nO)
    dist = dict(nx.all_pairs_shortest_path_length(graph))
    delivered, ratios, failures = 0, [], []
    pairs = 0
    for s in range(n):
        for d in range(n):
            if s == d:
                continue
            pairs += 1
            at, hops, reason = s, 0, None
            while True:
                c = int(pol[offs[at] + 2 * d])
                if c == n:
                    reason = None if at == d else "stop"
                    break
                hops += 1
                at = c
                if hops > n:
                    reason = "loop"
                    break
            if reason is None:
                delivered += 1
                ratios.append(hops / dist[s][d])
            elif len(failures) < 20:
                failures.append((s, d, reason))
    r = np.asarray(ratios)
    return RoutingAccuracy(accuracy=delivered / pairs, delivered=delivered, pairs=pairs,
                           mean_length_ratio=float(r.mean()) if r.size else float("nan"),
                           max_length_ratio=float(r.max()) if r.size else float("nan"),
                           failures=failures)


def decision_gap(model: ICSMDP, graph: nx.Graph, q_cells: np.ndarray) -> float:
    """Smallest ``Q*`` margin between the best on-path and the best off-path successor.

    Over the cells of undetained packets not at their destination: the best
    successor on a shortest path minus the best successor off every shortest
    path (STOP included), i.e. how small a value difference IC-Q must resolve.

    Parameters
    ----------
    model : ICSMDP
        A routing instance on ``graph``.
    graph : networkx.Graph
    q_cells : ndarray, shape (sum nO, N+1)

    Returns
    -------
    float
        ``nan`` when no cell has both kinds of successor.
    """
    dist = dict(nx.all_pairs_shortest_path_length(graph))
    N = model.num_agents
    offs = cell_offsets(model.num_observations)
    gaps = []
    for i, ag in enumerate(model.agents):
        adm = np.flatnonzero(ag.successors)
        for o in range(model.num_observations[i]):
            d, f = routing_destination(o)
            if f or d == i:
                continue
            good = [j for j in adm if j < N and dist[j][d] == dist[i][d] - 1]
            bad = [j for j in adm if j not in good]
            if good and bad:
                gaps.append(q_cells[offs[i] + o, good].max() - q_cells[offs[i] + o, bad].max())
    return float(min(gaps)) if gaps else float("nan")


# ================================================================ the study
def _routing_config(quick: bool) -> dict:
    """Routing settings: ``n`` routers, ``seeds``, and per graph family (``default`` unless
    the family has its own entry) ``updates`` per seed, ``epsilon``, ``step`` =
    ``(c, k0, max_step)`` of the harmonic step ``min(c/(k + k0), max_step)`` (``None``:
    ICQ's tabular default ``10/(k + 10)``) and optionally ``init`` (the table's initial
    value, default 0). Optional keys: ``curve``, the fractions of ``updates`` at which the
    greedy policy is also scored (default 1/8, 1/4, 1/2); ``split_seeds``, one campaign task
    per (family, seed) instead of one per family (same numbers: a seed's run depends only
    on its own streams), so that two workers share the chain's seeds.

    Full budgets (measured learning curves in the module docstring): the chain's far pairs
    have ``Q*`` margins near 0.02 (:func:`decision_gap`), so it gets the largest budget."""
    if quick:
        return dict(n=12, seeds=4, default=dict(updates=15_000, epsilon=0.3, step=None))
    return dict(n=100, seeds=FULL_SEEDS, split_seeds=True, curve=FULL_CURVE,
                default=dict(updates=FULL_UPDATES, epsilon=0.4, step=(5.0, 5.0, None),
                             seeds=FULL_GRAPH_SEEDS),
                chain=dict(updates=FULL_CHAIN_UPDATES, epsilon=FULL_CHAIN_EPSILON,
                           step=FULL_CHAIN_STEP, seeds=FULL_SEEDS))


def _family_settings(cfg: dict, kind: str) -> dict:
    return cfg.get(kind, cfg["default"])


def _step_text(step) -> str:
    if step is None:
        return "10/(k+10)"
    c, k0, cap = step
    return f"{c:g}/(k+{k0:g})" + ("" if cap is None else f", at most {cap:g}")


def routing_study(kind: str, *, n: int, updates: int, seeds: Any, epsilon: float,
                  seed: int = 0, step: tuple | None = None, checkpoints: tuple = (),
                  init: float = 0.0) -> dict:
    """One graph family: exact and IC-Q accuracies and path-length ratios (JSON-ready dict).

    Parameters
    ----------
    kind : str
        A graph family of :data:`icsmdp_theory.families.GRAPH_KINDS`.
    n : int
        Routers.
    updates, seeds, epsilon :
        IC-Q updates per seed, seeds (a count, or the seed ids to run: a subset of a
        batch reproduces those seeds exactly), epsilon-greedy exploration.
    seed : int
        Graph and IC-Q seed.
    step : tuple or None
        ``(c, k0[, max_step])`` of the harmonic step ``min(c/(k + k0), max_step)``;
        ``None``: ICQ's default.
    checkpoints : tuple of int
        Extra update counts at which the greedy policy's accuracy is also
        scored (the learning curve, ``curve``).
    init : float
        Initial value of the IC-Q tables.

    Returns
    -------
    dict
        ``kind, num_nodes, num_edges, updates, oracle_accuracy,
        oracle_length_ratio, oracle_method`` (``"oracle"`` up to
        :data:`ORACLE_LIMIT` routers, else ``"routing_q_star"``),
        ``oracle_status`` (status word of that exact solve),
        ``q_star_min_decision_gap, accuracy_per_seed, accuracy_mean,
        accuracy_min, length_ratio_per_seed, length_ratio_mean, failures,
        curve, status, seconds``.
    """
    t0 = time.perf_counter()
    g = routing_graph(kind, n, seed=seed)
    model = routing_instance(g, seed=seed)
    if n <= ORACLE_LIMIT:
        exact = centralized_oracle(model).solution
        q_star, how = cells_from_epoch_q(model, exact.q), "oracle"
    else:  # the epoch-state solvers use one array axis per agent (numpy allows 64)
        exact = routing_q_star(model)
        q_star, how = exact.q, "routing_q_star"
    acc_star = routing_accuracy(model, g, q_star)
    t1 = time.perf_counter()
    cks = tuple(sorted({int(c) for c in checkpoints if 0 < c < updates} | {updates}))
    rule = None if step is None else StepSize(rule="harmonic", c=step[0], k0=step[1],
                                              max_step=step[2] if len(step) > 2 else None)
    rec = solve(ICQ(updates=updates, seeds=seeds, seed=seed, step=rule, checkpoints=cks,
                    behavior=EpsilonGreedy(epsilon=epsilon), init=float(init), progress=False),
                model)
    t2 = time.perf_counter()
    accs = [routing_accuracy(model, g, rec.q[-1, s]) for s in range(rec.q.shape[1])]
    curve = [dict(updates=int(T), accuracy_per_seed=[
        routing_accuracy(model, g, rec.q[k, s]).accuracy for s in range(rec.q.shape[1])])
        for k, T in enumerate(rec.checkpoints[:-1])]
    t3 = time.perf_counter()
    ratios = [a.mean_length_ratio for a in accs]
    return dict(kind=kind, num_nodes=n, num_edges=g.number_of_edges(), updates=int(updates),
                oracle_accuracy=acc_star.accuracy, oracle_length_ratio=acc_star.mean_length_ratio,
                oracle_method=how, oracle_status=exact.status,
                q_star_min_decision_gap=decision_gap(model, g, q_star),
                accuracy_per_seed=[a.accuracy for a in accs],
                accuracy_mean=float(np.mean([a.accuracy for a in accs])),
                accuracy_min=float(min(a.accuracy for a in accs)),
                length_ratio_per_seed=ratios,
                length_ratio_mean=float(np.nanmean(ratios)) if np.isfinite(ratios).any() else None,
                failures=[list(f) for a in accs for f in a.failures][:20],
                curve=curve + [dict(updates=int(updates),
                                    accuracy_per_seed=[a.accuracy for a in accs])],
                status=rec.status, seed_ids=[int(k) for k in rec.seeds],
                seconds={"oracle": round(t1 - t0, 3), "icq": round(t2 - t1, 3),
                         "accuracy": round(t3 - t2, 3)})


def routing_task(params: dict, seed: int) -> dict:
    """One graph family, or one seed of it (a task of :func:`routing_campaign`):
    :func:`routing_study` plus ``settings`` (``updates, epsilon, step, step_text, init``).

    Parameters
    ----------
    params : dict
        ``kind``, ``n``, ``seeds``, ``updates``, ``epsilon``, ``step``; optional ``init``
        (default 0), ``seed_ids`` (run only those seeds of the batch) and ``curve``
        (fractions of ``updates`` scored on the way; default 1/8, 1/4, 1/2).
    seed : int
        The study seed (graph and IC-Q batch).
    """
    T, step = int(params["updates"]), params["step"]
    step = None if step is None else tuple(step)
    init = float(params.get("init", 0.0))
    seeds = params.get("seed_ids")
    seeds = int(params["seeds"]) if seeds is None else tuple(int(k) for k in seeds)
    curve = params.get("curve", (1 / 8, 1 / 4, 1 / 2))
    out = routing_study(params["kind"], n=int(params["n"]), updates=T, seeds=seeds,
                        epsilon=float(params["epsilon"]), seed=seed, step=step,
                        checkpoints=tuple(int(T * f) for f in curve), init=init)
    out["settings"] = dict(updates=T, epsilon=params["epsilon"], step=step,
                           step_text=_step_text(step), init=init)
    return out


def routing_task_id(kind: str, seed: int | None = None) -> str:
    """The task id of graph family ``kind`` in :func:`routing_campaign`: ``family=chain``,
    or ``family=chain/seed=1`` for seed 1 alone (config ``split_seeds``)."""
    return f"family={kind}" if seed is None else f"family={kind}/seed={int(seed)}"


def _family_seeds(cfg: dict, kind: str) -> int:
    """Seeds of graph family ``kind``: its own ``seeds`` setting, else the config's."""
    return int(_family_settings(cfg, kind).get("seeds", cfg["seeds"]))


def _family_task_ids(cfg: dict, kind: str) -> list:
    if cfg.get("split_seeds"):
        return [routing_task_id(kind, j) for j in range(_family_seeds(cfg, kind))]
    return [routing_task_id(kind)]


def routing_campaign(seed: int, quick: bool) -> Campaign:
    """The routing study as a campaign: one task per graph family (:func:`routing_task`),
    or per (family, seed) when the config says ``split_seeds`` (the full study).

    The chain (largest budget at full scale) comes first, so that it starts
    first. Every task uses the study seed itself (``Task.seed``): the graphs and
    the IC-Q batches are those of the study run in one process (a seed's IC-Q
    run depends only on its own streams, so splitting a family's seeds into
    tasks changes no number).

    Parameters
    ----------
    seed : int
    quick : bool

    Returns
    -------
    Campaign
        Named ``routing``.
    """
    cfg = _routing_config(quick)
    kinds = sorted(GRAPH_KINDS, key=lambda k: k != "chain")
    extra = {} if "curve" not in cfg else {"curve": list(cfg["curve"])}
    tasks = []
    for k in kinds:
        base = dict(dict(kind=k, n=cfg["n"], seeds=cfg["seeds"]), **_family_settings(cfg, k),
                    **extra)
        if cfg.get("split_seeds"):
            tasks += [Task(routing_task_id(k, j), dict(base, seed_ids=[j]), seed=int(seed))
                      for j in range(_family_seeds(cfg, k))]
        else:
            tasks.append(Task(routing_task_id(k), base, seed=int(seed)))
    return Campaign("routing", routing_task, tuple(tasks), seed=int(seed),
                    settings={"study": "routing", "quick": bool(quick), "config": cfg})


def _merge_seed_results(parts: list) -> dict:
    """One family's result from the results of its per-seed tasks (in seed order)."""
    if len(parts) == 1:
        return dict(parts[0])
    out = dict(parts[0])
    accs = [a for p in parts for a in p["accuracy_per_seed"]]
    ratios = [r for p in parts for r in p["length_ratio_per_seed"]]
    out.update(accuracy_per_seed=accs, accuracy_mean=float(np.mean(accs)),
               accuracy_min=float(min(accs)), length_ratio_per_seed=ratios,
               seed_ids=[k for p in parts for k in p.get("seed_ids", [])],
               failures=[f for p in parts for f in p["failures"]][:20],
               status=next((p["status"] for p in parts if p["status"] != "completed"),
                           parts[0]["status"]),
               curve=[dict(updates=c["updates"], accuracy_per_seed=[
                   a for p in parts for a in p["curve"][j]["accuracy_per_seed"]])
                   for j, c in enumerate(parts[0]["curve"])],
               seconds={key: round(sum(p["seconds"][key] for p in parts), 3)
                        for key in parts[0]["seconds"]})
    finite = [r for r in ratios if r is not None and np.isfinite(r)]
    out["length_ratio_mean"] = float(np.mean(finite)) if finite else None
    out["seconds"]["icq_per_seed"] = [p["seconds"]["icq"] for p in parts]
    return out


@dataclass(frozen=True)
class RoutingData:
    """What the routing study computes (JSON-ready, no figure).

    Attributes
    ----------
    seed : int
        Graph and IC-Q seed.
    config : dict
        ``n``, ``seeds`` and the per-family settings (``default``, ``chain``).
    families : dict
        ``kind -> routing_study(...)`` dict plus ``settings``, in the order of
        :data:`~icsmdp_theory.families.GRAPH_KINDS`.
    started : float
        ``time.perf_counter()`` when the computation began.
    results_file : str or None
        The campaign's results file (``None``: a temporary one).
    """

    seed: int
    config: dict
    families: dict
    started: float
    results_file: str | None = None


#: Fields of a family's result that are floats (``nan``/``inf`` restored on reading).
_FAMILY_FLOATS = ("oracle_accuracy", "oracle_length_ratio", "q_star_min_decision_gap",
                  "accuracy_mean", "accuracy_min")


def routing_data(seed: int, quick: bool, results: dict, *, results_file: str | None = None,
                 started: float | None = None) -> RoutingData:
    """The routing study's numbers from the results of :func:`routing_campaign` only.

    Parameters
    ----------
    seed : int
    quick : bool
    results : dict
        Task id -> result (``CampaignRun.results``).
    results_file : str, optional
    started : float, optional
        ``time.perf_counter()`` when the computation began (default now).

    Returns
    -------
    RoutingData
    """
    families = {}
    cfg = _routing_config(quick)
    for k in GRAPH_KINDS:
        f = _merge_seed_results([study_result(results, t, "routing")
                                 for t in _family_task_ids(cfg, k)])
        for key in _FAMILY_FLOATS:
            f[key] = study_number(f[key])
        f["length_ratio_per_seed"] = [study_number(x) for x in f["length_ratio_per_seed"]]
        families[k] = f
    return RoutingData(seed=seed, config=cfg, families=families,
                       started=time.perf_counter() if started is None else started,
                       results_file=results_file)


def compute_routing(seed: int, quick: bool, *, results_dir=None, jobs: int | None = None,
                    scheduler: Any = None, resume: bool = False,
                    progress: bool = False) -> RoutingData:
    """Run :func:`routing_study` on every graph family: :func:`routing_campaign` run by
    :func:`reports.studies.runner.run_study`, then :func:`routing_data`.

    Parameters
    ----------
    seed : int
    quick : bool
    results_dir : path-like, optional
        Keep the results file there (``routing-seed{seed}-{quick|full}.jsonl``);
        default a temporary file.
    jobs, scheduler, resume, progress :
        As for :func:`reports.campaign.run_campaign` (default: every core).

    Returns
    -------
    RoutingData
    """
    return run_study(routing_campaign(seed, quick), routing_data, seed=seed, quick=quick,
                     results_dir=results_dir, jobs=jobs, scheduler=scheduler, resume=resume,
                     progress=progress)


def _routing_note(fams: dict) -> str:
    short = {k: f for k, f in fams.items() if f["accuracy_min"] < 1.0}
    if not short:
        return "Every seed routes every (source, destination) pair correctly on every family."
    parts = []
    for k, f in short.items():
        worst = [min(c["accuracy_per_seed"]) for c in f["curve"]]
        trend = "rising" if worst[-1] > worst[0] else "not rising"
        parts.append(f"{k}: {f['accuracy_min']:.4f} after {f['updates']} updates (min Q* "
                     f"margin {f['q_star_min_decision_gap']:.3g}; worst-seed accuracy {trend} "
                     f"over the checkpoints)")
    return ("Below 100%: " + "; ".join(parts) + ". The exact Q* routes every pair (oracle "
            "accuracy above), so the shortfall is learning, not the model: IC-Q must resolve "
            "value differences as small as the min Q* margin from returns that carry the "
            "detention noise, and far pairs are rarely sampled. With gamma = 0.95 and -1 per "
            "hop the margin between the two directions at distance k is about "
            "30 gamma^k (1 - gamma^2) = 2.9 x 0.95^k.")


def render_routing(ctx: ReportContext, data: RoutingData) -> Section:
    """The routing figure ``routing.png``, text and ``report.json`` data.

    ``report.json`` key ``routing``: :data:`ROUTING_KEYS` (``updates`` and
    ``epsilon`` of the default family settings) plus ``settings`` per family
    and ``results_file`` (the campaign's results file, ``null`` for a temporary one); ``families[kind]`` holds the fields of
    :func:`routing_study` plus ``settings``.

    Parameters
    ----------
    ctx : ReportContext
        The figure is written to ``ctx.workdir``.
    data : RoutingData

    Returns
    -------
    Section
    """
    cfg, fams = data.config, data.families
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    x = np.arange(len(GRAPH_KINDS))
    ax.bar(x - 0.2, [fams[k]["accuracy_mean"] for k in GRAPH_KINDS], 0.4,
           label="IC-Q accuracy (mean over seeds)")
    ax.bar(x + 0.2, [1.0 / (fams[k]["length_ratio_mean"] or np.inf) for k in GRAPH_KINDS], 0.4,
           label="shortest / learned path length")
    ax.axhline(PAPER_ROUTING_ACCURACY, color="k", lw=0.8, ls=":", label="paper: 100% accuracy")
    ax.set_xticks(x, GRAPH_KINDS, fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    ax.set_title(f"Routing, N = {cfg['n']} routers")
    fig.legend(loc="outside upper center", ncols=2, fontsize=9)
    fig.savefig(ctx.workdir / "routing.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for k, f in fams.items():
        xs = [c["updates"] for c in f["curve"]]
        line, = ax.plot(xs, [min(c["accuracy_per_seed"]) for c in f["curve"]], "o-", ms=3,
                        label=f"{k} (worst seed)")
        ax.plot(xs, [float(np.mean(c["accuracy_per_seed"])) for c in f["curve"]], ":",
                color=line.get_color())
    ax.axhline(PAPER_ROUTING_ACCURACY, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("IC-Q updates per seed")
    ax.set_ylabel("routing accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Learning curves, N = {cfg['n']} (dotted: mean over seeds)")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(ctx.workdir / "routing_curves.png", dpi=110)
    plt.close(fig)
    rows = [[k, f["num_edges"], len(f["accuracy_per_seed"]), f["updates"], f["settings"]["epsilon"],
             f["settings"]["step_text"],
             f["settings"].get("init", 0.0),
             f["oracle_accuracy"], f["q_star_min_decision_gap"], f["accuracy_mean"],
             f["accuracy_min"], f["length_ratio_mean"], f["seconds"]["icq"]]
            for k, f in fams.items()]
    curves = [[k] + [f"{c['updates']:,}: {min(c['accuracy_per_seed']):.4f}" for c in f["curve"]]
              for k, f in fams.items()]
    width = max(len(r) for r in curves)
    curves = [r + [""] * (width - len(r)) for r in curves]
    blocks = [
        ("p", f"N={cfg['n']} routers (icsmdp_theory.families.routing_instance; header = "
              "(destination, detain flag), exact observation, successors = neighbours + STOP). "
              "Tabular IC-Q (the compiled loop), epsilon-greedy exploration; the budget per "
              "family in the table: seeds, T updates per seed, epsilon, the harmonic step size "
              "eta_k (k = visits of the (cell, successor) pair) and the tables' initial value. "
              "Accuracy: the greedy decentralized policy is "
              "followed from every source for every other destination (undetained packet) and "
              "must STOP at the destination within N moves; length ratio = learned hops / "
              "networkx shortest path, over delivered pairs. Paper: 100% accuracy. "
              "Min Q* margin: the smallest difference under the exact Q* between the best "
              "successor on a shortest path and the best one off every shortest path "
              "(undetained packets), i.e. how small a value difference IC-Q must resolve "
              "through noisy (detention) returns."),
        ("table", ["graph", "edges", "seeds", "T per seed", "epsilon", "step eta_k", "initial Q",
                   "oracle accuracy",
                   "min Q* margin", "IC-Q accuracy (mean)", "IC-Q accuracy (min seed)",
                   "length ratio", "IC-Q seconds (sum over seeds)"], rows),
        ("p", "Learning curve: accuracy of the worst seed at each checkpoint (updates: "
              "accuracy)."),
        ("table", ["graph"] + [f"checkpoint {j + 1}" for j in range(width - 1)], curves),
        ("figure", "routing_curves.png", "Learning curves: routing accuracy of the greedy "
                   "policy against IC-Q updates per seed, per graph family."),
        ("p", _routing_note(fams)),
        ("figure", "routing.png", "Routing accuracy of IC-Q and path efficiency per graph family."),
    ]
    out = dict(num_routers=cfg["n"], graph_seed=data.seed, updates=cfg["default"]["updates"],
               seeds=cfg["seeds"], epsilon=cfg["default"]["epsilon"], families=fams,
               settings={k: f["settings"] for k, f in fams.items()},
               paper_accuracy=PAPER_ROUTING_ACCURACY, results_file=data.results_file,
               timings_seconds={"section": round(time.perf_counter() - data.started, 3),
                                **{k: f["seconds"] for k, f in fams.items()}})
    return Section(key="routing", title="Multi-agent routing", blocks=blocks, data=out)


def routing(ctx: ReportContext) -> Section:
    """The routing report section: :func:`compute_routing` then :func:`render_routing`.

    Runs the campaign with the context's options (:func:`reports.studies.runner.study_options`);
    records ``ctx.seeds_used["routing"] = ctx.seed`` and the results file in
    ``ctx.campaign_files["routing"]``.
    """
    ctx.seeds_used["routing"] = ctx.seed
    data = compute_routing(ctx.seed, ctx.quick, **study_options(ctx))
    if data.results_file is not None:
        ctx.campaign_files["routing"] = data.results_file
    return render_routing(ctx, data)
