"""The epoch chain under a behavior policy and its long-run occupancy (SPEC sections 4 and 6).

Epoch chain
-----------
On full epoch states ``s = (f, i)``, flattened ``s = f*N + i``
(:mod:`icsmdp_theory.epoch`), one step is one decision epoch: agent ``i``
observes ``o = phi_i(m, l_i)`` and draws ``c' ~ b_i(. | o)``;

- if ``c' != STOP``, its invocation ends in ``y' = (x', m', l_i')`` with the
  *undiscounted* end law ``P_i(y' | y) = [(I - M)^{-1} Kbar diag(beta)](y, y')``,
  ``M = Kbar diag(1 - beta)`` (SPEC section 2), the other agents' private
  states are unchanged and ``c'`` becomes active;
- if ``c' = STOP``, the chain moves straight to a fresh ``s0 ~ rho0``
  (no extra terminal epoch).

So ``T = A + u rho0^T`` with ``A`` the sparse continuation part,
``u(s) = b_i(STOP | phi_i(s))`` and ``rho0`` the initial epoch law
(:class:`SplitChain`). ``P_i`` (:func:`end_law`) is one dense solve of
``(I - M) P = Kbar diag(beta)`` for agents with up to 3,000 local states (else
:meth:`~icsmdp_theory.options.OptionReduction.end_law_pushforward` with the
identity labelling); entries outside its structural support (end states not
reachable by continue steps followed by an end step) are set to exactly 0, so
the chain's graph is the true one, and rows are renormalized (they sum to 1
within ``1e-14`` before). Beyond the dense limit, :func:`epoch_chain_operator`
applies ``T`` and ``T^T`` through end-law solves without forming anything
``n x n``.

Long-run occupancy
------------------
The reference law ``pi`` of SPEC sections 4 and 6 is the Cesaro limit
``lim_n (1/n) sum_{t<n} rho0 T^t``, unique even for a reducible chain:

1. communicating classes (strongly connected components of the graph of
   ``T``); a class is *closed* (recurrent) when no edge leaves it;
2. on each closed class ``C``, its stationary vector ``pi_C`` by GTH;
3. absorption probabilities ``h_C = P(reach C | s)`` from the transient
   states ``Tr``: ``(I - T_TrTr) h_C = T_TrC 1`` (sparse LU, or LAPACK for a
   dense ``T``), and the weights ``w_C = rho0(C) + rho0_Tr . h_C``;
4. ``pi = sum_C w_C pi_C``.

GTH (Grassmann, Taksar and Heyman, 1985) eliminates states one at a time from
the last, replacing each pivot ``1 - P[k, k]`` by the sum of the row's
remaining off-diagonal entries. No subtraction ever occurs, so every entry of
``pi`` keeps full relative precision, however small (an eigen-solver returns
entries with absolute error ``~1e-16`` and may return negative ones). The
elimination here is blocked: inside a block of ``b`` states the updates are
``b x b`` and are accumulated as two ``b x b`` transforms, and the trailing
matrix gets one product of non-negative matrices per block, which keeps the
``O(n^3)`` work in BLAS (about 1.5-2 s for 2,000 states and 6-8 s for 4,000 on 2 cores).

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> model = load_example("tiny-handoff")
>>> res = stationary_law(model)
>>> res.num_closed_classes, res.law.shape
(1, (3, 2))
>>> bool(abs(res.law.sum() - 1.0) < 1e-12)
True
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from scipy.sparse.csgraph import connected_components, shortest_path

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import option_reduction
from icsmdp_theory.results import Result
from estimators.behavior import epoch_behavior, validate_behavior

__all__ = ["SplitChain", "ChainClasses", "StationaryResult", "epoch_chain", "epoch_chain_split",
           "epoch_chain_operator", "end_law", "gth_stationary", "chain_classes",
           "long_run_occupancy", "stationary_law", "mu", "DENSE_CHAIN_LIMIT", "MAX_CHAIN_NONZEROS",
           "CHAIN_ROW_TOL"]

#: Largest epoch-state count for a dense ``n x n`` epoch chain (200 MB at the limit) and for
#: GTH (``O(n^3)``: about 15 s at the limit on 2 cores).
DENSE_CHAIN_LIMIT = 5000
#: Largest number of stored entries of a sparse epoch chain (or of one dense end law ``P_i``).
MAX_CHAIN_NONZEROS = 50_000_000
#: Rows of a transition matrix given to the matrix-level functions must sum to 1 within this.
CHAIN_ROW_TOL = 1e-9
_GTH_BLOCK = 128


# ====================================================================== the epoch chain
class SplitChain(NamedTuple):
    """The epoch chain as ``T = continuation + outer(stop, restart)``.

    Attributes
    ----------
    continuation : scipy.sparse.csr_array, shape (n, n)
        ``A[s, s'] = sum_{c' != STOP} b(c'|phi(s)) P(s' | s, c')``.
    stop : ndarray, shape (n,)
        ``u[s] = b_i(STOP | phi_i(s))``.
    restart : ndarray, shape (n,)
        ``rho0`` flattened over epoch states.
    """

    continuation: sp.csr_array
    stop: np.ndarray
    restart: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.continuation.shape

    def toarray(self) -> np.ndarray:
        """The dense ``n x n`` matrix ``T``."""
        out = self.continuation.toarray()
        out += np.outer(self.stop, self.restart)
        return out

    def tocsr(self) -> sp.csr_array:
        """``T`` as CSR (the restart part stored explicitly on its support)."""
        u = sp.csr_array(self.stop.reshape(-1, 1))
        r = sp.csr_array(self.restart.reshape(1, -1))
        return sp.csr_array(self.continuation + u @ r)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``T @ v``."""
        return self.continuation @ v + self.stop * (self.restart @ v)


def _local_support(red) -> np.ndarray:
    """Boolean ``(nY, nY)``: ``P(y'|y) > 0`` in exact arithmetic.

    ``y'`` ends the invocation from ``y`` iff a path of continue edges
    (``Kbar > 0`` into a state with ``beta < 1``) leads from ``y`` to some
    ``z`` (possibly ``y``) with ``Kbar[z, y'] > 0`` and ``beta(y') > 0``.
    Reachability: breadth-first search from every state when the continue
    graph is sparse, else the transitive closure of its condensation by
    repeated boolean squaring.
    """
    cont = sp.csr_array(red.continue_matrix_undiscounted > 0, dtype=np.float32)
    end = sp.csr_array(red.end_matrix_undiscounted > 0, dtype=np.float32)
    nY = cont.shape[0]
    if nY * max(cont.nnz, 1) <= 50_000_000:
        reach = np.isfinite(shortest_path(cont, directed=True, unweighted=True)).astype(np.float32)
        return np.asarray(reach @ end.toarray()) > 0
    ncomp, lab = connected_components(cont, directed=True, connection="strong")
    agg = sp.csr_array((np.ones(nY, np.float32), (lab, np.arange(nY))), shape=(ncomp, nY))
    R = (agg @ cont @ agg.T).toarray() > 0
    R |= np.eye(ncomp, dtype=bool)
    while True:  # closure: R <- R R until stable (at most log2(ncomp) rounds)
        R2 = (R.astype(np.float32) @ R.astype(np.float32)) > 0
        if np.array_equal(R2, R):
            break
        R = R2
    ends = (agg @ end).toarray() > 0  # (ncomp, nY): some state of the component ends in y'
    return ((R.astype(np.float32) @ ends.astype(np.float32)) > 0)[lab]


#: Up to this many local states the end law is one dense LAPACK solve.
_DENSE_END_LAW_LIMIT = 3000


def end_law(model: ICSMDP, i: int) -> np.ndarray:
    """Dense undiscounted end law ``P_i[y, y'] = P(y_end = y' | y)`` of agent ``i`` (cached).

    ``P_i = (I - M)^{-1} Kbar diag(beta)``, ``M = Kbar diag(1 - beta)`` (SPEC
    section 2): one dense LAPACK solve up to 3,000 local states (the Neumann
    series with ``nY`` right-hand sides is far slower on dense kernels), else
    ``end_law_pushforward`` with the identity labelling. Entries outside the
    structural support are exactly 0, negative round-off is clipped, and rows
    are renormalized.

    Raises
    ------
    StateSpaceTooLargeError
        If ``nY_i^2`` exceeds :data:`MAX_CHAIN_NONZEROS`.
    """
    red = option_reduction(model, i)
    nY = red.num_local_states
    if nY * nY > MAX_CHAIN_NONZEROS:
        raise StateSpaceTooLargeError(
            f"the dense end law of agent {i} (`{model.agents[i].name}`) has {nY:,}^2 entries; "
            f"the limit is {MAX_CHAIN_NONZEROS:,}. Use the operator form (mixing_report beyond "
            f"`exact_limit`).")
    def compute():
        if nY <= _DENSE_END_LAW_LIMIT:
            A = np.eye(nY) - red.continue_matrix_undiscounted.toarray()
            P = sla.solve(A, red.end_matrix_undiscounted.toarray())
        else:
            P = red.end_law_pushforward(np.arange(nY), nY)
        P = np.where(_local_support(red), np.maximum(P, 0.0), 0.0)
        P /= P.sum(axis=1, keepdims=True)
        P.setflags(write=False)
        return P
    return model.derived.get(("end_law", int(i)), compute, observation=False)


def _blocks(model: ICSMDP, behavior: list[np.ndarray], space: EpochSpace):
    """Yield ``(i, j, vals[y, y'], fov[y, r])``: the ``i -> j`` continuation block."""
    N = model.num_agents
    for i in range(N):
        P = end_law(model, i)
        nY = P.shape[0]
        _, m, l = model.local_decode(i, np.arange(nY))
        B = behavior[i][model.agents[i].observation[m, l]]  # (nY, N+1)
        fov = space.full_of_view[i].reshape(nY, space.num_rest[i])
        for j in range(N):
            if B[:, j].any():
                yield i, j, B[:, j][:, None] * P, fov


def _stop_and_restart(model, behavior):
    beh = epoch_behavior(model, behavior)
    return beh[:, :, model.stop].reshape(-1), initial_epoch_law(model).reshape(-1)


def epoch_chain_split(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None) -> SplitChain:
    """The epoch chain as a :class:`SplitChain` (sparse continuation plus the rank-1 restart).

    Raises
    ------
    StateSpaceTooLargeError
        If the continuation part would store more than :data:`MAX_CHAIN_NONZEROS` entries.
    """
    behavior = validate_behavior(model, behavior)
    space = EpochSpace(model)
    n, N = space.num_epoch_states, model.num_agents
    blocks = list(_blocks(model, behavior, space))
    nnz = sum(int(np.count_nonzero(v)) * fov.shape[1] for _, _, v, fov in blocks)
    if nnz > MAX_CHAIN_NONZEROS:
        raise StateSpaceTooLargeError(
            f"the sparse epoch chain would store {nnz:,} entries (limit {MAX_CHAIN_NONZEROS:,}) "
            f"for {n:,} epoch states. Use mixing_report, which applies T through end-law solves "
            f"beyond `exact_limit`.")
    rows, cols, vals = [], [], []
    for i, j, v, fov in blocks:
        yy, yy2 = np.nonzero(v)
        rows.append((fov[yy] * N + i).ravel())
        cols.append((fov[yy2] * N + j).ravel())
        vals.append(np.repeat(v[yy, yy2], fov.shape[1]))
    A = _coo_to_csr(rows, cols, vals, n)
    u, rho = _stop_and_restart(model, behavior)
    return SplitChain(A, u, rho)


def _coo_to_csr(rows, cols, vals, n) -> sp.csr_array:
    if not rows:
        return sp.csr_array((n, n))
    A = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                     shape=(n, n))
    A.sum_duplicates()
    return A


