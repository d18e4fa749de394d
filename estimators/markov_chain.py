"""Markov-chain algebra on a transition matrix: classes, GTH, absorption, long-run occupancy,
detailed balance (SPEC sections 4 and 6).

Everything here takes a transition matrix ``T[s, s']`` (dense ``ndarray`` or
``scipy.sparse``, rows summing to 1 within :data:`CHAIN_ROW_TOL`); the epoch
chain of a model is built by :mod:`estimators.epoch_chain`.

Long-run occupancy
------------------
The reference law ``pi`` of SPEC sections 4 and 6 is the Cesaro limit
``lim_n (1/n) sum_{t<n} rho0 T^t``, unique even for a reducible chain:

1. communicating classes (strongly connected components of the graph of
   ``T``); a class is *closed* (recurrent) when no edge leaves it
   (:func:`chain_classes`);
2. on each closed class ``C``, its stationary vector ``pi_C`` by GTH
   (:func:`gth_stationary`);
3. absorption probabilities ``h_C = P(reach C | s)`` from the transient
   states ``Tr``: ``(I - T_TrTr) h_C = T_TrC 1`` (sparse LU, or LAPACK for a
   dense ``T``), and the weights ``w_C = rho0(C) + rho0_Tr . h_C``
   (:func:`absorption_probabilities`);
4. ``pi = sum_C w_C pi_C`` (:func:`long_run_occupancy`).

GTH (Grassmann, Taksar and Heyman, 1985) eliminates states one at a time from
the last, replacing each pivot ``1 - P[k, k]`` by the sum of the row's
remaining off-diagonal entries. No subtraction ever occurs, so every entry of
``pi`` keeps full relative precision, however small (an eigen-solver returns
entries with absolute error ``~1e-16`` and may return negative ones). The
elimination here is blocked: inside a block of ``b`` states the updates are
``b x b`` and are accumulated as two ``b x b`` transforms, and the trailing
matrix gets one product of non-negative matrices per block, which keeps the
``O(n^3)`` work in BLAS (about 1.5-2 s for 2,000 states and 6-8 s for 4,000 on 2 cores).

Detailed balance
----------------
``T`` is reversible when ``pi_s T[s, s'] = pi_s' T[s', s]`` for all ``s, s'``.
:func:`detailed_balance` decides it without forming ``pi`` (which underflows
for chains with ratios like ``(p/q)^n``): the support must be symmetric and,
by Kolmogorov's criterion, the log-ratios ``log T[s, s'] - log T[s', s]``
must be differences ``phi_s' - phi_s`` of a potential. ``phi`` is built along
a breadth-first spanning tree of each connected component and then checked
on every edge; ``log pi = phi - logsumexp(phi)`` for an irreducible chain.
For a reversible chain ``S[s, s'] = sqrt(T[s, s'] T[s', s])`` equals
``D^{1/2} T D^{-1/2}`` (``D = diag(pi)``), a symmetric matrix with the
eigenvalues of ``T`` (:func:`symmetrized_chain`).

Examples
--------
>>> T = np.array([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.5, 0.5]])
>>> gth_stationary(T).tolist()
[0.25, 0.5, 0.25]
>>> db = detailed_balance(T)
>>> db.is_reversible, np.exp(db.log_pi).round(12).tolist()
(True, [0.25, 0.5, 0.25])
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from scipy.sparse.csgraph import breadth_first_order, connected_components, shortest_path
from scipy.special import logsumexp

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.results import Result

__all__ = ["ChainClasses", "DetailedBalance", "StationaryResult", "absorption_probabilities",
           "chain_classes", "detailed_balance", "gth_stationary", "long_run_occupancy",
           "symmetrized_chain", "validate_chain", "CHAIN_ROW_TOL", "DETAILED_BALANCE_TOL"]

#: Rows of a transition matrix given to the matrix-level functions must sum to 1 within this.
CHAIN_ROW_TOL = 1e-9
#: Largest violation ``|log T[s,s'] - log T[s',s] - (phi_s' - phi_s)|`` accepted as detailed balance.
DETAILED_BALANCE_TOL = 1e-9
_GTH_BLOCK = 128


def validate_chain(T, name: str = "T"):
    """Validate a transition matrix (dense or sparse); return it as float ndarray or CSR.

    Raises
    ------
    InvalidArgumentError
        If ``T`` is not square, not finite, negative somewhere, or a row does not sum to 1
        within :data:`CHAIN_ROW_TOL` (the first such row is named).
    """
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
    P = validate_chain(P, "P")
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


def absorption_probabilities(T, classes: ChainClasses) -> np.ndarray:
    """``H[t, k] = P(absorbed in closed class k | start at transient state t)``: ``(|Tr|, K)``.

    Solves ``(I - T_TrTr) H = T_TrC`` with one right-hand side per closed class
    (sparse LU for a sparse ``T``, LAPACK for a dense one); rows follow
    ``classes.transient``. ``T`` must be a validated transition matrix
    (:func:`validate_chain`) and ``classes`` its :func:`chain_classes`.

    Examples
    --------
    >>> T = np.array([[0.5, 0.125, 0.375], [0., 1., 0.], [0., 0., 1.]])
    >>> absorption_probabilities(T, chain_classes(T)).tolist()
    [[0.25, 0.75]]
    """
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
    T = validate_chain(T)
    init = _initial_iv(initial, T.shape[0])
    flat = init.reshape(-1)
    classes = chain_classes(T) if classes is None else classes
    H = absorption_probabilities(T, classes)
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




# ====================================================================== detailed balance
@dataclass(frozen=True)
class DetailedBalance:
    """Outcome of :func:`detailed_balance`.

    Attributes
    ----------
    is_reversible : bool
        Whether ``T`` satisfies detailed balance (within :data:`DETAILED_BALANCE_TOL` in
        log space on every edge).
    log_pi : ndarray, shape (n,), or None
        ``log pi`` of the stationary law when ``T`` is reversible and irreducible (finite even
        where ``pi`` underflows); ``None`` otherwise.
    violation : float
        ``max |log T[s,s'] - log T[s',s] - (phi_s' - phi_s)|`` over the edges (``inf`` when
        the support is not symmetric, ``0`` for a chain without edges between states).
    reason : str
        One sentence: why ``T`` is or is not reversible.
    """

    is_reversible: bool
    log_pi: np.ndarray | None
    violation: float
    reason: str


def _off_diagonal_csr(T) -> sp.csr_array:
    A = sp.csr_array(T, dtype=float, copy=True)
    A.setdiag(0.0)
    A.eliminate_zeros()
    A.sort_indices()
    return A


def detailed_balance(T, *, tol: float = DETAILED_BALANCE_TOL) -> DetailedBalance:
    """Whether ``T`` is reversible, decided in log space without forming ``pi`` (module docstring).

    Parameters
    ----------
    T : array_like or sparse, shape (n, n)
        A transition matrix (validated by :func:`validate_chain`).
    tol : float
        Largest accepted violation of Kolmogorov's criterion, in log space per edge.

    Returns
    -------
    DetailedBalance

    Examples
    --------
    >>> detailed_balance([[0.5, 0.5], [0.1, 0.9]]).is_reversible   # every 2-state chain
    True
    >>> cyc = [[0.5, 0.4, 0.1], [0.1, 0.5, 0.4], [0.4, 0.1, 0.5]]  # drift around a cycle
    >>> detailed_balance(cyc).is_reversible
    False
    """
    T = validate_chain(T)
    n = T.shape[0]
    if not sp.issparse(T):
        pattern = T > 0
        np.fill_diagonal(pattern, False)
        if not np.array_equal(pattern, pattern.T):
            return DetailedBalance(False, None, np.inf, "the support of T is not symmetric")
    A = _off_diagonal_csr(T)
    At = _off_diagonal_csr(A.T)
    if A.nnz != At.nnz or not (np.array_equal(A.indptr, At.indptr)
                               and np.array_equal(A.indices, At.indices)):
        return DetailedBalance(False, None, np.inf, "the support of T is not symmetric")
    # log-ratio on every edge: r(s, s') = log T[s, s'] - log T[s', s] (the patterns align)
    ratio = sp.csr_array((np.log(A.data) - np.log(At.data), A.indices, A.indptr), shape=(n, n))
    ncomp, comp = connected_components(A, directed=False)
    # a spanning forest (one BFS tree per component), then phi(s) = sum of the log-ratios on the
    # tree path from the root, by pointer doubling: O(n log depth), vectorized
    parent = np.arange(n)
    _, roots = np.unique(comp, return_index=True)
    for root in roots:
        order, pred = breadth_first_order(A, int(root), directed=False, return_predecessors=True)
        parent[order[1:]] = pred[order[1:]]
    phi = np.zeros(n)
    child = np.flatnonzero(parent != np.arange(n))
    if child.size:
        phi[child] = np.asarray(ratio[parent[child], child]).ravel()
    anc = parent.copy()
    while np.any(anc != anc[anc]):
        phi = phi + phi[anc] * (anc != np.arange(n))
        anc = anc[anc]
    coo = ratio.tocoo()
    viol = (float(np.abs(coo.data - (phi[coo.col] - phi[coo.row])).max())
            if coo.nnz else 0.0)
    if not viol <= tol:
        return DetailedBalance(False, None, viol,
                               f"Kolmogorov's criterion fails: a cycle's log-probability differs "
                               f"from its reversal by up to {viol:.3g}")
    log_pi = phi - logsumexp(phi) if ncomp == 1 else None
    if log_pi is not None:
        log_pi.setflags(write=False)
    return DetailedBalance(True, log_pi, viol,
                           f"detailed balance holds (log-space violation {viol:.2g} <= {tol:g})")


def symmetrized_chain(T):
    """``S[s, s'] = sqrt(T[s, s']) sqrt(T[s', s])``: ``D^{1/2} T D^{-1/2}`` for a reversible ``T``.

    Built without ``pi`` (no underflow); ``S`` is symmetric with the eigenvalues of ``T`` when
    :func:`detailed_balance` holds. Returns a dense array for a dense ``T``, CSR for a sparse one.
    """
    if sp.issparse(T):
        A = sp.csr_array(T, dtype=float)
        R = A.sqrt()
        S = sp.csr_array(R.multiply(R.T))
        S.eliminate_zeros()
        return S
    R = np.sqrt(np.asarray(T, dtype=float))
    return R * R.T
