r"""The compiled IC-Q loop: one seed's run of Algorithm 1 as one numba kernel (SPEC section 7).

:class:`solvers.icq.BatchRun` advances every seed of a batch in lockstep
with numpy operations, which costs a few microseconds of Python per
primitive step whatever the batch size. :class:`CompiledLoop` runs the same
algorithm for every learner seed after seed, each seed's whole run
inside one compiled kernel (``numba.njit(cache=True)``): the primitive step
(:class:`~icsmdp_theory.simulate.BatchSimulator` semantics) or the drawn
invocation (:class:`~icsmdp_theory.epoch_simulate.EpochBatchSimulator`
semantics), the successor's bootstrap ``b = max_{c''} Q_{c'}(o', c'')``, the
predecessor's update ``Q_i(o, c') <- Q + eta_k (R + gamma^tau b - Q)``, the
counts, the checkpoints, the restarts after STOP and at the horizon ``H``,
the next epoch's choice (epsilon-greedy or a fixed law) and the stall watch.

Same numbers as the batched loop. A seed's run depends only on its own
streams (:class:`~icsmdp_theory.simulate.SeedStreams`): the *step* stream,
consecutive ``Generator.random()`` doubles, :data:`~icsmdp_theory.simulate.STEP_COLUMNS`
per primitive step (row ``t`` is read at batch clock ``t``: columns
:data:`~icsmdp_theory.simulate.CHOICE_COLUMNS` for an epoch start,
:data:`~icsmdp_theory.simulate.PRIMITIVE_COLUMNS` for the step or, for an
explicit model, column ``BEGIN_COLUMN = 2`` for the invocation draw), and the
*event* stream, consecutive rows of ``N + 2`` doubles (one row per episode
start). ``Generator.random(n)`` is ``n`` consecutive doubles of the stream
whatever the block sizes, so the driver draws the streams in chunks of its
own size and the kernel reads them at the same positions as the batched loop.
Every arithmetic operation is the one the numpy code performs, in the same
order (``r * discount`` then ``ret + r``; ``R + gamma^tau b`` with
``gamma^tau`` from the same table ``gamma ** arange(n)``; the step sizes
``c / (k + k0)`` and ``1 / ((2 nu lambda0)(k + 1))``; ``q + eta (y - q)``);
categorical draws find the first entry of the row whose cumulative end
exceeds ``row + u`` by bisection inside the row (what
:meth:`~icsmdp_theory.simulate.CategoricalRows.sample` returns); ties and
``nan`` follow the numpy greedy pick. So one seed's trajectory, ``Q`` at
every checkpoint, message log and counters equal the batched loop's bit for
bit (tested on every bundled example, an explicit epoch model, several
seeds, behaviors, step rules and truncating horizons). The message log is
put in the batched loop's order (batch step, then receiver, then seed).

Adaptable agents (issue 15). ``Q`` is ``J = max_i K_i (N+1)`` wide and the
committed ``succ`` is the choice ``j = a*(N+1) + c'``: the action row is
``mode_stride * a + G`` (the per-mode blocks of
:class:`~icsmdp_theory.simulate.SimulationTables`), the reward ``r(.., c')``
and the handoff use ``c' = j mod (N+1)``, the update and the log's journal
use ``j``; one mode (``ip[I_MODES] = 0``) leaves every index as before.
Bit-identical to the numpy loop with modes too (tested,
``property_tests/solvers/test_icq_modes.py``).

Batch semantics kept. A batch stops when every seed made ``T`` updates, or
at the first multiple of 512 batch steps at which some live seed made no
update for ``20 H + stall_steps`` steps (status ``"stalled"``). The kernel
watches each seed at the same clocks; when a seed stalls at clock ``t*``,
seeds already run past ``t*`` are run again, capped at ``t*``, so the record
equals the batched one. Ctrl-C: the kernel returns to Python at least every
:data:`MAX_STEP_ROWS` primitive steps (a refill of the step stream), where a
``KeyboardInterrupt`` is raised; the seed's state is written back first, so
the record keeps the checkpoints reached (status ``"interrupted"``; seeds not
yet started have made no update).

Linear and MLP learners. The same kernel runs them (``ip[I_PARAM]``): the
successor's bootstrap, the greedy pick and the SGD step with its projection
(:func:`_pbest`, :func:`_pgreedy`, :func:`_psgd`) do what
:class:`~solvers.approximators.LinearQ` / :class:`~solvers.approximators.MLPQ`
do for one seed, operation by operation: numpy's ``matmul`` of a vector and
a matrix is a BLAS ``gemv`` (a dot product is ``0.0 + ddot``), so the kernel
calls numpy's own OpenBLAS (``numpy.libs``, registered with LLVM by symbol
name, :func:`_blas_symbols`) with the same arguments (layout, transposition,
leading dimension): the same library code on the same numbers gives the same
bits, whatever its internal summation order; ``ndarray.sum`` is numpy's
pairwise summation (:func:`_pairwise`: blocks of at most 128 in 8 partial
sums, halves above); ``np.maximum`` keeps its ``nan`` and signed-zero rule
(:func:`_fmax`); products with the ReLU masks multiply by ``1.0``/``0.0``
as numpy does. The kernel saves each seed's parameters at its checkpoints;
the driver loads them into the numpy estimators, which compute ``Q`` and
``eps_0`` there (:meth:`solvers.icq.BatchRun.record_checkpoints`), and the
final parameters. numpy's ``matmul`` leaves BLAS when a contracted or
output dimension is 1; those settings stay on the numpy loop
(:func:`compiled_supports`). Measured (``python -m reports.bench_icq``,
``workflow``, two cores shared with other jobs, load about 6): linear 9.2e5
updates/s on one seed (numpy 2.7e3), MLP 64x64 5.4e4 (numpy 1.6e3); at 64
seeds 9.3x and 3.0x, at 256 seeds 2.6x and 2.1x the numpy batched loop.

Compilation. One kernel, typed on int64/float64/bool arrays only, compiled
once per machine (about 5 s for the tabular kernel alone, 20-40 s with the
parametric learners on a loaded machine) and cached next to this module (``__pycache__``);
the first call in a process loads it (about 0.3 s); :class:`CompiledLoop`
does so before the loop's clock starts. The kernel allocates nothing, so it
is compiled without reference counting (see ``_jit_options``).
"""
from __future__ import annotations

import ctypes
import glob
import os
import time

import llvmlite.binding as llb
import numba
import numba.extending
import numpy as np

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.simulate import CategoricalRows, STEP_COLUMNS, seed_sequences
from solvers.approximators import mlp_layer_shapes

__all__ = ["CompiledLoop", "stream_generators", "compiled_supports", "MAX_STEP_ROWS", "BLAS_ERROR"]

#: Largest refill of a seed's step stream, in primitive steps (the kernel returns
#: to Python at least this often, so Ctrl-C is seen within about a tenth of a second).
MAX_STEP_ROWS = 1 << 16
_FIRST_STEP_ROWS = 256
_MAX_EVENT_ROWS = 1 << 12
_FIRST_EVENT_ROWS = 16
_LOG_ROWS = 1 << 14
#: Batch steps between two looks of the stall watch (``solvers.icq``'s ``_CHECK_EVERY``).
CHECK_EVERY = 512

