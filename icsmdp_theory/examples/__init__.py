"""Bundled example instances (SPEC section 9 files shipped with the package).

- ``tiny-handoff``: the SPEC's two-agent example (planner, checker); its
  values are derivable by hand (see ``property_tests/icsmdp_theory/test_oracle.py``).
- ``workflow``: a planner/coder/tester workflow with a latent task difficulty,
  private states and a 4-bit-style observation of the artifact.
"""
from __future__ import annotations

from importlib import resources

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import load_instance

__all__ = ["EXAMPLES", "DEFAULT_EXAMPLE", "load_example", "example_path"]

#: Names of the bundled examples.
EXAMPLES = ("tiny-handoff", "workflow")
#: The example used when a command is given no instance.
DEFAULT_EXAMPLE = "workflow"


def example_path(name: str):
    """Path of a bundled example's JSON file."""
    if name not in EXAMPLES:
        raise InvalidArgumentError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}.")
    return resources.files(__name__).joinpath(f"{name}.json")


def load_example(name: str):
    """Load a bundled example by name (one of :data:`EXAMPLES`).

    >>> load_example("tiny-handoff").agent_names()
    ['planner', 'checker']
    """
    with resources.as_file(example_path(name)) as p:
        return load_instance(p)
