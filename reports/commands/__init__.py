"""The ``icsmdp`` subcommands, one module each (:mod:`reports.cli`)."""
