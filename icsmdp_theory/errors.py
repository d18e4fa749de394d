"""Exception hierarchy of icsmdp-theory.

Invalid input is an exception whose one-line message names the key, the agent
and the offending index; non-convergence is never an exception (it is a result
with ``success=False``, see :mod:`icsmdp_theory.results`).
"""
from __future__ import annotations

__all__ = ["ICSMDPError", "InvalidInstanceError", "InvalidObservationMapError",
           "StateSpaceTooLargeError", "InvalidArgumentError",
           "InvalidTraceError", "InvalidEpochModelError"]


class ICSMDPError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class InvalidInstanceError(ICSMDPError, ValueError):
    """An IC-SMDP (file or arrays) violates SPEC sections 1 or 9."""


class InvalidObservationMapError(InvalidInstanceError):
    """A proposed observation map violates SPEC section 9."""


class InvalidTraceError(InvalidInstanceError):
    """A trace file (``icsmdp-trace/1``) violates SPEC section 10 "Traces"."""


class InvalidEpochModelError(InvalidInstanceError):
    """An explicit epoch model (arrays or an ``icsmdp-epoch/1`` file) violates SPEC section 10."""


class InvalidArgumentError(ICSMDPError, ValueError):
    """A solver, estimator or CLI argument is out of its allowed range."""


class StateSpaceTooLargeError(ICSMDPError, MemoryError):
    """An exact method was asked for a state space above its stated limit."""