def _epoch_chain_iv(model, sparse, max_states):
    if not isinstance(sparse, (bool, np.bool_)):
        raise InvalidArgumentError(f"`sparse` must be True or False, got {sparse!r}.")
    if isinstance(max_states, bool) or not isinstance(max_states, (int, np.integer)) or max_states < 1:
        raise InvalidArgumentError(f"`max_states` must be an integer >= 1, got {max_states!r}.")
    n = model.num_epoch_states
    if not sparse and n > max_states:
        raise StateSpaceTooLargeError(
            f"a dense epoch chain holds n x n values; this instance has n = {n:,} epoch states "
            f"and the dense limit is {max_states:,} ({8 * n * n / 1e9:.1f} GB requested). Use "
            f"`sparse=True`, or mixing_report, which works without T beyond `exact_limit`.")


def epoch_chain(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None, *,
                sparse: bool = False, max_states: int = DENSE_CHAIN_LIMIT):
    """Transition matrix ``T[s, s']`` of the epoch chain over ``s = f*N + i`` (SPEC section 6).

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, N+1)`` or None
        ``b_i(c' | o)``; ``None`` is uniform over admissible successors.
    sparse : bool
        Return CSR (the restart part stored on the support of ``rho0``) instead
        of a dense array.
    max_states : int
        Dense limit on the number of epoch states (default :data:`DENSE_CHAIN_LIMIT`).

    Returns
    -------
    ndarray or scipy.sparse.csr_array, shape ``(n, n)``, rows summing to 1.

    Raises
    ------
    StateSpaceTooLargeError
        Dense: more than ``max_states`` epoch states. Sparse: more than
        :data:`MAX_CHAIN_NONZEROS` stored entries.

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> T = epoch_chain(load_example("tiny-handoff"))
    >>> T.shape, bool(np.allclose(T.sum(axis=1), 1.0))
    ((6, 6), True)
    """
    _epoch_chain_iv(model, sparse, max_states)
    behavior = validate_behavior(model, behavior)
    if sparse:
        split = epoch_chain_split(model, behavior)
        nnz = split.continuation.nnz + np.count_nonzero(split.stop) * np.count_nonzero(split.restart)
        if nnz > MAX_CHAIN_NONZEROS:
            raise StateSpaceTooLargeError(
                f"the sparse epoch chain would store {nnz:,} entries (limit {MAX_CHAIN_NONZEROS:,}; "
                f"the restart after STOP alone is dense on the support of rho0). Use "
                f"epoch_chain_split, or mixing_report beyond `exact_limit`.")
        return split.tocsr()
    space = EpochSpace(model)
    n, N, F = space.num_epoch_states, model.num_agents, space.num_full_states
    T = np.zeros((n, n))
    T4 = T.reshape(F, N, F, N)
    for i, j, v, fov in _blocks(model, behavior, space):
        nR = fov.shape[1]
        K = np.kron(v, np.eye(nR)) if nR > 1 else v  # view order (y*nR + r, y'*nR + r)
        vof = space.view_of_full[i]
        T4[:, i, :, j] = K[np.ix_(vof, vof)]
    u, rho = _stop_and_restart(model, behavior)
    T += np.outer(u, rho)
    return T


