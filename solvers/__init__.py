"""Exact SMDP solvers and IC-Q learners.

``solve(solver, problem)`` dispatches on both types (STYLE 3):

- problems: :class:`~solvers.smdp.FiniteSMDP` (explicit sparse discounted
  kernel) and :class:`~icsmdp_theory.model.ICSMDP` (the decision-epoch SMDP of
  SPEC section 3, solved through the committed-successor chain; the result is
  ``Q*_lat``) and :class:`~icsmdp_theory.epoch_model.EpochModel` (the explicit
  epoch model of SPEC section 10, through :func:`~solvers.epoch_smdp.epoch_smdp`);
- solvers: :class:`ValueIteration`, :class:`PolicyIteration`,
  :class:`ModifiedPolicyIteration`; the learner :class:`~solvers.icq.ICQ`
  (``solve(ICQ(...), model)`` returns a :class:`~solvers.records.RunRecord`);
- the exact solvers are compositions of the named pieces of
  :mod:`solvers.iteration` (Bellman operator, greedy step, policy evaluation,
  one ``operator_iteration`` owning the stopping rules and the certified bound);
- :mod:`solvers.oracle`: the centralized oracle ``Q*_lat`` and its summary.
"""
from solvers.api import (ModifiedPolicyIteration, PolicyIteration, ValueIteration, register,
                         solve)
from solvers.smdp import FiniteSMDP
from solvers import value_iteration as _value_iteration  # noqa: F401  (registers FiniteSMDP solvers)
from solvers import policy_iteration as _policy_iteration  # noqa: F401
from solvers import committed_chain as _committed_chain  # noqa: F401  (registers ICSMDP solvers)
from solvers import epoch_smdp as _epoch_smdp  # noqa: F401  (registers EpochModel solvers)
from solvers.icq import ICQ, EpsilonGreedy, FixedBehavior, StepSize  # registers IC-Q for ICSMDP

__all__ = ["solve", "register", "ValueIteration", "PolicyIteration", "ModifiedPolicyIteration",
           "FiniteSMDP", "ICQ", "EpsilonGreedy", "FixedBehavior", "StepSize"]
