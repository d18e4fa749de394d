"""Command-line argument parsing shared by the ``icsmdp`` subcommands.

Each parser either returns the value or raises
:class:`~icsmdp_theory.errors.InvalidArgumentError` (or argparse's
``ArgumentTypeError`` for ``type=`` converters), so a bad argument is one
line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from icsmdp_theory.documents import read_json
from icsmdp_theory.epoch_io import EPOCH_FORMAT, load_epoch_model
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.examples import DEFAULT_EXAMPLE, EXAMPLES, load_example
from icsmdp_theory.io import load_instance
from icsmdp_theory.math_reasoning import DATASETS, math_reasoning
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.traces import TraceData, read_trace

__all__ = ["load_instance_arg", "read_trace_arg", "output_file", "load_model_arg", "MATH_REASONING_PREFIX", "file_format", "positive_float_type", "positive_int_type", "mixing_eps_type",
           "int_arg", "float_arg", "writable_destination", "run_record_paths",
           "TerminationSignals", "show_progress", "EXIT_INTERRUPTED", "EXIT_TERMINATED",
           "add_campaign_arguments", "campaign_options", "one_line_parse_errors"]

#: Exit status after Ctrl-C (SIGINT): 128 + 2, the shell's convention.
EXIT_INTERRUPTED = 130
#: Exit status after SIGTERM: 128 + 15, the shell's convention (checkpoints are kept as for Ctrl-C).
EXIT_TERMINATED = 143


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


def file_format(path: Path) -> str | None:
    """The ``format`` key of a ``.json``/``.npz`` file (``None`` if it has none or is unreadable)."""
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return str(z["format"]) if "format" in z.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None            # the instance loader reports what is wrong
    doc = read_json(path, InvalidInstanceError)
    return doc.get("format") if isinstance(doc, dict) else None


#: Prefix of a model family spec: ``math-reasoning:DATASET`` builds ``math_reasoning(DATASET)``.
MATH_REASONING_PREFIX = "math-reasoning:"


def load_model_arg(arg: str | None) -> ICSMDP | EpochModel:
    """A primitive instance (file or bundled example, :func:`load_instance_arg`), an explicit
    epoch model (an ``icsmdp-epoch/1`` file, recognized by its ``format`` key) or the family
    spec ``math-reasoning:DATASET`` (:func:`icsmdp_theory.math_reasoning.math_reasoning`)."""
    if arg is not None and arg.startswith(MATH_REASONING_PREFIX) and not Path(arg).exists():
        dataset = arg[len(MATH_REASONING_PREFIX):]
        if dataset not in DATASETS:
            raise InvalidArgumentError(f"`MODEL`: {arg!r} names no dataset of the math-reasoning "
                                       f"family; use math-reasoning:DATASET with DATASET one of "
                                       f"{', '.join(DATASETS)}.")
        return math_reasoning(dataset)
    if arg is not None:
        path = Path(arg)
        if path.is_file() and path.suffix in (".json", ".npz") and file_format(path) == EPOCH_FORMAT:
            return load_epoch_model(path)
    return load_instance_arg(arg)


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


def _destination_error(option: str, path: Path, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"`{option}`: cannot write to {str(path)!r}: {why}.")


def writable_destination(option: str, path: str | os.PathLike, *, kind: str) -> Path:
    """Check, before any work, that an output destination can be written; return it absolute.

    Nothing is created: the nearest existing ancestor of the directory to be
    written must be a directory in which a temporary file can be created and
    removed (``os.access`` first, then the real test, so that a read-only file
    system or an ACL is caught too).

    Parameters
    ----------
    option : str
        The option's name for the message, e.g. ``"--out"``.
    path : path-like
        The destination; relative paths are resolved against the working directory.
    kind : {"dir", "file"}
        ``"dir"``: ``path`` is (or will be created as) a directory written into;
        ``"file"``: ``path`` is a file written (replaced) in its parent directory.

    Returns
    -------
    Path
        ``path`` made absolute.

    Raises
    ------
    InvalidArgumentError
        One line naming the option, the path and the reason.
    """
    if kind not in ("dir", "file"):
        raise InvalidArgumentError(f"`kind` must be one of 'dir', 'file', got {kind!r}.")
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if kind == "dir":
        if p.exists() and not p.is_dir():
            raise _destination_error(option, p, "it exists and is not a directory")
        target = p
    else:
        if p.is_dir():
            raise _destination_error(option, p, "it is a directory")
        target = p.parent
    anc = target
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise _destination_error(option, p, f"{str(anc)!r} is not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise _destination_error(option, p, f"directory {str(anc)!r} is not writable")
    try:
        fd, tmp = tempfile.mkstemp(dir=anc, prefix=".icsmdp-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise _destination_error(option, p, f"directory {str(anc)!r} is not writable "
                                            f"({exc.strerror or exc})") from None
    return p


def output_file(option: str, text: str, *, suffixes: tuple, force: bool) -> Path:
    """A new output file, checked before any work: writable (:func:`writable_destination`),
    one of ``suffixes`` (the format follows the suffix), and not an existing file unless ``force``."""
    path = writable_destination(option, text, kind="file")
    if path.suffix not in suffixes:
        raise InvalidArgumentError(f"`{option}` must end in {' or '.join(suffixes)} (the format "
                                   f"follows the suffix), got {str(path)!r}.")
    if path.exists() and not force:
        raise InvalidArgumentError(f"`{option}`: {str(path)!r} exists; pass --force to replace it.")
    return path


def run_record_paths(option: str, text: str | None) -> Path | None:
    """``run --out PATH``: ``PATH.npz`` and ``PATH.json`` must be writable; ``PATH`` made absolute.

    ``PATH`` may end in ``.npz`` or ``.json`` (:func:`solvers.records.save_run`).
    """
    if text is None:
        return None
    p = writable_destination(option, text, kind="file")
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    for suffix in (".npz", ".json"):
        writable_destination(option, stem.with_name(stem.name + suffix), kind="file")
    return p


def show_progress(args) -> bool:
    """Whether a long command draws a progress bar: not under ``--json``, and stderr is a terminal."""
    if getattr(args, "json", False):
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def one_line_parse_errors(p: argparse.ArgumentParser, command: str) -> None:
    """Make ``p``'s own errors (bad or unknown options) one line on stderr and exit status 2."""
    def one_line_error(message):
        print(f"icsmdp {command}: error: {message}", file=sys.stderr)
        sys.exit(2)
    p.error = one_line_error
    parse_known = p.parse_known_args

    def strict_parse_known_args(args=None, namespace=None):
        ns, extras = parse_known(args, namespace)
        if extras:
            one_line_error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras
    p.parse_known_args = strict_parse_known_args


