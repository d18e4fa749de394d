"""Public testing helpers (as ``xarray.testing``): Hypothesis strategies for random IC-SMDPs.

:mod:`icsmdp_theory.testing.strategies` needs Hypothesis (the ``test`` extra).
"""
