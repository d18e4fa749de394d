"""``icsmdp simulate-trace INSTANCE --episodes N --behavior uniform|epsilon --out T.jsonl``.

Simulates episodes of an instance (a file or a bundled example) with the
toolkit's primitive simulator and writes their handoff trace
``icsmdp-trace/1`` (SPEC section 10, :func:`icsmdp_theory.traces.simulate_trace`).
The behavior ``b_i(c' | o)`` acts on the instance's own observation maps:

- ``uniform``: uniform over the admissible successors
  (:func:`estimators.behavior.uniform_behavior`);
- ``epsilon``: epsilon-greedy (``--epsilon``, default 0.1) on the AIS optimum
  ``Q_hat*`` of the instance's maps (SPEC section 4; :func:`estimators.ais.ais_smdp`
  with the uniform reference, :func:`estimators.ais.ais_solution`), split per
  agent by the cell layout ``cell_offsets``.

The destination is checked before any work and written atomically (an
existing file is kept unless ``--force``; Ctrl-C leaves no partial file). The
same arguments and ``--seed`` give a byte-identical file. Prints the path (with
``--json``: ``{"path", "episodes", "invocations", "truncated_episodes", "seed"}``).
"""
from __future__ import annotations

import json
import sys

from tqdm import tqdm

from estimators.ais import ais_smdp, ais_solution
from estimators.behavior import epsilon_greedy_behavior, uniform_behavior
from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.traces import simulate_trace
from reports.arguments import float_arg, int_arg, load_instance_arg, show_progress, writable_destination
from reports.commands import COMMAND_HELP

__all__ = ["add_parser", "BEHAVIORS", "command_behavior"]

#: Names accepted by ``--behavior``.
BEHAVIORS = ("uniform", "epsilon")


def command_behavior(model, name: str, epsilon: float) -> list:
    """The behavior ``b_i[o, c']`` named on the command line (see the module docstring)."""
    if name == "uniform":
        return uniform_behavior(model)
    q = ais_solution(ais_smdp(model)).q
    offs = cell_offsets(model.num_observations)
    q_obs = [q[offs[i]:offs[i + 1]] for i in range(model.num_agents)]
    return epsilon_greedy_behavior(model, q_obs, epsilon)


def _run(args) -> int:
    if args.behavior not in BEHAVIORS:
        raise InvalidArgumentError(f"`--behavior` must be one of {', '.join(BEHAVIORS)}, "
                                   f"got {args.behavior!r}.")
    episodes = int_arg("episodes", args.episodes, low=1)
    seed = int_arg("seed", args.seed, low=0)
    epsilon = float_arg("epsilon", args.epsilon, low=0.0, high=1.0)
    if args.behavior != "epsilon" and args.epsilon != "0.1":
        raise InvalidArgumentError("`--epsilon` applies to `--behavior epsilon` only.")
    path = writable_destination("--out", args.out, kind="file")
    if path.exists() and not args.force:
        raise InvalidArgumentError(f"`--out`: {str(path)!r} exists; pass --force to replace it.")
    model = load_instance_arg(args.instance)
    behavior = command_behavior(model, args.behavior, epsilon)
    bar = tqdm(total=episodes, desc="simulate-trace", unit="episode", file=sys.stderr,
               disable=not show_progress(args))
    try:
        summary = simulate_trace(model, path, episodes=episodes, behavior=behavior, seed=seed,
                                 progress=bar.update)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(summary))
    else:
        print(summary["path"])
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("simulate-trace", help=COMMAND_HELP["simulate-trace"])
    p.add_argument("instance", help="instance file or bundled example")
    p.add_argument("--episodes", required=True, help="episodes to simulate (>= 1)")
    p.add_argument("--behavior", default="uniform",
                   help=f"successor choice: {' or '.join(BEHAVIORS)} (default uniform)")
    p.add_argument("--epsilon", default="0.1",
                   help="exploration of --behavior epsilon, in [0, 1] (default 0.1)")
    p.add_argument("--seed", default="0", help="base seed (>= 0, default 0)")
    p.add_argument("--out", required=True, help="trace file to write (T.jsonl)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
