"""icsmdp-theory: make the theory of decentralized workflow learning checkable.

The model layer (the lowest of four: ``icsmdp_theory`` -> ``solvers`` ->
``estimators`` -> ``reports``, imports only pointing down): the validated
model (:class:`ICSMDP`) and its cache of derived values, the files of SPEC
section 9, the exact option reduction, epoch states and observation cells,
simulation, random instances and instance families, and the public
Hypothesis strategies (:mod:`icsmdp_theory.testing.strategies`). Definitions
follow ``SPEC.md``; where the paper and the SPEC differ, the SPEC wins.
"""
from icsmdp_theory.errors import (ICSMDPError, InvalidArgumentError, InvalidInstanceError,
                                  InvalidObservationMapError, StateSpaceTooLargeError)
from icsmdp_theory.model import ICSMDP, Agent
from icsmdp_theory.io import (load_instance, save_instance, load_observation_maps,
                              save_observation_maps, instance_from_dict, instance_to_dict)
from icsmdp_theory.examples import load_example

__version__ = "0.1.0"

__all__ = ["ICSMDP", "Agent", "ICSMDPError", "InvalidArgumentError", "InvalidInstanceError",
           "InvalidObservationMapError", "StateSpaceTooLargeError", "load_instance",
           "save_instance", "load_observation_maps", "save_observation_maps",
           "instance_from_dict", "instance_to_dict", "load_example", "__version__"]
