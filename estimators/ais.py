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
from icsmdp_theory.epoch import EpochSpace, MAX_EPOCH_STATES
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import DURATION_TAIL_TOL, option_reduction
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
    admissible : ndarray of bool, shape (num_cells, N+1)
        ``admissible[cell, c']``: ``c'`` admissible for the cell's agent.
    reward : ndarray, shape (num_cells, N+1)
        ``R_hat[cell, c']``; ``nan`` where inadmissible.
    end_kernel : scipy.sparse.csr_array, shape (num_cells*(N+1), num_cells)
        ``end_kernel[cell*(N+1) + c', cell'] = D_hat(o' | o, c')`` with
        ``cell' = cell_offsets[c'] + o'``; STOP and inadmissible rows are zero.
    duration_law : tuple of tuple
        ``duration_law[i][c']``: ndarray ``[o, o', tau-1]`` with
        ``P_hat_i(o', tau | o, c')`` for admissible ``c' != STOP``, else ``None``.
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

    def cell_index(self, agent: int, observation: int) -> int:
        """Flat index of cell ``(agent, observation)``."""
        return int(self.cell_offsets[agent]) + int(observation)

    def cell_label(self, cell: int) -> tuple[int, int]:
        """``(agent, observation)`` of a flat cell index."""
        i = int(np.searchsorted(self.cell_offsets, cell, side="right") - 1)
        return i, int(cell - self.cell_offsets[i])

    @property
    def end_kernel_dense(self) -> np.ndarray:
        """``D_hat`` as a dense array ``[cell, c', cell']`` (small models only)."""
        n, S = self.num_cells, self.num_agents + 1
        return self.end_kernel.toarray().reshape(n, S, n)


# ------------------------------------------------------------------ reference
def reference_law(model: ICSMDP, reference: Any, stationary_law: Any) -> tuple[np.ndarray, str]:
    """Validate ``reference`` and return ``(d[f, i], name)``."""
    F, N = model.num_full_states, model.num_agents
    if isinstance(reference, str):
        if reference not in REFERENCES:
            raise InvalidArgumentError(
                f"`reference` must be one of {REFERENCES} or an array over epoch states, "
                f"got {reference!r}.")
        if reference == "uniform":
            return np.ones((F, N)), "uniform"
        if stationary_law is None:
            stationary_law = stationary.stationary_law(model)
        law = getattr(stationary_law, "law", stationary_law)
        return _explicit_law(model, law, "stationary_law"), "stationary"
    if stationary_law is not None:
        raise InvalidArgumentError(
            "`stationary_law` is used only with `reference='stationary'`.")
    return _explicit_law(model, reference, "reference"), "explicit"


def _explicit_law(model: ICSMDP, value: Any, key: str) -> np.ndarray:
    F, N = model.num_full_states, model.num_agents
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{key}` must be a numeric array over epoch states.") from None
    if arr.shape == (F * N,):
        arr = arr.reshape(F, N)
    if arr.shape != (F, N):
        raise InvalidArgumentError(
            f"`{key}` must have shape ({F * N},) (epoch states s = f*N + i) or ({F}, {N}) "
            f"(axes [f, i]), got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        f, i = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidArgumentError(f"`{key}` must be finite: entry [f={f}, i={i}] is {arr[f, i]!r}.")
    if np.any(arr < 0):
        f, i = np.argwhere(arr < 0)[0]
        raise InvalidArgumentError(
            f"`{key}` must be non-negative: entry [f={f}, i={i}] is {arr[f, i]!r}.")
    if arr.sum() <= 0:
        raise InvalidArgumentError(f"`{key}` must have positive total mass.")
    return arr


# ------------------------------------------------------------------ the core
class _Pair:
    """Statistics of agent ``i`` handing to successor ``j != STOP`` (shared among equal pairs)."""

    __slots__ = ("h_key", "num_l", "num_o", "d_phi", "d_hat", "p_hat", "tv_state", "weight")

    def __init__(self, h_key, num_l, num_o, d_phi, d_hat, p_hat, tv_state, weight):
        self.h_key = h_key          # bytes of the label matrix (equal laws <=> equal key)
        self.num_l = num_l          # nL_j for j != i, 1 for j == i
        self.num_o = num_o          # nO_j
        self.d_phi = d_phi          # (nY, num_l, nO_j): D pushed through phi_j
        self.d_hat = d_hat          # (nO_i, nO_j)
        self.p_hat = p_hat          # (nO_i, nO_j, T)
        self.tv_state = tv_state    # (nY, num_l): TV(law of (o', tau) | y, l_j ; P_hat)
        self.weight = weight        # (nY, num_l): reference weights, normalized per cell


class AISCore:
    """Everything computed from the model and the reference (shared by ais and gaps)."""

    def __init__(self, model: ICSMDP, d: np.ndarray, reference: str, *,
                 law_consumer: Callable | None = None,
                 max_epoch_states: int = MAX_EPOCH_STATES):
        self.model = model
        self.space = EpochSpace(model, max_epoch_states=max_epoch_states)
        N = model.num_agents
        self.N = N
        self.num_obs = model.num_observations
        self.offsets = cell_offsets(model.num_observations)
        self.admissible_agent = model.admissible
        self.reference = reference
        self.reference_law = d / d.sum()
        nC = int(self.offsets[-1])
        self.cell_mass = np.zeros(nC)
        self.cell_size = np.zeros(nC, dtype=np.int64)
        fallback = []
        self.obs_y, self.cmat, self.R, self.w_full, self.w_y = [], [], [], [], []
        self.rest_shape = []
        for i, agent in enumerate(model.agents):
            red = option_reduction(model, i)
            nY = red.num_local_states
            _, m, l = model.local_decode(i, np.arange(nY))
            obs = agent.observation[m, l]
            nO = self.num_obs[i]
            cmat = sp.csr_array((np.ones(nY), (obs, np.arange(nY))), shape=(nO, nY))
            di = self.space.to_agent_view(i, self.reference_law[:, i])  # (nY, nRest)
            nrest = di.shape[1]
            mass = np.bincount(obs, weights=di.sum(axis=1), minlength=nO)
            zero = mass <= 0
            if zero.any():
                di = np.where(zero[obs][:, None], 1.0, di)
                fallback.extend((i, int(o)) for o in np.flatnonzero(zero))
            denom = np.bincount(obs, weights=di.sum(axis=1), minlength=nO)
            w = di / denom[obs][:, None]
            sl = slice(self.offsets[i], self.offsets[i + 1])
            self.cell_mass[sl] = np.where(zero, 0.0, mass)
            self.cell_size[sl] = np.bincount(obs, minlength=nO) * nrest
            self.obs_y.append(obs)
            self.cmat.append(cmat)
            self.R.append(red.option_reward())
            self.w_full.append(w)
            self.w_y.append(w.sum(axis=1))
            self.rest_shape.append(tuple(a.num_private for k, a in enumerate(model.agents) if k != i))
        self.fallback_cells = tuple(fallback)
        # R_hat [cell, c']
        self.R_hat = np.vstack([self.cmat[i] @ (self.w_y[i][:, None] * self.R[i]) for i in range(N)])
        self.cell_admissible = np.repeat(self.admissible_agent, self.num_obs, axis=0)
        # successor statistics
        self.pairs: dict[tuple[int, int], _Pair] = {}
        self.tail = np.zeros(N)
        for i in range(N):
            self._agent_pairs(i, law_consumer)

    # -- per agent: D pushed through the successors' labels, and the duration pass
    def _agent_pairs(self, i: int, law_consumer):
        model = self.model
        N = self.N
        red = option_reduction(model, i)
        nY = red.num_local_states
        _, m, l = model.local_decode(i, np.arange(nY))
        nL_i = model.agents[i].num_private
        labels = m * nL_i + l
        succ = [j for j in range(N) if self.admissible_agent[i, j]]
        if not succ:
            return
        groups: dict[bytes, list] = {}
        H_of = {}
        for j in succ:
            H = _label_matrix(model, i, j)
            key = H.tobytes() + bytes(str(H.shape), "ascii")
            H_of[j] = H
            groups.setdefault(key, []).append(j)
        # D pushed through the labels: either per group (few columns) or once through (m', l').
        total_cols = sum(H_of[js[0]].shape[1] for js in groups.values())
        dphi_by_key = {}
        if total_cols <= model.num_interface * nL_i:
            for key, js in groups.items():
                Hy = H_of[js[0]][labels]
                dphi_by_key[key] = red.solve_continue(red.end_matrix @ Hy)
        else:
            dlab = red.end_kernel_pushforward(labels, model.num_interface * nL_i)
            for key, js in groups.items():
                dphi_by_key[key] = dlab @ H_of[js[0]]
        # duration pass per (label group, weight) class
        done: dict[tuple, _Pair] = {}
        for key, js in groups.items():
            H = H_of[js[0]]
            Hy = H[labels]
            for j in js:
                num_l = model.agents[j].num_private if j != i else 1
                num_o = self.num_obs[j]
                w = self._pair_weight(i, j)
                wkey = (key, w.tobytes())
                if wkey not in done:
                    dphi = dphi_by_key[key].reshape(nY, num_l, num_o)
                    d_hat = self.cmat[i] @ np.einsum("yl,ylo->yo", w, dphi)
                    p_hat, tv_state, tail, laws = _duration_pass(
                        red, Hy, num_l, self.obs_y[i], self.cmat[i], w,
                        keep_laws=law_consumer is not None)
                    self.tail[i] = max(self.tail[i], tail)
                    done[wkey] = _Pair(key, num_l, num_o, dphi, d_hat, p_hat, tv_state, w)
                    if law_consumer is not None:
                        law_consumer(i, j, key, laws, self.obs_y[i], tv_state)
                        del laws
                elif law_consumer is not None:
                    law_consumer(i, j, key, None, self.obs_y[i], done[wkey].tv_state)
                self.pairs[(i, j)] = done[wkey]

    def _pair_weight(self, i: int, j: int) -> np.ndarray:
        """Reference weights over ``(y, l_j)`` (``(y, 1)`` for ``j == i``), normalized per cell."""
        if j == i:
            return self.w_y[i][:, None]
        w = self.w_full[i]
        rest = self.rest_shape[i]
        pos = j if j < i else j - 1
        w = w.reshape((w.shape[0],) + rest)
        axes = tuple(1 + k for k in range(len(rest)) if k != pos)
        return w.sum(axis=axes) if axes else w

    # -- the AIS model
    def ais_model(self) -> AISModel:
        N, S = self.N, self.N + 1
        nC = int(self.offsets[-1])
        rows, cols, vals = [], [], []
        duration = []
        for i in range(N):
            per = []
            for j in range(S):
                pair = self.pairs.get((i, j))
                if pair is None:
                    per.append(None)
                    continue
                d_hat = nonnegative_roundoff(pair.d_hat)
                o, o2 = np.nonzero(d_hat)
                rows.append((self.offsets[i] + o) * S + j)
                cols.append(self.offsets[j] + o2)
                vals.append(d_hat[o, o2])
                per.append(_readonly(pair.p_hat))
            duration.append(tuple(per))
        if rows:
            kernel = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                  shape=(nC * S, nC))
        else:
            kernel = sp.csr_array((nC * S, nC))
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


def _label_matrix(model: ICSMDP, i: int, j: int) -> np.ndarray:
    """0/1 matrix ``H[(m', l'_i), (l_j, o')]``: the successor ``j``'s observation of an end state.

    For ``j != i`` the successor's private state ``l_j`` is frozen (it is part of
    the rest of the full state), so there is one column block per ``l_j``:
    ``H[(m', l'_i), (l_j, o')] = 1[phi_j(m', l_j) = o']``. For ``j == i`` the
    successor is the agent itself and observes its new private state:
    ``H[(m', l'_i), (0, o')] = 1[phi_i(m', l'_i) = o']``.
    """
    nM = model.num_interface
    nL_i = model.agents[i].num_private
    phi_j = model.agents[j].observation
    nO = model.agents[j].num_observations
    if j == i:
        H = np.zeros((nM, nL_i, 1, nO))
        mm, ll = np.meshgrid(np.arange(nM), np.arange(nL_i), indexing="ij")
        H[mm, ll, 0, phi_j[mm, ll]] = 1.0
    else:
        nL_j = model.agents[j].num_private
        H = np.zeros((nM, nL_i, nL_j, nO))
        mm, lj = np.meshgrid(np.arange(nM), np.arange(nL_j), indexing="ij")
        H[mm, :, lj, phi_j[mm, lj]] = 1.0
    return H.reshape(nM * nL_i, -1)


def _duration_pass(red, Hy: np.ndarray, num_l: int, obs_y: np.ndarray, cmat, w: np.ndarray, *,
                   keep_laws: bool, tail_tol: float = DURATION_TAIL_TOL,
                   max_duration: int = _MAX_DURATION):
    """Undiscounted law of ``(o', tau)`` per state, reduced over the cell one ``tau`` at a time.

    ``P(o', tau | y, l_j) = [(Kbar diag(1-beta))^(tau-1) Kbar diag(beta) Hy](y, (l_j, o'))``.

    Returns
    -------
    p_hat : ndarray (nO_i, nO_j, T)
        Cell averages under ``w``.
    tv_state : ndarray (nY, num_l)
        ``0.5 * sum_{o', tau <= T} |P(o', tau | y, l_j) - P_hat(o', tau | phi(y))|``.
    tail : float
        ``max_y P(tau > T | y)``.
    laws : ndarray (nY, num_l, nO_j, T) or None
    """
    nY = Hy.shape[0]
    num_o = Hy.shape[1] // num_l
    cont = red.continue_matrix_undiscounted
    term = red.end_matrix_undiscounted @ Hy
    remaining = np.ones(nY)
    acc = np.zeros((nY, num_l))
    hats, laws = [], []
    tail = 1.0
    for _ in range(max_duration):
        P = term.reshape(nY, num_l, num_o)
        hat = cmat @ np.einsum("yl,ylo->yo", w, P)
        acc += np.abs(P - hat[obs_y][:, None, :]).sum(axis=2)
        hats.append(hat)
        if keep_laws:
            laws.append(P)
        remaining -= P[:, 0, :].sum(axis=1)
        tail = float(max(remaining.max(initial=0.0), 0.0))
        if tail <= tail_tol:
            break
        term = cont @ term
    p_hat = np.stack(hats, axis=2)
    return p_hat, 0.5 * acc, tail, (np.stack(laws, axis=3) if keep_laws else None)


# ------------------------------------------------------------------ public API
def _ais_smdp_iv(model, reference, stationary_law):
    if not isinstance(model, ICSMDP):
        raise InvalidArgumentError(f"`model` must be an ICSMDP, got {type(model).__name__}.")
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