class _EpochStepper:
    """``X -> T @ X`` for dense ``X`` of shape ``(n, k)`` using the block structure of ``T``.

    For agent ``i``, rows ``(f(y, r), i)`` of ``T`` map to columns ``(f(y', r), j)``
    with weight ``b_i(j | phi_i(y)) P_i(y, y')``, the same for every rest ``r``.
    So ``(T X)[(y, r), i] = sum_j sum_y' V_ij[y, y'] X[(f(y', r), j)]``: gather
    the rows of ``X`` in agent ``i``'s view, one GEMM with ``[V_i0 | V_i1 | ...]``,
    scatter back. The restart adds ``u (rho0 X)``. Cost: about
    ``n k sum_i J_i nY_i nR_i nY_i`` multiply-adds instead of ``n^2 k``, i.e. a
    factor ``mean_i(1/nR_i)`` of a dense product, plus row copies.
    """

    def __init__(self, model: ICSMDP, behavior: list[np.ndarray]):
        space = EpochSpace(model)
        self.n = space.num_epoch_states
        self.F, self.N = space.num_full_states, model.num_agents
        parts = {}
        for i, j, v, fov in _blocks(model, behavior, space):
            parts.setdefault(i, (fov, [], []))
            parts[i][1].append(j)
            parts[i][2].append(v)
        self.parts = [(i, fov, js, np.hstack(vs)) for i, (fov, js, vs) in parts.items()]
        self.stop, self.restart = _stop_and_restart(model, behavior)
        macs = sum(V.shape[0] * V.shape[1] * fov.shape[1] for _, fov, _, V in self.parts)
        moved = sum((len(js) + 1) * fov.size for _, fov, js, _ in self.parts) + 2 * self.n
        #: estimated seconds per column of ``X`` (GEMM at 1e10 flop/s, copies at 3e8 doubles/s)
        self.cost_per_column = 2.0 * macs / 1e10 + moved / 3e8

    def __call__(self, X: np.ndarray) -> np.ndarray:
        k = X.shape[1]
        X3 = X.reshape(self.F, self.N, k)
        out = np.zeros((self.F, self.N, k))
        for i, fov, js, V in self.parts:
            nY, nR = fov.shape
            G = np.empty((len(js), nY, nR, k))
            for q, j in enumerate(js):
                np.take(X3[:, j, :], fov, axis=0, out=G[q])
            out[fov, i, :] = (V @ G.reshape(len(js) * nY, nR * k)).reshape(nY, nR, k)
        out = out.reshape(self.n, k)
        out += np.outer(self.stop, self.restart @ X)
        return out


