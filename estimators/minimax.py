r"""Minimax gaps of an observation map, independent of the reference law (SPEC section 5).

For a cell ``(i, o)`` and successor ``c'`` (with adaptable agents, issue 15: for
each choice ``j = a*(N+1) + c'``, mode ``a``'s rewards and laws):

- the smallest ``epsilon`` any ``R_hat`` can achieve is half the range of
  ``R_i(y, c')`` over the cell's states (the midrange is optimal);
- the smallest ``delta`` any ``P_hat`` can achieve (``c' != STOP``) is the TV
  Chebyshev radius of the cell's set of laws ``{p_s}`` of ``(o', tau)``,

      r = min_{q in Delta} max_s TV(p_s, q),

  with ``q`` a probability law on the (truncated) ``(o', tau)`` support.

The minimax gaps of the map are the maxima over cells and successors.

The radius is computed by :func:`estimators.chebyshev.tv_chebyshev_radius`
(a certified bracket of width ``tol``). Cost: on the benchmark of :mod:`estimators.gaps` (100 cells of 600 laws on
780 support points) the LPs are the bulk of a full gap report and run on a
thread pool (``workers``) while the rest of the report is computed.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> mg = minimax_gaps(load_example("tiny-handoff"))
>>> round(mg.epsilon, 6), round(mg.delta, 6)   # two laws per cell: half their TV 1/2
(0.5, 0.25)
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from estimators.ais import AISCore, reference_law
from estimators.chebyshev import EXACT_SUPPORT, MINIMAX_TOL, tv_chebyshev_radius
from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch_level import EPOCH_MODELS
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result

__all__ = ["MinimaxGaps", "MinimaxCollector", "minimax_gaps", "finish_minimax_gaps",
           "resolve_workers", "DEFAULT_WORKERS"]

#: Threads for the cells' LPs when ``workers=None``.
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, kw_only=True, repr=False)
class MinimaxGaps(Result):
    """Minimax gaps of an observation map (SPEC section 5).

    Attributes
    ----------
    epsilon : float
        ``max_{cell, c'} (max R - min R)/2`` over the cell's states.
    delta : float
        ``max_{cell, c' != STOP}`` TV Chebyshev radius (upper end of the bracket).
    delta_lower : float
        Certified lower end of the bracket on ``delta``.
    cell_epsilon, cell_delta, cell_delta_lower : ndarray, shape (num_cells,)
        Per-cell values (max over successors); cell ``(i, o)`` has index
        ``cell_offsets[i] + o``.
    cell_epsilon_successor, cell_delta_successor : ndarray of int, shape (num_cells,)
        The successor realizing each cell's value (``-1`` if none); with modes, the
        choice ``j = a*(N+1) + c'``.
    cell_offsets : ndarray of int, shape (N+1,)
    tail_bound : float
        Mass of the ``(o', tau)`` support left out by the truncation.
    lp_solves : int
    """

    epsilon: float
    delta: float
    delta_lower: float
    cell_epsilon: np.ndarray
    cell_delta: np.ndarray
    cell_delta_lower: np.ndarray
    cell_epsilon_successor: np.ndarray
    cell_delta_successor: np.ndarray
    cell_offsets: np.ndarray
    tail_bound: float
    lp_solves: int


def _support_blocks(num_o: int, T: int, head: int = 8) -> np.ndarray:
    """Block labels over the ``(o', tau)`` support (``o'``-major).

    Per ``o'``: single durations ``tau <= head``, then blocks of doubling length
    (``head``, ``2 head``, ...). Most of the mass sits at short durations; the
    long blocks are split only where the certified bracket needs it.
    """
    cuts = list(range(min(head, T) + 1))
    b, step = cuts[-1], max(head, 1)
    while b < T:
        b = min(T, b + step)
        cuts.append(b)
        step *= 2
    cuts = np.array(cuts)
    per = np.repeat(np.arange(len(cuts) - 1), np.diff(cuts))
    return (np.arange(num_o)[:, None] * (len(cuts) - 1) + per[None, :]).ravel()


# ------------------------------------------------------------------ over a model
class MinimaxCollector:
    """Receives each (agent, successor) family of laws from the duration pass (:mod:`estimators.ais`).

    Families with equal label matrices have equal laws and are solved once. With
    ``workers > 1`` the cells' LPs run on a thread pool (HiGHS releases the GIL)
    while the caller goes on; :meth:`results` waits for them. The values do not
    depend on ``workers``.
    """

    def __init__(self, model: ICSMDP | EpochModel, *, tol: float, workers: int):
        self.model = model
        self.tol = tol
        self.workers = workers
        self.offsets = cell_offsets(model.num_observations)
        self.pairs: list = []                       # (i, j, key, upper[o]) in arrival order
        self.jobs: dict = {}                        # (i, key) -> per cell: result, future or None
        self.best_lower = np.zeros(int(self.offsets[-1]))   # for pruning (serial mode)
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None

    def __call__(self, i, j, key, laws, obs_y, tv_state, rows=None):
        """``laws[y, l_j, o', tau-1]`` (``None`` when equal to an earlier call's).

        ``rows`` (bool per local state, default all): the states whose cell admits ``j``;
        the other cells have no law for ``j`` and are skipped.
        """
        nO_i = self.model.num_observations[i]
        off = self.offsets[i]
        if rows is None:
            rows = np.ones(obs_y.shape[0], dtype=bool)
        # The reference average is a centre: an upper bound on each cell's radius
        # (normalizing it to a probability law costs at most the tail mass).
        upper = np.zeros(nO_i)
        np.maximum.at(upper, obs_y[rows], tv_state[rows].max(axis=1) + 1e-12)
        admitted = np.zeros(nO_i, dtype=bool)
        admitted[obs_y[rows]] = True
        self.pairs.append((i, j, key, upper))
        if (i, key) in self.jobs:
            return
        if laws is None:  # pragma: no cover - the duration pass always sends a new family
            raise RuntimeError("internal: first call for a law family without laws")
        nY, nl, nO, T = laws.shape
        blocks = _support_blocks(nO, T) if nO * T > EXACT_SUPPORT else None
        jobs = []
        for o in range(nO_i):
            if not admitted[o] or (self.pool is None and upper[o] <= self.best_lower[off + o]):
                jobs.append(None)        # no law here, or cannot exceed a radius already found
                continue
            sel = laws[obs_y == o].reshape(-1, nO * T)
            if self.pool is None:
                res = tv_chebyshev_radius(sel, tol=self.tol, blocks=blocks)
                self.best_lower[off + o] = max(self.best_lower[off + o], res.lower_bound)
                jobs.append(res)
            else:
                self._throttle(jobs)
                jobs.append(self.pool.submit(tv_chebyshev_radius, sel, tol=self.tol, blocks=blocks))
        self.jobs[(i, key)] = jobs

    def _throttle(self, current):
        """Bound the memory held by queued cells."""
        pending = [f for js in list(self.jobs.values()) + [current] for f in js
                   if isinstance(f, Future) and not f.done()]
        if len(pending) >= 4 * self.workers:
            wait(pending, return_when=FIRST_COMPLETED)

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def results(self):
        """Per cell: ``(delta, delta_lower, successor)``; also LP count, success, messages."""
        try:
            for key, js in self.jobs.items():
                self.jobs[key] = [f.result() if isinstance(f, Future) else f for f in js]
        finally:
            self.close()
        nC = int(self.offsets[-1])
        delta, lower = np.zeros(nC), np.zeros(nC)
        succ = np.full(nC, -1, dtype=np.int64)
        for i, j, key, upper in self.pairs:  # a cell's radius is max_j r_j, r_j in [lo_j, hi_j]
            for o, res in enumerate(self.jobs[(i, key)]):
                lo, hi = (0.0, upper[o]) if res is None else (res.lower_bound, res.radius)
                cell = self.offsets[i] + o
                if hi > delta[cell] or succ[cell] < 0:
                    succ[cell] = j
                delta[cell] = max(delta[cell], hi)
                lower[cell] = max(lower[cell], lo)
        solved = [(i, o, r) for (i, _), js in self.jobs.items() for o, r in enumerate(js)
                  if r is not None]
        lp = sum(r.lp_solves for _, _, r in solved)
        bad = [f"cell ({i}, {o}): {r.message}" for i, o, r in solved if not r.success]
        return delta, lower, succ, lp, not bad, bad


def _minimax_epsilon(core) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: ``max_{j admissible for the cell} (max R - min R)/2`` and the choice realizing it
    (``j = a*(N+1) + c'``; ``j = c'`` without modes)."""
    offsets = core.offsets
    nC = int(offsets[-1])
    S = core.J                  # choices (N+1 successors without modes)
    eps = np.zeros(nC)
    succ = np.full(nC, -1, dtype=np.int64)
    for i in range(core.N):
        nO = core.num_obs[i]
        obs = core.obs_y[i]
        hi = np.full((nO, S), -np.inf)
        lo = np.full((nO, S), np.inf)
        adm = core.state_admits(i)
        np.maximum.at(hi, obs, np.where(adm, core.R[i], -np.inf))
        np.minimum.at(lo, obs, np.where(adm, core.R[i], np.inf))
        half = np.where(core.cell_admissible[offsets[i]:offsets[i + 1]], 0.5 * (hi - lo), -np.inf)
        k = np.argmax(half, axis=1)
        eps[offsets[i]:offsets[i + 1]] = half[np.arange(nO), k]
        succ[offsets[i]:offsets[i + 1]] = k
    return eps, succ


def resolve_workers(workers) -> int:
    """``None`` -> :data:`DEFAULT_WORKERS`; else an integer >= 1."""
    if workers is None:
        return DEFAULT_WORKERS
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InvalidArgumentError(f"`workers` must be None or an integer >= 1, got {workers!r}.")
    return int(workers)


def _minimax_gaps_iv(model, tol, workers):
    if not isinstance(model, EPOCH_MODELS):
        raise InvalidArgumentError(
            f"`model` must be an ICSMDP or an EpochModel, got {type(model).__name__}.")
    if not (tol > 0):
        raise InvalidArgumentError(f"`tol` must be > 0, got {tol!r}.")
    return resolve_workers(workers)


def minimax_gaps(model: ICSMDP | EpochModel, *, tol: float = MINIMAX_TOL, workers: int | None = None) -> MinimaxGaps:
    """Minimax ``epsilon`` and ``delta`` of ``model``'s observation maps (SPEC section 5).

    ``epsilon = max_{cell, c'} (max_{s in cell} R - min_{s in cell} R)/2`` and
    ``delta = max_{cell, c' != STOP}`` of the TV Chebyshev radius of the cell's
    laws of ``(o', tau)`` (see :func:`tv_chebyshev_radius`); both are lower
    bounds on ``epsilon_phi`` and ``delta_phi`` for every reference law.

    Parameters
    ----------
    model : ICSMDP or EpochModel
    tol : float
        Width of the certified bracket on each radius.
    workers : int or None
        Threads solving the cells' LPs (HiGHS releases the GIL); ``None`` is
        :data:`DEFAULT_WORKERS`. The values do not depend on it.

    Returns
    -------
    MinimaxGaps

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> mg = minimax_gaps(load_example("tiny-handoff"))
    >>> round(mg.epsilon, 6), round(mg.delta, 6)   # two laws per cell: half their TV 1/2
    (0.5, 0.25)
    """
    workers = _minimax_gaps_iv(model, tol, workers)
    t0 = time.perf_counter()
    collector = MinimaxCollector(model, tol=tol, workers=workers)
    try:
        core = AISCore(model, reference_law(model, "uniform", None)[0], "uniform",
                       law_consumer=collector)
        return finish_minimax_gaps(model, core, collector, tol=tol, workers=workers, t0=t0)
    finally:
        collector.close()


def finish_minimax_gaps(model, core, collector, *, tol, workers, t0) -> MinimaxGaps:
    eps, eps_succ = _minimax_epsilon(core)
    cell_delta, cell_lower, cell_succ, lp, ok, bad = collector.results()
    delta = float(cell_delta.max(initial=0.0))
    delta_lower = float(cell_lower.max(initial=0.0))
    msg = (f"minimax epsilon {eps.max(initial=0.0):.6g}, delta in [{delta_lower:.6g}, {delta:.6g}] "
           f"({lp} LP solves).")
    if bad:
        msg += " " + " ".join(bad[:3])
    return MinimaxGaps(success=ok, status="converged" if ok else "inaccurate",
                       message=msg, iterations=lp, settings={"tol": tol, "workers": workers},
                       elapsed=time.perf_counter() - t0, epsilon=float(eps.max(initial=0.0)),
                       delta=delta, delta_lower=delta_lower, cell_epsilon=eps,
                       cell_delta=cell_delta, cell_delta_lower=cell_lower,
                       cell_epsilon_successor=eps_succ, cell_delta_successor=cell_succ,
                       cell_offsets=core.offsets.copy(),
                       tail_bound=float(core.tail.max(initial=0.0)), lp_solves=lp)