def add_campaign_arguments(p: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--scheduler`` and ``--resume``: the options of every campaign command
    (:func:`reports.campaign.run_campaign`)."""
    p.add_argument("--jobs", type=positive_int_type, default=None,
                   help="worker processes on this machine (default: every core)")
    p.add_argument("--scheduler", default=None,
                   help="run the tasks on a Dask cluster at this address, e.g. "
                   "tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS; needs the `dask` extra)")
    p.add_argument("--resume", action="store_true",
                   help="keep the results file and skip the tasks it records as finished")


def campaign_options(args) -> dict:
    """The keyword arguments of :func:`reports.campaign.run_campaign` from parsed options,
    checked before any work (a ``--scheduler`` without the ``dask`` extra, or that cannot be
    reached, is one line and exit 2)."""
    scheduler = getattr(args, "scheduler", None) or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler is not None:
        try:
            import distributed  # noqa: F401  (optional: the `dask` extra)
        except ImportError:
            raise InvalidArgumentError("`--scheduler` needs Dask distributed (the `dask` extra): "
                                       "pip install -e '.[dask]'") from None
    return {"jobs": getattr(args, "jobs", None), "scheduler": scheduler,
            "resume": bool(getattr(args, "resume", False)), "progress": show_progress(args)}


def read_trace_arg(path: str, *, show: bool) -> TraceData:
    """:func:`icsmdp_theory.traces.read_trace` with a byte progress bar on stderr when ``show``."""
    total = os.path.getsize(path) if os.path.isfile(path) else None
    with tqdm(total=total, desc="reading trace", unit="B", unit_scale=True, file=sys.stderr,
              disable=not show) as bar:
        return read_trace(path, progress=bar.update)


class TerminationSignals:
    """Make SIGTERM behave like Ctrl-C while a command runs (a context manager).

    Inside the ``with`` block, SIGTERM raises :class:`KeyboardInterrupt` in the
    main thread, so a long command stops the way Ctrl-C stops it (``icsmdp
    run`` keeps and saves the checkpoints reached). ``signal_number`` is the
    signal received (``SIGINT`` or ``SIGTERM``), ``None`` if none; ``exit_status``
    is :data:`EXIT_INTERRUPTED` (130) after SIGINT and :data:`EXIT_TERMINATED`
    (143) after SIGTERM. Outside the main thread (no signal handlers there) it
    does nothing.
    """

    def __init__(self):
        self.signal_number: int | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame):
        self.signal_number = signum
        raise KeyboardInterrupt

    def __enter__(self) -> "TerminationSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
                    continue  # SIGINT ignored or handled by the caller: leave it alone
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous.clear()
        return False

    @property
    def exit_status(self) -> int:
        """130 after SIGINT (or a plain KeyboardInterrupt), 143 after SIGTERM."""
        return EXIT_TERMINATED if self.signal_number == signal.SIGTERM else EXIT_INTERRUPTED
