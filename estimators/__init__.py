"""Estimators: the AIS gaps of an observation map (SPEC sections 4-5), stationary laws and mixing.

- :mod:`estimators.ais`: the AIS-induced SMDP on observation cells and ``Q_hat*``;
- :mod:`estimators.gaps`: ``epsilon_phi``, ``delta_phi``, ``eta``, the three
  forms of ``alpha`` and the realized gaps against ``Q*_lat``;
- :mod:`estimators.chebyshev`: the TV Chebyshev radius of a set of laws (an LP);
- :mod:`estimators.minimax`: the minimax gaps of a map (independent of ``d``);
- :mod:`estimators.behavior`: behavior policies ``b_i(c' | o)``;
- :mod:`estimators.markov_chain`: Markov-chain algebra on a matrix (classes,
  GTH, absorption, long-run occupancy, detailed balance);
- :mod:`estimators.epoch_chain`: the epoch chain of a model (SPEC section 6);
- :mod:`estimators.stationary`: its long-run law ``pi`` and ``mu``;
- :mod:`estimators.mixing_time`: mixing of a matrix (``t_mix``, relaxation
  time, spectral bounds);
- :mod:`estimators.mixing`: the mixing report of a model's epoch chain;
- :mod:`estimators.tangent`: tangent-feature quantities of Theorem 1's
  approximation term (SPEC section 8).

The functions ``epoch_chain`` and ``mixing_time`` are not re-exported here: their
names are those of their modules (``from estimators.mixing_time import mixing_time``).
"""
from estimators.ais import AISModel, DEFAULT_AIS_SOLVER, REFERENCES, ais_smdp, ais_solution
from estimators.gaps import GapReport, MapComparison, compare_maps, gap_report
from estimators.chebyshev import ChebyshevRadius, tv_chebyshev_radius
from estimators.minimax import MinimaxGaps, minimax_gaps
from estimators.behavior import (epoch_behavior, epsilon_greedy_behavior,
                                 uniform_behavior, validate_behavior)
from estimators.markov_chain import (ChainClasses, DetailedBalance, StationaryResult,
                                     absorption_probabilities, chain_classes, detailed_balance,
                                     gth_stationary, long_run_occupancy, symmetrized_chain)
from estimators.epoch_chain import (EpochStepper, SplitChain, end_law, epoch_chain_operator,
                                    epoch_chain_split, stop_and_restart)
from estimators.stationary import mu, renewal_occupancy, stationary_law
from estimators.mixing_time import (MixingBounds, MixingTimeResult, RelaxationTime,
                                    mixing_time_bounds, projected_mixing_time, relaxation_time)
from estimators.mixing import (MixingResult, decision_projection, mixing_report,
                               observation_projection)

__all__ = ["AISModel", "DEFAULT_AIS_SOLVER", "REFERENCES", "ais_smdp", "ais_solution",
           "GapReport", "MapComparison", "compare_maps", "gap_report",
           "ChebyshevRadius", "MinimaxGaps", "minimax_gaps", "tv_chebyshev_radius",
           "epoch_behavior", "epsilon_greedy_behavior", "uniform_behavior",
           "validate_behavior", "ChainClasses", "DetailedBalance", "StationaryResult",
           "absorption_probabilities", "chain_classes", "detailed_balance", "gth_stationary",
           "long_run_occupancy", "symmetrized_chain", "EpochStepper", "SplitChain", "end_law",
           "epoch_chain_operator", "epoch_chain_split", "stop_and_restart", "mu",
           "renewal_occupancy", "stationary_law", "MixingBounds", "MixingTimeResult",
           "RelaxationTime", "mixing_time_bounds", "projected_mixing_time",
           "relaxation_time", "MixingResult", "decision_projection", "mixing_report",
           "observation_projection"]
