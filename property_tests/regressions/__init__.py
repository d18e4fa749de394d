"""Regression tests: one per counterexample the toolkit has found."""
