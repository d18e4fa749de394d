"""Theorem 1's bound, term by term (SPEC section 8), and the verdict logic.

The bound lives once, as a sympy expression, and is both evaluated
(:func:`evaluate_terms`) and rendered as LaTeX (:func:`bound_latex`):

    E||Q(.; theta_T) - Q*_lat||_mu^2 <= 2 alpha^2
        + 6 eps_app + 6 eps_0 + 6 lambda_max C1 eps_0
        + 6 lambda_max C0 (1 + t_mix)(1 + log(T + 1)) / T.

``C0`` (and ``C1``) are not computable. The checker therefore reports the
smallest ``C0`` consistent with a run (:func:`smallest_c0`) and fits the decay
exponent of ``lhs(T) - floor`` against ``T`` (:func:`fit_decay`): the bound
allows a decay like ``log(T)/T``, whose log-log slope between ``T_a`` and
``T_b`` is :func:`predicted_slope`; data decaying significantly slower than
that cannot be covered by any fixed ``C0``.

Verdicts (``"holds"``, ``"violated"``, ``"inconclusive"``) with the numbers
behind them come from :func:`verdict_interface`, :func:`verdict_mixing`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

__all__ = ["bound_expression", "bound_terms", "bound_latex", "evaluate_terms", "mixing_factor",
           "smallest_c0", "predicted_slope", "DecayFit", "fit_decay", "verdict_interface",
           "verdict_mixing", "bootstrap_mean"]

_SYMBOLS = sympy.symbols("alpha epsilon_app epsilon_0 lambda_max C_1 C_0 t_mix T",
                         nonnegative=True)


@lru_cache(maxsize=None)
def bound_terms() -> dict:
    """The three terms of Theorem 1 as sympy expressions: interface, approximation, mixing."""
    alpha, eps_app, eps_0, lam, C1, C0, tmix, T = _SYMBOLS
    return {"interface": 2 * alpha**2,
            "approximation": 6 * eps_app + 6 * eps_0 + 6 * lam * C1 * eps_0,
            "mixing": 6 * lam * C0 * (1 + tmix) * (1 + sympy.log(T + 1)) / T}


def bound_expression() -> sympy.Expr:
    """The whole right-hand side of Theorem 1 (sum of :func:`bound_terms`)."""
    return sympy.Add(*bound_terms().values())


def bound_latex() -> str:
    """LaTeX of the bound, for reports.

    >>> "\\\\alpha^{2}" in bound_latex()
    True
    """
    lhs = r"\mathbb{E}\,\|Q(\cdot;\theta_T) - Q^*_{\mathrm{lat}}\|_\mu^2 \le "
    t = bound_terms()
    return lhs + " + ".join(sympy.latex(t[k]) for k in ("interface", "approximation", "mixing"))


@lru_cache(maxsize=None)
def _lambdified():
    return {k: sympy.lambdify(_SYMBOLS, e, modules="numpy") for k, e in bound_terms().items()}


def evaluate_terms(*, alpha: float, eps_app: float = 0.0, eps_0: float = 0.0,
                   lambda_max: float = 0.0, C1: float = 0.0, C0: float = 0.0,
                   t_mix: float = 0.0, T=1.0) -> dict:
    """Numerical value of each term (``T`` may be an array).

    >>> evaluate_terms(alpha=0.5)["interface"]
    0.5
    """
    args = (alpha, eps_app, eps_0, lambda_max, C1, C0, t_mix, np.asarray(T, dtype=float))
    return {k: f(*args) for k, f in _lambdified().items()}


def mixing_factor(T, *, lambda_max: float, t_mix: float) -> np.ndarray:
    """The mixing term per unit ``C0``: ``6 lambda_max (1 + t_mix)(1 + log(T+1))/T``."""
    return evaluate_terms(alpha=0.0, lambda_max=lambda_max, C0=1.0, t_mix=t_mix, T=T)["mixing"]


def smallest_c0(T, lhs, *, floor: float, lambda_max: float, t_mix: float) -> float:
    """Smallest ``C0 >= 0`` with ``lhs(T) <= floor + C0 * mixing_factor(T)`` at every checkpoint.

    ``floor`` is the interface plus approximation terms. Returns ``inf`` when the
    mixing factor is 0 (``lambda_max = 0``) yet some ``lhs`` exceeds the floor.

    >>> smallest_c0([10, 100], [1.0, 0.5], floor=0.0, lambda_max=1.0, t_mix=0.0) > 0
    True
    """
    T = np.asarray(T, float)
    excess = np.asarray(lhs, float) - floor
    fac = mixing_factor(T, lambda_max=lambda_max, t_mix=t_mix)
    need = np.where(excess > 0, np.divide(excess, fac, out=np.full_like(excess, np.inf),
                                          where=fac > 0), 0.0)
    return float(np.max(need, initial=0.0))


def predicted_slope(T_a: float, T_b: float) -> float:
    """Log-log slope of ``(1 + log(T+1))/T`` between ``T_a`` and ``T_b`` (about ``-1 + 1/log T``).

    >>> -1.0 < predicted_slope(50, 3300) < -0.7
    True
    """
    f = lambda t: (1 + np.log(t + 1)) / t  # noqa: E731
    return float((np.log(f(T_b)) - np.log(f(T_a))) / (np.log(T_b) - np.log(T_a)))


def bootstrap_mean(values: np.ndarray, *, rng=None, n_boot: int = 2000,
                   level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) with a percentile bootstrap interval.

    Returns ``(mean, lower, upper)``, each of the trailing shape.
    """
    rng = np.random.default_rng(rng)
    values = np.asarray(values, float)
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = values[idx].mean(axis=1)
    a = (1 - level) / 2
    return mean, np.quantile(boots, a, axis=0), np.quantile(boots, 1 - a, axis=0)


