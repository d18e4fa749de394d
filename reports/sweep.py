"""Sweeps: a campaign over a grid of instances, observation maps, references and learners.

A *sweep* is the Cartesian product of a few *axes* (:data:`AXES`), each with a
list of values; every other axis keeps one value (given, or its default). Each
point of the product is one task of a campaign (:mod:`reports.campaign`),
run by :func:`sweep_point`:

1. the instance: the synthetic family
   (:func:`icsmdp_theory.families.synthetic_instance`, sizes ``N, nX, nM``,
   ``p_handoff``, ``latent_moves``, ``instance_seed``, ``horizon``, ``gamma``,
   ``family``) or a bundled example by name (the family parameters are then ignored);
2. its observation map: ``rho`` (the default synthetic family's map,
   ``ceil(rho |M|)`` contiguous nested cells of ``m``,
   :func:`icsmdp_theory.families.synthetic_map`; the family before issue 15,
   ``m mod ceil(rho |M|)``, is the axis value ``family=cos-mod``),
   or ``mod = k`` (``phi_i(m, l) = m mod k`` for every agent,
   :func:`icsmdp_theory.generators.observation_mod`), or neither (the
   instance's own map; ``rho = 1`` for the synthetic family);
3. the gap report of that map (SPEC section 5, ``estimators.gaps.gap_report``,
   ``minimax=False``) under the ``reference`` law (``uniform`` or
   ``stationary``), against the exact ``Q*_lat`` of
   ``ModifiedPolicyIteration(tol=1e-10)``: ``alpha_tight``, ``alpha_paper``,
   ``alpha_tv``, ``epsilon_phi``, ``delta_phi``, ``max_q_gap``, ``policy_loss``;
   and ``optimal_v0 = sum_s rho0(s) V*(s)``;
4. unless ``T = 0``: one batch of ``seeds`` IC-Q runs (SPEC section 7,
   ``solve(ICQ(learner, updates=T, seeds, behavior), model)``, base seed the
   sweep's ``seed`` for every point, so all points share their random streams)
   and the exact value ``v0`` of each seed's greedy policy
   (:func:`solvers.records.evaluate_greedy_policies`): ``v0`` (per seed),
   ``v0_mean``, ``v0_std``, ``value_gap = optimal_v0 - v0_mean`` and
   ``value_gap_worst`` (the largest over seeds).

Grid file (``icsmdp-sweep/1``)
------------------------------
::

    {"format": "icsmdp-sweep/1",
     "axes":  {"rho": [1, 0.5, 0.1], "T": [0, 2000]},
     "fixed": {"N": 4, "nX": 20, "nM": 20, "seeds": 3},
     "seed": 0}

``axes`` maps an axis to its list of values (distinct, at least one); an
axis with one value is fixed. ``fixed`` maps an axis to one value; ``seed``
(default 0) is the IC-Q base seed. On the command line the same grid is
``--set rho=1,0.5,0.1 --set T=0,2000 --fixed N=4 --fixed nX=20 ... --seed 0``;
``none`` (``null`` in a file) is the value "the instance's own map" of
``rho`` and ``mod``. The ``grid`` of :meth:`SweepGrid.to_json` (printed by
``icsmdp sweep --json``) is itself a valid grid file.

Task ids list the swept axes' values in the order of :data:`AXES`
(``rho=0.5,T=2000``; ``point`` when nothing is swept); the product's first
axis varies slowest. The results file is ``sweep-<digest>.jsonl`` with the
digest of the grid (:meth:`SweepGrid.digest`), so ``--resume`` finds it.

Examples
--------
>>> grid = grid_from_options(["rho=1,0.5", "T=0,100"], ["N=3"])
>>> [tid for tid, _ in grid.points()]
['rho=1.0,T=0', 'rho=1.0,T=100', 'rho=0.5,T=0', 'rho=0.5,T=100']
>>> grid.size(), dict(grid.fixed)["N"], results_name(grid) == results_name(grid)
(4, 3, True)

Summary
-------
:func:`sweep_summary` reads only the results (no timings, no paths but the
results file's name): per point its swept values and metrics, the failed
tasks, and per swept axis each metric averaged over the points of each value
(the other axes averaged out); :func:`render_sweep` draws one figure per
swept axis from it.

Named sweeps
------------
:data:`NAMED_SWEEPS` maps ``t1``, ``t2``, ``routing`` and ``llm`` to the studies of
``icsmdp reproduce`` (:mod:`reports.studies`): each study module exposes
``<name>_campaign(seed, quick) -> Campaign`` and ``<name>_data(seed, quick,
results)``; :func:`named_sweep` resolves them.
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib
import numpy as np

from estimators.gaps import gap_report
from icsmdp_theory.documents import read_json
from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.families import (DEFAULT_SYNTHETIC_FAMILY, SYNTHETIC_FAMILIES,
                                    synthetic_instance, synthetic_map)
from icsmdp_theory.generators import observation_mod
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import to_jsonable
from reports.builder import ReportContext, Section
from reports.campaign import Campaign, Task
from solvers import ModifiedPolicyIteration, solve
from solvers.icq import ICQ, LEARNERS, EpsilonGreedy, FixedBehavior
from solvers.records import evaluate_greedy_policies

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

__all__ = ["SWEEP_FORMAT", "SUMMARY_FORMAT", "SYNTHETIC", "DEFAULT_SWEEP_OUT", "MAX_POINTS",
           "Axis", "AXES", "GAP_METRICS", "REALIZED_METRICS", "TABLE_METRICS", "SweepGrid",
           "grid_from_options", "grid_from_document", "read_grid", "sweep_tasks",
           "sweep_campaign", "results_name", "point_instance", "sweep_point", "sweep_summary",
           "render_sweep", "NamedSweep", "NAMED_SWEEPS", "VOLATILE_KEYS", "named_sweep",
           "named_summary"]

#: ``format`` of a grid file.
SWEEP_FORMAT = "icsmdp-sweep/1"
#: ``format`` of the summary ``sweep.json``.
SUMMARY_FORMAT = "icsmdp-sweep-summary/1"
#: The ``instance`` value of the synthetic family.
SYNTHETIC = "synthetic"
#: Where ``icsmdp sweep`` writes by default.
DEFAULT_SWEEP_OUT = Path("reports") / "out" / "sweep"
#: Largest grid (points of the product) accepted.
MAX_POINTS = 100_000
#: Rows of the points table in the report (the summary keeps every point).
_MAX_TABLE_ROWS = 200
#: Marker and line style of the k-th metric of a panel (overlapping curves stay visible).
_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))
#: A ``nan`` shown as a word (the report check refuses it).
_NAN_WORD = re.compile(r"(?<![\w.])nan(?![\w(])", re.IGNORECASE)

#: Gap-report metrics of a point (left panel of each axis figure).
GAP_METRICS = ("alpha_tight", "alpha_paper", "epsilon_phi", "delta_phi")
#: Realized gaps of a point (right panel; ``value_gap`` needs ``T > 0``).
REALIZED_METRICS = ("max_q_gap", "policy_loss", "value_gap")
#: Metrics averaged per axis value in the summary and shown in the points table.
TABLE_METRICS = GAP_METRICS + ("alpha_tv",) + REALIZED_METRICS + ("v0_mean", "optimal_v0")


@dataclass(frozen=True)
class Axis:
    """One axis of a sweep grid.

    Attributes
    ----------
    name : str
    kind : {"int", "float", "choice"}
    default : Any
    help : str
    low, high : float or None
        Bounds of a number (``open_low``/``open_high``: excluded).
    choices : tuple of str
        Allowed values of a ``choice`` axis.
    optional : bool
        ``None`` (``none`` on the command line, ``null`` in a file) is allowed.
    family : bool
        A parameter of the synthetic family (ignored by bundled examples).
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple = ()
    optional: bool = False
    family: bool = False

    def requirement(self) -> str:
        """What a value must be, for messages."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "int":
            text = f"an integer >= {int(self.low)}"
        else:
            lo = "(" if self.open_low else "["
            hi = ")" if self.open_high else "]"
            text = f"a number in {lo}{self.low:g}, {self.high:g}{hi}"
        return text + (" or none" if self.optional else "")

    def coerce(self, value: Any, *, text: bool) -> Any:
        """``value`` as this axis's type (``text``: parsed from a command-line string).

        Raises ``ValueError`` (message: the requirement) when it does not fit.
        """
        if self.optional and (value is None or (text and value.lower() in ("none", "null"))):
            return None
        bad = ValueError(f"must be {self.requirement()}, got {value!r}")
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise bad
            return value
        if text:
            try:
                value = int(value) if self.kind == "int" else float(value)
            except (TypeError, ValueError):
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if self.kind == "int":
            if not isinstance(value, int) or value < self.low:
                raise bad
            return int(value)
        v = float(value)
        ok = math.isfinite(v) and (v > self.low if self.open_low else v >= self.low) and \
            (v < self.high if self.open_high else v <= self.high)
        if not ok:
            raise bad
        return v


def _axes(*axes: Axis) -> dict:
    return {a.name: a for a in axes}


#: Every axis, in the canonical order (task ids, summaries, figures).
AXES: dict = _axes(
    Axis("instance", "choice", SYNTHETIC, "the synthetic family or a bundled example",
         choices=(SYNTHETIC,) + tuple(EXAMPLES)),
    Axis("N", "int", 4, "agents (synthetic)", low=1, family=True),
    Axis("nX", "int", 20, "latent states (synthetic)", low=1, family=True),
    Axis("nM", "int", 20, "interface states (synthetic)", low=1, family=True),
    Axis("p_handoff", "float", 0.3, "end probability beta (synthetic)", low=0.0, high=1.0,
         open_low=True, family=True),
    Axis("latent_moves", "choice", "random", "latent kernel (synthetic)",
         choices=("random", "ring"), family=True),
    Axis("instance_seed", "int", 0, "seed of the instance draw (synthetic)", low=0,
         family=True),
    Axis("horizon", "int", 60, "primitive-step horizon H (synthetic)", low=1, family=True),
    Axis("gamma", "float", 0.95, "discount (synthetic)", low=0.0, high=1.0, open_low=True,
         open_high=True, family=True),
    Axis("family", "choice", DEFAULT_SYNTHETIC_FAMILY,
         "synthetic family: nested (gaps non-decreasing as rho falls) or cos-mod (before issue 15)",
         choices=SYNTHETIC_FAMILIES, family=True),
    Axis("rho", "float", None, "observation: ceil(rho |M|) nested cells of m (none: the instance's map)",
         low=0.0, high=1.0, open_low=True, optional=True),
    Axis("mod", "int", None, "observation m mod k (none: the instance's map)", low=1,
         optional=True),
    Axis("reference", "choice", "uniform", "reference law of the gap report",
         choices=("uniform", "stationary")),
    Axis("learner", "choice", "tabular", "IC-Q learner", choices=tuple(LEARNERS)),
    Axis("behavior", "choice", "uniform", "IC-Q behavior: uniform (fixed) or epsilon-greedy",
         choices=("uniform", "epsilon")),
    Axis("epsilon", "float", 0.1, "exploration rate of the epsilon-greedy behavior",
         low=0.0, high=1.0),
    Axis("T", "int", 0, "IC-Q updates per seed (0: gaps only)", low=0),
    Axis("seeds", "int", 3, "IC-Q seeds per point", low=1),
)


def _token(value: Any) -> str:
    """A value as written in a task id."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class SweepGrid:
    """A validated sweep grid.

    Attributes
    ----------
    axes : tuple of (str, tuple)
        The swept axes (two values or more) with their values, in :data:`AXES` order.
    fixed : tuple of (str, Any)
        Every other axis with its value, in :data:`AXES` order.
    seed : int
        IC-Q base seed of every point.
    """

    axes: tuple
    fixed: tuple
    seed: int = 0

    @property
    def swept(self) -> dict:
        """Swept axis -> its values."""
        return dict(self.axes)

    def to_json(self) -> dict:
        """The grid as a grid file (``icsmdp-sweep/1``)."""
        return {"format": SWEEP_FORMAT, "axes": {k: list(v) for k, v in self.axes},
                "fixed": dict(self.fixed), "seed": int(self.seed)}

    def digest(self) -> str:
        """First 12 hex digits of the SHA-256 of :meth:`to_json` (names the results file)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def size(self) -> int:
        """Points of the product."""
        return math.prod(len(v) for _, v in self.axes)

    def points(self) -> list:
        """``[(task id, params)]`` in product order (first swept axis slowest)."""
        names = [k for k, _ in self.axes]
        fixed = dict(self.fixed)
        out = []
        for combo in itertools.product(*(v for _, v in self.axes)):
            values = dict(zip(names, combo))
            tid = ",".join(f"{k}={_token(v)}" for k, v in values.items()) or "point"
            params = {a: values[a] if a in values else fixed[a] for a in AXES}
            out.append((tid, params))
        return out


def _instance_interfaces(instance: str, nM_values: Sequence[int]) -> list:
    """``|M|`` of an instance value (every ``nM`` for the family)."""
    if instance == SYNTHETIC:
        return list(nM_values)
    return [load_example(instance).num_interface]


def _build_grid(entries: dict, origin: dict, seed: int, where: Callable[[str], str]
                ) -> SweepGrid:
    """Validate the axes of a grid (values already coerced) and build it.

    ``entries``: axis -> tuple of values; ``origin``: axis -> key it came from
    (for messages); ``where(key)``: the location prefix of a message.
    """
    def fail(name: str, why: str):
        return InvalidArgumentError(f"{where(origin.get(name, name))}: {why}")

    values = {a: entries.get(a, (AXES[a].default,)) for a in AXES}
    size = math.prod(len(v) for v in values.values())
    if size > MAX_POINTS:
        big = max(entries, key=lambda a: len(entries[a]))
        raise fail(big, f"the grid has {size} points, more than {MAX_POINTS}")
    family_given = [a for a in entries if AXES[a].family]
    if family_given and SYNTHETIC not in values["instance"]:
        raise fail(family_given[0], f"`{family_given[0]}` is a parameter of the synthetic "
                                    "family, and no point uses instance 'synthetic'")
    if any(v is not None for v in values["rho"]) and any(v is not None for v in values["mod"]):
        raise fail("mod", "give `rho` or `mod`, not both (each sets the observation map)")
    mods = [k for k in values["mod"] if k is not None]
    if mods:
        for inst in values["instance"]:
            for nm in _instance_interfaces(inst, values["nM"]):
                if max(mods) > nm:
                    raise fail("mod", f"`mod` = {max(mods)} exceeds |M| = {nm} of instance "
                                      f"{inst!r} (m mod k needs k <= |M|)")
    swept = tuple((a, tuple(values[a])) for a in AXES if len(values[a]) > 1)
    fixed = tuple((a, values[a][0]) for a in AXES if len(values[a]) == 1)
    return SweepGrid(axes=swept, fixed=fixed, seed=seed)


def _axis_name(name: Any, location: str) -> str:
    if name not in AXES:
        raise InvalidArgumentError(f"{location}: unknown axis {name!r}; the axes are "
                                   f"{', '.join(AXES)}")
    return name


def grid_from_options(sets: Sequence[str] = (), fixed: Sequence[str] = (),
                      seed: int = 0) -> SweepGrid:
    """A grid from ``--set AXIS=V1,V2,...`` and ``--fixed AXIS=V`` options.

    Parameters
    ----------
    sets : sequence of str
        ``"AXIS=V1,V2,..."``: the axis takes these values (one value: fixed).
    fixed : sequence of str
        ``"AXIS=V"``: the axis takes this one value.
    seed : int
        IC-Q base seed.

    Returns
    -------
    SweepGrid

    Raises
    ------
    InvalidArgumentError
        One line naming the option and the axis.
    """
    entries: dict = {}
    origin: dict = {}
    for option, items in (("--set", sets), ("--fixed", fixed)):
        for item in items:
            name, eq, text = str(item).partition("=")
            name = name.strip()
            loc = f"`{option} {item}`"
            if not eq:
                raise InvalidArgumentError(f"{loc}: expected AXIS=VALUE"
                                           + (",VALUE,..." if option == "--set" else ""))
            _axis_name(name, loc)
            if name in entries:
                raise InvalidArgumentError(f"{loc}: axis {name!r} is given twice")
            parts = [p.strip() for p in text.split(",")]
            if option == "--fixed" and len(parts) != 1:
                raise InvalidArgumentError(f"{loc}: `--fixed` takes one value (use `--set` "
                                           "for a list)")
            if any(p == "" for p in parts):
                raise InvalidArgumentError(f"{loc}: empty value")
            try:
                vals = tuple(AXES[name].coerce(p, text=True) for p in parts)
            except ValueError as exc:
                raise InvalidArgumentError(f"{loc}: {name} {exc}") from None
            if len(set(vals)) != len(vals):
                raise InvalidArgumentError(f"{loc}: repeated value")
            entries[name], origin[name] = vals, f"{option} {name}"
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"`--seed` must be an integer >= 0, got {seed!r}.")
    return _build_grid(entries, origin, seed, lambda key: f"`{key}`")


def grid_from_document(doc: Any, source: str) -> SweepGrid:
    """A grid from a parsed ``icsmdp-sweep/1`` document (``source`` names it in messages).

    Raises
    ------
    InvalidInstanceError
        One line: ``<source>: key `<key>`: <what is wrong>``.
    """
    def fail(key: str, why: str) -> InvalidInstanceError:
        return InvalidInstanceError(f"{source}: key `{key}`: {why}")

    if not isinstance(doc, dict):
        raise InvalidInstanceError(f"{source}: a grid file must hold a JSON object")
    known = ("format", "axes", "fixed", "seed")
    for key in doc:
        if key not in known:
            raise fail(key, f"unknown key; a grid file has the keys {', '.join(known)}")
    if doc.get("format") != SWEEP_FORMAT:
        raise fail("format", f"must be {SWEEP_FORMAT!r}, got {doc.get('format')!r}")
    if "axes" not in doc:
        raise fail("axes", "missing (an object mapping an axis to its list of values)")
    axes, fixed = doc["axes"], doc.get("fixed", {})
    if not isinstance(axes, dict):
        raise fail("axes", "must be an object mapping an axis to its list of values")
    if not isinstance(fixed, dict):
        raise fail("fixed", "must be an object mapping an axis to one value")
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("seed", f"must be an integer >= 0, got {seed!r}")
    entries: dict = {}
    origin: dict = {}
    for group, mapping in (("axes", axes), ("fixed", fixed)):
        for name, raw in mapping.items():
            key = f"{group}.{name}"
            if name not in AXES:
                raise fail(key, f"unknown axis; the axes are {', '.join(AXES)}")
            if name in entries:
                raise fail(key, "the axis is also in `axes`")
            if group == "axes":
                if not isinstance(raw, list) or not raw:
                    raise fail(key, "must be a non-empty list of values")
                items = raw
            else:
                if isinstance(raw, (list, dict)):
                    raise fail(key, "must be one value (a list belongs in `axes`)")
                items = [raw]
            try:
                vals = tuple(AXES[name].coerce(v, text=False) for v in items)
            except ValueError as exc:
                raise fail(key, f"values {exc}" if group == "axes" else str(exc)) from None
            if len(set(vals)) != len(vals):
                raise fail(key, "repeated value")
            entries[name], origin[name] = vals, key
    return _build_grid(entries, origin, seed, lambda key: f"{source}: key `{key}`")


def read_grid(path: str | Path) -> SweepGrid:
    """Read and validate a grid file (``icsmdp-sweep/1``, module docstring).

    Raises
    ------
    InvalidInstanceError
        One line naming the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"`GRID`: {str(path)!r} is not a file.")
    doc = read_json(path, InvalidInstanceError)
    try:
        return grid_from_document(doc, str(path))
    except InvalidArgumentError as exc:  # cross-axis checks: the file is what is wrong
        raise InvalidInstanceError(str(exc)) from None


