"""Estimators: the AIS gaps of an observation map (SPEC sections 4-5), stationary laws and mixing.

- :mod:`estimators.ais`: the AIS-induced SMDP on observation cells and ``Q_hat*``;
- :mod:`estimators.gaps`: ``epsilon_phi``, ``delta_phi``, ``eta``, the three
  forms of ``alpha`` and the realized gaps against ``Q*_lat``;
- :mod:`estimators.minimax`: the minimax gaps of a map (independent of ``d``);
- :mod:`estimators.behavior`, :mod:`estimators.stationary`, :mod:`estimators.mixing`:
  behavior policies, the epoch chain, its long-run law ``pi``, ``mu`` and
  mixing times (SPEC section 6);
- :mod:`estimators.tangent`: tangent-feature quantities of Theorem 1's
  approximation term (SPEC section 8).
"""
from estimators.ais import AISModel, DEFAULT_AIS_SOLVER, REFERENCES, ais_smdp, ais_solution
from estimators.gaps import GapReport, MapComparison, compare_maps, gap_report
from estimators.minimax import (ChebyshevRadius, MinimaxGaps, minimax_gaps,
                                tv_chebyshev_radius)
from estimators.behavior import (epoch_behavior, epsilon_greedy_behavior,
                                 uniform_behavior, validate_behavior)
from estimators.stationary import (ChainClasses, SplitChain, StationaryResult, chain_classes,
                                   end_law, epoch_chain, epoch_chain_operator, epoch_chain_split,
                                   gth_stationary, long_run_occupancy, mu, stationary_law)
from estimators.mixing import (MixingBounds, MixingResult, MixingTimeResult, decision_projection,
                               mixing_report, mixing_time, mixing_time_bounds,
                               observation_projection, projected_mixing_time, relaxation_time)

__all__ = ["AISModel", "DEFAULT_AIS_SOLVER", "REFERENCES", "ais_smdp", "ais_solution",
           "GapReport", "MapComparison", "compare_maps", "gap_report",
           "ChebyshevRadius", "MinimaxGaps", "minimax_gaps", "tv_chebyshev_radius",
           "epoch_behavior", "epsilon_greedy_behavior", "uniform_behavior",
           "validate_behavior", "ChainClasses", "SplitChain", "StationaryResult", "chain_classes",
           "end_law", "epoch_chain", "epoch_chain_operator", "epoch_chain_split",
           "gth_stationary", "long_run_occupancy", "mu", "stationary_law", "MixingBounds",
           "MixingResult", "MixingTimeResult", "decision_projection", "mixing_report",
           "mixing_time", "mixing_time_bounds", "observation_projection",
           "projected_mixing_time", "relaxation_time"]
