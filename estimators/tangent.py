r"""Tangent-feature quantities of Theorem 1's approximation term (SPEC section 8).

For an estimator ``Q(o, c'; theta)`` of agent ``i`` with initial parameters
``theta_0``:

- **tangent features** ``g0(o, c') = grad_theta Q(o, c'; theta_0)``: the
  features themselves for the linear model, the backpropagated gradient for
  the MLP (closed form, :func:`solvers.approximators.mlp_jacobian`);
- **linearization** ``Qbar(o, c'; theta) = Q(o, c'; theta_0) + g0(o, c') . (theta - theta_0)``;
- ``Sigma_mu = E_mu[g0 g0^T] = sum_j mu_j g0_j g0_j^T`` over the admissible
  pairs ``j = (cell, c')``. Its nonzero spectrum is that of the ``n x n``
  Gram matrix ``K[j, k] = sqrt(mu_j mu_k) g0_j . g0_k`` (``K = D G G^T D`` and
  ``Sigma = G^T D^2 G`` with ``D = diag(sqrt(mu))``), which is what
  :func:`feature_spectrum` diagonalizes; the ``P x P`` matrix is never formed.
  Agents own disjoint parameters, so ``K`` is block diagonal by agent.
  ``lambda_0`` is the smallest eigenvalue above
  ``max(n, P) * eps * lambda_max`` (numpy's rank tolerance);
- ``eps_app = min_{theta in trust region} ||Qbar(.; theta) - Q_hat*||_inf^2``
  over admissible pairs. For linear features without a trust region it is
  the linear program ``min_{theta, t} t`` s.t. ``|Psi theta - q| <= t``
  (:func:`linear_approximation_error`, ``scipy.optimize.linprog``). For the
  linearized MLP (:func:`tangent_approximation_error`) the target is
  ``r = Q_hat* - Q(theta_0)``; with the Gram eigendecomposition
  ``G G^T = U Lambda U^T`` every ``delta = theta - theta_0`` acts through
  ``G delta = U Lambda^{1/2} z`` with ``||z|| <= ||delta||`` (equality in the
  row space of ``G``, where an optimal ``delta`` lies), so the problem
  becomes ``min_z ||B z - r||_inf`` s.t. ``||z||_2 <= omega``,
  ``B = U Lambda^{1/2}`` (``n x rank``). The min-norm interpolant
  ``delta = G^T (G G^T)^+ r`` is reported (its norm, and whether it
  interpolates); when it does not exist or lies outside ``B(theta_0, omega)``
  the constrained problem is solved by SLSQP in ``z`` (``rank + 1``
  variables), and the value returned is that of a feasible point (an upper
  bound on the minimum, exact up to SLSQP's tolerance).
  Each agent has its own trust region ``B(theta_i0, omega)`` (the decentralized
  projection of :mod:`solvers.approximators`), so the problem separates by
  agent and ``eps_app`` is the largest agent's value;
- ``eps_0`` along a run: ``max |Q - Qbar|`` and ``max ||grad Q - g0||`` over
  all pairs, recorded at checkpoints by :func:`solvers.icq.run_icq`
  (:meth:`solvers.icq.ICQAgent.linearization_error`).

Examples
--------
>>> psi = np.array([[[1.0], [2.0]]])            # one observation, two successors, d = 1
>>> res = linear_approximation_error([psi], np.array([[1.0, 3.0]]), np.array([[True, True]]))
>>> round(res.eps_app, 12), res.theta[0].round(6).tolist()   # theta = 4/3: errors -1/3, +1/3
(0.111111111111, [1.333333])
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize as so

from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch_level import epoch_level
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result
from solvers.approximators import LinearQ, MLPQ

__all__ = ["FeatureSpectrum", "ApproximationError", "TangentApproximation", "TangentReport",
           "tangent_features", "gram_matrix", "feature_spectrum", "linear_approximation_error",
           "tangent_approximation_error", "mu_on_cells", "run_tangent_report"]


# ---------------------------------------------------------------- features
def tangent_features(estimator, theta0: np.ndarray) -> np.ndarray:
    """``g0[o, c', :] = grad_theta Q(o, c'; theta0)`` of one agent's estimator: ``(nO, N+1, P)``.

    ``estimator`` is a :class:`~solvers.approximators.TabularQ`,
    :class:`~solvers.approximators.LinearQ` or :class:`~solvers.approximators.MLPQ`;
    rows of inadmissible successors are zero.
    """
    return estimator.jacobian(np.asarray(theta0, dtype=float))


def _mask(g, adm) -> np.ndarray:
    """Agent mask ``adm`` (``(N+1,)``, or ``(nO_i, N+1)`` per cell) broadcast to ``(nO_i, N+1)``."""
    return np.broadcast_to(np.asarray(adm, bool), np.shape(g)[:2])


def _pairs(blocks, admissible):
    """Admissible rows of each agent's ``[nO_i, N+1, P_i]`` block as ``[n_i, P_i]`` (order ``(o, c')``)."""
    out = []
    for g, adm in zip(blocks, admissible):
        g = np.asarray(g, dtype=float)
        out.append(g[_mask(g, adm)].reshape(-1, g.shape[2]))
    return out


def _weights_iv(mu, blocks, admissible):
    n_cells = sum(np.shape(g)[0] for g in blocks)
    C = np.shape(blocks[0])[1]
    mu = np.asarray(mu, dtype=float)
    if mu.shape != (n_cells, C):
        raise InvalidArgumentError(f"`mu` must have shape ({n_cells}, {C}) (cells x successors), "
                                   f"got {mu.shape}.")
    if not np.all(np.isfinite(mu)) or np.any(mu < 0):
        raise InvalidArgumentError("`mu` must be finite and non-negative.")
    out, k = [], 0
    for g, adm in zip(blocks, admissible):
        nO = np.shape(g)[0]
        out.append(mu[k:k + nO][_mask(g, adm)])
        k += nO
    return out


def gram_matrix(blocks, mu, admissible) -> np.ndarray:
    """``K[j, k] = sqrt(mu_j mu_k) g0_j . g0_k`` over admissible pairs, block diagonal by agent.

    Parameters
    ----------
    blocks : list of N arrays ``(nO_i, N+1, P_i)``
        Tangent features per agent.
    mu : ndarray ``(n_cells, N+1)``
        Sampling weights over ``(cell, c')`` (cells agent-major).
    admissible : bool ``(N, N+1)``, or per agent ``(nO_i, N+1)`` (an explicit epoch
        model's cells, whose sets may differ within an agent)

    Returns
    -------
    ndarray ``(n, n)`` with ``n`` the number of admissible pairs, ordered by
    agent, observation, successor.
    """
    rows = _pairs(blocks, admissible)
    w = _weights_iv(mu, blocks, admissible)
    n = sum(r.shape[0] for r in rows)
    K = np.zeros((n, n))
    k = 0
    for G, wi in zip(rows, w):
        DG = np.sqrt(wi)[:, None] * G
        m = G.shape[0]
        K[k:k + m, k:k + m] = DG @ DG.T
        k += m
    return K


@dataclass(frozen=True, kw_only=True, repr=False)
class FeatureSpectrum(Result):
    """Spectrum of ``Sigma_mu`` through the Gram matrix.

    Attributes
    ----------
    lambda_0 : float
        Smallest nonzero eigenvalue (``nan`` if all are zero).
    lambda_max : float
    eigenvalues : ndarray
        All Gram eigenvalues, ascending (clipped below at 0).
    rank : int
    tolerance : float
        Eigenvalues at or below it count as zero.
    """

    lambda_0: float
    lambda_max: float
    eigenvalues: np.ndarray
    rank: int
    tolerance: float


def feature_spectrum(blocks, mu, admissible, *, tolerance: float | None = None) -> FeatureSpectrum:
    """``lambda_0`` and ``lambda_max`` of ``Sigma_mu = E_mu[g0 g0^T]`` from the Gram matrix.

    See :func:`gram_matrix` for the arguments; ``tolerance`` defaults to
    ``max(n, P) * eps * lambda_max``.
    """
    t0 = time.perf_counter()
    K = gram_matrix(blocks, mu, admissible)
    ev = np.clip(np.linalg.eigvalsh(K), 0.0, None) if K.size else np.zeros(0)
    lam_max = float(ev.max()) if ev.size else 0.0
    P = sum(np.shape(g)[2] for g in blocks)
    tol = float(max(K.shape[0], P) * np.finfo(float).eps * lam_max) if tolerance is None \
        else float(tolerance)
    nz = ev[ev > tol]
    lam0 = float(nz.min()) if nz.size else float("nan")
    return FeatureSpectrum(success=bool(nz.size), status="computed" if nz.size else "zero",
                           message=f"rank {nz.size} of {K.shape[0]} (Gram route).", iterations=0,
                           settings={"tolerance": tol}, elapsed=time.perf_counter() - t0,
                           lambda_0=lam0, lambda_max=lam_max, eigenvalues=ev, rank=int(nz.size),
                           tolerance=tol)


def mu_on_cells(model: ICSMDP | EpochModel, mu_epoch: np.ndarray) -> np.ndarray:
    """Push ``mu[s, c']`` (e.g. :func:`estimators.stationary.mu`) to cells: ``(n_cells, J)``.

    ``J = N+1``, or the choices ``j = a*(N+1) + c'`` of a model with adaptable agents.

    Epoch states ``s`` are flat (``s = f*N + i`` for a primitive model; ``mu`` may
    also be shaped ``[f, i, c']``); cells are those of
    :meth:`icsmdp_theory.epoch_level.EpochLevel.epoch_cells`.
    """
    cells = epoch_level(model).epoch_cells(cell_offsets(model.num_observations))
    mu_epoch = np.asarray(mu_epoch, dtype=float)
    C = int(getattr(model, "num_choices", model.num_successors))
    if mu_epoch.size != cells.size * C:
        raise InvalidArgumentError(f"`mu` must hold {cells.size * C} values (epoch states x "
                                   f"{'choices' if C > model.num_successors else 'successors'}), "
                                   f"got {mu_epoch.size}.")
    out = np.zeros((int(sum(model.num_observations)), C))
    np.add.at(out, cells.reshape(-1), mu_epoch.reshape(-1, C))
    return out


# ---------------------------------------------------------------- eps_app
@dataclass(frozen=True, kw_only=True, repr=False)
class ApproximationError(Result):
    """``eps_app`` of linear features: ``min_theta ||Psi theta - Q_hat*||_inf^2`` (exact LP).

    Attributes
    ----------
    eps_app : float
        Largest agent's squared sup error.
    sup_error : ndarray (N,)
        Each agent's ``min ||Psi_i theta - q_i||_inf``.
    theta : tuple of N arrays
        Minimizers.
    """

    eps_app: float
    sup_error: np.ndarray
    theta: tuple


def _target_iv(q_target, blocks, admissible):
    n_cells = sum(np.shape(g)[0] for g in blocks)
    C = np.shape(blocks[0])[1]
    q = np.asarray(q_target, dtype=float)
    if q.shape != (n_cells, C):
        raise InvalidArgumentError(f"`q_target` must have shape ({n_cells}, {C}), got {q.shape}.")
    out, k = [], 0
    for g, adm in zip(blocks, admissible):
        nO = np.shape(g)[0]
        qi = q[k:k + nO][_mask(g, adm)]
        if not np.all(np.isfinite(qi)):
            raise InvalidArgumentError("`q_target` must be finite at every admissible pair.")
        out.append(qi)
        k += nO
    return out


def _sup_fit_lp(A: np.ndarray, q: np.ndarray):
    """``min_x ||A x - q||_inf`` by linprog: variables ``(x, t)``."""
    n, d = A.shape
    if n == 0:
        return 0.0, np.zeros(d)
    c = np.zeros(d + 1)
    c[-1] = 1.0
    ones = np.ones((n, 1))
    A_ub = np.block([[A, -ones], [-A, -ones]])
    b_ub = np.concatenate([q, -q])
    res = so.linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * (d + 1), method="highs")
    if res.status != 0:
        raise InvalidArgumentError(f"the sup-norm fit LP failed: {res.message}")
    x = res.x[:d]
    return float(np.abs(A @ x - q).max()), x


def linear_approximation_error(features, q_target, admissible) -> ApproximationError:
    """Exact ``eps_app`` of linear features (no trust region), one LP per agent.

    Parameters
    ----------
    features : list of N arrays ``(nO_i, N+1, d_i)``
        ``psi_i[o, c', :]``.
    q_target : ndarray ``(n_cells, N+1)``
        ``Q_hat*`` on cells (``nan`` allowed at inadmissible pairs).
    admissible : bool ``(N, N+1)``
    """
    t0 = time.perf_counter()
    rows = _pairs(features, admissible)
    qs = _target_iv(q_target, features, admissible)
    errs, thetas = [], []
    for A, q in zip(rows, qs):
        e, x = _sup_fit_lp(A, q)
        errs.append(e)
        thetas.append(x)
    errs = np.array(errs)
    return ApproximationError(success=True, status="optimal", message="linprog (HiGHS) per agent.",
                              iterations=len(errs), settings={}, elapsed=time.perf_counter() - t0,
                              eps_app=float(errs.max() ** 2), sup_error=errs, theta=tuple(thetas))


@dataclass(frozen=True, kw_only=True, repr=False)
class TangentApproximation(Result):
    """``eps_app`` of the linearized model over ``B(theta_0, omega)`` (see the module docstring).

    Attributes
    ----------
    eps_app : float
        ``max_i (min_{||delta_i|| <= omega} ||G_i delta_i - r_i||_inf)^2`` (feasible-point value).
    sup_error : ndarray (N,)
        Per-agent sup error at the returned point.
    unconstrained_sup_error : ndarray (N,)
        Per-agent ``min_delta ||G_i delta - r_i||_inf`` without the ball (LP).
    min_norm : ndarray (N,)
        ``||G_i^T (G_i G_i^T)^+ r_i||``: the min-norm least-squares solution's norm.
    min_norm_residual : ndarray (N,)
        Its sup residual (``~0`` when it interpolates).
    interpolates : ndarray (N,) bool
        The min-norm solution interpolates (residual ``<= 1e-9 (1 + ||r||_inf)``).
    within_ball : ndarray (N,) bool
        ... and its norm is ``<= omega``.
    omega : float
    delta : tuple of N arrays
        The returned ``theta_i - theta_i0``.
    """

    eps_app: float
    sup_error: np.ndarray
    unconstrained_sup_error: np.ndarray
    min_norm: np.ndarray
    min_norm_residual: np.ndarray
    interpolates: np.ndarray
    within_ball: np.ndarray
    omega: float
    delta: tuple


def _ball_sup_fit(B: np.ndarray, r: np.ndarray, omega: float, z0: np.ndarray):
    """``min_z ||B z - r||_inf`` s.t. ``||z|| <= omega`` by SLSQP on ``(z, s)``; returns a feasible z."""
    n, k = B.shape

    def feasible(z):
        nz = np.linalg.norm(z)
        return z if nz <= omega else z * (omega / nz)
    best = feasible(z0)
    best_val = float(np.abs(B @ best - r).max())
    if k == 0:
        return best, best_val
    x0 = np.concatenate([best, [best_val]])
    cons = [{"type": "ineq", "fun": lambda x: x[-1] - (B @ x[:-1] - r),
             "jac": lambda x: np.hstack([-B, np.ones((n, 1))])},
            {"type": "ineq", "fun": lambda x: x[-1] + (B @ x[:-1] - r),
             "jac": lambda x: np.hstack([B, np.ones((n, 1))])},
            {"type": "ineq", "fun": lambda x: omega ** 2 - x[:-1] @ x[:-1],
             "jac": lambda x: np.concatenate([-2 * x[:-1], [0.0]])[None, :]}]
    res = so.minimize(lambda x: x[-1], x0, jac=lambda x: np.eye(k + 1)[-1], method="SLSQP",
                      constraints=cons, options={"maxiter": 1000, "ftol": 1e-14})
    z = feasible(res.x[:-1])
    val = float(np.abs(B @ z - r).max())
    if val < best_val:
        best, best_val = z, val
    return best, best_val


def tangent_approximation_error(blocks, q0, q_target, admissible, *, omega: float | None
                                ) -> TangentApproximation:
    """``eps_app`` of the linearization ``Qbar(theta) = Q(theta_0) + g0 . (theta - theta_0)``.

    Parameters
    ----------
    blocks : list of N arrays ``(nO_i, N+1, P_i)``
        Tangent features ``g0`` per agent.
    q0 : ndarray ``(n_cells, N+1)``
        ``Q(theta_0)`` on cells.
    q_target : ndarray ``(n_cells, N+1)``
        ``Q_hat*`` on cells.
    admissible : bool ``(N, N+1)``
    omega : float or None
        Trust-region radius (``None``: no constraint).
    """
    t0 = time.perf_counter()
    if omega is not None and not (np.isfinite(omega) and omega > 0):
        raise InvalidArgumentError(f"`omega` must be a finite number > 0 or None, got {omega!r}.")
    rows = _pairs(blocks, admissible)
    targets = [a - b for a, b in zip(_target_iv(q_target, blocks, admissible),
                                     _target_iv(q0, blocks, admissible))]
    N = len(rows)
    sup, free, mn, mres, interp, inball, deltas = (np.zeros(N), np.zeros(N), np.zeros(N),
                                                   np.zeros(N), np.zeros(N, bool), np.zeros(N, bool), [])
    for i, (G, r) in enumerate(zip(rows, targets)):
        lam, U = np.linalg.eigh(G @ G.T)
        lam = np.clip(lam, 0.0, None)
        tol = max(G.shape) * np.finfo(float).eps * (lam.max() if lam.size else 0.0)
        keep = lam > tol
        U, lam = U[:, keep], lam[keep]
        B = U * np.sqrt(lam)                    # G delta = B z, ||z|| = ||delta|| on row(G)
        z_mn = (U.T @ r) / np.sqrt(lam)         # min-norm least squares
        mn[i] = float(np.linalg.norm(z_mn))
        mres[i] = float(np.abs(B @ z_mn - r).max()) if r.size else 0.0
        interp[i] = mres[i] <= 1e-9 * (1.0 + (np.abs(r).max() if r.size else 0.0))
        free[i], z_free = _sup_fit_lp(B, r)
        inball[i] = bool(interp[i] and (omega is None or mn[i] <= omega))
        if interp[i] and (omega is None or inball[i]):
            z, sup[i] = z_mn, mres[i]
            free[i] = min(free[i], mres[i])
        elif omega is None or np.linalg.norm(z_free) <= omega:
            z, sup[i] = z_free, free[i]
        else:
            z, sup[i] = _ball_sup_fit(B, r, float(omega), z_mn)
        deltas.append(G.T @ (U @ (z / np.sqrt(lam))) if lam.size else np.zeros(G.shape[1]))
    return TangentApproximation(
        success=True, status="computed",
        message=("min-norm interpolant within the ball for every agent" if inball.all() else
                 "constrained sup fit by SLSQP where the min-norm interpolant is outside the ball"
                 if omega is not None else "unconstrained"),
        iterations=N, settings={"omega": omega}, elapsed=time.perf_counter() - t0,
        eps_app=float(sup.max() ** 2) if N else 0.0, sup_error=sup, unconstrained_sup_error=free,
        min_norm=mn, min_norm_residual=mres, interpolates=interp, within_ball=inball,
        omega=float("inf") if omega is None else float(omega), delta=tuple(deltas))


# ---------------------------------------------------------------- from a run
@dataclass(frozen=True, kw_only=True, repr=False)
class TangentReport(Result):
    """The approximation-term quantities of a linear or MLP run (one ``theta_0``).

    Attributes
    ----------
    learner : str
    spectrum : FeatureSpectrum
        ``lambda_0``, ``lambda_max`` of ``Sigma_mu``.
    approximation : TangentApproximation or ApproximationError
        ``eps_app`` (LP for linear features without ``omega``).
    eps0_value, eps0_grad : float
        Largest ``max |Q - Qbar|`` and ``max ||grad Q - g0||`` recorded along the run.
    """

    learner: str
    spectrum: FeatureSpectrum
    approximation: Result
    eps0_value: float
    eps0_grad: float


def run_tangent_report(model: ICSMDP | EpochModel, record, *, q_target: np.ndarray, mu: np.ndarray,
                       seed_index: int = 0) -> TangentReport:
    """Tangent quantities of a :class:`~solvers.records.RunRecord` of a linear or MLP learner.

    Rebuilds each agent's estimator from the record's settings and
    ``theta0`` (seed ``seed_index``; all seeds share it with ``shared_init``).

    Parameters
    ----------
    model : ICSMDP or EpochModel
    record : RunRecord
        Each agent's estimator covers the successors admissible in some of its
        cells (``record.agent_admissible``); the pairs held are each cell's own
        (``record.cell_admissible``).
    q_target : ndarray ``(n_cells, N+1)``
        ``Q_hat*`` on cells.
    mu : ndarray ``(n_cells, N+1)``
        Sampling weights on cells (see :func:`mu_on_cells`).
    """
    t0 = time.perf_counter()
    if record.learner not in ("linear", "mlp") or not record.theta0:
        raise InvalidArgumentError(f"`record` must be a linear or MLP run with `theta0`, got "
                                   f"learner {record.learner!r}.")
    adm = np.asarray(record.agent_admissible, bool)
    offs = cell_offsets(record.num_observations)
    cell_adm = np.asarray(record.cell_admissible, bool)
    masks = [cell_adm[offs[i]:offs[i + 1]] for i in range(record.num_agents)]
    blocks, q0 = [], []
    omega = record.settings.get("omega")
    hidden = tuple(record.settings.get("hidden", (64, 64)))
    for i in range(record.num_agents):
        th0 = np.asarray(record.theta0[i])[seed_index]
        feats = record.features[i] if record.features else None
        nO = record.num_observations[i]
        if record.learner == "linear":
            C = adm.shape[1]
            psi = feats if feats is not None else np.eye(nO * C).reshape(nO, C, nO * C)
            est = LinearQ(1, psi, adm[i], theta0=th0)
        else:
            est = MLPQ(1, nO, adm[i], theta0=th0, hidden=hidden, inputs=feats)
        blocks.append(tangent_features(est, th0))
        q0.append(est.values_at(th0))
    q0 = np.concatenate(q0)
    spec = feature_spectrum(blocks, mu, masks)
    if record.learner == "linear" and omega is None:
        approx = linear_approximation_error(blocks, q_target, masks)
    else:
        approx = tangent_approximation_error(blocks, q0, q_target, masks, omega=omega)
    ev = record.eps0_value
    eg = record.eps0_grad
    e_v = float(np.nanmax(ev)) if ev is not None and np.isfinite(ev).any() else float("nan")
    e_g = float(np.nanmax(eg)) if eg is not None and np.isfinite(eg).any() else float("nan")
    return TangentReport(success=spec.success and approx.success, status="computed",
                         message=f"{record.learner}: lambda_0={spec.lambda_0:.3g}, "
                                 f"lambda_max={spec.lambda_max:.3g}, eps_app={approx.eps_app:.3g}.",
                         iterations=0, settings={"seed_index": seed_index, "omega": omega},
                         elapsed=time.perf_counter() - t0, learner=record.learner, spectrum=spec,
                         approximation=approx, eps0_value=e_v, eps0_grad=e_g)