class _TransposedSolve:
    """``Z -> (I - M)^{-T} Z`` for agent ``i``'s undiscounted continue matrix ``M``."""

    def __init__(self, red):
        self.M = red.continue_matrix_undiscounted
        nY = self.M.shape[0]
        self.lu = None
        if red.method == "lu":
            self.lu = spl.splu(sp.csc_array(sp.eye_array(nY, format="csc") - self.M))
        else:
            self.Mt = sp.csr_array(self.M.T)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        if self.lu is not None:
            return self.lu.solve(Z, trans="T")
        x = Z.copy()
        term = Z
        for _ in range(1_000_000):  # rho(M) < 1 (Assumption 1(ii)): the series converges
            term = self.Mt @ term
            x += term
            if np.abs(term).max(initial=0.0) <= 1e-15 * max(1.0, np.abs(x).max(initial=0.0)):
                break
        return x


def _worker_count(tasks: int) -> int:
    """Threads for ``tasks`` independent sparse solves (scipy's sparse products release the GIL)."""
    return max(1, min(tasks, os.cpu_count() or 1))


def epoch_chain_operator(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None
                         ) -> spl.LinearOperator:
    """``T`` as a :class:`scipy.sparse.linalg.LinearOperator`, never formed (SPEC section 6).

    ``matvec``: ``(T v)(f, i) = sum_j b_i(j|o) [P_i V_j](y, r) + b_i(STOP|o) rho0.v``
    with ``P_i X = (I - M)^{-1} Kbar diag(beta) X`` solved by
    :meth:`~icsmdp_theory.options.OptionReduction.solve_continue` (undiscounted);
    ``rmatvec``: ``T^T u``, through ``P_i^T = diag(beta) Kbar^T (I - M)^{-T}``
    (sparse LU of ``I - M`` up to ``LU_LIMIT`` local states, else its Neumann series).
    Successors ``j`` whose columns ``b_i(j | phi_i(.))`` coincide share one solve
    (``sum_j b_j o P V_j = sum_g b_g o P (sum_{j in g} V_j)``; a uniform behavior
    has one or two distinct columns instead of ``N``). The agents' solves are independent and run in a thread pool (one thread
    per core; the sparse products release the GIL), so one application costs
    about ``1/cores`` of the serial time. Memory is ``O(n)`` plus the agents'
    factorizations.
    """
    behavior = validate_behavior(model, behavior)
    space = EpochSpace(model)
    n, F, N = space.num_epoch_states, space.num_full_states, model.num_agents
    stop, rho = _stop_and_restart(model, behavior)
    agents = []
    for i in range(N):
        red = option_reduction(model, i)
        nY = red.num_local_states
        _, m, l = model.local_decode(i, np.arange(nY))
        B = behavior[i][model.agents[i].observation[m, l]][:, :N]  # (nY, N)
        cols, group = np.unique(B.T, axis=0, return_inverse=True)  # distinct successor columns
        group = np.asarray(group).reshape(-1)
        keep = np.flatnonzero(cols.any(axis=1))
        S = np.zeros((N, keep.size))  # S[j, g] = 1 when column j of B is distinct column keep[g]
        for g, c in enumerate(keep):
            S[group == c, g] = 1.0
        agents.append((i, red, np.ascontiguousarray(cols[keep].T), S, _TransposedSolve(red)))
    pool = ThreadPoolExecutor(_worker_count(N)) if _worker_count(N) > 1 else None

    def run(task, V):
        if pool is None:
            return [task(a, V) for a in agents]
        return list(pool.map(lambda a: task(a, V), agents))

    def forward(agent, V):
        i, red, Bg, S, _ = agent
        Vi = space.to_agent_view(i, V)  # (nY, nR, N)
        nY, nR = Vi.shape[:2]
        if S.shape[1] == 0:
            return np.zeros(F, dtype=V.dtype)
        g = S.shape[1]
        rhs = red.end_matrix_undiscounted @ (Vi @ S).reshape(nY, nR * g)
        W = red.solve_continue(rhs.real, discounted=False).reshape(nY, nR, g)
        if np.iscomplexobj(rhs):
            W = W + 1j * red.solve_continue(rhs.imag, discounted=False).reshape(nY, nR, g)
        return space.from_agent_view(i, np.einsum("yg,yrg->yr", Bg, W))

    def backward(agent, U):
        i, red, Bg, S, tsolve = agent
        Ui = space.to_agent_view(i, U[:, i])  # (nY, nR)
        nY, nR = Ui.shape
        if S.shape[1] == 0:
            return 0.0
        Z = (Bg[:, None, :] * Ui[:, :, None]).reshape(nY, -1)
        W = tsolve(Z.real) + 1j * tsolve(Z.imag) if np.iscomplexobj(Z) else tsolve(Z)
        Y = (red.end_matrix_undiscounted.T @ W).reshape(nY, nR, -1) @ S.T  # (nY, nR, N)
        return space.from_agent_view(i, Y)

    def matvec(v):
        v = np.asarray(v).reshape(-1)
        out = np.empty((F, N), dtype=np.result_type(v, float))
        for i, col in enumerate(run(forward, v.reshape(F, N))):
            out[:, i] = col
        return out.reshape(-1) + stop * (rho @ v)

    def rmatvec(u):
        u = np.asarray(u).reshape(-1)
        out = np.zeros((F, N), dtype=np.result_type(u, float))
        for part in run(backward, u.reshape(F, N)):
            out += part
        return out.reshape(-1) + rho * (stop @ u)

    return spl.LinearOperator((n, n), matvec=matvec, rmatvec=rmatvec, dtype=float)


