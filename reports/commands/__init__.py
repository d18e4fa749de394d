"""The ``icsmdp`` subcommands, one module each (:mod:`reports.cli`).

:data:`COMMAND_HELP` names every command and its one-line help, in the order
``icsmdp --help`` lists them; the CLI imports a command's module only when
that command runs (its heavy dependencies, e.g. matplotlib for ``report``,
are not paid by ``icsmdp solve``).
"""

__all__ = ["COMMAND_HELP"]

#: Command name -> one-line help (module ``reports.commands.<name>``).
COMMAND_HELP = {
    "solve": "exact centralized optimum Q*_lat of an instance",
    "report": "write the validation report of the bundled defaults",
    "gaps": "AIS gaps of an observation map, and mixing",
    "verify": "check the provable facts on random instances",
    "run": "run an IC-Q learner (batched seeds) and save its run record",
    "check": "hold an IC-Q run record against each term of Theorem 1",
    "reproduce": "reproduce the paper's experiments as a report",
    "export": "write a bundled example as an instance file to edit",
    "export-epoch": "write an instance as an explicit epoch model (icsmdp-epoch/1)",
    "simulate-trace": "simulate episodes of an instance and write their handoff trace",
    "fit": "fit the maximum-likelihood epoch model of a handoff trace",
    "simulate": "Monte Carlo episodes of a policy against its exact values",
    "sweep": "a campaign over a grid of instances, maps, references and learners",
    "pareto": "exact supported Pareto front of reward components (e.g. accuracy vs tokens)",
}
