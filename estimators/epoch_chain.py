"""The epoch chain of a model under a behavior policy (SPEC section 6).

On full epoch states ``s = (f, i)``, flattened ``s = f*N + i``
(:mod:`icsmdp_theory.epoch`), one step is one decision epoch: agent ``i``
observes ``o = phi_i(m, l_i)`` and draws ``c' ~ b_i(. | o)``;

- if ``c' != STOP``, its invocation ends in ``y' = (x', m', l_i')`` with the
  *undiscounted* end law ``P_i(y' | y) = [(I - M)^{-1} Kbar diag(beta)](y, y')``,
  ``M = Kbar diag(1 - beta)`` (SPEC section 2), the other agents' private
  states are unchanged and ``c'`` becomes active;
- if ``c' = STOP``, the chain moves straight to a fresh ``s0 ~ rho0``
  (no extra terminal epoch).

Adaptable agents (issue 15): the behavior draws a choice ``j = a*(N+1) + c'``
(:mod:`estimators.behavior`) and the invocation runs mode ``a``'s option
reduction, so the block ``i -> c'`` is ``sum_a b_i(a*(N+1) + c' | o) P_{i,a}``
and ``u(s) = sum_a b_i(a*(N+1) + STOP | o)`` (:func:`end_law` per mode). A
one-mode model's chain is computed by exactly today's operations.

So ``T = A + u rho0^T`` with ``A`` the sparse continuation part,
``u(s) = b_i(STOP | phi_i(s))`` and ``rho0`` the initial epoch law
(:class:`SplitChain`, :func:`stop_and_restart`). ``P_i`` (:func:`end_law`) is
one dense solve of ``(I - M) P = Kbar diag(beta)`` for agents with up to 3,000
local states (else
:meth:`~icsmdp_theory.options.OptionReduction.end_law_pushforward` with the
identity labelling); entries outside its structural support (end states not
reachable by continue steps followed by an end step) are set to exactly 0, so
the chain's graph is the true one, and rows are renormalized (they sum to 1
within ``1e-14`` before).

Three forms of ``T``: the dense or CSR matrix (:func:`epoch_chain`, up to
``exact_limit`` epoch states dense), the split form (:func:`epoch_chain_split`),
and, beyond any matrix, :func:`epoch_chain_operator`, which applies ``T`` and
``T^T`` through end-law solves without forming anything ``n x n``.
:class:`EpochStepper` applies ``T`` to a block of vectors through its block
structure (cheaper than a dense product when agents have private states).

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> T = epoch_chain(load_example("tiny-handoff"))
>>> T.shape, bool(np.allclose(T.sum(axis=1), 1.0))
((6, 6), True)
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
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
from icsmdp_theory.validation import positive_int
from estimators.behavior import epoch_behavior, state_behavior, validate_behavior
from icsmdp_theory.epoch_model import EpochModel

__all__ = ["SplitChain", "EpochStepper", "end_law", "epoch_chain", "epoch_chain_split",
           "explicit_epoch_chain",
           "epoch_chain_operator", "stop_and_restart", "DENSE_CHAIN_LIMIT", "MAX_CHAIN_NONZEROS"]

#: Largest epoch-state count for a dense ``n x n`` epoch chain (200 MB at the limit) and for
#: GTH (``O(n^3)``: about 15 s at the limit on 2 cores): the default ``exact_limit``.
DENSE_CHAIN_LIMIT = 5000
#: Largest number of stored entries of a sparse epoch chain (or of one dense end law ``P_i``).
MAX_CHAIN_NONZEROS = 50_000_000


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


def end_law(model: ICSMDP, i: int, mode: int | None = None) -> np.ndarray:
    """Dense undiscounted end law ``P_i[y, y'] = P(y_end = y' | y)`` of agent ``i`` (cached).

    ``mode``: the mode ``a`` whose option reduction runs (``None``: the agent's only
    mode, refused for an agent with several; issue 15).

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
    red = option_reduction(model, i, mode)
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
    k = 0 if mode is None else int(mode)
    key = ("end_law", int(i)) if k == 0 else ("end_law", int(i), k)
    return model.derived.get(key, compute, observation=False)


def _blocks(model: ICSMDP, behavior: list[np.ndarray], space: EpochSpace):
    """Yield ``(i, j, vals[y, y'], fov[y, r])``: the ``i -> j`` continuation block.

    ``vals = sum_a b_i(a*(N+1) + j | o) P_{i,a}`` over the modes ``a`` with mass on
    ``(a, j)`` (one mode: ``b_i(j | o) P_i``, today's operations).
    """
    N, S = model.num_agents, model.num_successors
    for i in range(N):
        K = model.num_modes[i]
        P = [end_law(model, i, a if K > 1 else None) for a in range(K)]
        nY = P[0].shape[0]
        _, m, l = model.local_decode(i, np.arange(nY))
        B = behavior[i][model.agents[i].observation[m, l]]  # (nY, J)
        fov = space.full_of_view[i].reshape(nY, space.num_rest[i])
        for j in range(N):
            vals = None
            for a in range(K):
                w = B[:, a * S + j]
                if w.any():
                    term = w[:, None] * P[a]
                    vals = term if vals is None else vals + term
            if vals is not None:
                yield i, j, vals, fov