def sweep_tasks(grid: SweepGrid) -> tuple:
    """The tasks of a grid: one per point, seed fixed to ``grid.seed`` (module docstring)."""
    return tuple(Task(tid, params, seed=int(grid.seed)) for tid, params in grid.points())


def sweep_campaign(grid: SweepGrid) -> Campaign:
    """The campaign of a grid (settings: :meth:`SweepGrid.to_json`)."""
    return Campaign("sweep", sweep_point, sweep_tasks(grid), seed=int(grid.seed),
                    settings=grid.to_json())


def results_name(grid: SweepGrid) -> str:
    """File name of a grid's results file: ``sweep-<digest>.jsonl``."""
    return f"sweep-{grid.digest()}.jsonl"


# ======================================================================== one point
def _fresh_instance(instance: str, family: tuple) -> ICSMDP:
    """A newly built instance (no derived facts cached on it yet)."""
    if instance == SYNTHETIC:
        N, nX, nM, p, moves, seed, horizon, gamma, fam = family
        return synthetic_instance(rho=1.0, p_handoff=p, num_agents=N, num_latent=nX,
                                  num_interface=nM, latent_moves=moves, seed=seed,
                                  horizon=horizon, gamma=gamma, family=fam)
    return load_example(instance)


@lru_cache(maxsize=4)
def _oracle(instance: str, family: tuple):
    """The exact ``Q*_lat`` of an instance, ``ModifiedPolicyIteration(tol=1e-10)`` (cached per
    worker: an array result, computed on a fresh instance)."""
    return solve(ModifiedPolicyIteration(tol=1e-10), _fresh_instance(instance, family))


