"""Bundled example instances (SPEC section 9 files shipped with the package).

- ``tiny-handoff``: the SPEC's two-agent example (planner, checker); its
  values are derivable by hand (see ``property_tests/icsmdp_theory/test_oracle.py``).
- ``workflow``: a planner/coder/tester workflow with a latent task difficulty,
  private states and a 4-bit-style observation of the artifact.

Bundled data files of a workflow known through its logs (SPEC section 10), by
name (:data:`DATA_FILES`, :func:`data_path`; built by ``build_workflow_trace.py``):

- ``workflow-trace``: a handoff trace ``icsmdp-trace/1`` of 300 ``workflow``
  episodes under the uniform behavior;
- ``workflow-maps``: the instance's own maps over its labels (``icsmdp-obs/1`` ``by_label``);
- ``workflow-bits``: every agent sees the artifact's four bits and its own state (``fields``).
"""
from __future__ import annotations

from importlib import resources

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import load_instance

__all__ = ["EXAMPLES", "DEFAULT_EXAMPLE", "DATA_FILES", "load_example", "example_path", "data_path"]

#: Names of the bundled examples.
EXAMPLES = ("tiny-handoff", "workflow")
#: The example used when a command is given no instance.
DEFAULT_EXAMPLE = "workflow"
#: Bundled data files by name: a trace and two observation maps over its labels.
DATA_FILES = {"workflow-trace": "workflow-trace.jsonl", "workflow-maps": "workflow-maps.json",
              "workflow-bits": "workflow-bits.json"}


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


def data_path(name: str):
    """Path (a :mod:`importlib.resources` traversable) of a bundled data file (:data:`DATA_FILES`)."""
    if name not in DATA_FILES:
        raise InvalidArgumentError(f"unknown bundled file {name!r}; choose one of {', '.join(DATA_FILES)}.")
    return resources.files(__name__).joinpath(DATA_FILES[name])