def _stop_column(model: ICSMDP, beh: np.ndarray) -> np.ndarray:
    """``sum_a b(a*(N+1) + STOP | .)`` over the last axis of ``beh`` (one mode: the STOP column)."""
    S, K = model.num_successors, max(model.num_modes)
    if K == 1:
        return beh[..., model.stop]
    return beh[..., model.stop::S].sum(axis=-1)


def stop_and_restart(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(u, rho0)`` of ``T = A + u rho0^T``: ``u[s] = b_i(STOP | phi_i(s))`` and the initial
    epoch law, both flattened over epoch states ``s = f*N + i`` (shape ``(n,)`` each).
    With modes ``u[s] = sum_a b_i(a*(N+1) + STOP | phi_i(s))``."""
    beh = epoch_behavior(model, behavior)
    return _stop_column(model, beh).reshape(-1), initial_epoch_law(model).reshape(-1)


def epoch_chain_split(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None
                      ) -> SplitChain:
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
    u, rho = stop_and_restart(model, behavior=behavior)
    return SplitChain(A, u, rho)


def _coo_to_csr(rows, cols, vals, n) -> sp.csr_array:
    if not rows:
        return sp.csr_array((n, n))
    A = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                     shape=(n, n))
    A.sum_duplicates()
    return A


def _epoch_chain_iv(model, sparse, exact_limit):
    if not isinstance(sparse, (bool, np.bool_)):
        raise InvalidArgumentError(f"`sparse` must be True or False, got {sparse!r}.")
    exact_limit = positive_int("exact_limit", exact_limit)
    n = model.num_epoch_states
    if not sparse and n > exact_limit:
        raise StateSpaceTooLargeError(
            f"a dense epoch chain holds n x n values; this instance has n = {n:,} epoch states "
            f"and the dense limit `exact_limit` is {exact_limit:,} ({8 * n * n / 1e9:.1f} GB requested). Use "
            f"`sparse=True`, or mixing_report, which works without T beyond `exact_limit`.")


def epoch_chain(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None,
                sparse: bool = False, exact_limit: int = DENSE_CHAIN_LIMIT):
    """Transition matrix ``T[s, s']`` of the epoch chain over ``s = f*N + i`` (SPEC section 6).

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, J)`` (``J = N+1`` without modes) or None
        ``b_i(c' | o)``; ``None`` is uniform over admissible successors.
    sparse : bool
        Return CSR (the restart part stored on the support of ``rho0``) instead
        of a dense array.
    exact_limit : int
        Dense limit on the number of epoch states (default :data:`DENSE_CHAIN_LIMIT`).

    Returns
    -------
    ndarray or scipy.sparse.csr_array, shape ``(n, n)``, rows summing to 1.

    Raises
    ------
    StateSpaceTooLargeError
        Dense: more than ``exact_limit`` epoch states. Sparse: more than
        :data:`MAX_CHAIN_NONZEROS` stored entries.

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> T = epoch_chain(load_example("tiny-handoff"))
    >>> T.shape, bool(np.allclose(T.sum(axis=1), 1.0))
    ((6, 6), True)
    """
    _epoch_chain_iv(model, sparse, exact_limit)
    behavior = validate_behavior(model, behavior)
    if sparse:
        split = epoch_chain_split(model, behavior=behavior)
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
    u, rho = stop_and_restart(model, behavior=behavior)
    T += np.outer(u, rho)
    return T


class EpochStepper:
    """``X -> T @ X`` for dense ``X`` of shape ``(n, k)`` using the block structure of ``T``.

    For agent ``i``, rows ``(f(y, r), i)`` of ``T`` map to columns ``(f(y', r), j)``
    with weight ``b_i(j | phi_i(y)) P_i(y, y')``, the same for every rest ``r``.
    So ``(T X)[(y, r), i] = sum_j sum_y' V_ij[y, y'] X[(f(y', r), j)]``: gather
    the rows of ``X`` in agent ``i``'s view, one GEMM with ``[V_i0 | V_i1 | ...]``,
    scatter back. The restart adds ``u (rho0 X)``. Cost: about
    ``n k sum_i J_i nY_i nR_i nY_i`` multiply-adds instead of ``n^2 k``, i.e. a
    factor ``mean_i(1/nR_i)`` of a dense product, plus row copies.

    Parameters
    ----------
    model : ICSMDP
    behavior : list of ndarray ``(nO_i, J)`` or None
        ``None``: uniform over admissible choices (``J = N+1`` without modes).

    Attributes
    ----------
    n : int
        Number of epoch states.
    cost_per_column : float
        Estimated seconds per column of ``X`` (GEMM at 1e10 flop/s, copies at 3e8 doubles/s),
        which the mixing-time search compares with a dense product.
    """

    def __init__(self, model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None):
        behavior = validate_behavior(model, behavior)
        space = EpochSpace(model)
        self.n = space.num_epoch_states
        self.F, self.N = space.num_full_states, model.num_agents
        parts = {}
        for i, j, v, fov in _blocks(model, behavior, space):
            parts.setdefault(i, (fov, [], []))
            parts[i][1].append(j)
            parts[i][2].append(v)
        self.parts = [(i, fov, js, np.hstack(vs)) for i, (fov, js, vs) in parts.items()]
        self.stop, self.restart = stop_and_restart(model, behavior=behavior)
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


def epoch_chain_operator(model: ICSMDP, *, behavior: Sequence[np.ndarray] | None = None
                         ) -> spl.LinearOperator:
    """``T`` as a :class:`scipy.sparse.linalg.LinearOperator`, never formed (SPEC section 6).

    ``matvec``: ``(T v)(f, i) = sum_j b_i(j|o) [P_i V_j](y, r) + b_i(STOP|o) rho0.v``
    with ``P_i X = (I - M)^{-1} Kbar diag(beta) X`` solved by
    :meth:`~icsmdp_theory.options.OptionReduction.solve_continue` (undiscounted);
    ``rmatvec``: ``T^T u``, through ``P_i^T = diag(beta) Kbar^T (I - M)^{-T}``
    (sparse LU of ``I - M`` up to ``LU_LIMIT`` local states, else its Neumann series).
    Successors ``j`` whose columns ``b_i(j | phi_i(.))`` coincide share one solve
    (``sum_j b_j o P V_j = sum_g b_g o P (sum_{j in g} V_j)``; a uniform behavior
    has one or two distinct columns instead of ``N``). With modes, one such term per
    ``(agent, mode)`` with mode ``a``'s reduction and columns ``b_i(a*(N+1) + j | o)``,
    summed into agent ``i``'s rows. The agents' solves are independent and run in a thread pool (one thread
    per core; the sparse products release the GIL), so one application costs
    about ``1/cores`` of the serial time. Memory is ``O(n)`` plus the agents'
    factorizations.
    """
    behavior = validate_behavior(model, behavior)
    space = EpochSpace(model)
    n, F, N = space.num_epoch_states, space.num_full_states, model.num_agents
    stop, rho = stop_and_restart(model, behavior=behavior)
    agents = []
    N1 = model.num_successors
    for i in range(N):
        K = model.num_modes[i]
        for a in range(K):
            red = option_reduction(model, i, a if K > 1 else None)
            nY = red.num_local_states
            _, m, l = model.local_decode(i, np.arange(nY))
            B = behavior[i][model.agents[i].observation[m, l]][:, a * N1:a * N1 + N]  # (nY, N)
            if K > 1 and not B.any():
                continue                  # mode a never runs an invocation that continues
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
        out = np.zeros((F, N), dtype=np.result_type(v, float))
        done = np.zeros(N, dtype=bool)
        for agent, col in zip(agents, run(forward, v.reshape(F, N))):
            i = agent[0]
            if done[i]:                   # a further mode of agent i
                out[:, i] += col
            else:                         # one mode: today's assignment
                out[:, i] = col
                done[i] = True
        return out.reshape(-1) + stop * (rho @ v)

    def rmatvec(u):
        u = np.asarray(u).reshape(-1)
        out = np.zeros((F, N), dtype=np.result_type(u, float))
        for part in run(backward, u.reshape(F, N)):
            out += part
        return out.reshape(-1) + rho * (stop @ u)

    return spl.LinearOperator((n, n), matvec=matvec, rmatvec=rmatvec, dtype=float)




def explicit_epoch_chain(model: EpochModel, *, behavior=None) -> np.ndarray:
    """Dense epoch chain ``T[s, s']`` of an explicit epoch model (SPEC sections 6 and 10).

    ``T[s, s'] = sum_{c' != STOP} b(c'|s) sum_tau P(k', tau | s, c') + b(STOP|s) rho0(s')``
    with ``s' = (k', c')`` and ``b`` from :func:`estimators.behavior.state_behavior`
    (default: uniform over each state's own admissible set).

    Raises
    ------
    StateSpaceTooLargeError
        More than :data:`DENSE_CHAIN_LIMIT` epoch states.
    """
    S, N1 = model.num_epoch_states, model.num_successors
    if S > DENSE_CHAIN_LIMIT:
        raise StateSpaceTooLargeError(
            f"the dense epoch chain needs at most {DENSE_CHAIN_LIMIT:,} epoch states; this model "
            f"has {S:,}.")
    b = state_behavior(model, behavior)
    P = model.transition_law()                                  # (S*(N+1), S)
    B = sp.csr_array((b.reshape(-1), (np.repeat(np.arange(S), N1), np.arange(S * N1))),
                     shape=(S, S * N1))
    T = (B @ P).toarray() + np.outer(b[:, N1 - 1], np.asarray(model.rho0, dtype=float))
    return T
