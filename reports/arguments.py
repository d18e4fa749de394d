"""Command-line argument parsing shared by the ``icsmdp`` subcommands.

Each parser either returns the value or raises
:class:`~icsmdp_theory.errors.InvalidArgumentError` (or argparse's
``ArgumentTypeError`` for ``type=`` converters), so a bad argument is one
line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import DEFAULT_EXAMPLE, EXAMPLES, load_example
from icsmdp_theory.io import load_instance
from icsmdp_theory.model import ICSMDP

__all__ = ["load_instance_arg", "positive_float_type", "positive_int_type", "mixing_eps_type",
           "int_arg", "float_arg", "out_path_arg"]


def load_instance_arg(arg: str | None) -> ICSMDP:
    """An instance path, a bundled example name, or ``None`` for the default example."""
    if arg is None:
        return load_example(DEFAULT_EXAMPLE)
    path = Path(arg)
    if path.exists():
        return load_instance(path)
    if arg in EXAMPLES:
        return load_example(arg)
    raise InvalidArgumentError(
        f"`INSTANCE`: {arg!r} is neither a file nor a bundled example ({', '.join(EXAMPLES)}).")


def positive_float_type(text: str) -> float:
    """argparse ``type=``: a finite number ``> 0``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def positive_int_type(text: str) -> int:
    """argparse ``type=``: an integer ``>= 1``."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return v


def mixing_eps_type(text: str) -> float:
    """argparse ``type=``: the mixing threshold ``eps`` in ``(0, 1/2)`` (SPEC section 6)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v < 0.5:
        raise argparse.ArgumentTypeError(f"must lie in (0, 0.5), got {text!r}")
    return v


def int_arg(name: str, text: str, *, low: int) -> int:
    """``--name`` as an integer ``>= low``."""
    try:
        v = int(text)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`--{name}` must be an integer >= {low}, got {text!r}.") from None
    if v < low:
        raise InvalidArgumentError(f"`--{name}` must be an integer >= {low}, got {v}.")
    return v


def float_arg(name: str, text: str, *, low: float, high: float | None = None,
              open_low: bool = False) -> float:
    """``--name`` as a finite number in ``[low, high]`` (``(low, ...`` with ``open_low``)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        v = math.nan
    ok = math.isfinite(v) and (v > low if open_low else v >= low) and (high is None or v <= high)
    if not ok:
        rng = f"({low}, " if open_low else f"[{low}, "
        rng += f"{high}]" if high is not None else "inf)"
        raise InvalidArgumentError(f"`--{name}` must be a number in {rng}, got {text!r}.")
    return v


def out_path_arg(text: str | None) -> Path | None:
    """``--out PATH`` whose directory exists (``None`` passes through)."""
    if text is None:
        return None
    p = Path(text)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidArgumentError(f"`--out`: directory {str(parent)!r} does not exist.")
    return p