# ====================================================================== matrix-level tools
def _chain_iv(T, name: str = "T"):
    """Validate a transition matrix (dense or sparse); return it as float ndarray or CSR."""
    if sp.issparse(T):
        T = sp.csr_array(T, dtype=float)
        data = T.data
    else:
        try:
            T = np.asarray(T, dtype=float)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"`{name}` must be a numeric square matrix.") from None
        data = T
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] == 0:
        raise InvalidArgumentError(f"`{name}` must be a non-empty square matrix, got shape {list(T.shape)}.")
    if not np.all(np.isfinite(data)):
        raise InvalidArgumentError(f"`{name}` must be finite.")
    if np.any(data < 0):
        raise InvalidArgumentError(f"`{name}` must be non-negative (a transition matrix).")
    sums = np.asarray(T.sum(axis=1)).ravel()
    bad = np.abs(sums - 1.0) > CHAIN_ROW_TOL
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(
            f"rows of `{name}` must sum to 1 (within {CHAIN_ROW_TOL:g}): row {s} sums to {float(sums[s])!r}.")
    return T


def _graph(T) -> sp.csr_array:
    if sp.issparse(T):
        g = sp.csr_array(T, copy=True)
        g.eliminate_zeros()
        g.data[:] = 1.0
        return g
    return sp.csr_array((T > 0).astype(np.int8))


def _gth_inplace(A: np.ndarray) -> np.ndarray:
    """Blocked GTH on a float64 C-contiguous copy ``A`` (destroyed); returns ``pi``.

    State ``k`` is eliminated (censored out) from the last to the first:
    ``s_k = sum_{j<k} A[k, j]`` and ``A[i, j] += A[i, k] A[k, j] / s_k`` for
    ``i, j < k``. Back substitution: ``pi_0 = 1``,
    ``pi_k = sum_{i<k} pi_i A[i, k] / s_k``. Within a block ``B`` of states,
    the row operations on ``A[B, :T]`` and the column operations on
    ``A[:T, B]`` (``T`` the states below the block) are accumulated in
    ``b x b`` matrices ``L`` and ``R``; ``A[:T, :T]`` is read by no step of the
    block, so its update ``(A[:T, B] R / s_B) (L A[B, :T])`` is applied once.
    Every operation adds or multiplies non-negative numbers.
    """
    n = A.shape[0]
    s = np.zeros(n)
    k_hi = n - 1
    while k_hi >= 1:
        k_lo = max(1, k_hi - _GTH_BLOCK + 1)
        b = k_hi - k_lo + 1
        blk = slice(k_lo, k_hi + 1)
        abb = A[blk, blk].copy()
        row_sum_low = A[blk, :k_lo].sum(axis=1)
        L = np.eye(b)
        R = np.eye(b)
        sb = np.empty(b)
        for q in range(b - 1, -1, -1):
            sq = abb[q, :q].sum() + row_sum_low[q]
            if not sq > 0.0:
                raise InvalidArgumentError(
                    f"GTH needs an irreducible matrix: state {k_lo + q} cannot reach any state "
                    f"below it once the states above are censored out.")
            sb[q] = sq
            if q:
                c = abb[:q, q] / sq
                r = abb[q, :q]
                abb[:q, :q] += np.outer(c, r)
                row_sum_low[:q] += c * row_sum_low[q]
                L[:q] += np.outer(c, L[q])
                R[:, :q] += np.outer(R[:, q], r / sq)
        s[blk] = sb
        atb = A[:k_lo, blk] @ R
        A[:k_lo, blk] = atb
        A[blk, blk] = abb
        A[:k_lo, :k_lo] += (atb / sb) @ (L @ A[blk, :k_lo])
        k_hi = k_lo - 1
    pi = np.empty(n)
    pi[0] = 1.0
    for k in range(1, n):
        pi[k] = pi[:k] @ A[:k, k] / s[k]
    return pi / pi.sum()