@dataclass(frozen=True)
class DecayFit:
    """Least-squares fit ``log(lhs - floor) = a + b log T`` with a bootstrap interval on ``b``.

    Attributes
    ----------
    exponent : float
        ``b`` on the seed-mean curve (``nan`` if fewer than 3 points exceed the floor).
    lower, upper : float
        Percentile bootstrap interval of ``b`` (resampling seeds).
    points : int
        Checkpoints used (those with ``lhs - floor > 0``).
    predicted : float
        :func:`predicted_slope` over the checkpoints used.
    """

    exponent: float
    lower: float
    upper: float
    points: int
    predicted: float


def _slope(T, y, floor):
    ex = y - floor
    ok = ex > 0
    if ok.sum() < 3:
        return np.nan, int(ok.sum())
    b = np.polyfit(np.log(T[ok]), np.log(ex[ok]), 1)[0]
    return float(b), int(ok.sum())


def fit_decay(T, lhs_per_seed, *, floor: float, rng=None, n_boot: int = 1000,
              level: float = 0.95) -> DecayFit:
    """Fit the decay exponent of ``mean_seeds lhs(T) - floor`` against ``T``.

    Parameters
    ----------
    T : array (K,)
        Checkpoint update counts.
    lhs_per_seed : array (S, K)
        ``sum_{s,c'} mu (Q_T - Q*)^2`` per seed and checkpoint.

    >>> T = np.array([50, 100, 200, 400, 800, 1600, 3200.])
    >>> fit = fit_decay(T, 0.1 + 5.0 / T[None, :].repeat(4, 0), floor=0.1)
    >>> round(fit.exponent, 6)
    -1.0
    """
    rng = np.random.default_rng(rng)
    T = np.asarray(T, float)
    L = np.asarray(lhs_per_seed, float)
    b, k = _slope(T, L.mean(axis=0), floor)
    if np.isnan(b):
        return DecayFit(np.nan, np.nan, np.nan, k, np.nan)
    used = (L.mean(axis=0) - floor) > 0
    pred = predicted_slope(T[used].min(), T[used].max())
    n = L.shape[0]
    if n < 2:
        return DecayFit(b, b, b, k, pred)
    boots = []
    for _ in range(n_boot):
        bb, _ = _slope(T, L[rng.integers(0, n, size=n)].mean(axis=0), floor)
        if not np.isnan(bb):
            boots.append(bb)
    if len(boots) < n_boot // 2:
        return DecayFit(b, -np.inf, np.inf, k, pred)
    a = (1 - level) / 2
    return DecayFit(b, float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a)), k, pred)


def verdict_interface(floor_exact: float, interface_term: float, *, slack: float = 1e-9) -> str:
    """The interface term holds when the exact learning floor is below it.

    ``floor_exact = sum mu (Q_hat* o phi - Q*)^2`` is where IC-Q's error settles
    (its fixed point is ``Q_hat*``, SPEC section 7); it must not exceed ``2 alpha^2``.
    """
    return "holds" if floor_exact <= interface_term + slack else "violated"


def verdict_mixing(fit: DecayFit, *, max_width: float = 1.5) -> str:
    """Consistency of the run's decay with the predicted ``log(T)/T`` rate.

    ``"violated"`` when the whole interval lies above the predicted slope (the
    excess over the floor decays significantly slower than any ``C0`` allows);
    ``"inconclusive"`` with fewer than 3 usable checkpoints or an interval wider
    than ``max_width``; otherwise ``"holds"``.
    """
    if fit.points < 3 or not np.isfinite(fit.lower) or not np.isfinite(fit.upper):
        return "inconclusive"
    if fit.lower > fit.predicted:
        return "violated"
    if fit.upper - fit.lower > max_width:
        return "inconclusive"
    return "holds"
