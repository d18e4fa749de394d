r"""The exact solvers on an explicit epoch model (SPEC sections 3 and 10).

An :class:`~icsmdp_theory.epoch_model.EpochModel` *is* a finite SMDP on epoch
states ``s = (k, i)``: its discounted kernel is

    D(s' | s, c') = sum_tau gamma^tau P(k', tau | k, i, c'),   s' = (k', c'),  c' != STOP,

(STOP rows are zero), its rewards are the option rewards ``R(k, i, c')`` and its
admissible sets are the states' own. :func:`epoch_smdp` builds that
:class:`~solvers.smdp.FiniteSMDP` once per model (cached on the model's
dynamics store); ``solve(solver, epoch_model)`` runs value, policy or modified
policy iteration on it through the same engine (:mod:`solvers.iteration`) as
every other problem, so ``Q*(s, c')`` has one definition:

    Q*(s, c') = R(s, c') + [c' != STOP] sum_{s'} D(s'|s, c') max_{c''} Q*(s', c'').

:func:`evaluate_epoch_policy` gives the certified values of a fixed epoch
policy ``sigma[s]`` (:func:`solvers.iteration.evaluate_policy`).
"""
from __future__ import annotations

import numpy as np

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.results import SolveResult
from solvers.api import ModifiedPolicyIteration, PolicyIteration, ValueIteration, register, solve
from solvers.iteration import PolicyValues, evaluate_policy
from solvers.smdp import FiniteSMDP, SMDPProblem
import solvers.value_iteration  # noqa: F401  (registers the FiniteSMDP solvers)
import solvers.policy_iteration  # noqa: F401  (idem)

__all__ = ["epoch_smdp", "evaluate_epoch_policy"]


def epoch_smdp(model: EpochModel) -> FiniteSMDP:
    """The decision-epoch SMDP of ``model``: ``reward[s, c']``, ``D``, ``admissible[s, c']`` (cached).

    Examples
    --------
    >>> from icsmdp_theory.epoch_model import EpochModel
    >>> m = EpochModel(name="one", gamma=0.5, agents=["a"], labels=["x"], states=[[0, 0]],
    ...                admissible=[[True, True]], rho0=[1.0], reward=[[0.0, 1.0]],
    ...                transitions={"state": [0, 0], "successor": [0, 1], "next_label": [0, -1],
    ...                             "tau": [1, 1], "prob": [1.0, 1.0]})
    >>> # Q*(s, a) = 0.5 V, Q*(s, STOP) = 1: V* = 1
    >>> solve(PolicyIteration(tol=1e-12), m).v.round(12).tolist()
    [1.0]
    """
    def compute():
        return FiniteSMDP(reward=np.where(model.admissible, model.reward, np.nan),
                          kernel=model.discounted_kernel(), admissible=model.admissible)
    return model.derived.get("epoch_smdp", compute, observation=False)


def _solve_epoch_model(solver, model: EpochModel) -> SolveResult:
    return solve(solver, epoch_smdp(model))


for _solver_type in (ValueIteration, PolicyIteration, ModifiedPolicyIteration):
    register(_solver_type, EpochModel)(_solve_epoch_model)


def evaluate_epoch_policy(model: EpochModel, policy: np.ndarray, v0: np.ndarray | None = None, *,
                          tol: float = 1e-10, exact_limit: int | None = None) -> PolicyValues:
    """``V^sigma[s]`` of the deterministic epoch policy ``sigma[s]`` (an admissible successor).

    Solves ``(I - D_sigma) v = R_sigma`` and certifies the result to ``tol``
    (:func:`solvers.iteration.evaluate_policy`).
    """
    limit = PolicyIteration().exact_limit if exact_limit is None else exact_limit
    return evaluate_policy(SMDPProblem(epoch_smdp(model)), np.asarray(policy, dtype=np.int64), v0,
                           tol=tol, exact_limit=limit, rtol=1e-12)
