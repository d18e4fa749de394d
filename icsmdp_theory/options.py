"""Exact option reduction of an agent's invocation (SPEC section 2).

For agent ``i`` with mean kernel ``Kbar[y, y'] = sum_a pi(a|m, l) K[a][y, y']``,
mean reward ``rbar[y, c'] = sum_a pi(a|m, l) r(x, m, i, a, c')`` and end
probability ``beta(y')``:

- continue matrix ``G = gamma Kbar diag(1 - beta)``, end matrix
  ``E = gamma Kbar diag(beta)``;
- option reward ``R(y, c') = [(I - G)^{-1} rbar(., c')](y)``;
- discounted end kernel ``D(y'|y) = [(I - G)^{-1} E](y, y')``;
- effective discount ``g(y) = sum_y' D(y'|y) = E[gamma^tau | y]`` and
  ``gamma_bar = max_{i, y} g_i(y) < 1``;
- undiscounted law ``P(y', tau | y) = [(Kbar diag(1-beta))^{tau-1} Kbar diag(beta)](y, y')``.

An adaptable agent (issue 15) has one reduction per mode ``k``: the same
formulas with mode ``k``'s internal policy in ``Kbar`` and ``rbar``
(:func:`option_reduction` ``(model, i, mode=k)``); ``gamma_bar`` is the
maximum over agents, modes and local states.

``(I - G)^{-1}`` and a dense ``D`` are never formed: both fill in. Systems
``(I - G) X = B`` are solved by sparse LU for small agents and by the
Neumann series ``X = sum_k G^k B`` otherwise; it converges at rate
``q = ||G||_inf <= gamma`` and stops when the certified tail
``||G^k B||_inf q / (1 - q)`` is below ``1e-14 max(1, ||X||_inf)``.
Measured on random agents with 8 nonzeros per row, ``beta = 0.3``, 11
right-hand sides (``python -m reports.bench options``, 2 loaded cores): LU
fill grows from 44x (750 local states, 0.05 s to factor) to 349x (6,000
states, 32 s to factor) while Neumann takes 0.008 s and 0.10 s, agreeing to
3e-14; hence LU only up to :data:`LU_LIMIT` local states.

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> red = option_reduction(load_example("tiny-handoff"), 0)
>>> # planner: g(m1) = 0.9*(0.5 + 0.25) + 0.9*0.25*g(m1) = 0.675/0.775,
>>> # g(m0) = 0.9*(0.5 + 0.5*g(m1)), g(m2) = 0.9 (one step, then beta = 1)
>>> red.effective_discount().round(6).tolist()
[0.841935, 0.870968, 0.9]
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP

__all__ = ["OptionReduction", "DurationLaw", "option_reduction", "gamma_bar", "LU_LIMIT",
           "DURATION_TAIL_TOL"]

#: Largest local state count solved by sparse LU in ``method="auto"``.
LU_LIMIT = 300
#: The ``(y', tau)`` law is summed until the remaining mass is below this (SPEC section 2).
DURATION_TAIL_TOL = 1e-12
_METHODS = ("auto", "lu", "neumann")


_POWER_LOCK = threading.Lock()


@dataclass(frozen=True)
class DurationLaw:
    """Undiscounted joint law of the end label and the duration (SPEC section 2).

    Attributes
    ----------
    prob : ndarray, shape (nY, num_labels, max_duration)
        ``prob[y, o, t-1] = P(label(y_end) = o, tau = t | y)``.
    tail_bound : float
        ``max_y P(tau > max_duration | y)``: the mass the truncation leaves out.
    max_duration : int
    """

    prob: np.ndarray
    tail_bound: float
    max_duration: int


class OptionReduction:
    """The exact option reduction of agent ``i`` (SPEC section 2); use :func:`option_reduction`.

    Attributes
    ----------
    kbar : csr_array (nY, nY)
        Mean primitive kernel ``Kbar[y, y']``.
    rbar : ndarray (nY, N+1)
        Mean primitive reward ``rbar[y, c']``.
    beta : ndarray (nY,)
        End probability at the state reached.
    continue_matrix, end_matrix : csr_array (nY, nY)
        ``G = gamma Kbar diag(1-beta)`` and ``E = gamma Kbar diag(beta)``.
    method : str
        ``"lu"`` or ``"neumann"``: how ``(I - G) X = B`` is solved.
    mode : int
        The mode whose internal policy is reduced (issue 15).
    """

    def __init__(self, model: ICSMDP, i: int, *, mode: int | None = None, method: str = "auto"):
        if method not in _METHODS:
            raise InvalidArgumentError(f"`method` must be one of {_METHODS}, got {method!r}.")
        self.agent = i
        self.gamma = model.gamma
        self.kbar = model.mean_kernel(i, mode)
        self.rbar = model.mean_reward(i, mode)
        #: the mode reduced (0 for the only mode of a pre-configured agent)
        self.mode = 0 if mode is None else int(mode)
        self.beta = model.end_probability_local(i)
        self.num_local_states = self.kbar.shape[0]
        #: undiscounted ``M = Kbar diag(1 - beta)`` and ``Kbar diag(beta)``
        self.continue_matrix_undiscounted = sp.csr_array(self.kbar @ sp.diags_array(1.0 - self.beta))
        self.end_matrix_undiscounted = sp.csr_array(self.kbar @ sp.diags_array(self.beta))
        self.continue_matrix = sp.csr_array(self.gamma * self.continue_matrix_undiscounted)
        self.end_matrix = sp.csr_array(self.gamma * self.end_matrix_undiscounted)
        if method == "auto":
            method = "lu" if self.num_local_states <= LU_LIMIT else "neumann"
        self.method = method
        #: ``||G||_inf``, the Neumann contraction rate (``<= gamma < 1``).
        self.neumann_rate = float(np.max(self.continue_matrix.sum(axis=1), initial=0.0))

    @cached_property
    def _lu(self):
        a = sp.csc_array(sp.eye_array(self.num_local_states, format="csc") - self.continue_matrix)
        return spl.splu(a)

    @cached_property
    def _lu_undiscounted(self):
        a = sp.csc_array(sp.eye_array(self.num_local_states, format="csc")
                         - self.continue_matrix_undiscounted)
        return spl.splu(a)

    def solve_continue(self, rhs: np.ndarray, *, discounted: bool = True) -> np.ndarray:
        """Solve ``(I - G) X = rhs`` (or ``(I - M) X = rhs`` with ``discounted=False``).

        ``M = Kbar diag(1 - beta)`` has spectral radius < 1 by Assumption 1(ii)
        but its norm may be 1; its Neumann series stops when the last term is
        below ``1e-15 max(1, ||X||)``.

        Parameters
        ----------
        rhs : ndarray, shape (nY,) or (nY, k), or a sparse matrix of that shape

        Returns
        -------
        ndarray of the same (dense) shape.
        """
        if sp.issparse(rhs):
            rhs = rhs.toarray()
        rhs = np.asarray(rhs, dtype=float)
        if rhs.shape[0] != self.num_local_states:
            raise InvalidArgumentError(
                f"`rhs` must have {self.num_local_states} rows (local states of agent "
                f"{self.agent}), got {rhs.shape[0]}.")
        if rhs.size == 0:
            return rhs.copy()
        if self.method == "lu":
            return (self._lu if discounted else self._lu_undiscounted).solve(rhs)
        if discounted:
            return self._neumann(rhs, self.continue_matrix, self.neumann_rate, 1e-14)
        x = self._neumann_undiscounted(rhs, 1e-14)
        return self._lu_undiscounted.solve(rhs) if x is None else x

    @staticmethod
    def _neumann(rhs: np.ndarray, mat, q: float, rel: float) -> np.ndarray:
        """``sum_k G^k rhs`` with the certified tail ``||G^k rhs|| q/(1-q)`` (``q = ||G||_inf < 1``)."""
        x = rhs.copy()
        if q == 0.0:
            return x
        term = rhs
        factor = q / (1.0 - q)
        while True:
            term = mat @ term
            x += term
            if np.abs(term).max() * factor <= rel * max(1.0, np.abs(x).max()):
                return x

    def _neumann_undiscounted(self, rhs: np.ndarray, rel: float,
                              max_terms: int = 20_000) -> np.ndarray | None:
        """``sum_k M^k rhs`` for ``M = Kbar diag(1 - beta) >= 0``, with a certified tail.

        ``||M^j||_inf = max(M^j 1)``; once ``rho_K = max(M^K 1) < 1``, grouping the
        tail in blocks of ``K`` terms gives ``||sum_{j > K} M^j rhs|| <= ||rhs|| K rho_K/(1 - rho_K)``.
        Returns ``None`` (caller falls back to LU) if that bound is not reached
        within ``max_terms`` terms.
        """
        mat = self.continue_matrix_undiscounted
        x = rhs.copy()
        term = rhs
        scale = np.abs(rhs).max()
        for k in range(1, max_terms + 1):
            term = mat @ term
            x += term
            rho = self._power_norm(k)
            if rho < 1.0 and scale * k * rho / (1.0 - rho) <= rel * max(1.0, np.abs(x).max()):
                return x
        return None

    def _power_norm(self, k: int) -> float:
        """``||M^k||_inf = max(M^k 1)`` (``M >= 0``), computed once per ``k`` and cached."""
        norms = self.__dict__.setdefault("_power_norms", [1.0])
        if len(norms) > k:
            return norms[k]
        with _POWER_LOCK:  # reductions are shared between threads (epoch_chain_operator)
            while len(norms) <= k:
                mass = self.__dict__.get("_power_mass", np.ones(self.num_local_states))
                mass = self.continue_matrix_undiscounted @ mass
                self.__dict__["_power_mass"] = mass
                norms.append(float(mass.max(initial=0.0)))
        return norms[k]

    # --------------------------------------------------------------- products
    def option_reward(self) -> np.ndarray:
        """``R_i(y, c') = [(I - G)^{-1} rbar(., c')](y)``: shape ``(nY, N+1)`` (cached)."""
        if "_R" not in self.__dict__:
            self._R = self.solve_continue(self.rbar)
        return self._R

    def effective_discount(self) -> np.ndarray:
        """``g_i(y) = sum_y' D_i(y'|y) = E[gamma^tau | y]``: shape ``(nY,)`` (cached)."""
        if "_g" not in self.__dict__:
            self._g = self.solve_continue(self.end_matrix.sum(axis=1))
        return self._g

    def apply_end_kernel(self, values: np.ndarray) -> np.ndarray:
        """``(D_i v)(y) = sum_y' D_i(y'|y) v(y')`` for ``v`` of shape ``(nY,)`` or ``(nY, k)``."""
        values = np.asarray(values, dtype=float)
        if values.ndim not in (1, 2) or values.shape[0] != self.num_local_states:
            raise InvalidArgumentError(
                f"`values` must have {self.num_local_states} rows (local states of agent "
                f"{self.agent}), got shape {list(values.shape)}.")
        return self.solve_continue(self.end_matrix @ values)

    def end_kernel_pushforward(self, labels: np.ndarray, num_labels: int) -> np.ndarray:
        """``D_i`` pushed through a labelling of end states: ``out[y, o] = sum_{y': label(y')=o} D_i(y'|y)``.

        Parameters
        ----------
        labels : int ndarray, shape (nY,)
            ``label(y')`` in ``0..num_labels-1``.

        Returns
        -------
        ndarray, shape (nY, num_labels)
        """
        onehot = self._onehot(labels, num_labels)
        return self.solve_continue(self.end_matrix @ onehot)

    def end_law_pushforward(self, labels: np.ndarray, num_labels: int) -> np.ndarray:
        """Undiscounted end law pushed through labels: ``out[y, o] = P(label(y_end) = o | y)``.

        ``P(y'|y) = [(I - M)^{-1} Kbar diag(beta)](y, y')`` with ``M = Kbar diag(1 - beta)``;
        rows sum to 1 (every invocation ends, Assumption 1(ii)).
        """
        onehot = self._onehot(labels, num_labels)
        return self.solve_continue(self.end_matrix_undiscounted @ onehot, discounted=False)

    def _onehot(self, labels, num_labels) -> sp.csr_array:
        labels = np.asarray(labels)
        nY = self.num_local_states
        if (labels.shape != (nY,) or labels.dtype.kind not in "iu" or labels.min(initial=0) < 0
                or labels.max(initial=0) >= num_labels):
            raise InvalidArgumentError(
                f"`labels` must be {nY} integers in 0..{num_labels - 1} (agent {self.agent}).")
        return sp.csr_array((np.ones(nY), (np.arange(nY), labels)), shape=(nY, num_labels))

    def duration_law(self, labels: np.ndarray | None = None, num_labels: int | None = None, *,
                     tail_tol: float = DURATION_TAIL_TOL, max_duration: int = 100_000) -> DurationLaw:
        """Undiscounted joint law of ``(label(y_end), tau)`` (SPEC section 2).

        ``P(y', tau | y) = [(Kbar diag(1-beta))^{tau-1} Kbar diag(beta)](y, y')``,
        summed over ``tau`` until the remaining mass ``max_y P(tau > t | y)`` is
        below ``tail_tol``; the final remaining mass is ``tail_bound``.

        Parameters
        ----------
        labels : int ndarray (nY,) or None
            Labelling of end states; ``None`` keeps ``y'`` itself (dense ``nY x nY``
            per duration: small agents only).
        """
        nY = self.num_local_states
        if labels is None:
            labels, num_labels = np.arange(nY), nY
        onehot = self._onehot(labels, num_labels)
        cont = self.continue_matrix_undiscounted
        term = (self.end_matrix_undiscounted @ onehot).toarray()
        remaining = np.ones(nY)
        out = []
        for _ in range(max_duration):
            out.append(term)
            remaining = remaining - term.sum(axis=1)
            tail = float(np.max(remaining, initial=0.0))
            if tail <= tail_tol:
                break
            term = cont @ term
        prob = np.stack(out, axis=2)
        return DurationLaw(prob=prob, tail_bound=max(tail, 0.0), max_duration=prob.shape[2])


def option_reduction(model: ICSMDP, i: int, mode: int | None = None) -> OptionReduction:
    """The cached :class:`OptionReduction` of agent ``i`` of ``model`` (in mode ``mode``).

    ``mode=None`` reduces the agent's only mode and refuses an agent with
    several (:class:`~icsmdp_theory.errors.InvalidArgumentError` naming it);
    ``mode=k`` reduces mode ``k`` (issue 15).
    """
    if not 0 <= i < model.num_agents:
        raise InvalidArgumentError(f"`i` (agent index) must lie in 0..{model.num_agents - 1}, got {i}.")
    model.mode_policy(i, mode)  # checks `mode`; refuses None on a multi-mode agent
    k = 0 if mode is None else int(mode)
    key = ("option_reduction", int(i)) if k == 0 else ("option_reduction", int(i), k)
    return model.derived.get(key, lambda: OptionReduction(model, i, mode=k), observation=False)


def gamma_bar(model: ICSMDP) -> float:
    """``gamma_bar = max_{i, k, y} E[gamma^tau | y]`` (SPEC section 2; ``k`` the modes), ``< 1``.

    >>> from icsmdp_theory.examples import load_example
    >>> round(gamma_bar(load_example("tiny-handoff")), 6)
    0.9
    """
    return float(max(option_reduction(model, i, k).effective_discount().max()
                     for i in range(model.num_agents) for k in range(model.num_modes[i])))
