"""Hypothesis settings profiles for the whole suite.

- ``dev`` (default): 50 examples per property, no deadline.
- ``ci``: loaded when the ``CI`` environment variable is set; 30 examples,
  derandomized so a CI run is reproducible.
- ``thorough``: 10,000 examples per property.

Choose explicitly with ``ICSMDP_HYPOTHESIS_PROFILE=thorough pytest``.

Also: a shell that starts pytest as a background job without job control
(``cmd &`` in a script) makes it ignore SIGINT, and child processes inherit an
ignored signal, so the Ctrl-C tests' children would never see their SIGINT.
Python's own handler is restored here (children then start with the default
disposition and install theirs).
"""
import os
import signal

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=50, **_common)
settings.register_profile("ci", max_examples=30, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=10_000, **_common)
settings.load_profile(os.environ.get("ICSMDP_HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "dev"))


if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