def _jit_options() -> dict:
    """``cache=True``, and no reference counting (``_nrt=False``) where numba offers the switch.

    The kernel allocates nothing: it only reads and writes arrays passed from
    Python, which own them. Without the switch, every array handed to an
    inlined helper is reference-counted (atomic increments) at each call,
    which costs about two thirds of the kernel's time.
    """
    try:
        from numba.core.cpu import CPUTargetOptions
        return {"cache": True, "_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {"cache": True}
    except ImportError:  # pragma: no cover - a numba without the module
        return {"cache": True}


_JIT = _jit_options()

# kernel return codes
_DONE, _NEED_STEP, _NEED_EVENT, _NEED_GAMMA, _LOG_FULL, _BUDGET, _CAP, _STALLED, _ERROR = range(9)

# integer state of a seed
(S_STARTED, S_CLOCK, S_AGENT, S_SUCC, S_G, S_EPISODE_START, S_EPOCH_START, S_EPISODES, S_UPDATES,
 S_TRUNC, S_OBS, S_LAST_UPDATE, S_SEEN, S_NEXT, S_EPOCH_END, S_FINISH, S_UPOS, S_EPOS, S_LOGN,
 S_ERR_STATE, S_ERR_SUCC, S_STALL_CLOCK, _NUM_ISTATE) = range(23)
# float state of a seed
F_RET, F_DISC, F_PENDING, _NUM_FSTATE = range(4)
# integer parameters
(I_N, I_C, I_EXPLICIT, I_T, I_H, I_STALL, I_FIXED, I_DECAY, I_PAIR, I_RULE, I_HASMAX, I_LOG,
 I_NUMXM, I_SEED, I_PARAM, I_MAXW, I_LMAX, I_PROJ, I_MODES, I_MSTRIDE, _NUM_IPARAM) = range(21)
# float parameters
F_GAMMA, F_EPS, F_EPSF, F_DECAY, F_C, F_K0, F_PAPER, F_MAX, F_TOL, F_OMEGA, _NUM_FPARAM = range(11)
# categorical tables in the packed arrays
T_ACT, T_KER, T_INI, T_TR, T_EINI, T_LAW0 = range(6)
_RULES = {"constant": 0, "harmonic": 1, "paper": 2}


def stream_generators(seed: int, seed_id: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The step and event generators of child ``seed_id`` of ``SeedSequence(seed)``.

    They are the generators :class:`~icsmdp_theory.simulate.SeedStreams` builds
    for that seed (children 1 and 2 of its sequence, derived from its entropy
    and spawn key), so they produce the same streams.
    """
    ss = seed_sequences(seed, [seed_id])[0]
    kids = [np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (j,),
                                   pool_size=ss.pool_size) for j in (1, 2)]
    return np.random.default_rng(kids[0]), np.random.default_rng(kids[1])


# ---------------------------------------------------------------- kernel pieces
@numba.njit(**_JIT, inline="always")
def _sample(t, r, u, ends, cols, first, last, rowoff):
    """Column of row ``r`` of table ``t`` drawn by ``u``: first entry whose end exceeds ``r + u``."""
    gr = rowoff[t] + r
    lo = first[gr]
    hi = last[gr]
    target = float(r) + u
    while lo < hi:
        mid = (lo + hi) >> 1
        if ends[mid] <= target:
            lo = mid + 1
        else:
            hi = mid
    return cols[lo]


@numba.njit(**_JIT, inline="always")
def _best(Q, base, lst, lo, hi):
    """``max`` over the listed successors of ``Q[base + c]``, ``nan`` if one is ``nan`` (as ``np.maximum``)."""
    best = Q[base + lst[lo]]
    for j in range(lo + 1, hi):
        x = Q[base + lst[j]]
        if best == best and (x != x or x > best):
            best = x
    return best


# ---------------------------------------------------------------- linear and MLP learners
# numpy's own BLAS, called with the arguments numpy's matmul passes to it (so the same kernel
# and the same summation order run on both sides)
_P = numba.types.CPointer(numba.types.float64)
_I64 = numba.types.int64
_ROW_MAJOR, _COL_MAJOR, _TRANS = 101, 102, 112


def _blas_symbols() -> tuple[str, str]:
    """Register numpy's OpenBLAS ``cblas_ddot``/``cblas_dgemv`` with LLVM; their symbol names.

    numpy links its own OpenBLAS build (``numpy.libs``); the compiled learners
    call the very functions numpy's ``matmul`` calls, found by name in that
    library (``scipy_cblas_ddot64_`` for the ILP64 build of numpy >= 2).
    Raises ``ImportError`` when they cannot be found (the learners then stay
    on numpy; see :func:`compiled_supports`).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas*.so*"))):
        lib = ctypes.CDLL(path)
        for suffix in ("64_", ""):
            names = (f"scipy_cblas_ddot{suffix}", f"scipy_cblas_dgemv{suffix}")
            if all(hasattr(lib, n) for n in names):
                for n in names:
                    llb.add_symbol(n, ctypes.cast(getattr(lib, n), ctypes.c_void_p).value)
                return names
    raise ImportError("numpy's bundled OpenBLAS (numpy.libs/libscipy_openblas*) was not found")


try:
    _DDOT_NAME, _DGEMV_NAME = _blas_symbols()
    BLAS_ERROR = ""
except (ImportError, OSError) as exc:  # pragma: no cover - a numpy built against another BLAS
    _DDOT_NAME, _DGEMV_NAME = "scipy_cblas_ddot64_", "scipy_cblas_dgemv64_"
    BLAS_ERROR = str(exc)
_ddot = numba.types.ExternalFunction(_DDOT_NAME, numba.types.float64(_I64, _P, _I64, _P, _I64))
_dgemv = numba.types.ExternalFunction(_DGEMV_NAME, numba.types.void(
    numba.types.intc, numba.types.intc, _I64, _I64, numba.types.float64, _P, _I64, _P, _I64,
    numba.types.float64, _P, _I64))


@numba.extending.intrinsic
def _ptr(typingctx, arr, off):
    """Pointer to element ``off`` of a contiguous float64 array (flat index)."""
    sig = _P(arr, numba.types.intp)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.gep(ary.data, [args[1]])
    return sig, codegen


@numba.njit(**_JIT, inline="always")
def _vecmat(x, xo, W, wo, k, m, out, oo):
    """``out[oo:oo+m] = x[xo:xo+k] @ W[k, m]`` (row-major at ``wo``): numpy's vector @ matrix gemv."""
    _dgemv(_ROW_MAJOR, _TRANS, k, m, 1.0, _ptr(W, wo), m, _ptr(x, xo), 1, 0.0, _ptr(out, oo), 1)


@numba.njit(**_JIT, inline="always")
def _matvec(A, ao, m, n, x, xo, out, oo):
    """``out[oo:oo+m] = A[m, n] @ x[xo:xo+n]`` (row-major at ``ao``): numpy's matrix @ vector gemv."""
    _dgemv(_COL_MAJOR, _TRANS, n, m, 1.0, _ptr(A, ao), n, _ptr(x, xo), 1, 0.0, _ptr(out, oo), 1)


@numba.njit(**_JIT, inline="always")
def _fmax(a, b):
    """``np.maximum(a, b)``: ``a`` if it is ``nan`` or larger, else ``b`` (``nan`` and signed zeros as numpy)."""
    if a != a or a > b:
        return a
    return b


@numba.njit(**_JIT, inline="always")
def _term(mode, a, la, b, lb, i):
    """``a[la+i] * b[lb+i]`` (mode 0) or ``(a[la+i] - b[lb+i])^2`` (mode 1), as numpy forms them."""
    if mode == 0:
        return a[la + i] * b[lb + i]
    d = a[la + i] - b[lb + i]
    return d * d


@numba.njit(**_JIT)
def _pairwise(mode, a, la, b, lb, n):
    """numpy's pairwise sum (``add.reduce`` of a contiguous run, from 0.0) of the terms ``i = 0..n-1``.

    Runs of fewer than 8 in order; up to 128 in 8 interleaved partial sums
    combined as ``((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))``, then the rest in order;
    longer runs as two halves (the first a multiple of 8). Callers add ``0.0 +``.
    """
    if n < 8:
        res = 0.0
        for i in range(n):
            res += _term(mode, a, la, b, lb, i)
        return res
    if n <= 128:
        r0 = _term(mode, a, la, b, lb, 0)
        r1 = _term(mode, a, la, b, lb, 1)
        r2 = _term(mode, a, la, b, lb, 2)
        r3 = _term(mode, a, la, b, lb, 3)
        r4 = _term(mode, a, la, b, lb, 4)
        r5 = _term(mode, a, la, b, lb, 5)
        r6 = _term(mode, a, la, b, lb, 6)
        r7 = _term(mode, a, la, b, lb, 7)
        i = 8
        stop = n - (n % 8)
        while i < stop:
            p = i
            r0 += _term(mode, a, la, b, lb, p)
            r1 += _term(mode, a, la, b, lb, p + 1)
            r2 += _term(mode, a, la, b, lb, p + 2)
            r3 += _term(mode, a, la, b, lb, p + 3)
            r4 += _term(mode, a, la, b, lb, p + 4)
            r5 += _term(mode, a, la, b, lb, p + 5)
            r6 += _term(mode, a, la, b, lb, p + 6)
            r7 += _term(mode, a, la, b, lb, p + 7)
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += _term(mode, a, la, b, lb, i)
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(mode, a, la, b, lb, n2) + _pairwise(mode, a, la + n2, b, lb + n2, n - n2)


# work-buffer layout of the parametric learners (``W_*`` offsets in units of C and maxw)
@numba.njit(**_JIT)
def _forward(ag, o, par, C, maxw, lmax, full):
    """Agent ``ag``'s network at observation ``o``: hidden ``z``/``h`` in ``work``; ``Q(o, .)`` in ``work[:C]`` if ``full``.

    Linear: ``Q(o, .) = psi[o] @ theta`` (numpy's matrix @ vector gemv). MLP:
    ``z_0 = W_0[o] + b_0`` (one-hot) or ``x_o @ W_0 + b_0``, ``h = maximum(z, 0)``,
    ``z_l = h_{l-1} @ W_l + b_l``, ``Q = h_{L-1} @ W_L + b_L`` (vector @ matrix gemv).
    """
    theta, pa, lay, pfeat, work = par[0], par[3], par[4], par[5], par[6]
    if pa[ag, 0] == 0:
        d = pa[ag, 6]
        _matvec(pfeat, pa[ag, 5] + o * C * d, C, d, theta, pa[ag, 1], work, 0)
        return
    nl = pa[ag, 4]
    r = pa[ag, 3]
    tmp = C
    z0 = C + 4 * maxw
    h0 = z0 + lmax * maxw
    fi, fo, wo, bo = lay[r, 0], lay[r, 1], lay[r, 2], lay[r, 3]
    if pa[ag, 5] < 0:
        for j in range(fo):
            work[z0 + j] = theta[wo + o * fo + j] + theta[bo + j]
    else:
        _vecmat(pfeat, pa[ag, 5] + o * fi, theta, wo, fi, fo, work, tmp)
        for j in range(fo):
            work[z0 + j] = work[tmp + j] + theta[bo + j]
    for j in range(fo):
        work[h0 + j] = _fmax(work[z0 + j], 0.0)
    for l in range(1, nl - 1):
        fi, fo, wo, bo = lay[r + l, 0], lay[r + l, 1], lay[r + l, 2], lay[r + l, 3]
        _vecmat(work, h0 + (l - 1) * maxw, theta, wo, fi, fo, work, tmp)
        zl = z0 + l * maxw
        hl = h0 + l * maxw
        for j in range(fo):
            work[zl + j] = work[tmp + j] + theta[bo + j]
            work[hl + j] = _fmax(work[zl + j], 0.0)
    if full:
        l = nl - 1
        fi, fo, wo, bo = lay[r + l, 0], lay[r + l, 1], lay[r + l, 2], lay[r + l, 3]
        _vecmat(work, h0 + (l - 1) * maxw, theta, wo, fi, fo, work, tmp)
        for j in range(fo):
            work[j] = work[tmp + j] + theta[bo + j]


@numba.njit(**_JIT, inline="always")
def _row_max(work, cell, C, cmask):
    """``np.max`` of the row ``Q(o, .)`` with ``-inf`` outside the cell's set (``nan`` propagates)."""
    best = work[0] if cmask[cell * C] else -np.inf
    for c in range(1, C):
        best = _fmax(best, work[c] if cmask[cell * C + c] else -np.inf)
    return best


@numba.njit(**_JIT, inline="always")
def _list_max(work, lst, lo, hi):
    """``np.maximum`` chained over the listed successors in increasing order (``_Estimator.best``)."""
    best = work[lst[lo]]
    for j in range(lo + 1, hi):
        best = _fmax(best, work[lst[j]])
    return best


@numba.njit(**_JIT, inline="always")
def _pbest(ag, o, par, ip, ag_off, ag_cells, cell_ptr, cell_list):
    """The parametric successor's ``b = max_{c''} Q(o', c'')`` (``ICQAgent.bootstrap``)."""
    C = ip[I_C]
    _forward(ag, o, par, C, ip[I_MAXW], ip[I_LMAX], True)
    cell = ag_off[ag] + o
    if ag_cells[ag] == 1:
        return _row_max(par[6], cell, C, par[7])
    return _list_max(par[6], cell_list, cell_ptr[cell], cell_ptr[cell + 1])


@numba.njit(**_JIT, inline="always")
def _pgreedy(ag, o, par, ip, fp, ag_off, ag_cells, cell_ptr, cell_list):
    """The parametric greedy pick (``max_and_greedy``; per cell: ``argmax(v >= max - tol)``)."""
    C = ip[I_C]
    _forward(ag, o, par, C, ip[I_MAXW], ip[I_LMAX], True)
    work = par[6]
    cell = ag_off[ag] + o
    if ag_cells[ag] == 1:
        cmask = par[7]
        thr = _row_max(work, cell, C, cmask) - fp[F_TOL]
        for c in range(C):
            if (work[c] if cmask[cell * C + c] else -np.inf) >= thr:
                return c
        return 0
    lo, hi = cell_ptr[cell], cell_ptr[cell + 1]
    thr = _list_max(work, cell_list, lo, hi) - fp[F_TOL]
    for j in range(lo, hi - 1):
        if work[cell_list[j]] >= thr:
            return cell_list[j]
    return cell_list[hi - 1]


@numba.njit(**_JIT)
def _project(ag, par, omega):
    """``theta <- theta_0 + (theta - theta_0) min(1, omega/||theta - theta_0||)`` (``_Parametric._project``)."""
    theta, theta0, pa, lay = par[0], par[1], par[3], par[4]
    sq = 0.0
    if pa[ag, 0] == 0:
        sq = sq + (0.0 + _pairwise(1, theta, pa[ag, 1], theta0, pa[ag, 1], pa[ag, 2]))
    else:
        r = pa[ag, 3]
        for l in range(pa[ag, 4]):
            wo, bo = lay[r + l, 2], lay[r + l, 3]
            sq = sq + (0.0 + _pairwise(1, theta, wo, theta0, wo, lay[r + l, 0] * lay[r + l, 1]))
            sq = sq + (0.0 + _pairwise(1, theta, bo, theta0, bo, lay[r + l, 1]))
    dist = np.sqrt(sq)
    if dist > omega:
        scale = omega / dist
        for p in range(pa[ag, 1], pa[ag, 1] + pa[ag, 2]):
            theta[p] = theta0[p] + (theta[p] - theta0[p]) * scale


@numba.njit(**_JIT)
def _psgd(ag, o, c, y, eta, par, ip, fp):
    """One SGD step of agent ``ag`` on ``(Q(o, c') - y)^2 / 2`` (``LinearQ.sgd``/``MLPQ.sgd``), then the projection."""
    theta, pa, lay, pfeat, work = par[0], par[3], par[4], par[5], par[6]
    C = ip[I_C]
    if pa[ag, 0] == 0:
        d = pa[ag, 6]
        fo = pa[ag, 5] + (o * C + c) * d
        po = pa[ag, 1]
        q = 0.0 + _ddot(d, _ptr(pfeat, fo), 1, _ptr(theta, po), 1)
        g = eta * (q - y)
        for j in range(d):
            theta[po + j] = theta[po + j] - g * pfeat[fo + j]
    else:
        maxw, lmax = ip[I_MAXW], ip[I_LMAX]
        _forward(ag, o, par, C, maxw, lmax, False)
        nl = pa[ag, 4]
        r = pa[ag, 3]
        L = nl - 1
        z0 = C + 4 * maxw
        h0 = z0 + lmax * maxw
        dl = C + maxw  # delta
        nd = C + 2 * maxw  # new delta
        wcb = C + 3 * maxw  # W_L[:, c']
        hL = lay[r + L, 0]
        wo, bo = lay[r + L, 2], lay[r + L, 3]
        zl = z0 + (L - 1) * maxw
        hl = h0 + (L - 1) * maxw
        for j in range(hL):
            work[wcb + j] = theta[wo + j * C + c]
        q = 0.0 + _pairwise(0, work, hl, work, wcb, hL)
        q = q + theta[bo + c]
        g = eta * (q - y)
        for j in range(hL):
            work[dl + j] = work[wcb + j] * (1.0 if work[zl + j] > 0 else 0.0)
            theta[wo + j * C + c] = work[wcb + j] - g * work[hl + j]
        theta[bo + c] = theta[bo + c] - g
        for l in range(L - 1, 0, -1):
            fi, fo, wo, bo = lay[r + l, 0], lay[r + l, 1], lay[r + l, 2], lay[r + l, 3]
            _matvec(theta, wo, fi, fo, work, dl, work, nd)
            zp = z0 + (l - 1) * maxw
            hp = h0 + (l - 1) * maxw
            for i in range(fi):
                work[nd + i] = work[nd + i] * (1.0 if work[zp + i] > 0 else 0.0)
            for i in range(fi):
                gh = g * work[hp + i]
                for j in range(fo):
                    theta[wo + i * fo + j] = theta[wo + i * fo + j] - gh * work[dl + j]
            for j in range(fo):
                theta[bo + j] = theta[bo + j] - g * work[dl + j]
            for i in range(fi):
                work[dl + i] = work[nd + i]
        fi, fo, wo, bo = lay[r, 0], lay[r, 1], lay[r, 2], lay[r, 3]
        for j in range(fo):
            work[nd + j] = g * work[dl + j]  # gd
        if pa[ag, 5] < 0:
            for j in range(fo):
                theta[wo + o * fo + j] = theta[wo + o * fo + j] - work[nd + j]
        else:
            xo = pa[ag, 5] + o * fi
            for i in range(fi):
                for j in range(fo):
                    theta[wo + i * fo + j] = theta[wo + i * fo + j] - pfeat[xo + i] * work[nd + j]
        for j in range(fo):
            theta[bo + j] = theta[bo + j] - work[nd + j]
    if ip[I_PROJ] == 1:
        _project(ag, par, fp[F_OMEGA])


@numba.njit(**_JIT, inline="always")
def _choose(ag, o, u0, u1, Q, decisions, ip, fp, cat_ends, cat_cols, cat_first, cat_last,
            cat_rowoff, ag_off, ag_single, ag_cells, ag_law, cell_ptr, cell_list, par):
    """``ICQAgent.choose`` for one seed: the successor ``c'`` committed at an epoch start."""
    if ag_single[ag] >= 0:  # nothing to choose
        return ag_single[ag]
    cell = ag_off[ag] + o
    lo, hi = cell_ptr[cell], cell_ptr[cell + 1]
    n = hi - lo
    if ip[I_FIXED] == 1:
        if ag_law[ag] == 1:
            return _sample(T_LAW0 + ag, o, u0, cat_ends, cat_cols, cat_first, cat_last, cat_rowoff)
        return cell_list[lo + np.int64(u0 * n)]
    if ip[I_PARAM] == 1:
        pick = _pgreedy(ag, o, par, ip, fp, ag_off, ag_cells, cell_ptr, cell_list)
    else:
        C = ip[I_C]
        base = cell * C
        best = _best(Q, base, cell_list, lo, hi)
        thr = best - fp[F_TOL]
        pick = -1
        for j in range(lo, hi):
            if Q[base + cell_list[j]] >= thr:
                pick = cell_list[j]
                break
        if pick < 0:  # no comparable value (nan): the numpy argmax of all-False
            pick = 0 if ag_cells[ag] == 1 else cell_list[lo]
    if ip[I_DECAY] == 1:
        k = decisions[ag]
        decisions[ag] = k + 1
        frac = min(1.0, float(k) / fp[F_DECAY])
        eps = fp[F_EPS] + (fp[F_EPSF] - fp[F_EPS]) * frac
    else:
        eps = fp[F_EPS]
    if u0 < eps:
        return cell_list[lo + np.int64(u1 * n)]
    return pick


@numba.njit(**_JIT, inline="always")
def _update(pred, o, c, b, tau, R, Q, counts, gpow, ip, fp, ag_off, par):
    """``ICQAgent.update`` for one seed: ``Q(o, c') <- Q + eta_k (y - Q)``, ``y = R + gamma^tau b``
    (the parametric learners: one SGD step, :func:`_psgd`)."""
    y = R + gpow[tau] * b
    idx = (ag_off[pred] + o) * ip[I_C] + c
    if ip[I_PAIR] == 1:
        k = counts[idx]
        counts[idx] = k + 1
    else:
        k = counts[pred]
        counts[pred] = k + 1
    rule = ip[I_RULE]
    if rule == 0:
        eta = fp[F_C]
    elif rule == 1:
        eta = fp[F_C] / (float(k) + fp[F_K0])
    else:
        eta = 1.0 / (fp[F_PAPER] * (float(k) + 1.0))
    if ip[I_HASMAX] == 1 and fp[F_MAX] < eta:
        eta = fp[F_MAX]
    if ip[I_PARAM] == 1:
        _psgd(pred, o, c, y, eta, par, ip, fp)
        return
    q = Q[idx]
    Q[idx] = q + eta * (y - q)


@numba.njit(**_JIT, inline="always")
def _snapshot(kc, Q, q_out, reached, seed, par, param):
    """The seed's raw ``Q`` at checkpoint ``kc`` (the driver masks each cell's inadmissible entries);
    for the parametric learners, its parameters (the driver evaluates them with the numpy estimators)."""
    if param:
        theta, th_out = par[0], par[2]
        for p in range(theta.size):
            th_out[kc, seed, p] = theta[p]
        reached[kc, seed] = True
        return
    out = q_out[kc, seed]
    nc, C = out.shape
    for cell in range(nc):
        for c in range(C):
            out[cell, c] = Q[cell * C + c]
    reached[kc, seed] = True


@numba.njit(**_JIT)
def _run_seed(ist, fst, private, decisions, counts, Q, q_out, reached, ustep, uev, gpow,
              logi, logf, ip, fp, cat_ends, cat_cols, cat_first, cat_last, cat_rowoff,
              p_reward, beta_of, xm_of, l_of, place, obs_of, state_agent, e_reward, row_of,
              next_state, tau_of, ag_off, ag_single, ag_cells, ag_law, cell_ptr, cell_list,
              checkpoints, max_steps, clock_cap, par):
    """Run one seed from its saved state until done, a refill, the cap or ``max_steps`` steps.

    The seed's state lives in ``ist``/``fst`` (indices ``S_*``/``F_*``) between
    calls and in local variables inside; it is saved at a primitive-step
    boundary whatever the return code (``_DONE``, ``_NEED_STEP``, ...).
    """
    if max_steps <= 0:
        return _BUDGET
    N = ip[I_N]
    C = ip[I_C]  # Q's width: J = max_i K_i (N+1) choices j = a*(N+1) + c' (N+1 without modes)
    C1 = N + 1
    modes = ip[I_MODES] == 1
    mstride = ip[I_MSTRIDE]
    W = N + 2
    explicit = ip[I_EXPLICIT] == 1
    T = ip[I_T]
    H = ip[I_H]
    stall = ip[I_STALL]
    logging = ip[I_LOG] == 1
    num_xm = ip[I_NUMXM]
    seed = ip[I_SEED]
    gamma = fp[F_GAMMA]
    param = ip[I_PARAM] == 1
    step_rows = ustep.size // 5
    event_rows = uev.size // W
    log_rows = logi.shape[0]
    num_gpow = gpow.size
    # ---- load the state
    clock = ist[S_CLOCK]
    agent = ist[S_AGENT]
    succ = ist[S_SUCC]
    G = ist[S_G]
    episode_start = ist[S_EPISODE_START]
    epoch_start = ist[S_EPOCH_START]
    episodes = ist[S_EPISODES]
    updates = ist[S_UPDATES]
    # the checkpoints (sorted update counts) still ahead: nk is the next one's index
    num_ck = checkpoints.size
    nk = np.searchsorted(checkpoints, updates, side="right")
    trunc = ist[S_TRUNC]
    obs = ist[S_OBS]
    last_update = ist[S_LAST_UPDATE]
    seen = ist[S_SEEN]
    nxt = ist[S_NEXT]
    epoch_end = ist[S_EPOCH_END]
    upos = ist[S_UPOS]
    epos = ist[S_EPOS]
    logn = ist[S_LOGN]
    ret = fst[F_RET]
    disc = fst[F_DISC]
    pending = fst[F_PENDING]
    # the committed choice j = succ: successor cs = j mod (N+1), mode rows at moff (0 without modes)
    cs = succ
    moff = 0
    if modes:
        cs = succ % C1
        moff = (succ // C1) * mstride
    first = ist[S_STARTED] == 0
    steps = 0
    code = _BUDGET
    while True:
        if first:  # start: snapshot at update 0, first episode, first choice (row 0)
            if num_ck > 0 and checkpoints[0] == 0:
                _snapshot(0, Q, q_out, reached, seed, par, param)
            row = upos
            upos += 1
            ended = False
            restart = True
            handed = False
        else:
            if steps >= max_steps:
                code = _BUDGET
                break
            if clock >= clock_cap:
                code = _CAP
                break
            if upos >= step_rows:
                code = _NEED_STEP
                break
            if epos >= event_rows:
                code = _NEED_EVENT
                break
            if logging and logn >= log_rows:
                code = _LOG_FULL
                break
            if clock + 1 - epoch_start >= num_gpow:
                code = _NEED_GAMMA
                break
            steps += 1
            row = upos
            upos += 1
            clock += 1
            base = row * 5
            # ---- the environment moves one primitive step
            if explicit:
                ended = epoch_end == clock
                if ended:
                    ret = pending
            else:
                A = _sample(T_ACT, G + moff, ustep[base + 2], cat_ends, cat_cols, cat_first, cat_last,
                            cat_rowoff)
                r = p_reward[A * C1 + cs]
                r = r * disc
                ret = ret + r
                disc = disc * gamma
                G = _sample(T_KER, A, ustep[base + 3], cat_ends, cat_cols, cat_first, cat_last,
                            cat_rowoff)
                ended = ustep[base + 4] < beta_of[G]
            handed = False
            stopped = False
            # ---- an ended epoch: handoff, bootstrap, update, counts, checkpoints
            if ended:
                pred = agent
                c = cs
                tau = clock - epoch_start
                b = 0.0
                if c < N:
                    if explicit:
                        G = nxt
                    else:
                        private[pred] = l_of[G]
                        G = place[c * num_xm + xm_of[G]] + private[c]
                    agent = c
                    cell = ag_off[c] + obs_of[G]
                    if param:
                        b = _pbest(c, obs_of[G], par, ip, ag_off, ag_cells, cell_ptr, cell_list)
                    else:
                        b = _best(Q, cell * C, cell_list, cell_ptr[cell], cell_ptr[cell + 1])
                    handed = True
                else:
                    stopped = True
                _update(pred, obs, succ, b, tau, ret, Q, counts, gpow, ip, fp, ag_off, par)
                if logging:
                    logi[logn, 0] = updates
                    logi[logn, 6] = succ
                    logi[logn, 1] = c
                    logi[logn, 2] = pred
                    logi[logn, 3] = tau
                    logi[logn, 4] = obs
                    logi[logn, 5] = clock
                    logf[logn, 0] = b
                    logf[logn, 1] = ret
                    logn += 1
                updates += 1
                if nk < num_ck and checkpoints[nk] == updates:
                    _snapshot(nk, Q, q_out, reached, seed, par, param)
                    nk += 1
                if updates >= T:
                    ist[S_FINISH] = clock
                    code = _DONE
                    break
            # ---- restarts after STOP and at the horizon (a running invocation is discarded)
            restart = stopped
            if episode_start <= clock - H:
                if not ended:
                    trunc += 1
                restart = True
        if restart:  # a fresh episode from rho0, from the next event row
            e = epos * W
            epos += 1
            if explicit:
                G = _sample(T_EINI, 0, uev[e], cat_ends, cat_cols, cat_first, cat_last, cat_rowoff)
                agent = state_agent[G]
            else:
                xm = _sample(T_INI, 0, uev[e], cat_ends, cat_cols, cat_first, cat_last, cat_rowoff)
                for j in range(N):
                    private[j] = _sample(T_INI, 1 + j, uev[e + 1 + j], cat_ends, cat_cols, cat_first,
                                         cat_last, cat_rowoff)
                agent = _sample(T_INI, N + 1, uev[e + N + 1], cat_ends, cat_cols, cat_first,
                                cat_last, cat_rowoff)
                G = place[agent * num_xm + xm] + private[agent]
            episode_start = clock
            episodes += 1
        if handed or restart:  # the active agent observes and commits (this step's uniforms)
            base = row * 5
            o = obs_of[G]
            c = _choose(agent, o, ustep[base], ustep[base + 1], Q, decisions, ip, fp, cat_ends,
                        cat_cols, cat_first, cat_last, cat_rowoff, ag_off, ag_single, ag_cells,
                        ag_law, cell_ptr, cell_list, par)
            obs = o
            if explicit:
                pair = G * C + c
                rr = row_of[pair]
                if rr < 0:
                    ist[S_ERR_STATE] = G
                    ist[S_ERR_SUCC] = c
                    code = _ERROR
                    break
                t = _sample(T_TR, rr, ustep[base + 2], cat_ends, cat_cols, cat_first, cat_last,
                            cat_rowoff)
                succ = c
                cs = c
                nxt = next_state[t]
                pending = e_reward[pair]
                epoch_start = clock
                epoch_end = clock + tau_of[t]
            else:
                succ = c
                cs = c
                if modes:
                    cs = c % C1
                    moff = (c // C1) * mstride
                epoch_start = clock
                ret = 0.0
                disc = 1.0
        if first:
            first = False
            continue
        # ---- the stall watch, at the batched loop's clocks
        if clock % 512 == 0:
            if updates != seen:
                last_update = clock
                seen = updates
            if last_update < clock - stall:
                ist[S_STALL_CLOCK] = clock
                code = _STALLED
                break
    # ---- save the state
    ist[S_STARTED] = 1
    ist[S_CLOCK] = clock
    ist[S_AGENT] = agent
    ist[S_SUCC] = succ
    ist[S_G] = G
    ist[S_EPISODE_START] = episode_start
    ist[S_EPOCH_START] = epoch_start
    ist[S_EPISODES] = episodes
    ist[S_UPDATES] = updates
    ist[S_TRUNC] = trunc
    ist[S_OBS] = obs
    ist[S_LAST_UPDATE] = last_update
    ist[S_SEEN] = seen
    ist[S_NEXT] = nxt
    ist[S_EPOCH_END] = epoch_end
    ist[S_UPOS] = upos
    ist[S_EPOS] = epos
    ist[S_LOGN] = logn
    fst[F_RET] = ret
    fst[F_DISC] = disc
    fst[F_PENDING] = pending
    return code


# ---------------------------------------------------------------- the driver
def compiled_supports(settings, model=None) -> str:
    """Why the compiled loop cannot run ``settings`` (an :class:`solvers.icq.ICQ`) on ``model``, or ``""`` if it can.

    Every learner runs compiled, bit-identical to the numpy loop, except where
    numpy's ``matmul`` would leave BLAS (a contracted dimension or an output
    of size 1: a linear feature dimension ``d = 1``, an MLP hidden width 1 or
    input dimension 1), and when numpy's bundled OpenBLAS was not found
    (:data:`BLAS_ERROR`) for the linear and MLP learners. Every model runs,
    adaptable agents included (``model`` is accepted for callers that ask per
    model, :meth:`solvers.icq.ICQ.engine_for`; no model is refused today).
    """
    if settings.learner == "tabular":
        return ""
    if BLAS_ERROR:
        return f"numpy's BLAS is not callable from the kernel ({BLAS_ERROR})"
    if settings.learner == "mlp" and min(settings.hidden) < 2:
        return f"an MLP hidden width of 1 (`hidden` = {settings.hidden})"
    if settings.features is not None:
        for i, f in enumerate(settings.features):
            shape = np.shape(f)
            dim = shape[2] if settings.learner == "linear" and len(shape) == 3 else \
                (shape[1] if len(shape) == 2 else 2)
            if dim < 2:
                return f"`features[{i}]` has dimension {dim} (at least 2 needed)"
    return ""



def _pack_tables(tables: list) -> tuple[np.ndarray, ...]:
    """Concatenate categorical tables: ``(ends, cols, first, last, row_offset)``; rows keep their numbers."""
    ends, cols, first, last, rowoff = [], [], [], [], []
    entries = rows = 0
    for t in tables:
        rowoff.append(rows)
        if t is None:
            continue
        ends.append(np.asarray(t.ends, float))
        cols.append(np.asarray(t.cols, np.int64))
        first.append(np.asarray(t.first, np.int64) + entries)
        last.append(np.asarray(t.last, np.int64) + entries)
        entries += t.ends.size
        rows += t.num_rows
    cat = lambda xs, dt: np.ascontiguousarray(np.concatenate(xs), dt) if xs else np.zeros(0, dt)
    return (cat(ends, float), cat(cols, np.int64), cat(first, np.int64), cat(last, np.int64),
            np.array(rowoff, np.int64))


_NO_F = np.zeros(0)
_NO_I = np.zeros(0, np.int64)


class CompiledLoop:
    """The compiled engine of a :class:`solvers.icq.BatchRun` (every learner; see :func:`compiled_supports`).

    Built from the run (its settings, model, simulator tables, checkpoint book
    and counters; it reads no agent), it runs every seed in turn and writes
    the results into the run's arrays (``q``, ``reached``, ``updates``,
    ``finish_clock``, ``truncations``, ``alive``, the simulator's ``episodes``
    and ``clock``, the message log, ``status`` and ``message``), so that
    ``run.finish()`` makes the record.

    Parameters
    ----------
    run : solvers.icq.BatchRun
        A freshly built run whose settings the loop supports.
    """

    def __init__(self, run):
        settings, model = run.settings, run.model
        why = compiled_supports(settings, model)
        if why:
            raise InvalidArgumentError(f"the compiled IC-Q loop cannot run these settings: {why}.")
        self.run_ = run
        self.param = settings.learner != "tabular"
        N = run.num_agents
        C = int(run.q.shape[-1])  # J choices j = a*(N+1) + c' (N+1 without adaptable agents)
        tb = run.sim.tables
        self.explicit = explicit = bool(run.explicit)
        adm = np.asarray(run.cell_admissible, bool)  # (cells, C): each cell's set
        offs = np.asarray(run.offsets, np.int64)
        self.num_cells = int(offs[-1])
        self.mask = np.ascontiguousarray(adm)
        # per-agent: union set (the estimator's pairs), whether cells differ, fixed law
        self.union = [adm[offs[i]:offs[i + 1]].any(axis=0) for i in range(N)]
        ag_cells = np.array([int(not np.array_equal(adm[offs[i]:offs[i + 1]],
                                                    np.broadcast_to(self.union[i], (offs[i + 1] - offs[i], C))))
                             for i in range(N)], np.int64)
        ag_single = np.array([int(np.flatnonzero(u)[0]) if u.sum() == 1 else -1 for u in self.union],
                             np.int64)
        lists = [np.flatnonzero(adm[cell]) for cell in range(self.num_cells)]
        cell_ptr = np.concatenate([[0], np.cumsum([x.size for x in lists])]).astype(np.int64)
        cell_list = np.concatenate(lists).astype(np.int64) if lists else _NO_I
        behavior = settings.behavior
        fixed = not hasattr(behavior, "epsilon")  # EpsilonGreedy has one, FixedBehavior not
        probs = getattr(run, "probabilities", None) or [None] * N
        laws = [CategoricalRows.dense(np.array(p, dtype=float)) if (fixed and p is not None) else None
                for p in probs]
        ag_law = np.array([int(x is not None) for x in laws], np.int64)
        if explicit:
            tables = [None, None, None, tb.transitions, tb.initial] + laws
        else:
            tables = [tb.actions, tb.kernel, tb.initial, None, None] + laws
        self.cat = _pack_tables(tables)
        # model arrays
        if explicit:
            self.model_arrays = (_NO_F, _NO_F, _NO_I, _NO_I, _NO_I,
                                 np.asarray(tb.obs_of, np.int64), np.asarray(tb.state_agent, np.int64),
                                 np.asarray(tb.reward, float), np.asarray(tb.row_of, np.int64),
                                 np.asarray(tb.next_state, np.int64), np.asarray(tb.tau, np.int64))
        else:
            self.model_arrays = (np.asarray(tb.reward, float), np.asarray(tb.beta_of, float),
                                 np.asarray(tb.xm_of, np.int64), np.asarray(tb.l_of, np.int64),
                                 np.asarray(tb.place, np.int64), np.asarray(tb.obs_of, np.int64),
                                 _NO_I, _NO_F, _NO_I, _NO_I, _NO_I)
        self.agent_arrays = (offs[:-1].copy(), ag_single, ag_cells, ag_law, cell_ptr, cell_list)
        step = settings.step_size
        decaying = (not fixed) and behavior.final_epsilon is not None and behavior.decay_steps > 0
        pairwise = step.index == "pair" or (step.index == "auto" and not self.param)
        ip = np.zeros(_NUM_IPARAM, np.int64)
        ip[I_N], ip[I_C], ip[I_EXPLICIT], ip[I_T], ip[I_H] = N, C, int(explicit), run.num_updates, run.horizon
        ip[I_STALL], ip[I_FIXED], ip[I_DECAY], ip[I_PAIR] = run.stall_limit, int(fixed), int(decaying), int(pairwise)
        ip[I_RULE], ip[I_HASMAX], ip[I_LOG] = _RULES[step.rule], int(step.max_step is not None), int(run.log is not None)
        ip[I_NUMXM] = 0 if explicit else tb.num_xm
        ip[I_MODES] = int(C != N + 1)
        ip[I_MSTRIDE] = 0 if explicit else tb.mode_stride
        fp = np.zeros(_NUM_FPARAM)
        fp[F_GAMMA] = float(tb.gamma)
        if not fixed:
            fp[F_EPS] = behavior.epsilon
            if decaying:
                fp[F_EPSF], fp[F_DECAY] = behavior.final_epsilon, behavior.decay_steps
        fp[F_C], fp[F_K0] = float(step.c), float(step.k0)
        if step.rule == "paper":
            fp[F_PAPER] = 2.0 * step.nu * step.lambda0
        if step.max_step is not None:
            fp[F_MAX] = float(step.max_step)
        fp[F_TOL] = 1e-10
        self.ip, self.fp = ip, fp
        self.gamma = float(model.gamma)
        self.gpow = self.gamma ** np.arange(64)
        self.init = float(settings.init)
        self.q_init = np.where(np.concatenate([np.broadcast_to(self.union[i], (offs[i + 1] - offs[i], C))
                                               for i in range(N)]), self.init, np.nan).ravel()
        self.num_counts = max(self.num_cells * C, N) if pairwise else N
        self._build_parametric()
        self._warm()

    def _build_parametric(self) -> None:
        """The linear / MLP learners' tables for the kernel (``par``; empty for the tabular learner).

        Per agent ``pa[i] = (kind, p_off, p_size, first layer row, layers, feature offset, d, 0)``
        (kind 0 linear, 1 MLP; feature offset -1: one-hot MLP input); per MLP layer
        ``lay[r] = (fan_in, fan_out, W offset, b offset)`` in the flat parameter vector
        (the agents' vectors concatenated in agent order, each in :func:`solvers.approximators.mlp_unflatten`
        order); ``pfeat``: the linear features ``psi_i[o, c', :]`` or MLP inputs, concatenated.
        """
        run, settings = self.run_, self.run_.settings
        N, C, S = run.num_agents, int(run.q.shape[-1]), run.num_seeds
        K = run.checkpoints.size
        self.ip[I_PARAM] = int(self.param)
        if not self.param:
            self.pa, self.lay = np.zeros((0, 8), np.int64), np.zeros((0, 4), np.int64)
            self.pfeat = self.work = self.cmask_f = _NO_F
            self.cmask = np.zeros(0, np.uint8)
            self.th_out = np.zeros((0, 0, 0))
            self.theta_init = self.theta0_init = np.zeros((S, 0))
            return
        pa = np.zeros((N, 8), np.int64)
        lay, feats = [], []
        p_off = f_off = 0
        maxw, lmax = C, 1
        nobs = run.offsets[1:] - run.offsets[:-1]
        for i in range(N):
            nO, f = int(nobs[i]), run.features[i]
            if settings.learner == "linear":
                psi = np.eye(nO * C).reshape(nO, C, nO * C) if f is None else np.asarray(f, float)
                d = psi.shape[2]
                pa[i] = (0, p_off, d, 0, 0, f_off, d, 0)
                feats.append(np.ascontiguousarray(psi, float).ravel())
                f_off += psi.size
                p_off += d
                continue
            d_in = nO if f is None else f.shape[1]
            shapes = mlp_layer_shapes(d_in, settings.hidden, C)
            start = p_off
            pa[i, :5] = (1, p_off, 0, len(lay), len(shapes))
            pa[i, 5] = -1 if f is None else f_off
            pa[i, 6] = d_in
            for fi, fo in shapes:
                lay.append((fi, fo, p_off, p_off + fi * fo))
                p_off += fi * fo + fo
                maxw = max(maxw, fi, fo)
            lmax = max(lmax, len(shapes) - 1)
            pa[i, 2] = p_off - start
            if f is not None:
                feats.append(np.ascontiguousarray(f, float).ravel())
                f_off += f.size
        self.pa = pa
        self.lay = np.array(lay, np.int64).reshape(-1, 4)
        self.pfeat = np.ascontiguousarray(np.concatenate(feats)) if feats else _NO_F
        self.ip[I_MAXW], self.ip[I_LMAX] = maxw, lmax
        self.work = np.zeros(C + 4 * maxw + 2 * lmax * maxw)
        self.cmask = np.ascontiguousarray(self.mask.ravel().astype(np.uint8))
        if settings.omega is not None:
            self.ip[I_PROJ], self.fp[F_OMEGA] = 1, float(settings.omega)
        self.theta_init = np.ascontiguousarray(np.concatenate([ag.parameters() for ag in run.agents], axis=1))
        self.theta0_init = np.ascontiguousarray(
            np.concatenate([ag.initial_parameters() for ag in run.agents], axis=1))
        if self.theta_init.shape[1] != p_off:  # pragma: no cover - a layout mismatch is a bug
            raise RuntimeError(f"parameter layout: {self.theta_init.shape[1]} != {p_off}")
        self.th_out = np.zeros((K, S, p_off))
        self.final_theta = self.theta_init.copy()

    # ------------------------------------------------------------ kernel calls
    def _fresh_state(self, pos: int = 0):
        N = self.run_.num_agents
        ist = np.zeros(_NUM_ISTATE, np.int64)
        ist[S_SUCC] = N
        ist[S_EPOCH_END] = np.iinfo(np.int64).max
        fst = np.zeros(_NUM_FSTATE)
        fst[F_DISC] = 1.0
        return dict(ist=ist, fst=fst, private=np.zeros(N, np.int64), decisions=np.zeros(N, np.int64),
                    counts=np.zeros(self.num_counts, np.int64), Q=self.q_init.copy(),
                    theta=self.theta_init[pos].copy() if self.param else _NO_F,
                    theta0=self.theta0_init[pos].copy() if self.param else _NO_F)

    def _call(self, st, ustep, uev, logi, logf, seed_pos, max_steps, cap):
        run = self.run_
        self.ip[I_SEED] = seed_pos
        return _run_seed(st["ist"], st["fst"], st["private"], st["decisions"], st["counts"], st["Q"],
                         run.q, run.reached, ustep, uev, self.gpow, logi, logf,
                         self.ip, self.fp, *self.cat, *self.model_arrays, *self.agent_arrays,
                         run.checkpoints, max_steps, cap,
                         (st["theta"], st["theta0"], self.th_out, self.pa, self.lay, self.pfeat,
                          self.work, self.cmask))

    def _warm(self) -> None:
        """Compile or load the kernel now (a call that returns before any work)."""
        st = self._fresh_state()
        self._call(st, np.zeros(5), np.zeros(self.run_.num_agents + 2), np.zeros((1, 7), np.int64),
                   np.zeros((1, 2)), 0, 0, 0)

    # ------------------------------------------------------------ one seed
    def _run_one(self, pos: int, cap: int, progress, done_before: int) -> int:
        """Run seed ``pos`` (capped at batch clock ``cap``); write its results; return the kernel's last code."""
        run = self.run_
        N = run.num_agents
        W = N + 2
        step_gen, event_gen = stream_generators(run.settings.seed, int(run.seed_ids[pos]))
        st = self._fresh_state(pos)
        ist = st["ist"]
        step_rows, event_rows = _FIRST_STEP_ROWS, _FIRST_EVENT_ROWS
        ustep = step_gen.random(step_rows * STEP_COLUMNS)
        uev = event_gen.random(event_rows * W)
        logging = run.log is not None
        logi = np.zeros((_LOG_ROWS if logging else 1, 7), np.int64)
        logf = np.zeros((logi.shape[0], 2))
        chunks = []
        code = _BUDGET
        try:
            while True:
                code = self._call(st, ustep, uev, logi, logf, pos, MAX_STEP_ROWS, cap)
                if code == _NEED_STEP:
                    step_rows = min(2 * step_rows, MAX_STEP_ROWS)
                    ustep = step_gen.random(step_rows * STEP_COLUMNS)
                    ist[S_UPOS] = 0
                elif code == _NEED_EVENT:
                    event_rows = min(2 * event_rows, _MAX_EVENT_ROWS)
                    uev = event_gen.random(event_rows * W)
                    ist[S_EPOS] = 0
                elif code == _NEED_GAMMA:
                    need = int(ist[S_CLOCK] + 1 - ist[S_EPOCH_START])
                    self.gpow = self.gamma ** np.arange(2 * need + 1)
                elif code == _LOG_FULL:
                    n = int(ist[S_LOGN])
                    ist[S_LOGN] = 0
                    chunks.append((logi[:n].copy(), logf[:n].copy()))
                elif code == _ERROR:
                    raise InvalidArgumentError(
                        f"seed {int(run.seed_ids[pos])}: successor c'={int(ist[S_ERR_SUCC])} is "
                        f"inadmissible at epoch state {int(ist[S_ERR_STATE])}.")
                elif code != _BUDGET:
                    break
                self._timestamp(pos)
                progress(done_before + int(ist[S_UPDATES]))
        finally:  # also on Ctrl-C: the state is at a step boundary
            n = int(ist[S_LOGN])
            if logging and n:
                chunks.append((logi[:n].copy(), logf[:n].copy()))
            self._write_back(pos, st, code, chunks)
        return code

    def _timestamp(self, pos: int) -> None:
        run = self.run_
        new = run.reached[:, pos] & np.isnan(run.checkpoint_seconds[:, pos])
        if new.any():
            run.checkpoint_seconds[new, pos] = time.perf_counter() - run.t_loop

    def _write_back(self, pos: int, st: dict, code: int, chunks: list) -> None:
        run = self.run_
        ist = st["ist"]
        self._timestamp(pos)
        run.updates[pos] = ist[S_UPDATES]
        run.truncations[pos] = ist[S_TRUNC]
        run.sim.episodes[pos] = ist[S_EPISODES]
        self.clocks[pos] = ist[S_CLOCK]
        if code == _DONE:
            run.alive[pos] = False
            run.finish_clock[pos] = ist[S_FINISH]
        else:
            run.alive[pos] = True
            run.finish_clock[pos] = ist[S_CLOCK]
        if code == _STALLED:
            self.stall_clock[pos] = ist[S_STALL_CLOCK]
        self.logs[pos] = chunks
        if self.param:
            self.final_theta[pos] = st["theta"]

    # ------------------------------------------------------------ the batch
    def run(self, progress) -> None:
        """Run every seed (see the module docstring); ``progress(total_updates)`` after each chunk."""
        run = self.run_
        S, T = run.num_seeds, run.num_updates
        self.clocks = np.zeros(S, np.int64)
        self.stall_clock = np.full(S, -1, np.int64)
        self.logs = [[] for _ in range(S)]
        cap = np.iinfo(np.int64).max
        try:
            for pos in range(S):
                done_before = int(run.updates[:pos].sum())
                code = self._run_one(pos, cap, progress, done_before)
                if code == _STALLED and self.stall_clock[pos] < cap:
                    cap = int(self.stall_clock[pos])
                    # seeds run past the stall clock are run again up to it
                    for back in range(pos):
                        if self.clocks[back] > cap:
                            self._reset_seed(back)
                            self._run_one(back, cap, progress, 0)
            if cap < np.iinfo(np.int64).max:
                stalled = np.flatnonzero(self.stall_clock == cap)
                s = int(stalled[0])
                run.status = "stalled"
                run.message = (f"seed {int(run.seed_ids[s])} made no update in {run.stall_limit} "
                               f"primitive steps (invocations longer than the horizon H={run.horizon}?); "
                               f"stopped.")
                self.clocks[run.alive] = cap
                run.finish_clock[run.alive] = cap
        finally:
            run.sim.clock = int(self.clocks.max()) if S else 0
            self._finish_book()

    def _reset_seed(self, pos: int) -> None:
        """Forget seed ``pos``'s results before running it again."""
        run = self.run_
        run.q[:, pos] = np.nan
        run.reached[:, pos] = False
        run.checkpoint_seconds[:, pos] = np.nan
        self.stall_clock[pos] = -1

    def _finish_book(self) -> None:
        """Linearization columns of the reached checkpoints and the message log in batch order."""
        run = self.run_
        if self.param:  # Q and eps_0 from the saved parameters, by the numpy estimators
            run.record_checkpoints(self.th_out)
            run.load_parameters(np.arange(run.num_seeds), self.final_theta)
        elif run.settings.track_linearization:
            offs = run.offsets
            k_idx, s_idx = np.nonzero(run.reached)
            run.eps0_value[k_idx, s_idx] = 0.0
            run.eps0_grad[k_idx, s_idx] = 0.0
            for i, u in enumerate(self.union):
                th = run.q[k_idx, s_idx, offs[i]:offs[i + 1]][:, :, u].reshape(k_idx.size, int(u.sum()) * (offs[i + 1] - offs[i]))
                run.theta_distance[k_idx, s_idx, i] = np.sqrt(((th - self.init) ** 2).sum(axis=1))
        if self.agent_arrays[2].any() and not self.param:  # cells whose sets differ from their agent's union
            run.q[...] = np.where(self.mask, run.q, np.nan)
        if run.log is not None:
            parts_i, parts_f, pos = [], [], []
            for p, chunks in enumerate(self.logs):
                for li, lf in chunks:
                    parts_i.append(li)
                    parts_f.append(lf)
                    pos.append(np.full(li.shape[0], p, np.int64))
            if parts_i:
                li, lf, ps = np.concatenate(parts_i), np.concatenate(parts_f), np.concatenate(pos)
                order = np.lexsort((ps, li[:, 2], li[:, 5]))  # batch step, receiver, seed
                li, lf, ps = li[order], lf[order], ps[order]
                run.log[:] = [(run.seed_ids[ps], li[:, 0], li[:, 1], li[:, 2], lf[:, 0], li[:, 3],
                               lf[:, 1], li[:, 4], li[:, 6])]