def point_instance(params: Mapping) -> tuple:
    """The instance of a point with its observation map, and the exact oracle.

    The instance is built afresh for every point (cheap): derived facts cached
    on a shared instance by earlier points could change later results in the
    last bits, and a point's result must not depend on what its worker ran
    before. Only the oracle (plain arrays) is shared.

    Parameters
    ----------
    params : mapping
        A point (every axis of :data:`AXES`).

    Returns
    -------
    (ICSMDP, SolveResult)
        The observation map does not change ``Q*_lat``: the oracle is shared.
    """
    inst = params["instance"]
    family = tuple(params[a] for a in AXES if AXES[a].family) if inst == SYNTHETIC else ()
    model = _fresh_instance(inst, family)
    oracle = _oracle(inst, family)
    if params["mod"] is not None:
        model = model.with_observation([observation_mod(model.num_interface, a.num_private,
                                                        int(params["mod"]))
                                        for a in model.agents])
    elif params["rho"] is not None:
        fam = params["family"] if inst == SYNTHETIC else DEFAULT_SYNTHETIC_FAMILY
        model = model.with_observation(synthetic_map(model, float(params["rho"]), fam))
    return model, oracle


def _icq_settings(params: Mapping, seed: int) -> ICQ:
    behavior = FixedBehavior() if params["behavior"] == "uniform" else \
        EpsilonGreedy(epsilon=float(params["epsilon"]))
    return ICQ(learner=params["learner"], updates=int(params["T"]), seeds=int(params["seeds"]),
               seed=int(seed), behavior=behavior, checkpoints=(int(params["T"]),),
               progress=False)


