"""Exact ``Q*_lat`` through the committed-successor chain ``W(y, i, c')`` (SPEC sections 2-3).

The primitive-step chain whose state carries the committed successor,
``(f, i, c')`` with ``f`` the full state, has the Bellman equation

    W(f, i, c') = rbar_i(y, c') + sum_y' G_i(y, y') W(f[y->y'], i, c')
                               + [c' != STOP] sum_y' E_i(y, y') V(f[y->y'], c'),
    V(f, j)     = max_{c'' admissible for j} W(f, j, c''),

with ``G = gamma Kbar diag(1 - beta)``, ``E = gamma Kbar diag(beta)`` and
``y = (x, m, l_i)`` the active agent's part of ``f``. Unrolling the ``G`` term
gives ``W = R_i + D_i V``: the solution is the decision-epoch SMDP's
``Q*(s, c')`` with ``s = (f, i)``, yet a sweep costs one sparse product with
``G`` and one with ``E`` instead of a solve with ``I - G``.

Adaptable agents (issue 15): the committed state carries the *choice*
``j = a*(N+1) + c'`` (mode ``a``, successor ``c'``) instead of ``c'``; the
rows of choice ``j`` use mode ``a``'s reduction (``rbar_{i,a}``,
``Kbar_{i,a}``; ``beta`` is shared), and ``V(f, j) = max`` over agent ``j``'s
admissible choices (:attr:`~icsmdp_theory.model.ICSMDP.choice_admissible`).
Agent ``i``'s array has ``J_i = K_i (N+1)`` columns; a one-mode agent's is
exactly the array above, computed with the same operations.

The ``W`` operator is a ``gamma``-contraction in the sup norm; each row's
total discount is ``gamma`` for ``c' != STOP`` and ``sum_y' G(y, y')`` for
STOP, which gives the bounds ``g_lo <= g <= g_hi = gamma`` used by the span
rule (:func:`solvers.common.increment_bounds`).

The chain is an :class:`~solvers.iteration.IterationProblem` (iterates are the
lists of per-agent ``W`` arrays, policies the epoch policies ``sigma[f, j]``),
so the three solvers below are the compositions of :mod:`solvers.iteration`
shared with :class:`~solvers.smdp.FiniteSMDP`: one stopping rule, one
certified bound, one message form, one status vocabulary.

Registered solvers (``solve(solver, model)`` with ``model`` an
:class:`~icsmdp_theory.model.ICSMDP`):

- :class:`~solvers.api.ValueIteration`: ``W`` sweeps, stopping rule ``sup``
  (``||W_{k+1} - W_k|| <= tol (1 - gamma)/gamma``) or ``span``;
- :class:`~solvers.api.PolicyIteration`: evaluation of the ``W`` chain under
  an epoch policy by :func:`solvers.iteration.solve_policy_system` (a
  BiCGSTAB trial on the sweep operator, sparse LU of ``I - M_sigma`` when it
  does not converge and there are at most ``exact_limit`` unknowns, else GMRES);
- :class:`~solvers.api.ModifiedPolicyIteration`: ``k`` fixed-policy sweeps per
  improvement.

All return a :class:`~icsmdp_theory.results.SolveResult` over epoch states
``s = f*N + i`` with ``q[s, c']`` (``nan`` where inadmissible).

Rounding allowance (:meth:`CommittedChain.rounding`): one sweep forms
``z = (W - beta W) + beta V`` (at most four roundings per entry, so
``|fl(z) - z| <= gamma_3 (|W| + beta |V|) <= 2 gamma_3 M`` with ``M`` the largest
admissible ``|W|``, which bounds ``|V|`` too), then the dot product of a row
of ``gamma Kbar`` (``n`` stored entries, row sum ``gamma <= 1``) with ``z``
plus ``rbar`` (``gamma_{n+1} (|rbar| + M (1 + 2 gamma_3))``), and the stored
``fl(gamma Kbar)`` is within ``u`` of ``gamma Kbar`` entrywise (``u M``). All
together ``delta(W) <= gamma_{n+8} (max |rbar| + M)``.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from icsmdp_theory.epoch import EpochSpace, MAX_EPOCH_STATES
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import option_reduction
from icsmdp_theory.results import SolveResult
from solvers.api import ModifiedPolicyIteration, PolicyIteration, ValueIteration, register
from solvers.common import TIE_TOL, higham_gamma
from solvers.iteration import (run_modified_policy_iteration, run_policy_iteration,
                               run_value_iteration, solve_policy_system)

__all__ = ["CommittedChain", "committed_chain"]

class CommittedChain:
    """The committed-successor chain of an IC-SMDP (a problem object; use :func:`committed_chain`).

    Attributes
    ----------
    space : EpochSpace
    gamma : float
    admissible : ndarray of bool, shape (N, J)
        ``admissible[i, j]``: choice ``j = a*(N+1) + c'`` admissible for agent ``i``
        (the model's ``choice_admissible``; its ``admissible`` for a one-mode model).
    g_lo, g_hi : float
        Bounds on the rows' total discount (see module docstring).
    """

    def __init__(self, model: ICSMDP, *, max_epoch_states: int = MAX_EPOCH_STATES):
        self.space = EpochSpace(model, max_epoch_states=max_epoch_states)
        self.gamma = model.gamma
        self.num_agents = N = model.num_agents
        self.num_successors = S = N + 1
        self.num_choices = model.num_choices
        self.num_modes = K = model.num_modes
        # per agent, per mode (one entry for a pre-configured agent)
        red = [[option_reduction(model, i, a) for a in range(K[i])] for i in range(N)]
        self._G = [[r.continue_matrix for r in ri] for ri in red]
        self._E = [[sp.csr_array(r.end_matrix) for r in ri] for ri in red]
        self._gK = [[sp.csr_array(self.gamma * r.kbar) for r in ri] for ri in red]  # gamma Kbar
        self._beta = [ri[0].beta[:, None, None] for ri in red]
        # rbar_i[y, a*(N+1) + c'] (mode-major columns; today's array when K_i = 1)
        self._rbar = [ri[0].rbar if len(ri) == 1 else np.concatenate([r.rbar for r in ri], axis=1)
                      for ri in red]
        self.admissible = model.choice_admissible
        self._adm_idx = [np.flatnonzero(self.admissible[i, :K[i] * S]) for i in range(N)]
        lows = []
        for i in range(N):
            for a in range(K[i]):
                if model.admissible[i, :N].any():
                    lows.append(self.gamma)
                if model.admissible[i, N]:
                    lows.append(float(self._G[i][a].sum(axis=1).min(initial=self.gamma)))
        self.g_lo = float(min(lows))
        self.g_hi = float(self.gamma)
        self.discount_range = (self.g_lo, self.g_hi)
        n = max(int(np.diff(k.indptr).max(initial=0)) for gi in self._gK for k in gi)
        self._gamma_n = higham_gamma(n + 8)
        self._rbar_scale = max(float(np.abs(r[:, self._adm_idx[i]]).max(initial=0.0))
                               for i, r in enumerate(self._rbar))
        self.shapes = [(ri[0].num_local_states, self.space.num_rest[i], K[i] * S)
                       for i, ri in enumerate(red)]

    # ------------------------------------------------------------ layouts
    def zeros(self) -> list[np.ndarray]:
        return [np.zeros(s) for s in self.shapes]

    def epoch_values(self, W: list[np.ndarray]) -> np.ndarray:
        """``V[f, j] = max_{c'' admissible} W_j``: shape ``(num_full_states, N)``."""
        V = np.empty((self.space.num_full_states, self.num_agents))
        for j, Wj in enumerate(W):
            V[:, j] = self.space.from_agent_view(j, Wj[:, :, self._adm_idx[j]].max(axis=2))
        return V

    def policy_values(self, W: list[np.ndarray], policy: np.ndarray) -> np.ndarray:
        """``V_sigma[f, j] = W_j(f, sigma[f, j])`` for an epoch policy ``sigma[f, j]``."""
        V = np.empty((self.space.num_full_states, self.num_agents))
        for j, Wj in enumerate(W):
            pj = self.space.to_agent_view(j, policy[:, j])
            V[:, j] = self.space.from_agent_view(
                j, np.take_along_axis(Wj, pj[:, :, None], axis=2)[:, :, 0])
        return V

    def greedy(self, W: list[np.ndarray], look=None, previous: np.ndarray | None = None
               ) -> np.ndarray:
        """Greedy epoch policy ``sigma[f, j]``: lowest admissible index within ``1e-10`` of the max,
        or ``previous[f, j]`` when that is within ``1e-10`` (avoids cycling in PI)."""
        pol = np.empty((self.space.num_full_states, self.num_agents), dtype=np.int64)
        for j, Wj in enumerate(W):
            qm = np.where(self.admissible[j, :Wj.shape[2]], Wj, -np.inf)
            best = qm.max(axis=2, keepdims=True)
            choice = np.argmax(qm >= best - TIE_TOL, axis=2)
            if previous is not None:
                prev = self.space.to_agent_view(j, previous[:, j])
                keep = np.take_along_axis(qm, prev[:, :, None], axis=2)[:, :, 0] >= best[:, :, 0] - TIE_TOL
                choice = np.where(keep, prev, choice)
            pol[:, j] = self.space.from_agent_view(j, choice)
        return pol

    def to_epoch_q(self, W: list[np.ndarray]) -> np.ndarray:
        """``q[s, j]`` over epoch states ``s = f*N + i`` and choices ``j = a*(N+1) + c'``
        (``j = c'`` for a one-mode model), ``nan`` where inadmissible."""
        J = self.num_choices
        q = np.empty((self.space.num_full_states, self.num_agents, J))
        for i, Wi in enumerate(W):
            q[:, i, :Wi.shape[2]] = self.space.from_agent_view(i, Wi)
        q[:, ~self.admissible] = np.nan
        return q.reshape(self.space.num_epoch_states, J)

    # ------------------------------------------------------------ operators
    def sweep(self, W: list[np.ndarray], V: np.ndarray) -> list[np.ndarray]:
        """One application of the ``W`` operator with continuation values ``V[f, j]``."""
        # G W + E V = gamma Kbar [(1 - beta) W + beta V]: one sparse product per agent
        N, S = self.num_agents, self.num_successors
        out = []
        for i, Wi in enumerate(W):
            nY, nR, _ = Wi.shape
            nxt = self.space.to_agent_view(i, V)  # (nY, nR, N)
            beta = self._beta[i]
            blocks = []
            for a, gK in enumerate(self._gK[i]):  # one block of N+1 columns per mode
                Wa = Wi[:, :, a * S:(a + 1) * S]
                z = Wa - beta * Wa
                z[:, :, :N] += beta * nxt
                new = (gK @ z.reshape(nY, nR * S)).reshape(nY, nR, S)
                new += self._rbar[i][:, None, a * S:(a + 1) * S]
                blocks.append(new)
            out.append(blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2))
        return out

    def increments(self, new: list[np.ndarray], old: list[np.ndarray]) -> tuple[float, float]:
        """Smallest and largest admissible entry of ``new - old``."""
        lo, hi = np.inf, -np.inf
        for i, (a, b) in enumerate(zip(new, old)):
            d = (a - b)[:, :, self._adm_idx[i]]
            lo, hi = min(lo, float(d.min())), max(hi, float(d.max()))
        return lo, hi

    def residual(self, W: list[np.ndarray]) -> float:
        """``max |T W - W|`` over admissible entries."""
        lo, hi = self.increments(self.sweep(W, self.epoch_values(W)), W)
        return max(abs(lo), abs(hi))

    def scale(self, W):
        return max(float(np.abs(Wi[:, :, self._adm_idx[i]]).max()) for i, Wi in enumerate(W))

    # ------------------------------------------------------------ evaluation
    def _offsets(self):
        sizes = [int(np.prod(s)) for s in self.shapes]
        return np.concatenate([[0], np.cumsum(sizes)]), sizes

    def policy_matrix(self, policy: np.ndarray) -> sp.csr_array:
        """Sparse ``M_sigma`` with ``W = rbar + M_sigma W`` under the epoch policy ``sigma``."""
        N, S = self.num_agents, self.num_successors
        off, _ = self._offsets()
        rows, cols, vals = [], [], []
        pflat = [self.space.to_agent_view(j, policy[:, j]).ravel() for j in range(N)]
        width = [shape[2] for shape in self.shapes]  # J_i = K_i (N+1) columns per agent
        for i in range(N):
            nY, nR, Ji = self.shapes[i]
            r = np.arange(nR)
            c = np.arange(S)
            for a in range(self.num_modes[i]):  # mode a owns columns a*S .. a*S + N
                g = self._G[i][a].tocoo()
                # G part: (y, r, a*S + c) -> (y2, r, a*S + c)
                y = np.repeat(g.row, nR * S)
                y2 = np.repeat(g.col, nR * S)
                rr = np.tile(np.repeat(r, S), g.nnz)
                cc = np.tile(c, g.nnz * nR)
                rows.append(off[i] + (y * nR + rr) * Ji + a * S + cc)
                cols.append(off[i] + (y2 * nR + rr) * Ji + a * S + cc)
                vals.append(np.repeat(g.data, nR * S))
                # E part: (y, r, a*S + c<N) -> epoch state (f(y2, r), c) with choice sigma
                e = self._E[i][a].tocoo()
                y = np.repeat(e.row, nR * N)
                y2 = np.repeat(e.col, nR * N)
                rr = np.tile(np.repeat(r, N), e.nnz)
                cc = np.tile(np.arange(N), e.nnz * nR)
                f = self.space.full_of_view[i][y2 * nR + rr]
                tgt = np.empty_like(f)
                for j in range(N):
                    sel = cc == j
                    v = self.space.view_of_full[j][f[sel]]
                    tgt[sel] = off[j] + v * width[j] + pflat[j][v]
                rows.append(off[i] + (y * nR + rr) * Ji + a * S + cc)
                cols.append(tgt)
                vals.append(np.repeat(e.data, nR * N))
        n = int(off[-1])
        return sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(n, n))

    def flatten(self, W):
        return np.concatenate([w.ravel() for w in W])

    def unflatten(self, z):
        off, _ = self._offsets()
        return [z[off[i]:off[i + 1]].reshape(self.shapes[i]) for i in range(self.num_agents)]

    def evaluate(self, policy: np.ndarray, W0: list[np.ndarray] | None, *, exact_limit: int,
                 rtol: float, method: str = "auto") -> tuple[list[np.ndarray], str]:
        """Solve ``W = rbar + M_sigma W`` by :func:`solvers.iteration.solve_policy_system`.

        The Krylov path multiplies by ``I - M_sigma`` through one policy sweep; sparse
        LU builds ``M_sigma`` (:meth:`policy_matrix`). Returns ``(W, how)``.
        """
        rhs = self.flatten([np.broadcast_to(self._rbar[i][:, None, :], s)
                            for i, s in enumerate(self.shapes)])
        n = rhs.size

        def matvec(z):
            Wz = self.unflatten(np.asarray(z).ravel())
            return z.ravel() - (self.flatten(self.sweep(Wz, self.policy_values(Wz, policy))) - rhs)
        op = spl.LinearOperator((n, n), matvec=matvec, dtype=float)
        z, how = solve_policy_system(
            op, rhs, None if W0 is None else self.flatten(W0), exact_limit=exact_limit,
            rtol=rtol, method=method,
            matrix=lambda: sp.eye_array(n, format="csc") - self.policy_matrix(policy))
        return self.unflatten(z), how

    # ------------------------------------------------------------ IterationProblem
    def start(self, method: str) -> list[np.ndarray]:
        """``W_0 = 0`` for every method."""
        return self.zeros()

    def apply(self, W: list[np.ndarray], policy: np.ndarray | None = None):
        """``(T W, None)`` with continuation ``V = max W`` or ``V_sigma`` under ``policy``."""
        V = self.epoch_values(W) if policy is None else self.policy_values(W, policy)
        return self.sweep(W, V), None

    def rounding(self, W: list[np.ndarray]) -> float:
        """``gamma_{n+8} (max |rbar| + max |W|)`` over admissible entries (module docstring)."""
        return self._gamma_n * (self._rbar_scale + self.scale(W))

    def add(self, W: list[np.ndarray], c: float) -> list[np.ndarray]:
        """``W + c``."""
        return [w + c for w in W]

    def outputs(self, W: list[np.ndarray], look=None):
        """``(q, v, policy)`` over epoch states ``s = f*N + i`` (``policy[s]`` a choice index)."""
        return (self.to_epoch_q(W), self.epoch_values(W).reshape(-1),
                self.greedy(W).reshape(-1))


