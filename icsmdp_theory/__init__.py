"""icsmdp-theory: make the theory of decentralized workflow learning checkable.

The model (:class:`ICSMDP`), its exact option reduction, the centralized
oracle ``Q*_lat``, and the files of SPEC section 9. Definitions follow
``SPEC.md``; where the paper and the SPEC differ, the SPEC wins.
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
