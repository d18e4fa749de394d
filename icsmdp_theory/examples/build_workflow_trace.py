"""Build the bundled handoff trace of ``workflow`` and its two label maps (SPEC section 10).

Running this module (``python -m icsmdp_theory.examples.build_workflow_trace``)
rewrites three files next to it; they are committed and this script makes
them reproducible (the trace is byte-identical to ``icsmdp simulate-trace
workflow --episodes 300 --behavior uniform --seed 0 --out workflow-trace.jsonl``):

- ``workflow-trace.jsonl``: 300 episodes of the bundled ``workflow`` instance
  simulated under the uniform behavior (every agent picks uniformly among its
  admissible successors), seed 0 (:func:`icsmdp_theory.traces.simulate_trace`).
  Its ``state`` is the full state ``[x, m, l_0, l_1, l_2]``: latent ``x``, the
  artifact's four bits ``m``, the private states of planner, coder, tester.
- ``workflow-maps.json``: the instance's own observation maps (the four answer-status
  bits as each agent sees them, with its private state) written over labels
  (``icsmdp-obs/1`` ``by_label`` form): ``phi_i(label of f) = phi_i(m(f), l_i(f))``
  for every full state ``f`` of the instance's export
  (:func:`icsmdp_theory.epoch_export.export_epoch`,
  :func:`icsmdp_theory.cells.epoch_observations`). A fitted model's labels are
  the full states the trace visited, a subset of these.
- ``workflow-bits.json``: the rule form (``fields``): agent ``i`` observes the
  interface ``m`` (position 1 of the state list) and its own private state
  (position ``2 + i``); each distinct pair is one observation. This is the map
  "every agent reads all four bits of the artifact and knows its own state".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from icsmdp_theory.cells import epoch_observations
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import OBS_FORMAT
from icsmdp_theory.traces import simulate_trace

__all__ = ["TRACE_PATH", "MAPS_PATH", "BITS_PATH", "EPISODES", "SEED", "uniform_successors",
           "instance_label_maps", "bits_rule", "build"]

HERE = Path(__file__).resolve().parent
#: The three files written.
TRACE_PATH = HERE / "workflow-trace.jsonl"
MAPS_PATH = HERE / "workflow-maps.json"
BITS_PATH = HERE / "workflow-bits.json"
#: Episodes and seed of the shipped trace.
EPISODES = 300
SEED = 0


def uniform_successors(model) -> list[np.ndarray]:
    """``b_i(c' | o) = 1/|adm_i|`` on agent ``i``'s admissible successors, per observation.

    The same arrays as :func:`estimators.behavior.uniform_behavior` (this module sits in
    the model layer and may not import the estimators).
    """
    return [np.tile(a.successors.astype(float) / a.successors.sum(), (a.num_observations, 1))
            for a in model.agents]


def instance_label_maps(model) -> dict:
    """The instance's own maps as an ``icsmdp-obs/1`` ``by_label`` document over the export's labels."""
    labels = export_epoch(model).labels
    obs = epoch_observations(model)                    # [f, i], label index k = f
    return {"format": OBS_FORMAT,
            "by_label": [{labels[f]: int(obs[f, i]) for f in range(len(labels))}
                         for i in range(model.num_agents)]}


def bits_rule(model) -> dict:
    """The ``fields`` rule: agent ``i`` observes positions 1 (``m``) and ``2 + i`` (its ``l_i``)."""
    return {"format": OBS_FORMAT, "fields": [[1, 2 + i] for i in range(model.num_agents)]}


def _write_json(path: Path, doc: dict) -> None:
    """One line per agent's map (readable, small diffs)."""
    key = "by_label" if "by_label" in doc else "fields"
    rows = ",\n  ".join(json.dumps(row, ensure_ascii=False) for row in doc[key])
    path.write_text(f'{{"format": {json.dumps(doc["format"])},\n "{key}": [\n  {rows}\n ]}}\n',
                    encoding="utf-8")


def build() -> None:
    """Write the trace and the two label maps next to this module."""
    model = load_example("workflow")
    simulate_trace(model, TRACE_PATH, episodes=EPISODES, behavior=uniform_successors(model), seed=SEED)
    _write_json(MAPS_PATH, instance_label_maps(model))
    _write_json(BITS_PATH, bits_rule(model))


if __name__ == "__main__":  # pragma: no cover
    build()
    for p in (TRACE_PATH, MAPS_PATH, BITS_PATH):
        print(p, p.stat().st_size)