def sweep_point(params: dict, seed: int) -> dict:
    """Run one point of a sweep (module docstring, steps 1-4).

    Parameters
    ----------
    params : dict
        Every axis of :data:`AXES`.
    seed : int
        IC-Q base seed.

    Returns
    -------
    dict
        ``num_cells``, the gap report's ``alpha_tight, alpha_paper, alpha_tv,
        epsilon_phi, delta_phi, max_q_gap, policy_loss``, ``optimal_v0``,
        ``icq_status`` (``"skipped"`` when ``T = 0``), ``v0`` (per seed),
        ``v0_mean``, ``v0_std``, ``value_gap``, ``value_gap_worst`` (``None``
        without IC-Q).
    """
    model, oracle = point_instance(params)
    rep = gap_report(model, reference=params["reference"], minimax=False, oracle=oracle)
    out = {"num_cells": int(sum(model.num_observations))}
    for key in ("alpha_tight", "alpha_paper", "alpha_tv", "epsilon_phi", "delta_phi",
                "max_q_gap", "policy_loss"):
        out[key] = float(getattr(rep, key))
    v_star = float(initial_epoch_law(model).reshape(-1) @ np.asarray(oracle.v))
    out.update(optimal_v0=v_star, icq_status="skipped", v0=None, v0_mean=None, v0_std=None,
               value_gap=None, value_gap_worst=None)
    if int(params["T"]) > 0:
        record = solve(_icq_settings(params, seed), model)
        out["icq_status"] = record.status
        if record.reached[-1].any():
            ev = evaluate_greedy_policies(model, record, optimum=oracle)
            v0 = np.asarray(ev.v0, float)
            ok = v0[np.isfinite(v0)]
            out.update(v0=v0.tolist(), v0_mean=float(ok.mean()), v0_std=float(ok.std()),
                       value_gap=float(v_star - ok.mean()),
                       value_gap_worst=float(np.max(v_star - ok)))
    return out