def committed_chain(model: ICSMDP, *, max_epoch_states: int = MAX_EPOCH_STATES) -> CommittedChain:
    """The (cached) :class:`CommittedChain` of ``model``; refuses oversized models first."""
    return model.derived.get(
        ("committed_chain", int(max_epoch_states)),
        lambda: CommittedChain(model, max_epoch_states=max_epoch_states), observation=False)


@register(ValueIteration, ICSMDP)
def _vi(solver: ValueIteration, model: ICSMDP) -> SolveResult:
    t0 = time.perf_counter()
    return run_value_iteration(committed_chain(model), tol=solver.tol, rule=solver.rule,
                               max_iter=solver.max_iter, settings=dataclasses.asdict(solver),
                               t0=t0)


@register(ModifiedPolicyIteration, ICSMDP)
def _mpi(solver: ModifiedPolicyIteration, model: ICSMDP) -> SolveResult:
    t0 = time.perf_counter()
    return run_modified_policy_iteration(
        committed_chain(model), k=solver.k, tol=solver.tol, rule=solver.rule,
        max_iter=solver.max_iter, settings=dataclasses.asdict(solver), t0=t0)


@register(PolicyIteration, ICSMDP)
def _pi(solver: PolicyIteration, model: ICSMDP) -> SolveResult:
    t0 = time.perf_counter()
    return run_policy_iteration(committed_chain(model), tol=solver.tol, max_iter=solver.max_iter,
                                exact_limit=solver.exact_limit, rtol=solver.eval_tol,
                                settings=dataclasses.asdict(solver), t0=t0,
                                evaluation=solver.evaluation)
