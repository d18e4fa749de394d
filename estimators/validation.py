r"""Simulated validation of a fixed epoch policy (SPEC section 11).

Monte Carlo episodes of a deterministic epoch policy ``sigma[s]`` (an admissible
successor of each epoch state) on an explicit epoch model (SPEC 10; export a
primitive instance first with :func:`icsmdp_theory.epoch_export.export_epoch`).
Every episode starts at ``s_0 ~ rho0``; at its ``k``-th invocation it is in
``s_k``, commits to ``c_k = sigma[s_k]`` and draws ``(k', tau_k)`` from
``P(k', tau | s_k, c_k)``; the next epoch state is ``(k', c_k)``, or the episode
ends when ``c_k`` is STOP. With ``t_k = tau_0 + ... + tau_{k-1}`` the elapsed
primitive steps, each reward ``R_j`` (the scalar ``reward`` and every named
component) gives two per-episode numbers:

- the discounted return ``G_j = sum_k gamma^{t_k} R_j(s_k, c_k)`` (``R_j`` is
  already the expected discounted reward of the invocation, SPEC 10), whose
  expectation is the exact value ``rho0 . (I - D_sigma)^{-1} R_j(., sigma)``;
- the undiscounted total ``U_j = sum_k R_j(s_k, c_k)``, whose expectation is
  the exact total of :func:`estimators.policy_value.policy_value` with
  ``discounted=False`` (for the correctness component of a workflow: its accuracy).

All episodes of a chunk advance together, one invocation per step (numpy,
vectorized over the episodes still running). An episode that has not stopped
when its elapsed primitive steps reach ``horizon`` is cut there and counted in
``truncated``. An episode in a state from which STOP cannot be reached under
the policy (it loops forever) is cut, and counted, as soon as ``gamma^t < 1e-15``:
it would be cut at the horizon anyway, its discounted rest is below
``1e-15 |v|``, and its undiscounted rest is either zero (a component that is
zero on such states) or has no defined expectation (the check is then
inconclusive in any case).

Statistics of each of the ``2 (J + 1)`` samples (a *row*): mean, standard
deviation (``ddof=1``), the 5/50/95 % quantiles of the empirical law (the
smallest sample value ``x`` with ``F_n(x) >= p``, numpy's ``inverted_cdf``)
and the lower-tail CVaR at 5 %, ``CVaR_a = (1/a) int_0^a q(u) du`` of the
empirical law (the mean of the worst ``a n`` episodes, the boundary episode
weighted by the fraction left): rewards are "higher is better", so a cost
component (negative tokens) has its worst outcomes in the lower tail too.

The check (SPEC 11): the exact expectation lies in the Monte Carlo 99 %
interval ``mean +- z sd / sqrt(n)``. With ``simultaneous=True`` (default) the
intervals of the ``m`` rows checked are Bonferroni-simultaneous,
``z = Phi^{-1}(1 - (1 - level) / (2 m))`` (rows with identical samples, e.g. a
scalar reward equal to a component, counted once), so that a correct model and policy
pass *every* row with probability at least ``level`` (about 0.99); with
``simultaneous=False``, ``z = Phi^{-1}(1 - (1 - level)/2)`` (2.576) per row and
``2 (J + 1)`` rows give a false alarm with probability up to ``1 - 0.99^m``.
A row's check is

- ``"pass"``: the exact value lies in the interval (or, when no variation was
  seen, ``sd = 0``, equals the mean within ``1e-8 (1 + |exact|)``);
- ``"fail"``: it does not;
- ``"inconclusive"``: the exact value is undefined (the policy does not stop
  almost surely and the total is infinite or undefined, ``NaN``), ``sd = 0``
  but the mean differs (a rare event not seen: the normal interval does not
  apply), or the cut episodes *matter*: their expected missing part,
  bounded by ``(1/n) sum_{cut e} gamma^{t_e} |v_j(s_e)|`` (discounted) or
  ``(1/n) sum_{cut e} |u_j(s_e)|`` (undiscounted) with the exact per-state
  values ``v_j``, ``u_j`` of the state ``s_e`` where episode ``e`` was cut,
  exceeds a tenth of the interval's half-width (or is undefined).

The result's ``status`` is ``"ok"`` when every row passes, ``"violated"`` when
some row fails and ``"inconclusive"`` otherwise; ``success`` is ``status == "ok"``.

Reproducibility: episodes are simulated in chunks of :data:`CHUNK_EPISODES`;
chunk ``c`` draws from ``numpy.random.default_rng(SeedSequence(seed,
spawn_key=(c,)))``, so ``(model, policy, episodes, seed, horizon)`` fixes every
number, whatever the progress callback.

Examples
--------
One agent: from ``a`` it STOPs (reward 1, one step) or hands to itself and
stays in ``a`` after one step (reward 0). The policy "continue in ``a``" never
stops, so every episode is cut at the horizon and its discounted return is 0;
"STOP" gives 1 every time:

>>> from icsmdp_theory.epoch_model import EpochModel
>>> m = EpochModel(name="one", gamma=0.9, agents=["solo"], labels=["a"], states=[[0, 0]],
...     admissible=[[True, True]], rho0=[1.0], reward=[[0.0, 1.0]],
...     transitions={"state": [0, 0], "successor": [0, 1], "next_label": [0, -1],
...                  "tau": [1, 1], "prob": [1.0, 1.0]})
>>> r = simulate_policy(m, [1], episodes=100, seed=0)
>>> r.status, r.row("reward")["mean"], r.row("reward")["exact"], r.truncated
('ok', 1.0, 1.0, 0)
>>> r = simulate_policy(m, [0], episodes=10, seed=0, horizon=50)
>>> r.truncated, r.row("reward")["check"], r.row("reward", discounted=False)["exact"]
(10, 'pass', 0.0)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.stats import norm

from estimators.ais import ais_smdp, ais_solution
from estimators.policy_value import PolicyValue, policy_value, reward_columns
from icsmdp_theory.cells import cell_admissible, cell_offsets
from icsmdp_theory.epoch_level import cell_rule
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.epoch_simulate import DEFAULT_HORIZON, epoch_simulation_tables
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result
from icsmdp_theory.validation import is_int, is_real
from solvers.api import PolicyIteration, solve
from solvers.common import greedy
from solvers.records import RunRecord, epoch_policy, greedy_cell_policies

__all__ = ["SimulationResult", "simulate_policy", "sample_statistics", "empirical_cvar",
           "greedy_policy", "ais_greedy_policy", "run_greedy_policy", "CHUNK_EPISODES",
           "DEFAULT_LEVEL", "CVAR_LEVEL", "QUANTILES", "CHECKS", "TRUNCATION_SHARE"]

#: Episodes simulated together (one random stream per chunk; see the module docstring).
CHUNK_EPISODES = 1 << 16
#: Confidence level of the exact-vs-Monte-Carlo check (SPEC 11).
DEFAULT_LEVEL = 0.99
#: Tail mass of the CVaR.
CVAR_LEVEL = 0.05
#: Quantile levels reported.
QUANTILES = (0.05, 0.5, 0.95)
#: Verdicts of a row's check.
CHECKS = ("pass", "fail", "inconclusive")
#: Cut episodes matter when their missing part may exceed this share of the half-width.
TRUNCATION_SHARE = 0.1
#: Equality tolerance (relative to ``1 + |exact|``) when no variation was seen.
_EQUAL_TOL = 1e-8
#: An episode in a state from which STOP cannot be reached is cut once ``gamma^t`` is below this.
_TRAPPED_DISCOUNT = 1e-15


@dataclass(frozen=True, kw_only=True, repr=False)
class SimulationResult(Result):
    """Monte Carlo episodes of a fixed epoch policy against its exact values (module docstring).

    Attributes
    ----------
    names : tuple of str
        ``"reward"`` then the model's component names.
    episodes, seed, horizon : int
    policy : ndarray of int (S,)
        ``sigma[s]``.
    returns : ndarray (episodes, J+1)
        Discounted return of each episode per reward (columns follow ``names``).
    totals : ndarray (episodes, J+1)
        Undiscounted total of each episode per reward.
    invocations, durations : ndarray of int (episodes,)
        Invocations and primitive steps of each episode.
    truncated : int
        Episodes cut at the horizon.
    rows : tuple of dict
        One per ``(name, discounted)``, discounted rows first: ``name``, ``discounted``,
        ``mean``, ``sd``, ``q05``, ``q50``, ``q95``, ``cvar05``, ``exact``, ``lower``,
        ``upper`` (the interval), ``z`` (``(mean - exact) / (sd / sqrt(n))``, ``None``
        when undefined), ``truncation_bias`` (bound on the cut episodes' missing part,
        ``None`` if undefined), ``check`` (a word of :data:`CHECKS`) and ``why``.
    level : float
    simultaneous : bool
    z_critical : float
        The ``z`` of the intervals.
    rows_checked : int
        ``m``: rows whose interval is a normal interval (``sd > 0``, exact defined), rows
        with identical samples (e.g. ``reward`` equal to a component) counted once.
    exact_discounted, exact_undiscounted : PolicyValue
    """

    names: tuple
    episodes: int
    seed: int
    horizon: int
    policy: np.ndarray
    returns: np.ndarray
    totals: np.ndarray
    invocations: np.ndarray
    durations: np.ndarray
    truncated: int
    rows: tuple
    level: float
    simultaneous: bool
    z_critical: float
    rows_checked: int
    exact_discounted: PolicyValue
    exact_undiscounted: PolicyValue

    def row(self, name: str, *, discounted: bool = True) -> dict:
        """The row of reward ``name`` (discounted return or undiscounted total)."""
        for r in self.rows:
            if r["name"] == name and r["discounted"] == discounted:
                return r
        raise InvalidArgumentError(f"`name` must be one of {', '.join(self.names)}, got {name!r}.")


# ------------------------------------------------------------------ statistics
def empirical_cvar(x: Any, alpha: float = CVAR_LEVEL) -> float:
    """Lower-tail CVaR ``(1/alpha) int_0^alpha q(u) du`` of the empirical law of ``x``.

    The mean of the worst ``alpha * n`` samples, the boundary sample weighted by
    the fraction left.

    >>> empirical_cvar([4.0, 1.0, 3.0, 2.0], 0.25), empirical_cvar([4.0, 1.0, 3.0, 2.0], 0.375)
    (1.0, 1.3333333333333333)
    """
    x = np.sort(np.asarray(x, dtype=float).ravel())
    n = x.size
    if n == 0:
        raise InvalidArgumentError("`x` must hold at least one sample.")
    if not 0.0 < alpha <= 1.0:
        raise InvalidArgumentError(f"`alpha` must be in (0, 1], got {alpha!r}.")
    m = alpha * n
    whole = min(int(math.floor(m + 1e-9)), n)
    total = x[:whole].sum()
    frac = m - whole
    if frac > 1e-9 and whole < n:
        total += frac * x[whole]
    return float(total / m)


def sample_statistics(x: Any) -> dict:
    """``mean``, ``sd`` (``ddof=1``; 0 for one sample or samples equal up to ``1e-12``),
    ``q05``, ``q50``, ``q95`` (empirical, ``inverted_cdf``) and ``cvar05``
    (:func:`empirical_cvar`) of a 1-D sample.

    >>> s = sample_statistics([0.0, 1.0, 1.0, 2.0])
    >>> s["mean"], s["q05"], s["q50"], s["q95"], s["cvar05"]
    (1.0, 0.0, 1.0, 2.0, 0.0)
    """
    x = np.asarray(x, dtype=float).ravel()
    q = np.quantile(x, QUANTILES, method="inverted_cdf")
    flat = x.size < 2 or np.ptp(x) <= 1e-12 * (1.0 + np.abs(x).max())   # equal up to rounding
    return {"mean": float(x.mean()), "sd": 0.0 if flat else float(x.std(ddof=1)),
            "q05": float(q[0]), "q50": float(q[1]), "q95": float(q[2]),
            "cvar05": empirical_cvar(x, CVAR_LEVEL)}


# ------------------------------------------------------------------ policies
def _epoch_model_iv(model: Any) -> EpochModel:
    if not isinstance(model, EpochModel):
        raise InvalidArgumentError(f"`model` must be an EpochModel, got {type(model).__name__} "
                                   "(export a primitive instance with export_epoch).")
    return model


def greedy_policy(model: EpochModel, *, tol: float = 1e-10) -> np.ndarray:
    """``sigma[s]``: the greedy policy of ``Q*`` (``solve(PolicyIteration(tol=tol), model)``,
    SPEC 3)."""
    _epoch_model_iv(model)
    return np.asarray(solve(PolicyIteration(tol=tol), model).policy, dtype=np.int64)


def _epoch_cells(model: EpochModel) -> np.ndarray:
    """Flat cell ``cell_offsets[i] + o`` of every epoch state ``s = (k, i)``."""
    return (cell_offsets(model.num_observations)[np.asarray(model.state_agent)]
            + np.asarray(model.state_observation))


def ais_greedy_policy(model: EpochModel, *, reference: str | np.ndarray = "uniform") -> np.ndarray:
    """``sigma[s]``: the greedy policy of the AIS optimum ``Q_hat*`` on the model's cells (SPEC 4).

    Each epoch state takes its cell's greedy successor among those admissible for
    the cell and for the state itself (lowest index within ``1e-10``), as the gap
    report's ``policy_loss`` does (:mod:`estimators.gaps`).
    """
    _epoch_model_iv(model)
    ais = ais_smdp(model, reference=reference)
    q_hat = np.asarray(ais_solution(ais).q, dtype=float)
    cells = _epoch_cells(model)
    adm = np.asarray(model.admissible, bool) & np.asarray(ais.admissible, bool)[cells]
    return np.asarray(greedy(np.nan_to_num(q_hat[cells], nan=-np.inf), adm), dtype=np.int64)


def run_greedy_policy(model: ICSMDP | EpochModel, record: RunRecord, *, seed_index: int = 0,
                      checkpoint: int = -1) -> np.ndarray:
    """``sigma[s]``: the greedy policy of one seed of an IC-Q run record at a checkpoint.

    Parameters
    ----------
    model : ICSMDP or EpochModel
        The model the run learned on (its kind, observation counts and cell
        admissible sets must match the record's).
    record : RunRecord
    seed_index : int
        Index into ``record.seeds``.
    checkpoint : int
        Index into ``record.checkpoints`` (default: the last).

    Returns
    -------
    ndarray of int (S,)
        Over the epoch states of ``model`` (a primitive model's ``s = f*N + i``,
        which is also the index of its :func:`~icsmdp_theory.epoch_export.export_epoch`).
    """
    if not isinstance(record, RunRecord):
        raise InvalidArgumentError(f"`record` must be a RunRecord, got {type(record).__name__}.")
    kind = "epoch" if isinstance(model, EpochModel) else "icsmdp"
    if not isinstance(model, (ICSMDP, EpochModel)):
        raise InvalidArgumentError(f"`model` must be an ICSMDP or an EpochModel, got "
                                   f"{type(model).__name__}.")
    if record.model_kind != kind:
        raise InvalidArgumentError(f"the run learned on a model of kind {record.model_kind!r}; "
                                   f"`{model.name}` is of kind {kind!r}.")
    if tuple(record.num_observations) != tuple(model.num_observations):
        raise InvalidArgumentError(
            f"the run's observation counts {list(record.num_observations)} do not match the "
            f"model's {list(model.num_observations)} (`{model.name}`).")
    adm = cell_admissible(model, rule=cell_rule(model)) if kind == "epoch" \
        else np.asarray(model.admissible, bool)[record.cell_agent]
    if not np.array_equal(np.asarray(record.cell_admissible, bool), adm):
        raise InvalidArgumentError(f"the run's admissible successors do not match the model's "
                                   f"(`{model.name}`).")
    S = record.num_seeds
    if not (is_int(seed_index) and 0 <= seed_index < S):
        raise InvalidArgumentError(f"`seed_index` must be an integer in [0, {S}), got "
                                   f"{seed_index!r}.")
    k = record.checkpoint_index(checkpoint)
    if record.reached is not None and not bool(np.asarray(record.reached)[k, seed_index]):
        raise InvalidArgumentError(
            f"seed {int(record.seeds[seed_index])} had not reached checkpoint "
            f"{int(record.checkpoints[k])}.")
    cell_pol = greedy_cell_policies(np.asarray(record.q[k, seed_index], dtype=float), adm)
    if kind == "epoch":
        return np.asarray(cell_pol[_epoch_cells(model)], dtype=np.int64)
    return np.asarray(epoch_policy(model, cell_pol), dtype=np.int64).reshape(-1)


# ------------------------------------------------------------------ simulation
def _simulate_policy_iv(model, policy, episodes, seed, horizon, level):
    _epoch_model_iv(model)
    sigma = np.asarray(policy)
    S = model.num_epoch_states
    if sigma.shape != (S,) or sigma.dtype.kind not in "iu":
        raise InvalidArgumentError(f"`policy` must be an integer array of shape ({S},), got "
                                   f"{sigma.dtype} {sigma.shape}.")
    if not (is_int(episodes) and episodes >= 2):
        raise InvalidArgumentError(f"`episodes` must be an integer >= 2, got {episodes!r}.")
    if not (is_int(seed) and seed >= 0):
        raise InvalidArgumentError(f"`seed` must be an integer >= 0, got {seed!r}.")
    horizon = DEFAULT_HORIZON if horizon is None else horizon
    if not (is_int(horizon) and horizon >= 1):
        raise InvalidArgumentError(f"`horizon` must be an integer >= 1, got {horizon!r}.")
    if not (is_real(level) and 0.0 < level < 1.0):
        raise InvalidArgumentError(f"`level` must be a number in (0, 1), got {level!r}.")
    return int(episodes), int(seed), int(horizon)


def _simulate_chunk(model, sigma, R_pol, trapped, n, rng, horizon):
    """``n`` episodes: discounted returns, totals (n, J+1), invocations, durations, cut mask,
    the state where each cut episode was cut and its discount ``gamma^t`` there.

    The running episodes are kept in compact arrays (no gather/scatter per step); an
    episode's numbers are written back when it stops or is cut.
    """
    tab = epoch_simulation_tables(model)
    C = model.num_successors
    S = model.num_epoch_states
    row_pol = tab.row_of[np.arange(S) * C + sigma]
    gpow = model.gamma ** np.asarray(tab.tau, dtype=float)
    J = R_pol.shape[1]
    ret, tot = np.zeros((n, J)), np.zeros((n, J))
    inv, elapsed = np.zeros(n, np.int64), np.zeros(n, np.int64)
    disc, state = np.ones(n), np.full(n, -1, np.int64)
    cut = np.zeros(n, bool)
    # the running episodes: ids and their numbers so far
    ids = np.arange(n)
    s_a = np.asarray(tab.initial.sample(np.zeros(n, np.int64), rng.random(n)), np.int64)
    ret_a, tot_a = np.zeros((n, J)), np.zeros((n, J))
    inv_a, el_a, disc_a = np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones(n)
    while ids.size:
        r = R_pol[s_a]
        ret_a += disc_a[:, None] * r
        tot_a += r
        entry = tab.transitions.sample(row_pol[s_a], rng.random(ids.size))
        s_a = tab.next_state[entry]
        el_a += tab.tau[entry]
        disc_a *= gpow[entry]
        inv_a += 1
        going = s_a >= 0
        doomed = trapped[np.maximum(s_a, 0)] & (disc_a < _TRAPPED_DISCOUNT)
        over = going & ((el_a >= horizon) | doomed)
        done = ~going | over
        if done.any():
            d = ids[done]
            ret[d], tot[d], inv[d], elapsed[d] = ret_a[done], tot_a[done], inv_a[done], el_a[done]
            disc[d], state[d], cut[d] = disc_a[done], s_a[done], over[done]
            keep = ~done
            ids, s_a, ret_a, tot_a = ids[keep], s_a[keep], ret_a[keep], tot_a[keep]
            inv_a, el_a, disc_a = inv_a[keep], el_a[keep], disc_a[keep]
    return ret, tot, inv, elapsed, cut, state, disc


def _row(name, discounted, x, exact, miss, n):
    st = sample_statistics(x)
    return {"name": name, "discounted": discounted, **st, "exact": exact,
            "truncation_bias": miss, "n": n}


def simulate_policy(model: EpochModel, policy: Any, *, episodes: int, seed: int = 0,
                    horizon: int | None = None, level: float = DEFAULT_LEVEL,
                    simultaneous: bool = True,
                    progress: Callable[[int], Any] | None = None) -> SimulationResult:
    """Monte Carlo episodes of ``policy`` against its exact values (module docstring).

    Parameters
    ----------
    model : EpochModel
    policy : int array (S,)
        ``sigma[s]``, an admissible successor of each epoch state (STOP is ``N``).
    episodes : int
        ``>= 2``.
    seed : int
        ``>= 0``; fixes every number.
    horizon : int or None
        Primitive-step cap of an episode (default
        :data:`~icsmdp_theory.epoch_simulate.DEFAULT_HORIZON`).
    level : float
        Confidence level of the check (default 0.99).
    simultaneous : bool
        Bonferroni-simultaneous intervals over the rows checked (default) or per row.
    progress : callable or None
        Called with the number of episodes finished after each chunk.

    Returns
    -------
    SimulationResult
    """
    t0 = time.perf_counter()
    n, seed, horizon = _simulate_policy_iv(model, policy, episodes, seed, horizon, level)
    exact_d = policy_value(model, policy)                      # validates admissibility
    exact_u = policy_value(model, policy, discounted=False)
    sigma = np.asarray(policy, dtype=np.int64)
    S = model.num_epoch_states
    names, R = reward_columns(model)
    R_pol = np.ascontiguousarray(R[np.arange(S), sigma, :])
    J = len(names)
    returns = np.empty((n, J))
    totals = np.empty((n, J))
    invocations = np.empty(n, np.int64)
    durations = np.empty(n, np.int64)
    miss_d = np.zeros(J)
    miss_u = np.zeros(J)
    v_d = np.stack([np.asarray(exact_d.per_state[k]) for k in names], axis=1)
    v_u = np.stack([np.asarray(exact_u.per_state[k]) for k in names], axis=1)
    trapped = np.asarray(exact_u.trapped, bool)
    truncated = 0
    for c, start in enumerate(range(0, n, CHUNK_EPISODES)):
        m = min(CHUNK_EPISODES, n - start)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c,)))
        ret, tot, inv, dur, cut, state, disc = _simulate_chunk(model, sigma, R_pol, trapped, m,
                                                                rng, horizon)
        sl = slice(start, start + m)
        returns[sl], totals[sl], invocations[sl], durations[sl] = ret, tot, inv, dur
        if cut.any():
            truncated += int(cut.sum())
            miss_d += (disc[cut, None] * np.abs(v_d[state[cut]])).sum(axis=0)
            miss_u += np.abs(v_u[state[cut]]).sum(axis=0)
        if progress is not None:
            progress(m)
    miss_d /= n
    miss_u /= n
    rows = [_row(k, True, returns[:, j], exact_d.values[k], miss_d[j], n)
            for j, k in enumerate(names)]
    rows += [_row(k, False, totals[:, j], exact_u.values[k], miss_u[j], n)
             for j, k in enumerate(names)]
    normal = _distinct_rows(rows, returns, totals, names)
    m_rows = max(1, normal) if simultaneous else 1
    z_crit = float(norm.ppf(1.0 - (1.0 - level) / (2.0 * m_rows)))
    for r in rows:
        _verdict(r, z_crit, n)
    checks = [r["check"] for r in rows]
    status = ("violated" if "fail" in checks
              else "inconclusive" if "inconclusive" in checks else "ok")
    n_fail, n_inc = checks.count("fail"), checks.count("inconclusive")
    kind = "simultaneous " if simultaneous else ""
    msg = (f"{n} episodes ({truncated} cut at the horizon {horizon}): "
           + ("the exact values lie in every Monte Carlo " + f"{level:.0%} {kind}interval"
              if status == "ok" else f"{n_fail} row(s) outside the {level:.0%} {kind}interval, "
              f"{n_inc} inconclusive") + ".")
    return SimulationResult(
        success=status == "ok", status=status, message=msg, iterations=int(invocations.sum()),
        settings={"episodes": n, "seed": seed, "horizon": horizon, "level": level,
                  "simultaneous": bool(simultaneous), "chunk": CHUNK_EPISODES},
        elapsed=time.perf_counter() - t0, names=names, episodes=n, seed=seed, horizon=horizon,
        policy=sigma, returns=returns, totals=totals, invocations=invocations,
        durations=durations, truncated=truncated, rows=tuple(rows), level=float(level),
        simultaneous=bool(simultaneous), z_critical=z_crit, rows_checked=normal,
        exact_discounted=exact_d, exact_undiscounted=exact_u)


def _distinct_rows(rows, returns, totals, names) -> int:
    """``m``: rows with a normal interval (``sd > 0``, exact defined), identical samples once
    (the scalar reward often equals a component)."""
    seen: list = []
    for r in rows:
        if not (r["sd"] > 0 and math.isfinite(r["exact"])):
            continue
        x = (returns if r["discounted"] else totals)[:, names.index(r["name"])]
        if not any(np.array_equal(x, y) for y in seen):
            seen.append(x)
    return len(seen)


def _verdict(r: dict, z_crit: float, n: int) -> None:
    """Fill ``lower``, ``upper``, ``z``, ``check`` and ``why`` of a row (module docstring)."""
    mean, sd, exact, miss = r["mean"], r["sd"], r["exact"], r["truncation_bias"]
    half = z_crit * sd / math.sqrt(n)
    r["lower"], r["upper"] = mean - half, mean + half
    r["z"] = (mean - exact) / (sd / math.sqrt(n)) if sd > 0 and math.isfinite(exact) else None
    r["truncation_bias"] = float(miss) if math.isfinite(miss) else None
    tol = _EQUAL_TOL * (1.0 + abs(exact)) if math.isfinite(exact) else 0.0
    if not math.isfinite(exact):
        r["check"] = "inconclusive"
        r["why"] = "the exact value is undefined (the policy does not stop)"
    elif not math.isfinite(miss) or miss > max(TRUNCATION_SHARE * half, tol):
        r["check"], r["why"] = "inconclusive", "episodes cut at the horizon matter"
    elif sd == 0:
        if abs(mean - exact) <= tol:
            r["check"], r["why"] = "pass", "no variation; equal to the exact value"
        else:
            r["check"] = "inconclusive"
            r["why"] = "no variation seen; the normal interval does not apply"
    elif abs(mean - exact) <= half + tol:
        r["check"], r["why"] = "pass", "exact value inside the interval"
    else:
        r["check"], r["why"] = "fail", "exact value outside the interval"
