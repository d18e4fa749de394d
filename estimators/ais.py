r"""The AIS-induced SMDP on observation cells and its optimum ``Q_hat*`` (SPEC section 4).

Cells are the disjoint union of ``(i, o)``, ``o in O_i``, flattened as
``cell = cell_offsets[i] + o``. A reference law ``d`` over full epoch states
``s = (f, i)`` (an array ``d[f, i]``) conditions the exact option reduction
(SPEC section 2) on a cell:

- ``R_hat_i(o, c') = E_d[ R_i(y, c') | i, phi_i(m, l_i) = o ]``;
- ``D_hat_i(o' | o, c') = E_d[ sum_tau gamma^tau P(phi_{c'}(m', l'_{c'}) = o', tau | s, c') | i, o ]``
  where ``l'_{c'}`` is the successor's private state: frozen in the rest of
  ``f`` for ``c' != i`` and the end state's ``l'_i`` for ``c' = i``;
- ``P_hat_i(o', tau | o, c')`` likewise without the discount, summed over
  ``tau`` until the remaining mass is below ``1e-12`` (the truncation bound is
  reported as :attr:`AISModel.duration_tail_bound`).

``reference="uniform"`` is uniform over each cell's full states;
``"stationary"`` is the long-run occupancy of the epoch chain
(:func:`estimators.stationary.stationary_law`); an explicit array is taken
as given. A cell with zero ``d``-mass falls back to uniform on that cell and
is listed in :attr:`AISModel.fallback_cells`.

``Q_hat*`` solves the finite SMDP on cells with reward ``R_hat`` and
discounted kernel ``D_hat`` (rows ``cell*(N+1) + c'``, STOP rows zero):

    Q_hat(i, o, c') = R_hat_i(o, c') + [c' != STOP] sum_{o'} D_hat_i(o'|o, c') V_hat(c', o'),
    V_hat(j, o')    = max_{c'' admissible for j} Q_hat(j, o', c'').

Adaptable agents (issue 15): the action is the choice ``j = a*(N+1) + c'``
(mode ``a``, successor ``c'``) over ``J = max_i K_i (N+1)`` columns; ``R_hat``
and ``D_hat`` condition mode ``a``'s option reduction, the successor of ``j`` is
``c' = j mod (N+1)`` and ``V_hat = max_j`` over the cell's admissible choices
(rows ``cell*J + j``; ``J = N+1`` and ``j = c'`` without modes):

    Q_hat(i, o, j) = R_hat_{i,a}(o, c') + [c' != STOP] sum_{o'} D_hat_{i,a}(o'|o, c') V_hat(c', o').

Nothing here forms ``(I - G)^-1`` or a dense ``D_i``: the end kernel is only
pushed through the successor's observation labels (``nL_{c'} * nO_{c'}``
columns, one sparse solve per group of successors with the same labels, or
one pushforward onto the ``(m', l'_i)`` labels when that has fewer columns),
and the duration law is reduced over the cell on the fly, one ``tau`` at a
time, so its memory is ``O(nY * nO_{c'})`` rather than ``O(nY * labels * T)``.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> ais = ais_smdp(load_example("tiny-handoff"))
>>> ais.num_cells, ais.fallback_cells
(5, ())
>>> # the planner's cell o=1 is {m1, m2}; its only reward is 1 at m2 before STOP
>>> ais.reward[ais.cell_index(0, 1)].tolist()
[nan, 0.0, 0.5]
>>> # D_hat(checker's o' | planner o=1, checker): mean of D(m1, .) = (0, 0.225, 0.45)/0.775
>>> # and D(m2, .) = (0, 0, 0.9)
>>> ais.end_kernel_dense[1, 1, ais.cell_offsets[1]:].round(6).tolist()
[0.0, 0.145161, 0.740323]
>>> ais_solution(ais).v.round(4).tolist()
[0.7063, 0.8516, 0.6357, 0.7664, 1.0]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from estimators import stationary
from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch import MAX_EPOCH_STATES
from icsmdp_theory.epoch_level import EPOCH_MODELS, epoch_level
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import DURATION_TAIL_TOL
from icsmdp_theory.results import SolveResult
from solvers.api import ModifiedPolicyIteration, PolicyIteration, ValueIteration, register, solve
from solvers.smdp import FiniteSMDP
import solvers.value_iteration  # noqa: F401  (registers the FiniteSMDP solvers)
import solvers.policy_iteration  # noqa: F401  (idem)

__all__ = ["AISModel", "AISCore", "ais_smdp", "ais_solution", "reference_law",
           "nonnegative_roundoff", "REFERENCES", "DEFAULT_AIS_SOLVER", "ROUNDOFF_TOL"]

#: Named reference laws accepted by :func:`ais_smdp` (or pass an explicit array).
REFERENCES = ("uniform", "stationary")

#: The solver used by :func:`ais_solution` when none is given.
DEFAULT_AIS_SOLVER = PolicyIteration(tol=1e-10)

#: Longest duration summed in the undiscounted law (the tail bound is reported).
_MAX_DURATION = 100_000


@dataclass(frozen=True, kw_only=True, eq=False)
class AISModel:
    """The AIS-induced SMDP on observation cells (SPEC section 4): a problem object.

    Solve it with :func:`ais_solution` (or ``solve(solver, ais)``).

    Attributes
    ----------
    num_agents : int
        ``N``; successors are ``0..N-1`` and STOP ``= N``.
    num_observations : tuple of int
        ``(nO_0, ..., nO_{N-1})``.
    cell_offsets : ndarray of int, shape (N+1,)
        Cell ``(i, o)`` has index ``cell_offsets[i] + o``; ``cell_offsets[N]`` is the cell count.
    cell_size : ndarray of int, shape (num_cells,)
        Number of full epoch states in each cell.
    reference : str
        ``"uniform"``, ``"stationary"`` or ``"explicit"``.
    reference_law : ndarray, shape (num_full_states, N)
        The reference ``d[f, i]`` as given (before the fallback), normalized to sum 1.
    cell_mass : ndarray, shape (num_cells,)
        ``d``-mass of each cell (``0`` for a fallback cell).
    fallback_cells : tuple of (int, int)
        ``(agent, observation)`` of the cells with zero ``d``-mass, which use
        the uniform law on the cell instead.
    admissible : ndarray of bool, shape (num_cells, J)
        ``admissible[cell, j]``: choice ``j = a*(N+1) + c'`` admissible for the cell's
        agent (``J = N+1``, ``j = c'`` without modes; :attr:`num_choices`).
    reward : ndarray, shape (num_cells, J)
        ``R_hat[cell, j]``; ``nan`` where inadmissible.
    end_kernel : scipy.sparse.csr_array, shape (num_cells*J, num_cells)
        ``end_kernel[cell*J + j, cell'] = D_hat(o' | o, j)`` with
        ``cell' = cell_offsets[c'] + o'``, ``c' = j mod (N+1)``; STOP and inadmissible
        rows are zero.
    duration_law : tuple of tuple
        ``duration_law[i][j]``: ndarray ``[o, o', tau-1]`` with
        ``P_hat_i(o', tau | o, j)`` for admissible ``j`` with ``c' != STOP``, else ``None``.
    duration_tail_bound : float
        ``max P(tau > T | s)`` over the states and the truncation length ``T`` used.
    smdp : FiniteSMDP
        The flattened SMDP (``reward``, ``end_kernel``, ``admissible``).
    """

    num_agents: int
    num_observations: tuple
    cell_offsets: np.ndarray
    cell_size: np.ndarray
    reference: str
    reference_law: np.ndarray
    cell_mass: np.ndarray
    fallback_cells: tuple
    admissible: np.ndarray
    reward: np.ndarray
    end_kernel: sp.csr_array
    duration_law: tuple
    duration_tail_bound: float
    smdp: FiniteSMDP

    @property
    def num_cells(self) -> int:
        """Total number of cells ``sum_i nO_i``."""
        return int(self.cell_offsets[-1])

    @property
    def num_choices(self) -> int:
        """``J``: choices per cell (``N+1`` without modes)."""
        return int(self.admissible.shape[1])

    def cell_index(self, agent: int, observation: int) -> int:
        """Flat index of cell ``(agent, observation)``."""
        return int(self.cell_offsets[agent]) + int(observation)

    def cell_label(self, cell: int) -> tuple[int, int]:
        """``(agent, observation)`` of a flat cell index."""
        i = int(np.searchsorted(self.cell_offsets, cell, side="right") - 1)
        return i, int(cell - self.cell_offsets[i])

    @property
    def end_kernel_dense(self) -> np.ndarray:
        """``D_hat`` as a dense array ``[cell, j, cell']`` (small models only)."""
        n, J = self.num_cells, self.num_choices
        return self.end_kernel.toarray().reshape(n, J, n)


# ------------------------------------------------------------------ reference
def reference_law(model: ICSMDP | EpochModel, reference: Any, stationary_law: Any
                  ) -> tuple[np.ndarray, str]:
    """Validate ``reference`` and return ``(d, name)``.

    ``d`` has shape ``(num_full_states, N)`` (axes ``[f, i]``) for an :class:`ICSMDP` and
    ``(num_epoch_states,)`` for an :class:`EpochModel`; its flattening is over epoch states.
    """
    if isinstance(reference, str):
        if reference not in REFERENCES:
            raise InvalidArgumentError(
                f"`reference` must be one of {REFERENCES} or an array over epoch states, "
                f"got {reference!r}.")
        if reference == "uniform":
            return np.ones(_law_shape(model)), "uniform"
        if stationary_law is None:   # with modes: uniform over the pairs (a, c') (SPEC 6)
            stationary_law = stationary.stationary_law(model)
        law = getattr(stationary_law, "law", stationary_law)
        return _explicit_law(model, law, "stationary_law"), "stationary"
    if stationary_law is not None:
        raise InvalidArgumentError(
            "`stationary_law` is used only with `reference='stationary'`.")
    return _explicit_law(model, reference, "reference"), "explicit"


def _law_shape(model) -> tuple:
    if isinstance(model, ICSMDP):
        return (model.num_full_states, model.num_agents)
    return (model.num_epoch_states,)


def _explicit_law(model, value: Any, key: str) -> np.ndarray:
    shape = _law_shape(model)
    S = int(np.prod(shape))
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{key}` must be a numeric array over epoch states.") from None
    if arr.shape == (S,):
        arr = arr.reshape(shape)
    if arr.shape != shape:
        axes = " or ({}, {}) (axes [f, i])".format(*shape) if len(shape) == 2 else ""
        raise InvalidArgumentError(
            f"`{key}` must have shape ({S},) (one entry per epoch state){axes}, got {arr.shape}.")
    flat = arr.reshape(-1)
    if not np.all(np.isfinite(flat)):
        s = int(np.flatnonzero(~np.isfinite(flat))[0])
        raise InvalidArgumentError(f"`{key}` must be finite: entry {_where(model, s)} is {flat[s]!r}.")
    if np.any(flat < 0):
        s = int(np.flatnonzero(flat < 0)[0])
        raise InvalidArgumentError(
            f"`{key}` must be non-negative: entry {_where(model, s)} is {flat[s]!r}.")
    if flat.sum() <= 0:
        raise InvalidArgumentError(f"`{key}` must have positive total mass.")
    return arr


def _where(model, s: int) -> str:
    if isinstance(model, ICSMDP):
        f, i = divmod(s, model.num_agents)
        return f"[f={f}, i={i}]"
    return f"[s={s}]"


# ------------------------------------------------------------------ the core
class _Pair:
    """Statistics of agent ``i`` handing to successor ``j != STOP`` (shared among equal pairs)."""

    __slots__ = ("h_key", "num_l", "num_o", "d_phi", "d_hat", "p_hat", "tv_state", "weight")

    def __init__(self, h_key, num_l, num_o, d_phi, d_hat, p_hat, tv_state, weight):
        self.h_key = h_key          # family key (equal laws <=> equal key)
        self.num_l = num_l          # slots of the successor's frozen state
        self.num_o = num_o          # nO_j
        self.d_phi = d_phi          # (nY, num_l, nO_j): D pushed through phi_j
        self.d_hat = d_hat          # (nO_i, nO_j)
        self.p_hat = p_hat          # (nO_i, nO_j, T)
        self.tv_state = tv_state    # (nY, num_l): TV(law of (o', tau) | y, l_j ; P_hat)
        self.weight = weight        # (nY, num_l): reference weights, normalized per cell


class AISCore:
    """Everything computed from the epoch level and the reference (shared by ais, gaps, minimax).

    Reads the model only through :func:`icsmdp_theory.epoch_level.epoch_level`, so a
    primitive IC-SMDP and an explicit epoch model go through the same formulas.
    A cell's admissible successors are the intersection of its states' sets
    (SPEC section 10; for a primitive model, the agent's set); statistics of a
    choice ``j`` are kept only on the cells that admit it. Columns run over the
    choices ``j = a*(N+1) + c'`` (``J`` of them; ``j = c'`` without modes).
    """

    def __init__(self, model: ICSMDP | EpochModel, d: np.ndarray, reference: str, *,
                 law_consumer: Callable | None = None,
                 max_epoch_states: int = MAX_EPOCH_STATES):
        self.model = model
        self.level = lev = epoch_level(model, max_epoch_states=max_epoch_states)
        N = lev.num_agents
        S = J = lev.num_choices
        self.N = N
        self.J = J
        self.num_obs = lev.num_observations
        self.offsets = cell_offsets(lev.num_observations)
        self.reference = reference
        self.reference_law = d / d.sum()
        d_flat = self.reference_law.reshape(-1)
        nC = int(self.offsets[-1])
        self.cell_mass = np.zeros(nC)
        self.cell_size = np.zeros(nC, dtype=np.int64)
        self.cell_admissible = np.ones((nC, S), dtype=bool)
        differ = np.zeros(nC, dtype=bool)
        fallback = []
        self.obs_y, self.R, self.w_full, self.w_y, self.blocks = [], [], [], [], []
        self.cmat = []
        for i in range(N):
            blk = lev.block(i)
            obs = blk.observation
            nY = blk.num_local
            nO = self.num_obs[i]
            sl = slice(self.offsets[i], self.offsets[i + 1])
            cadm = np.ones((nO, S), dtype=bool)
            np.logical_and.at(cadm, obs, blk.admissible)
            anyadm = np.zeros((nO, S), dtype=bool)
            np.logical_or.at(anyadm, obs, blk.admissible)
            self.cell_admissible[sl] = anyadm if lev.cell_rule == "union" else cadm
            differ[sl] = (cadm != anyadm).any(axis=1)
            empty = np.flatnonzero(~cadm.any(axis=1) & (np.bincount(obs, minlength=nO) > 0))
            if empty.size and lev.cell_rule == "intersection":
                o = int(empty[0])
                raise InvalidInstanceError(
                    f"cell (agent {i} `{lev.agent_names()[i]}`, observation {o}): the states of "
                    f"the cell have no admissible successor in common (SPEC section 10); "
                    f"refine the observation map.")
            cmat = sp.csr_array((np.ones(nY), (obs, np.arange(nY))), shape=(nO, nY))
            di = d_flat[blk.epoch_state]                       # (nY, nRest)
            mass = np.bincount(obs, weights=di.sum(axis=1), minlength=nO)
            zero = mass <= 0
            if zero.any():
                di = np.where(zero[obs][:, None], 1.0, di)
                fallback.extend((i, int(o)) for o in np.flatnonzero(zero))
            denom = np.bincount(obs, weights=di.sum(axis=1), minlength=nO)
            w = di / denom[obs][:, None]
            self.cell_mass[sl] = np.where(zero, 0.0, mass)
            self.cell_size[sl] = np.bincount(obs, minlength=nO) * blk.num_rest
            self.obs_y.append(obs)
            self.cmat.append(cmat)
            self.R.append(np.where(blk.admissible, blk.reward, 0.0))
            self.w_full.append(w)
            self.w_y.append(w.sum(axis=1))
            self.blocks.append(blk)
        self.fallback_cells = tuple(fallback)
        self.cells_differing = tuple(int(c) for c in np.flatnonzero(differ))
        # R_hat [cell, c']: the reference average over the cell's states that admit c'
        # (every state of the cell under the intersection rule)
        hats = []
        for i in range(N):
            W = self.w_y[i][:, None] * self.state_admits(i)
            num, den = self.cmat[i] @ (W * self.R[i]), self.cmat[i] @ W
            hats.append(np.divide(num, den, out=np.zeros_like(num), where=den > 0))
        self.R_hat = np.vstack(hats)
        # successor statistics
        self.pairs: dict[tuple[int, int], _Pair] = {}
        self.tail = np.zeros(N)
        for i in range(N):
            self._agent_pairs(i, law_consumer)

    def state_admits(self, i: int) -> np.ndarray:
        """``(nY, J)`` bool: choice ``j`` admissible at local state ``y`` and for its cell."""
        return self.blocks[i].admissible & self.cell_admissible[self.offsets[i] + self.obs_y[i]]

    def admits(self, i: int, j: int) -> np.ndarray:
        """``(nY,)`` bool: local state ``y`` and its cell both admit choice ``j``."""
        return self.state_admits(i)[:, j]

    # -- per agent: the families' pushed kernels, and the duration pass
    def _agent_pairs(self, i: int, law_consumer):
        lev = self.level
        done: dict[tuple, _Pair] = {}
        for fam in lev.families(i):
            for j in fam.successors:
                rows = self.admits(i, j)
                if not rows.any():
                    continue
                w = lev.slot_weights(i, j, self.w_full[i])
                if not rows.all():       # renormalize over the states of the cell that admit j
                    w = w * rows[:, None]
                    den = np.bincount(self.obs_y[i], weights=w.sum(axis=1),
                                      minlength=self.num_obs[i])
                    w = np.divide(w, den[self.obs_y[i]][:, None], out=np.zeros_like(w),
                                  where=den[self.obs_y[i]][:, None] > 0)
                wkey = (fam.key, w.tobytes(), rows.tobytes())
                if wkey not in done:
                    d_hat = self.cmat[i] @ np.einsum("yl,ylo->yo", w, fam.pushed)
                    p_hat, tv_state, tail, laws = _duration_pass(
                        lev.duration_laws(i, fam), fam.num_slots, fam.num_observations,
                        self.obs_y[i], self.cmat[i], w, rows, keep_laws=law_consumer is not None)
                    self.tail[i] = max(self.tail[i], tail)
                    done[wkey] = _Pair(fam.key, fam.num_slots, fam.num_observations, fam.pushed,
                                       d_hat, p_hat, tv_state, w)
                    if law_consumer is not None:
                        law_consumer(i, j, (fam.key, rows.tobytes()), laws, self.obs_y[i], tv_state, rows)
                        del laws
                elif law_consumer is not None:
                    law_consumer(i, j, (fam.key, rows.tobytes()), None, self.obs_y[i],
                                 done[wkey].tv_state, rows)
                self.pairs[(i, j)] = done[wkey]

    # -- the AIS model
    def ais_model(self) -> AISModel:
        N, S, J = self.N, self.N + 1, self.J
        nC = int(self.offsets[-1])
        rows, cols, vals = [], [], []
        duration = []
        for i in range(N):
            per = []
            cadm = self.cell_admissible[self.offsets[i]:self.offsets[i + 1]]
            for j in range(J):
                pair = self.pairs.get((i, j))
                if pair is None:
                    per.append(None)
                    continue
                d_hat = nonnegative_roundoff(pair.d_hat) * cadm[:, j][:, None]
                o, o2 = np.nonzero(d_hat)
                rows.append((self.offsets[i] + o) * J + j)
                cols.append(self.offsets[j % S] + o2)
                vals.append(d_hat[o, o2])
                per.append(_readonly(pair.p_hat))
            duration.append(tuple(per))
        if rows:
            kernel = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                  shape=(nC * J, nC))
        else:
            kernel = sp.csr_array((nC * J, nC))
        reward = np.where(self.cell_admissible, self.R_hat, np.nan)
        smdp = FiniteSMDP(reward=reward, kernel=kernel, admissible=self.cell_admissible)
        return AISModel(num_agents=N, num_observations=tuple(self.num_obs),
                        cell_offsets=_readonly(self.offsets), cell_size=_readonly(self.cell_size),
                        reference=self.reference, reference_law=_readonly(self.reference_law),
                        cell_mass=_readonly(self.cell_mass), fallback_cells=self.fallback_cells,
                        admissible=_readonly(self.cell_admissible), reward=_readonly(reward),
                        end_kernel=smdp.kernel, duration_law=tuple(duration),
                        duration_tail_bound=float(self.tail.max(initial=0.0)), smdp=smdp)


#: Negative entries of a computed non-negative quantity above ``-ROUNDOFF_TOL`` (relative to the
#: largest entry) are round-off and set to 0; anything more negative is an internal error.
ROUNDOFF_TOL = 1e-12


def nonnegative_roundoff(a: np.ndarray) -> np.ndarray:
    """``a`` with round-off negatives set to exactly 0 (the trusted path for internal kernels).

    ``D_hat`` is an average of discounted end laws ``D = (I - G)^-1 E``, non-negative in exact
    arithmetic; a sparse solve or the Neumann series can leave entries like ``-2.6e-17``. The
    user-input validators (SPEC section 9) do not tolerate any negative entry, so internal
    constructions clip round-off here rather than going through them with a tolerance.

    >>> nonnegative_roundoff(np.array([0.5, -2.6e-17, 0.25])).tolist()
    [0.5, 0.0, 0.25]
    """
    a = np.asarray(a, dtype=float)
    scale = max(float(np.abs(a).max(initial=0.0)), 1.0)
    if a.size and a.min() < -ROUNDOFF_TOL * scale:
        raise ArithmeticError(f"a computed probability is {float(a.min())!r} < 0 beyond round-off "
                              f"(internal error; please report it with the instance).")
    return np.where(a < 0, 0.0, a)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _duration_pass(laws, num_l: int, num_o: int, obs_y: np.ndarray, cmat, w: np.ndarray,
                   rows: np.ndarray, *, keep_laws: bool, tail_tol: float = DURATION_TAIL_TOL,
                   max_duration: int = _MAX_DURATION):
    """Undiscounted law of ``(o', tau)`` per state, reduced over the cell one ``tau`` at a time.

    ``laws`` yields ``P(o', tau | y, l_j)`` for ``tau = 1, 2, ...`` (:meth:`EpochLevel.duration_laws`);
    only the states in ``rows`` (their cell admits the successor) count.

    Returns
    -------
    p_hat : ndarray (nO_i, nO_j, T)
        Cell averages under ``w``.
    tv_state : ndarray (nY, num_l)
        ``0.5 * sum_{o', tau <= T} |P(o', tau | y, l_j) - P_hat(o', tau | phi(y))|`` (0 off ``rows``).
    tail : float
        ``max_y P(tau > T | y)`` over ``rows``.
    laws : ndarray (nY, num_l, nO_j, T) or None
    """
    nY = obs_y.shape[0]
    remaining = np.where(rows, 1.0, 0.0)
    acc = np.zeros((nY, num_l))
    hats, kept = [], []
    tail = 1.0
    mask = rows[:, None, None]
    for _, P in zip(range(max_duration), laws):
        P = np.where(mask, P, 0.0)
        hat = cmat @ np.einsum("yl,ylo->yo", w, P)
        acc += np.abs(P - hat[obs_y][:, None, :]).sum(axis=2)
        hats.append(hat)
        if keep_laws:
            kept.append(P)
        remaining -= P[:, 0, :].sum(axis=1)
        tail = float(max(remaining.max(initial=0.0), 0.0))
        if tail <= tail_tol:
            break
    acc[~rows] = 0.0
    p_hat = np.stack(hats, axis=2)
    return p_hat, 0.5 * acc, tail, (np.stack(kept, axis=3) if keep_laws else None)


# ------------------------------------------------------------------ public API
def _ais_smdp_iv(model, reference, stationary_law):
    if not isinstance(model, EPOCH_MODELS):
        raise InvalidArgumentError(
            f"`model` must be an ICSMDP or an EpochModel, got {type(model).__name__}.")
    return reference_law(model, reference, stationary_law)


def ais_smdp(model: ICSMDP, *, reference: str | np.ndarray = "uniform",
             stationary_law: Any = None) -> AISModel:
    """Build the AIS-induced SMDP of ``model``'s observation maps (SPEC section 4).

    Parameters
    ----------
    model : ICSMDP
        Its ``observation`` maps define the cells (use ``model.with_observation``
        to try a proposed map).
    reference : {"uniform", "stationary"} or ndarray
        The reference law ``d`` over full epoch states: uniform on each cell,
        the epoch chain's long-run occupancy, or an explicit non-negative array
        of shape ``(num_epoch_states,)`` (``s = f*N + i``) or ``(num_full_states, N)``.
    stationary_law : ndarray ``[f, i]`` or a result with field ``law``, optional
        With ``reference="stationary"``; computed by
        :func:`estimators.stationary.stationary_law` (uniform behavior) when omitted.

    Returns
    -------
    AISModel
        ``R_hat``, ``D_hat``, ``P_hat`` on cells and the flattened :class:`FiniteSMDP`.

    Raises
    ------
    InvalidArgumentError
        Unknown reference name, wrong shape, negative or non-finite entries.
    StateSpaceTooLargeError
        More epoch states than the exact methods allow.
    """
    d, name = _ais_smdp_iv(model, reference, stationary_law)
    return AISCore(model, d, name).ais_model()


def ais_solution(ais: AISModel, *, solver: Any = None) -> SolveResult:
    """``Q_hat*`` and ``V_hat*`` on cells (SPEC section 4).

    Parameters
    ----------
    ais : AISModel
    solver : ValueIteration, PolicyIteration or ModifiedPolicyIteration, optional
        Default :data:`DEFAULT_AIS_SOLVER` (policy iteration, ``tol=1e-10``).

    Returns
    -------
    SolveResult
        ``q[cell, c']`` (``nan`` where inadmissible), ``v[cell]``, greedy ``policy[cell]``.
    """
    if not isinstance(ais, AISModel):
        raise InvalidArgumentError(f"`ais` must be an AISModel, got {type(ais).__name__}.")
    return solve(DEFAULT_AIS_SOLVER if solver is None else solver, ais.smdp)


def _solve_ais(solver, ais: AISModel) -> SolveResult:
    """``solve(solver, ais)``: the solver run on the flattened :class:`FiniteSMDP`."""
    return solve(solver, ais.smdp)


for _solver_type in (ValueIteration, PolicyIteration, ModifiedPolicyIteration):
    register(_solver_type, AISModel)(_solve_ais)