# ========================================================================= summary
def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _mean(values: Sequence) -> float | None:
    nums = [x for x in map(_number, values) if x is not None]
    return math.fsum(nums) / len(nums) if nums else None


def sweep_summary(grid: SweepGrid, results: Mapping, failed: Mapping, results_file: str
                  ) -> dict:
    """The summary ``sweep.json``, from the results read back from the file only.

    Parameters
    ----------
    grid : SweepGrid
    results : mapping
        Task id -> result of the finished tasks (``CampaignRun.results``).
    failed : mapping
        Task id -> error line (``CampaignRun.failed``).
    results_file : str
        Name of the results file (no directory: the summary does not depend on where it is).

    Returns
    -------
    dict
        ``format``, ``grid``, ``results_file``, ``counts`` (``points, ok, failed,
        missing``), ``points`` (task order: ``id``, ``values`` of the swept axes,
        ``status`` ok/error/missing, ``metrics`` or ``error``), ``failed`` and
        ``axes`` (per swept axis: ``values``, ``points`` per value and, per
        metric of :data:`TABLE_METRICS`, the mean over the finished points of
        each value, ``None`` where there is none).
    """
    points = []
    for tid, params in grid.points():
        values = {a: params[a] for a, _ in grid.axes}
        if tid in results:
            points.append({"id": tid, "values": values, "status": "ok",
                           "metrics": dict(results[tid])})
        elif tid in failed:
            points.append({"id": tid, "values": values, "status": "error",
                           "error": failed[tid]})
        else:
            points.append({"id": tid, "values": values, "status": "missing"})
    axes = {}
    for name, vals in grid.axes:
        per = []
        for v in vals:
            ok = [p["metrics"] for p in points
                  if p["status"] == "ok" and p["values"][name] == v]
            per.append((len(ok), {m: _mean([r.get(m) for r in ok]) for m in TABLE_METRICS}))
        axes[name] = {"values": list(vals), "points": [n for n, _ in per],
                      "metrics": {m: [d[m] for _, d in per] for m in TABLE_METRICS}}
    counts = {"points": len(points), "ok": sum(p["status"] == "ok" for p in points),
              "failed": sum(p["status"] == "error" for p in points),
              "missing": sum(p["status"] == "missing" for p in points)}
    return {"format": SUMMARY_FORMAT, "grid": grid.to_json(), "results_file": results_file,
            "counts": counts, "points": points,
            "failed": {p["id"]: p["error"] for p in points if p["status"] == "error"},
            "axes": axes}