def gth_stationary(P) -> np.ndarray:
    """Stationary vector of an irreducible stochastic matrix by GTH elimination.

    Subtraction-free: every entry of the result has full relative precision
    (error a modest multiple of ``n`` machine epsilons), even entries of
    ``1e-200``. ``O(n^3)`` time, one dense copy of ``P``.

    Parameters
    ----------
    P : array_like or sparse, shape (n, n)
        Non-negative, rows summing to 1; the diagonal is never read.

    Raises
    ------
    InvalidArgumentError
        If ``P`` is not a transition matrix, or is reducible.

    Examples
    --------
    >>> gth_stationary([[0.5, 0.5], [0.25, 0.75]]).tolist()
    [0.3333333333333333, 0.6666666666666666]
    """
    P = _chain_iv(P, "P")
    ncomp, _ = connected_components(_graph(P), directed=True, connection="strong")
    if ncomp != 1:
        raise InvalidArgumentError(
            f"`P` must be irreducible for GTH; it has {ncomp} communicating classes "
            f"(use long_run_occupancy for a reducible chain).")
    A = P.toarray() if sp.issparse(P) else np.array(P, dtype=float, order="C", copy=True)
    return _gth_inplace(A)


@dataclass(frozen=True)
class ChainClasses:
    """Communicating-class structure of a finite chain.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Closed-class index (``0..K-1``, ordered by smallest state) or ``-1`` for a transient state.
    closed : tuple of ndarray
        The states of each closed class, sorted.
    periods : tuple of int
        The period of each closed class: gcd of its cycle lengths.
    transient : ndarray
        The transient states, sorted.
    """

    labels: np.ndarray
    closed: tuple
    periods: tuple
    transient: np.ndarray

    @property
    def num_closed(self) -> int:
        return len(self.closed)

    @property
    def is_ergodic_unichain(self) -> bool:
        """One closed class, aperiodic: ``T^t(s, .) -> pi`` from every ``s``."""
        return len(self.closed) == 1 and self.periods[0] == 1


def _period(graph: sp.csr_array, states: np.ndarray) -> int:
    """Period of a closed class: gcd over its edges ``u -> v`` of ``level(u) + 1 - level(v)``
    with BFS levels from one root."""
    sub = graph[states][:, states]
    lev = shortest_path(sub, directed=True, unweighted=True, indices=0)
    lev = lev.astype(np.int64)
    coo = sub.tocoo()
    diffs = np.abs(lev[coo.row] + 1 - lev[coo.col])
    return int(np.gcd.reduce(diffs)) if diffs.size else 1


def chain_classes(T) -> ChainClasses:
    """Closed (recurrent) classes, their periods and the transient states of ``T``.

    Classes are the strongly connected components of the graph ``T > 0``
    (:func:`scipy.sparse.csgraph.connected_components`); a class is closed when
    no edge leaves it.

    Examples
    --------
    >>> c = chain_classes(np.array([[0., 1., 0.], [1., 0., 0.], [0.5, 0., 0.5]]))
    >>> c.labels.tolist(), c.periods
    ([0, 0, -1], (2,))
    """
    g = _graph(T)
    n = g.shape[0]
    ncomp, comp = connected_components(g, directed=True, connection="strong")
    coo = g.tocoo()
    leaves = np.zeros(ncomp, bool)
    cross = comp[coo.row] != comp[coo.col]
    leaves[comp[coo.row[cross]]] = True
    closed_comps = np.flatnonzero(~leaves)
    members = [np.flatnonzero(comp == c) for c in closed_comps]
    members.sort(key=lambda a: int(a[0]))
    labels = np.full(n, -1, dtype=np.int64)
    for k, st in enumerate(members):
        labels[st] = k
    periods = tuple(_period(g, st) for st in members)
    return ChainClasses(labels=labels, closed=tuple(members), periods=periods,
                        transient=np.flatnonzero(labels < 0))


def _absorption(T, classes: ChainClasses) -> np.ndarray:
    """``H[t, k] = P(absorbed in closed class k | start at transient state t)``: ``(|Tr|, K)``."""
    tr = classes.transient
    K = classes.num_closed
    if tr.size == 0:
        return np.zeros((0, K))
    lab = classes.labels
    if sp.issparse(T):
        T = sp.csr_array(T)
        ttr = T[tr]
        ind = sp.csr_array((np.ones(int((lab >= 0).sum())),
                            (np.flatnonzero(lab >= 0), lab[lab >= 0])), shape=(T.shape[0], K))
        rhs = np.asarray((ttr @ ind).toarray())
        A = sp.csc_array(sp.eye_array(tr.size, format="csc") - ttr[:, tr])
        H = spl.splu(A).solve(rhs)
    else:
        ttr = T[tr]
        rhs = np.stack([ttr[:, lab == k].sum(axis=1) for k in range(K)], axis=1)
        H = sla.solve(np.eye(tr.size) - ttr[:, tr], rhs)
    return np.clip(H, 0.0, 1.0)


