r"""The AIS gaps of an observation map and the interface gap ``alpha`` (SPEC section 5).

With ``R_hat``, ``D_hat``, ``P_hat`` conditioned on cells by a reference law ``d``
(:mod:`estimators.ais`, SPEC section 4), ``Q_hat*`` their optimum and
``V_hat(i, o) = max_{c'} Q_hat*(i, o, c')``, the sups below run over every full
epoch state ``s = (x, m, l_0..l_{N-1}, i)`` and every admissible ``c'``; the
terms involving the successor's observation run over ``c' != STOP``:

- ``epsilon_phi = max |R_i(y, c') - R_hat_i(phi(s), c')|`` (B1);
- ``delta_phi = max TV( law of (o', tau) | s, c' ; P_hat(., . | phi(s), c') )``
  on ``O_{c'} x {1, 2, ...}`` truncated where the remaining mass is below
  ``1e-12`` (``delta_phi_tail_bound``), ``TV = 0.5 * L1`` (B2);
- ``delta_phi_gamma = max || D_phi(.|s, c') - D_hat(.|phi(s), c') ||_1``, with
  ``D_phi`` the discounted end kernel pushed through ``phi_{c'}``;
- ``eta = max | (D_phi V_hat)(s, c') - (D_hat V_hat)(phi(s), c') |``;
- ``L_Q = max V_hat - min V_hat`` and
  ``span_f = gamma * (max(0, max V_hat) - min(0, min V_hat))``;
- ``alpha_paper = (epsilon_phi + gamma_bar L_Q delta_phi) / (1 - gamma_bar)`` (the paper's form),
  ``alpha_tv = (epsilon_phi + span_f delta_phi) / (1 - gamma_bar)`` (provable),
  ``alpha_tight = (epsilon_phi + eta) / (1 - gamma_bar)`` (provable, tightest).

Adaptable agents (issue 15): ``c'`` above becomes the choice ``j = a*(N+1) + c'``
(mode ``a``, successor ``c'``) everywhere: ``epsilon_phi`` runs over ``(s, j)``,
``delta_phi``, ``delta_phi_gamma`` and ``eta`` over the ``j`` with ``c' != STOP``
(mode ``a``'s laws, the successor ``c'``'s observation), ``V_hat = max_j Q_hat*``,
the greedy AIS policy picks a choice, and the per-cell states name the mode
(``mode``, ``mode_name``). Without modes ``j = c'`` and nothing changes.

The report also measures what the bounds bound, against the centralized
oracle ``Q*_lat`` (SPEC section 3):

- ``max_q_gap = max_{s, c'} |Q*(s, c') - Q_hat*(phi(s), c')| <= alpha_tight <= alpha_tv``;
- ``max_value_gap = max_s |V*(s) - V_hat*(phi(s))| <= alpha_tight``;
- ``policy_loss = max_s (V*(s) - V^sigma(s)) <= 2 alpha_tight``, ``sigma`` the greedy
  AIS policy (lowest admissible index within ``1e-10``) run in the full
  system and evaluated exactly (:func:`solvers.iteration.evaluate_policy`: BiCGSTAB,
  sparse LU or GMRES, polished by sweeps to a
  certified error below ``tol``).

Cost: everything is vectorized over states (loops run over agents and
successors only). On ``random_icsmdp(1, num_agents=10, num_latent=120,
num_interface=50, nnz_per_row=8, end_probability=0.3, num_actions=2,
gamma=0.95, observation=10)`` (60,000 epoch states) the report without the
minimax gaps takes about 15 s of CPU (``Q*`` 6 s, ``V^sigma`` 5 s, the AIS
model 2 s); the minimax LPs add about 50 s of CPU, run on ``workers``
threads alongside the rest.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> rep = gap_report(load_example("tiny-handoff"))
>>> # the planner's cell {m1, m2}: R(m1, STOP) = 0, R(m2, STOP) = 1, and the laws of
>>> # (o', tau) from m1 and m2 are at TV 1/2 (m2 ends at once at m2; m1 does w.p. 1/2)
>>> round(rep.epsilon_phi, 6), round(rep.delta_phi, 6), round(rep.alpha_tight, 6)
(0.5, 0.25, 5.48423)
>>> rep.max_q_gap <= rep.alpha_tight <= rep.alpha_tv
True
>>> rep.cells[0]["agent_name"], rep.cells[0]["observation"]
('planner', 1)
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result, SolveResult
from solvers.common import greedy
from solvers.api import ModifiedPolicyIteration, PolicyIteration, solve
from solvers.committed_chain import committed_chain
from solvers.epoch_smdp import evaluate_epoch_policy
from solvers.iteration import evaluate_policy
from estimators.ais import AISCore, reference_law
from icsmdp_theory.epoch_level import EPOCH_MODELS
from icsmdp_theory.epoch_model import EpochModel
from estimators.chebyshev import MINIMAX_TOL
from estimators.minimax import MinimaxCollector, finish_minimax_gaps, resolve_workers

__all__ = ["GapReport", "MapComparison", "gap_report", "compare_maps", "SCALAR_FIELDS"]

#: The scalar fields of a :class:`GapReport` (compared by :func:`compare_maps`).
SCALAR_FIELDS = ("epsilon_phi", "delta_phi", "delta_phi_tail_bound", "delta_phi_gamma",
                 "gamma_bar", "L_Q", "span_f", "eta", "alpha_paper", "alpha_tv", "alpha_tight",
                 "max_q_gap", "max_value_gap", "policy_loss", "minimax_epsilon", "minimax_delta")


@dataclass(frozen=True, kw_only=True, repr=False)
class GapReport(Result):
    """Gaps of an observation map, the three ``alpha`` forms and the realized gaps (SPEC section 5).

    Attributes
    ----------
    reference : str
        ``"uniform"``, ``"stationary"`` or ``"explicit"``.
    epsilon_phi, delta_phi, delta_phi_gamma, eta : float
        The gaps (module docstring).
    delta_phi_tail_bound : float
        Mass of the ``(o', tau)`` support left out by the truncation.
    gamma_bar, L_Q, span_f : float
    alpha_paper, alpha_tv, alpha_tight : float
    max_q_gap, max_value_gap, policy_loss : float
        Realized gaps against ``Q*_lat``.
    minimax_epsilon, minimax_delta : float or None
        Minimax gaps of the map (``None`` with ``minimax=False``); ``minimax_delta``
        is the upper end of a certified bracket of width ``<= minimax_tol``.
    minimax_delta_lower : float or None
        The lower end of that bracket.
    fallback_cells : list of [agent, observation]
        Cells with zero reference mass (they use the uniform law).
    cells : list of dict
        Per cell, ranked by ``contribution = (epsilon + eta)/(1 - gamma_bar)``:
        ``cell, agent, agent_name, observation, size`` (full states), ``mass``,
        ``fallback``, ``epsilon``, ``epsilon_state``, ``delta``, ``delta_state``,
        ``delta_gamma``, ``eta``, ``minimax_epsilon``, ``minimax_delta``,
        ``contribution``; a state is ``{x, m, l, agent, successor}`` (``l`` lists
        every agent's private state; ``successor = N`` is STOP), plus ``mode`` and
        ``mode_name`` (the mode of the choice) for a model with modes.
    q_hat : ndarray, shape (num_cells, J)
        ``Q_hat*[cell, j]``, ``nan`` where inadmissible (``J = N+1``, ``j = c'`` without
        modes; with modes ``j = a*(N+1) + c'``).
    v_hat : ndarray, shape (num_cells,)
    q_star : ndarray, shape (num_epoch_states, J)
        ``Q*_lat[s, j]``, ``s = f*N + i``.
    cell_offsets : ndarray of int, shape (N+1,)
    oracle_error_bound, ais_error_bound, policy_evaluation_error_bound : float
        Certified sup-norm errors of ``Q*``, ``Q_hat*`` and ``V^sigma``.
    cell_rule : str
        How a cell's admissible successors follow from its states' own sets:
        ``"intersection"`` (SPEC section 10) or ``"union"`` (a fitted model,
        :class:`icsmdp_theory.epoch_level.EpochLevel`).
    cells_differing : list of [agent, observation]
        Cells whose states do not all admit the same successors (SPEC section 10 asks
        the report to list them; always empty for a primitive model).

    Notes
    -----
    The AIS-induced SMDP itself (``R_hat``, ``D_hat``, ``P_hat``) is
    :func:`estimators.ais.ais_smdp` with the same reference; it is not stored
    here so that the report stays small and JSON-serializable
    (:func:`icsmdp_theory.results.to_jsonable`).
    """

    reference: str
    epsilon_phi: float
    delta_phi: float
    delta_phi_tail_bound: float
    delta_phi_gamma: float
    gamma_bar: float
    L_Q: float
    span_f: float
    eta: float
    alpha_paper: float
    alpha_tv: float
    alpha_tight: float
    max_q_gap: float
    max_value_gap: float
    policy_loss: float
    minimax_epsilon: float | None
    minimax_delta: float | None
    minimax_delta_lower: float | None
    fallback_cells: list
    cells: list
    q_hat: np.ndarray
    v_hat: np.ndarray
    q_star: np.ndarray
    cell_offsets: np.ndarray
    oracle_error_bound: float
    ais_error_bound: float
    policy_evaluation_error_bound: float
    cell_rule: str = "intersection"
    cells_differing: list = dataclasses.field(default_factory=list)

    def scalars(self) -> dict:
        """The scalar fields (:data:`SCALAR_FIELDS`) as a dict."""
        return {k: getattr(self, k) for k in SCALAR_FIELDS}


@dataclass(frozen=True, kw_only=True, repr=False)
class MapComparison(Result):
    """Two gap reports of the same instance under two observation maps.

    Attributes
    ----------
    report_a, report_b : GapReport
    differences : dict
        ``differences[key] = report_b.key - report_a.key`` for the scalar fields
        (``None`` when either is ``None``).
    """

    report_a: GapReport
    report_b: GapReport
    differences: dict


# ------------------------------------------------------------------ helpers
def _cell_argmax(values: np.ndarray, cell: np.ndarray, num_cells: int):
    """Per cell: max of ``values`` over the entries with that cell, and the first entry realizing it."""
    best = np.full(num_cells, -np.inf)
    np.maximum.at(best, cell, values)
    hit = np.flatnonzero(values >= best[cell])
    _, first = np.unique(cell[hit], return_index=True)
    where = np.full(num_cells, -1, dtype=np.int64)
    where[cell[hit[first]]] = hit[first]
    return best, where


def _evaluate_policy(model, oracle: SolveResult, policy: np.ndarray, tol: float):
    """``V^sigma[s]`` of the epoch policy ``sigma[s]`` (flat over epoch states), certified to ``tol``.

    A primitive model: :func:`solvers.iteration.evaluate_policy` on the committed chain,
    warm-started at ``Q*``; an explicit epoch model: the same on its finite SMDP
    (:func:`solvers.epoch_smdp.evaluate_epoch_policy`), warm-started at ``V*``.
    """
    if isinstance(model, EpochModel):
        ev = evaluate_epoch_policy(model, policy, np.asarray(oracle.v, dtype=float), tol=tol)
        return np.asarray(ev.x), ev.error_bound, ev.how
    chain = committed_chain(model)
    F, N, J = model.num_full_states, model.num_agents, model.num_choices
    width = [shape[2] for shape in chain.shapes]        # K_i (N+1) columns per agent
    q3 = np.nan_to_num(np.asarray(oracle.q, dtype=float).reshape(F, N, J))
    W0 = [chain.space.to_agent_view(i, q3[:, i, :width[i]]) for i in range(N)]
    pol = policy.reshape(F, N)
    ev = evaluate_policy(chain, pol, W0, tol=tol,
                         exact_limit=PolicyIteration().exact_limit, rtol=1e-12)
    return chain.policy_values(ev.x, pol).reshape(-1), ev.error_bound, ev.how


def _gap_report_iv(model, tol, minimax, oracle, minimax_tol, workers):
    if not isinstance(model, EPOCH_MODELS):
        raise InvalidArgumentError(
            f"`model` must be an ICSMDP or an EpochModel, got {type(model).__name__}.")
    if not (isinstance(tol, (float, int)) and tol > 0):
        raise InvalidArgumentError(f"`tol` must be > 0, got {tol!r}.")
    if not isinstance(minimax, (bool, np.bool_)):
        raise InvalidArgumentError(f"`minimax` must be True or False, got {minimax!r}.")
    if oracle is not None:
        J = getattr(model, "num_choices", model.num_successors)
        if not isinstance(oracle, SolveResult) or np.shape(oracle.q) != (model.num_epoch_states, J):
            raise InvalidArgumentError(
                f"`oracle` must be the SolveResult of `solve(solver, model)` with q of shape "
                f"({model.num_epoch_states}, {J}).")
    if not (minimax_tol > 0):
        raise InvalidArgumentError(f"`minimax_tol` must be > 0, got {minimax_tol!r}.")
    return resolve_workers(workers)


# ------------------------------------------------------------------ the report
def gap_report(model: ICSMDP | EpochModel, *, reference: str | np.ndarray = "uniform", stationary_law: Any = None,
               tol: float = 1e-10, minimax: bool = True, oracle: SolveResult | None = None,
               minimax_tol: float = MINIMAX_TOL, workers: int | None = None) -> GapReport:
    """Gap report of ``model``'s observation maps (SPEC section 5).

    Parameters
    ----------
    model : ICSMDP
        Its ``observation`` maps are the map under study (see ``model.with_observation``).
    reference : {"uniform", "stationary"} or ndarray
        The reference law ``d`` of SPEC section 4 (see :func:`estimators.ais.ais_smdp`).
    stationary_law : ndarray ``[f, i]`` or result with ``law``, optional
        With ``reference="stationary"``.
    tol : float
        Accuracy of ``Q*`` (modified policy iteration), ``Q_hat*`` (policy
        iteration) and ``V^sigma``.
    minimax : bool
        Also compute the minimax gaps (:mod:`estimators.minimax`).
    oracle : SolveResult, optional
        A precomputed ``solve(solver, model)`` (observation maps do not change ``Q*``).
    minimax_tol : float
        Width of the certified bracket on each Chebyshev radius.
    workers : int or None
        Threads for the minimax LPs, which run while the rest of the report is
        computed (``None``: :data:`estimators.minimax.DEFAULT_WORKERS`).

    Returns
    -------
    GapReport
    """
    workers = _gap_report_iv(model, tol, minimax, oracle, minimax_tol, workers)
    d, ref_name = reference_law(model, reference, stationary_law)
    collector = MinimaxCollector(model, tol=minimax_tol, workers=workers) if minimax else None
    try:
        return _gap_report(model, d, ref_name, tol=tol, oracle=oracle, collector=collector,
                           minimax_tol=minimax_tol, workers=workers)
    finally:
        if collector is not None:
            collector.close()


def _gap_report(model, d, ref_name, *, tol, oracle, collector, minimax_tol, workers) -> GapReport:
    t0 = time.perf_counter()
    N = model.num_agents
    S = N + 1
    minimax = collector is not None
    core = AISCore(model, d, ref_name, law_consumer=collector)
    lev = core.level
    ais = core.ais_model()
    nC = ais.num_cells
    sol = solve(PolicyIteration(tol=tol), ais.smdp)
    q_hat, v_hat = np.asarray(sol.q), np.asarray(sol.v)
    if oracle is None:
        oracle = solve(ModifiedPolicyIteration(k=10, tol=tol), model)
    gb = lev.gamma_bar()
    off = core.offsets
    cadm = core.cell_admissible

    # per-cell accumulators: value and realizing state; sups over the choices j admissible for
    # the cell (j = c' without modes; successor c' = j mod (N+1))
    eps_cell = np.zeros(nC)
    eps_state: list = [None] * nC
    delta_cell = np.zeros(nC)
    delta_state: list = [None] * nC
    dgam_cell = np.zeros(nC)
    eta_cell = np.zeros(nC)
    for i in range(N):
        obs, nO = core.obs_y[i], core.num_obs[i]
        cells_i = np.arange(off[i], off[i + 1])
        adm_y = core.state_admits(i)                                # (nY, J)
        diff = np.where(adm_y, np.abs(core.R[i] - core.R_hat[off[i] + obs]), -np.inf)
        best, where = _cell_argmax(diff.max(axis=1), obs, nO)
        kbest = diff.argmax(axis=1)
        for o in range(nO):
            eps_cell[cells_i[o]] = best[o]
            y = where[o]
            eps_state[cells_i[o]] = lev.describe(i, y, int(kbest[y]))
        for j in range(core.J):
            c_next = j % S
            pair = core.pairs.get((i, j)) if c_next != N else None
            if pair is None:
                continue
            rows = adm_y[:, j]
            tv = np.where(rows[:, None], pair.tv_state, -np.inf)
            best, where = _cell_argmax(tv.max(axis=1), obs, nO)
            lbest = tv.argmax(axis=1)
            for o in range(nO):
                c = cells_i[o]
                if not cadm[c, j]:
                    continue
                if best[o] > delta_cell[c] or delta_state[c] is None:
                    delta_cell[c] = max(best[o], 0.0)
                    y = where[o]
                    delta_state[c] = lev.describe(i, y, j, int(lbest[y]) if c_next != i else None)
            l1 = np.abs(pair.d_phi - pair.d_hat[obs][:, None, :]).sum(axis=2)
            np.maximum.at(dgam_cell, off[i] + obs[rows], l1[rows].max(axis=1))
            vj = v_hat[off[c_next]:off[c_next + 1]]
            e = np.abs(pair.d_phi @ vj - (pair.d_hat @ vj)[obs][:, None])
            np.maximum.at(eta_cell, off[i] + obs[rows], e[rows].max(axis=1))

    epsilon_phi = float(eps_cell.max(initial=0.0))
    delta_phi = float(delta_cell.max(initial=0.0))
    delta_phi_gamma = float(dgam_cell.max(initial=0.0))
    eta = float(eta_cell.max(initial=0.0))
    L_Q = float(v_hat.max() - v_hat.min())
    span_f = float(lev.gamma * (max(0.0, v_hat.max()) - min(0.0, v_hat.min())))
    alpha_paper = (epsilon_phi + gb * L_Q * delta_phi) / (1.0 - gb)
    alpha_tv = (epsilon_phi + span_f * delta_phi) / (1.0 - gb)
    alpha_tight = (epsilon_phi + eta) / (1.0 - gb)

    # realized gaps against Q*_lat (arrays over epoch states s)
    flat_cells = lev.epoch_cells(off)
    q_star = np.asarray(oracle.q)
    qdiff = np.abs(q_star - q_hat[flat_cells])
    max_q_gap = float(np.nanmax(qdiff)) if np.isfinite(qdiff).any() else 0.0
    max_value_gap = float(np.max(np.abs(np.asarray(oracle.v) - v_hat[flat_cells])))
    # the greedy AIS policy at each epoch state: among the successors its cell admits (and,
    # under a fitted model's union rule, the state itself admits)
    own = np.empty((flat_cells.size, core.J), dtype=bool)
    for i in range(N):
        own[lev.block(i).epoch_state] = lev.block(i).admissible[:, None, :]
    policy = greedy(q_hat[flat_cells], own & ais.admissible[flat_cells])   # epoch policy [s]
    v_sigma, eval_bound, how = _evaluate_policy(model, oracle, policy, tol)
    policy_loss = float(np.max(np.asarray(oracle.v).reshape(-1) - v_sigma))

    mm = finish_minimax_gaps(model, core, collector, tol=minimax_tol, workers=workers, t0=t0) if minimax else None

    names = lev.agent_names()
    fb = set(core.fallback_cells)
    cells = []
    for c in range(nC):
        i, o = ais.cell_label(c)
        contrib = (eps_cell[c] + eta_cell[c]) / (1.0 - gb)
        cells.append({
            "cell": c, "agent": i, "agent_name": names[i], "observation": o,
            "size": int(ais.cell_size[c]), "mass": float(ais.cell_mass[c]),
            "fallback": (i, o) in fb,
            "epsilon": float(eps_cell[c]), "epsilon_state": eps_state[c],
            "delta": float(delta_cell[c]), "delta_state": delta_state[c],
            "delta_gamma": float(dgam_cell[c]), "eta": float(eta_cell[c]),
            "minimax_epsilon": None if mm is None else float(mm.cell_epsilon[c]),
            "minimax_delta": None if mm is None else float(mm.cell_delta[c]),
            "contribution": float(contrib),
        })
    # rank by contribution; values equal to 12 significant digits are ties (round-off must not
    # reorder the table), broken by delta and then by the cell index
    cells.sort(key=lambda r: (-float(f"{r['contribution']:.12g}"), -float(f"{r['delta']:.12g}"),
                              r["cell"]))

    success = bool(oracle.success and sol.success and eval_bound <= max(tol, 1e-9)
                   and (mm is None or mm.success))
    parts = [f"alpha_tight {alpha_tight:.6g} (epsilon_phi {epsilon_phi:.3g}, eta {eta:.3g}), "
             f"max_q_gap {max_q_gap:.3g}, policy_loss {policy_loss:.3g}"]
    if core.fallback_cells:
        parts.append(f"{len(core.fallback_cells)} cell(s) with zero reference mass use uniform")
    if core.cells_differing:
        parts.append(f"{len(core.cells_differing)} cell(s) whose states admit different successors "
                     f"({lev.cell_rule} rule)")
    if not oracle.success:
        parts.append(f"oracle: {oracle.message}")
    if not sol.success:
        parts.append(f"AIS solve: {sol.message}")
    if mm is not None and not mm.success:
        parts.append(f"minimax: {mm.message}")
    settings = {"reference": ref_name, "tol": tol, "minimax": bool(minimax),
                "minimax_tol": minimax_tol, "workers": int(workers),
                "oracle_method": oracle.method, "policy_evaluation": how}
    return GapReport(
        success=success, status="ok" if success else "inaccurate", message="; ".join(parts) + ".",
        iterations=int(sol.iterations), settings=settings, elapsed=time.perf_counter() - t0,
        reference=ref_name, epsilon_phi=epsilon_phi, delta_phi=delta_phi,
        delta_phi_tail_bound=float(ais.duration_tail_bound), delta_phi_gamma=delta_phi_gamma,
        gamma_bar=float(gb), L_Q=L_Q, span_f=span_f, eta=eta, alpha_paper=float(alpha_paper),
        alpha_tv=float(alpha_tv), alpha_tight=float(alpha_tight), max_q_gap=max_q_gap,
        max_value_gap=max_value_gap, policy_loss=policy_loss,
        minimax_epsilon=None if mm is None else mm.epsilon,
        minimax_delta=None if mm is None else mm.delta,
        minimax_delta_lower=None if mm is None else mm.delta_lower,
        fallback_cells=[list(c) for c in core.fallback_cells], cells=cells,
        q_hat=q_hat, v_hat=v_hat, q_star=q_star, cell_offsets=core.offsets.copy(),
        oracle_error_bound=float(oracle.error_bound), ais_error_bound=float(sol.error_bound),
        policy_evaluation_error_bound=eval_bound, cell_rule=lev.cell_rule,
        cells_differing=[list(ais.cell_label(c)) for c in core.cells_differing])


def compare_maps(model: ICSMDP, maps_a: Sequence[Any], maps_b: Sequence[Any], **kw) -> MapComparison:
    """Gap reports of ``model`` under two proposed observation maps, and their differences.

    Parameters
    ----------
    model : ICSMDP
    maps_a, maps_b : sequence of array_like
        One ``[nM][nL_i]`` integer map per agent (as for ``model.with_observation``).
    **kw
        Passed to :func:`gap_report` (``Q*`` is solved once and shared).

    Returns
    -------
    MapComparison

    Raises
    ------
    InvalidObservationMapError
        A map has the wrong agent count or shape, non-integer or unused labels.
    """
    t0 = time.perf_counter()
    model_a = model.with_observation(maps_a)
    model_b = model.with_observation(maps_b)
    if kw.get("oracle") is None:
        tol = kw.get("tol", 1e-10)
        kw["oracle"] = solve(ModifiedPolicyIteration(k=10, tol=tol), model)
    a = gap_report(model_a, **kw)
    b = gap_report(model_b, **kw)
    diff = {}
    for k in SCALAR_FIELDS:
        va, vb = getattr(a, k), getattr(b, k)
        diff[k] = None if va is None or vb is None else float(vb - va)
    ok = a.success and b.success
    return MapComparison(success=ok, status="ok" if ok else "inaccurate",
                         message=(f"alpha_tight {a.alpha_tight:.6g} (a) vs {b.alpha_tight:.6g} (b); "
                                  f"max_q_gap {a.max_q_gap:.3g} vs {b.max_q_gap:.3g}."),
                         settings={k: v for k, v in kw.items() if k != "oracle"},
                         elapsed=time.perf_counter() - t0, report_a=a, report_b=b,
                         differences=diff)