# ========================================================================== report
def _label(v: Any) -> str:
    return "none" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _is_numeric_axis(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _figure_axis(path: Path, name: str, entry: dict) -> str:
    """One figure for axis ``name``: every metric, averaged over the other axes, against it."""
    vals = entry["values"]
    numeric = _is_numeric_axis(vals)
    order = sorted(range(len(vals)), key=lambda k: vals[k]) if numeric else list(range(len(vals)))
    xs = [vals[k] if numeric else j for j, k in enumerate(order)]
    fig, axs = plt.subplots(1, 2, figsize=(9.6, 4.2), layout="constrained")
    for ax, metrics, title in ((axs[0], GAP_METRICS, "AIS gaps of the map"),
                               (axs[1], REALIZED_METRICS, "Realized gaps")):
        drawn = 0
        for c, m in enumerate(metrics):
            ys = [entry["metrics"][m][k] for k in order]
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if not pts:
                continue
            marker, style = _STYLES[c]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker + style, color=f"C{c}",
                    label=m, ms=7 - c, mfc="none" if c % 2 else None, mew=1.4)
            drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no finished point has these metrics", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9)
        if numeric:
            pos = [v for v in vals if v > 0]
            if len(pos) == len(vals) and max(pos) / min(pos) >= 100:
                ax.set_xscale("log")
        else:
            ax.set_xticks(xs, [_label(vals[k]) for k in order])
        ax.set_xlabel(name)
        ax.set_title(title, fontsize=10)
        if drawn:
            ax.legend(fontsize=8)
    fig.suptitle(f"Sweep: metrics against {name} (mean over the other axes)", fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return (f"Metrics of the sweep against {name}, each the mean over the finished points "
            f"with that value of {name} (the other swept axes averaged out). Left: the AIS "
            "gaps of the observation map; right: the realized gaps (the value gap needs T > 0).")


def _safe_text(text: str) -> str:
    """An error line made safe for the report (no backticks, no bare ``nan`` word)."""
    return _NAN_WORD.sub("not-a-number", str(text).replace("`", "'"))


def render_sweep(ctx: ReportContext, summary: dict) -> Section:
    """The report section of a sweep: grid, points table, one figure per swept axis.

    ``report.json`` key ``sweep``: the summary (:func:`sweep_summary`).

    Parameters
    ----------
    ctx : ReportContext
        Figures ``sweep_<axis>.png`` are written to ``ctx.workdir``.
    summary : dict

    Returns
    -------
    Section
    """
    grid = summary["grid"]
    axes = grid["axes"]
    counts = summary["counts"]
    ctx.seeds_used["sweep"] = grid["seed"]
    swept = ", ".join(f"{a} ({len(v)} values)" for a, v in axes.items()) or "none"
    blocks: list = [
        ("p", f"A sweep of {counts['points']} points (the Cartesian product of the swept "
              f"axes): {counts['ok']} finished, {counts['failed']} failed. Swept axes: "
              f"{swept}. Each point builds its instance and observation map, computes the "
              "gap report (minimax off) against the exact optimum, and, when T > 0, runs "
              f"IC-Q with the given seeds (base seed {grid['seed']}) and evaluates each "
              "greedy policy exactly; value gap = V*(rho0) minus the mean v0 over seeds."),
        ("table", ["fixed axis", "value"], [[a, _label(v)] for a, v in grid["fixed"].items()]),
    ]
    names = list(axes)
    shown = summary["points"][:_MAX_TABLE_ROWS]
    rows = []
    cols = ("alpha_tight", "alpha_paper", "epsilon_phi", "delta_phi", "policy_loss",
            "v0_mean", "value_gap")
    for p in shown:
        m = p.get("metrics") or {}
        rows.append([_label(p["values"][a]) for a in names]
                    + [_number(m.get(c)) for c in cols] + [p["status"]])
    blocks.append(("table", names + list(cols) + ["status"], rows))
    if len(summary["points"]) > len(shown):
        blocks.append(("p", f"The table shows the first {len(shown)} points; all "
                            f"{len(summary['points'])} are in sweep.json and report.json."))
    for name in names:
        fname = f"sweep_{name}.png"
        caption = _figure_axis(ctx.workdir / fname, name, summary["axes"][name])
        blocks.append(("figure", fname, caption))
    if not names:
        blocks.append(("p", "No axis is swept (one point), so there is no figure."))
    if summary["failed"]:
        blocks.append(("table", ["failed task", "error"],
                       [[t, _safe_text(e)] for t, e in summary["failed"].items()]))
    return Section(key="sweep", title="Sweep", blocks=blocks, data=summary)


# ==================================================================== named sweeps
@dataclass(frozen=True)
class NamedSweep:
    """A study of ``icsmdp reproduce`` run as a sweep.

    Attributes
    ----------
    name : str
        ``t1``, ``t2`` or ``routing``.
    module : str
        The study module (:mod:`reports.studies`), imported when the sweep runs,
        so that a grid sweep does not pay for (or depend on) the studies.
    campaign : str
        Its function ``(seed, quick) -> Campaign``.
    data : str
        Its function ``(seed, quick, results) -> <Study>Data``.
    render : str
        Its function ``(ctx, data) -> Section``.
    """

    name: str
    module: str
    campaign: str
    data: str
    render: str

    def functions(self) -> tuple:
        """``(campaign, data, render)`` functions of the study module.

        Raises
        ------
        InvalidArgumentError
            The study module does not expose them.
        """
        module = importlib.import_module(self.module)
        names = (self.campaign, self.data, self.render)
        found = [getattr(module, attr, None) for attr in names]
        missing = [a for a, f in zip(names, found) if not callable(f)]
        if missing:
            raise InvalidArgumentError(
                f"`--named {self.name}`: the study module {self.module} does not expose "
                f"{', '.join(missing)} (the study is not a campaign yet).")
        return tuple(found)


#: Named sweeps: the studies of ``icsmdp reproduce``.
NAMED_SWEEPS: dict = {
    "t1": NamedSweep("t1", "reports.studies.synthetic_t1", "t1_campaign", "t1_data",
                     "render_t1"),
    "t2": NamedSweep("t2", "reports.studies.synthetic_t2", "t2_campaign", "t2_data",
                     "render_t2"),
    "routing": NamedSweep("routing", "reports.studies.routing", "routing_campaign",
                          "routing_data", "render_routing"),
    "llm": NamedSweep("llm", "reports.studies.llm", "llm_campaign", "llm_data", "render_llm"),
}


#: Keys of a study's data that hold timings or paths: left out of a named sweep's summary.
VOLATILE_KEYS = frozenset({"seconds", "oracle_seconds", "timings", "timings_seconds", "started",
                           "elapsed", "results_file"})


def _stable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def named_summary(name: str, *, seed: int, quick: bool, results_file: str, total: int,
                  results: Mapping, failed: Mapping, data: Any) -> dict:
    """The summary ``sweep.json`` of a named sweep, from the study's data (built from the
    results file only) without its timings and paths (:data:`VOLATILE_KEYS`), so that it is
    the same for any number of workers and after a resumed run.

    Returns
    -------
    dict
        ``format, named, quick, seed, results_file, counts, failed, data``.
    """
    return {"format": SUMMARY_FORMAT, "named": name, "quick": bool(quick), "seed": int(seed),
            "results_file": results_file,
            "counts": {"points": int(total), "ok": len(results), "failed": len(failed),
                       "missing": int(total) - len(results) - len(failed)},
            "failed": dict(failed), "data": _stable(to_jsonable(data))}


def named_sweep(name: str) -> NamedSweep:
    """The named sweep ``name`` (one of :data:`NAMED_SWEEPS`)."""
    if name not in NAMED_SWEEPS:
        raise InvalidArgumentError(f"`--named` must be one of {', '.join(NAMED_SWEEPS)}, "
                                   f"got {name!r}.")
    return NAMED_SWEEPS[name]