def _initial_iv(initial, n):
    try:
        init = np.asarray(initial, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("`initial` must be a numeric probability vector.") from None
    if init.size != n:
        raise InvalidArgumentError(f"`initial` must hold {n} probabilities (one per state), got {init.size}.")
    flat = init.reshape(-1)
    if not np.all(np.isfinite(flat)) or np.any(flat < -1e-12) or abs(flat.sum() - 1.0) > CHAIN_ROW_TOL:
        raise InvalidArgumentError(
            f"`initial` must be a probability vector (non-negative, summing to 1); its minimum is "
            f"{float(flat.min())!r} and it sums to {float(flat.sum())!r}.")
    return np.clip(init, 0.0, None)


@dataclass(frozen=True, kw_only=True, repr=False)
class StationaryResult(Result):
    """Long-run average occupancy of a chain started from an initial law (SPEC sections 4, 6).

    Attributes
    ----------
    law : ndarray
        ``pi``, the Cesaro limit of ``initial T^t``; shape of ``initial``
        (``(num_full_states, N)``, axes ``[f, i]``, from :func:`stationary_law`).
    num_closed_classes : int
    closed_class_sizes : tuple of int
    class_weights : tuple of float
        ``w_k``: probability that the chain started from ``initial`` ends in closed class ``k``.
    class_periods : tuple of int
    class_labels : ndarray of int, shape of ``law``
        Closed-class index of each state, ``-1`` for transient states.
    num_transient_states : int
    """

    law: np.ndarray
    num_closed_classes: int
    closed_class_sizes: tuple
    class_weights: tuple
    class_periods: tuple
    class_labels: np.ndarray
    num_transient_states: int


def long_run_occupancy(T, initial, *, classes: ChainClasses | None = None) -> StationaryResult:
    """Cesaro limit ``lim_n (1/n) sum_{t<n} initial T^t`` of any finite chain (reducible or not).

    Parameters
    ----------
    T : array_like or sparse, shape (n, n)
        Transition matrix.
    initial : array_like, ``n`` entries (any shape)
        Initial law; the result has the same shape.
    classes : ChainClasses, optional
        Precomputed :func:`chain_classes` of ``T``.

    Examples
    --------
    Two absorbing states reached from a transient one with probabilities 1/4 and 3/4:

    >>> T = [[0.5, 0.125, 0.375], [0., 1., 0.], [0., 0., 1.]]
    >>> long_run_occupancy(T, [1., 0., 0.]).law.tolist()
    [0.0, 0.25, 0.75]
    """
    t0 = time.perf_counter()
    T = _chain_iv(T)
    init = _initial_iv(initial, T.shape[0])
    flat = init.reshape(-1)
    classes = chain_classes(T) if classes is None else classes
    H = _absorption(T, classes)
    law = np.zeros(T.shape[0])
    weights = []
    for k, st in enumerate(classes.closed):
        w = float(flat[st].sum() + flat[classes.transient] @ H[:, k])
        weights.append(w)
        sub = T[st][:, st]
        sub = sub.toarray() if sp.issparse(sub) else np.array(sub, order="C")
        if w > 0:
            law[st] = w * _gth_inplace(sub)
    total = sum(weights)
    law /= law.sum()
    weights = tuple(w / total for w in weights)
    K = classes.num_closed
    msg = (f"{K} closed class{'es' if K != 1 else ''} (sizes {[len(c) for c in classes.closed]}), "
           f"{classes.transient.size} transient states; long-run occupancy by GTH on each closed "
           f"class weighted by absorption probabilities.")
    for a in (law,):
        a.setflags(write=False)
    labels = classes.labels.reshape(init.shape)
    return StationaryResult(success=True, status="exact", message=msg, iterations=0,
                            elapsed=time.perf_counter() - t0, law=law.reshape(init.shape),
                            num_closed_classes=K,
                            closed_class_sizes=tuple(len(c) for c in classes.closed),
                            class_weights=weights, class_periods=classes.periods,
                            class_labels=labels, num_transient_states=int(classes.transient.size))


def _behavior_key(behavior: list[np.ndarray]) -> tuple:
    return tuple((b.shape, b.tobytes()) for b in behavior)


def stationary_law(model: ICSMDP, behavior: Sequence[np.ndarray] | None = None, *,
                   max_states: int = DENSE_CHAIN_LIMIT) -> StationaryResult:
    """Long-run average occupancy ``pi[f, i]`` of the epoch chain from ``rho0`` (SPEC sections 4, 6).

    The epoch chain restarts from ``rho0`` after STOP (:func:`epoch_chain`);
    ``pi`` is unique even when the chain is reducible (see the module
    docstring). Cached on the model per behavior policy.

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, N+1)`` or None (uniform over admissible successors)
    max_states : int
        Limit on epoch states (dense chain and ``O(n^3)`` GTH).

    Returns
    -------
    StationaryResult
        ``law`` of shape ``(num_full_states, N)``.

    Above ``max_states`` epoch states the law is computed matrix-free as the
    renewal occupancy from ``rho0`` (:func:`_restart_occupancy`); that route
    requires every state reachable from ``rho0`` to reach STOP.

    Raises
    ------
    StateSpaceTooLargeError
        Above ``max_states`` when some reachable state never reaches STOP.
    """
    behavior = validate_behavior(model, behavior)
    # b_i(c'|o) is read through the observation maps: the law depends on them (observation store)
    key = ("stationary", _behavior_key(behavior), int(max_states))
    return model.derived.get(key, lambda: _stationary_law(model, behavior, max_states),
                             observation=True)


def _stationary_law(model: ICSMDP, behavior: list, max_states: int) -> StationaryResult:
    t0 = time.perf_counter()
    if model.num_epoch_states > max_states:
        res = _restart_occupancy(model, behavior)
        settings = {"behavior": "given", "max_states": int(max_states), "method": "operator"}
        return StationaryResult(**{**res.__dict__, "settings": settings,
                                   "elapsed": time.perf_counter() - t0})
    T = epoch_chain(model, behavior, max_states=max_states)
    rho0 = initial_epoch_law(model)
    res = long_run_occupancy(T, rho0)
    settings = {"behavior": "given", "max_states": int(max_states)}
    return StationaryResult(**{**res.__dict__, "settings": settings,
                               "elapsed": time.perf_counter() - t0})


def _restart_occupancy(model: ICSMDP, behavior: list, *, rtol: float = 1e-12,
                       rel_tol: float = 1e-14, max_epochs: int = 100_000) -> StationaryResult:
    """Long-run occupancy of a large epoch chain without forming it (matrix-free).

    With ``T = A + u rho0^T`` (``u`` = STOP probabilities) and every state
    reaching STOP, the chain is a renewal process restarted from ``rho0``; its
    long-run occupancy is the normalized expected number of visits before STOP,
    ``pi ∝ z = rho0^T (I - A)^{-1}``, i.e. the solution of
    ``(I - A^T) z = rho0`` with ``A^T z = T^T z - rho0 (u . z)``
    (:func:`epoch_chain_operator`).

    1. GMRES (restart 40) on that system, to relative residual ``rtol`` in the
       2-norm: about 25 operator applications on the 60,000-state benchmark
       where the renewal sum needs over 200. The answer is accepted when the
       residual ``||rho0 - (I - A^T) z||_1 <= 1e-10`` and ``z >= -1e-12 max z``
       (negative round-off is then set to 0).
    2. Otherwise (GMRES stalls when ``I - A`` is singular, i.e. some state
       reachable from ``rho0`` never reaches STOP) the renewal sum
       ``z = sum_k rho0^T A^k``, whose terms are non-negative with mass
       ``P(no STOP in the first k epochs)``; it stops when that mass is below
       ``rel_tol`` times the total, and a closed class without STOP makes the
       mass stall, which raises, naming the method that handles it (the dense one).
    """
    op = epoch_chain_operator(model, behavior)
    stop, rho = _stop_and_restart(model, behavior)
    n = rho.size
    applications = [0]

    def lhs(z):
        applications[0] += 1
        z = np.asarray(z).reshape(-1)
        return z - (op.rmatvec(z) - rho * (stop @ z))

    L = spl.LinearOperator((n, n), matvec=lhs, dtype=float)
    z, _ = spl.gmres(L, rho, x0=rho.copy(), rtol=rtol, atol=0.0, restart=40, maxiter=10)
    residual = float(np.abs(rho - lhs(z)).sum())
    ok = bool(np.all(np.isfinite(z))) and residual <= 1e-10 and z.min() >= -1e-12 * z.max()
    if ok:
        z = np.maximum(z, 0.0)
        k = applications[0]
        how = (f"renewal occupancy from rho0 by GMRES on (I - A^T) z = rho0 ({k} operator "
               f"applications, residual {residual:.2g} in the 1-norm; matrix-free)")
    else:
        z, k = _renewal_sum(op, stop, rho, model, rel_tol, max_epochs)
        how = f"renewal occupancy from rho0, {k} epochs summed (matrix-free)"
    law = z / z.sum()
    support = law > 0
    shape = (model.num_full_states, model.num_agents)
    return StationaryResult(
        success=True, status="converged",
        message=f"{how}; the states reachable from rho0 form one closed class (period not computed).",
        iterations=k, settings={}, elapsed=0.0, law=law.reshape(shape), num_closed_classes=1,
        closed_class_sizes=(int(support.sum()),), class_weights=(1.0,), class_periods=(0,),
        class_labels=np.where(support, 0, -1).reshape(shape),
        num_transient_states=int(n - support.sum()))


def _renewal_sum(op, stop, rho, model, rel_tol, max_epochs) -> tuple[np.ndarray, int]:
    """``z = sum_k rho0^T A^k`` (see :func:`_restart_occupancy`); raises if the mass stalls."""
    z = rho.astype(float).copy()
    term = z.copy()
    checkpoint_mass = 1.0
    stalled = False
    for k in range(1, max_epochs + 1):
        term = op.rmatvec(term) - rho * (stop @ term)
        np.maximum(term, 0.0, out=term)  # round-off only: A is non-negative
        z += term
        mass = term.sum()
        if mass <= rel_tol * z.sum():
            break
        if k % 1000 == 0:  # a closed class without STOP keeps its mass exactly
            stalled = mass >= (1 - 1e-9) * checkpoint_mass
            checkpoint_mass = mass
            if stalled:
                break
    if stalled or k == max_epochs:
        raise StateSpaceTooLargeError(
            f"the epoch chain of {model.num_epoch_states:,} states does not reach STOP from "
            f"every state reachable from rho0 within {max_epochs} epochs; its long-run law "
            f"needs the dense method (raise `max_states` if memory allows).")
    return z, k


def mu(model: ICSMDP, law: np.ndarray, behavior: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """``mu[f, i, c'] = pi(f, i) b_i(c' | phi_i(f))`` (SPEC section 6).

    Parameters
    ----------
    law : ndarray, shape (num_full_states, N) or (num_epoch_states,)
        A law on epoch states, e.g. ``stationary_law(model).law``.

    Returns
    -------
    ndarray, shape (num_full_states, N, N+1)
    """
    beh = epoch_behavior(model, behavior)
    law = np.asarray(law, dtype=float)
    if law.size != model.num_epoch_states:
        raise InvalidArgumentError(
            f"`law` must hold {model.num_epoch_states} values (one per epoch state), got {law.size}.")
    return law.reshape(beh.shape[:2])[:, :, None] * beh
