"""The paper's experiments (section 5): the studies of :mod:`reports.studies` as reports.

``reproduce(kind, quick, out)`` builds a report (:func:`reports.builder.build_report`)
with the sections of one experiment:

- ``kind="synthetic"``: T1 and T2 (:mod:`reports.studies.synthetic_t1`,
  :mod:`reports.studies.synthetic_t2`);
- ``kind="routing"``: routing (:mod:`reports.studies.routing`);
- ``kind="all"``: the three (the full paper-scale reproduction with ``quick=False``);
- ``kind="llm"``: the multi-LLM workflow of Table 1 on its calibrated model
  (:mod:`reports.studies.llm`; sizes in its docstring);
- ``kind="cpu"``: multi-agent CPU programming with adaptable agents
  (:mod:`reports.studies.cpu`; sizes in its docstring).

Instances come from :mod:`icsmdp_theory.families`. Every IC-Q run is tabular;
the synthetic runs use the fixed uniform behavior (``FixedBehavior()``) so
that the long-run law ``mu`` of the sampled epochs is exactly
``estimators.stationary.mu`` (SPEC section 6) and the learning fixed point is
``Q_hat*`` under the stationary reference; the routing runs use
epsilon-greedy exploration.

Sizes
-----
============  ==========================================  ==========================================
study         quick (default, CI)                          full (``--full``)
============  ==========================================  ==========================================
T1            N=4, nX=20, nM=20; rho in {1, .9, .75, .5,   paper scale N=10, nX=120, nM=50;
              .1}; 3 seeds, T=6600; stationary reference   rho in {1, .9, ..., .1, .05}; 5 seeds,
                                                           T=100000; uniform reference
T2            the quick T1 instance; T up to 12800;        the quick T1 instance (t_mix is exact
              handoff scan on the ring variant             only up to 5,000 epoch states); 10
                                                           seeds, T up to 102400; 8 p_handoff
routing       N=12 on the four graph families, 15000       N=100; 2 seeds; 800000 updates, epsilon
              updates, 4 seeds, epsilon 0.3                0.4, steps 5/(k+5) (chain: 2400000, 0.05,
                                                           min(30/(k+1), 1))
============  ==========================================  ==========================================

Every study is a campaign (:mod:`reports.campaign`; tasks = the study's grid
points: T1 one per ``rho``, T2 the budget run, one per ``p_handoff`` and one per
``rho``, routing one per graph family) run with ``jobs`` worker processes or
on a Dask ``scheduler``. The results files are kept in
``<out>/campaigns/<study>-seed{S}-{quick|full}.jsonl`` (:data:`CAMPAIGN_DIR`), a
stable place: after an interrupted run, ``resume=True`` skips the tasks
already finished. Each section's data and the provenance (``campaigns``) name
its results file.

``report.json`` keys per section are listed in each study's ``render_*`` docstring.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.validation import positive_int
from reports.builder import DEFAULT_OUT, build_report
from reports.studies.cpu import cpu
from reports.studies.llm import llm
from reports.studies.routing import routing
from reports.studies.synthetic_t1 import synthetic_t1
from reports.studies.synthetic_t2 import synthetic_t2

__all__ = ["reproduce", "campaign_dir", "REPRODUCE_KINDS", "SECTIONS", "CAMPAIGN_DIR"]

#: Sections per experiment kind.
SECTIONS = {"synthetic": (synthetic_t1, synthetic_t2), "routing": (routing,),
            "all": (synthetic_t1, synthetic_t2, routing), "llm": (llm,), "cpu": (cpu,)}
#: Accepted ``kind`` values.
REPRODUCE_KINDS = tuple(SECTIONS)
#: Subdirectory of ``out`` holding the studies' results files.
CAMPAIGN_DIR = "campaigns"


def campaign_dir(out) -> Path:
    """``<out>/campaigns``: where :func:`reproduce` keeps the studies' results files."""
    return Path(out) / CAMPAIGN_DIR


def _reproduce_iv(kind, seed) -> int:
    if kind not in SECTIONS:
        raise InvalidArgumentError(f"`kind` must be one of {REPRODUCE_KINDS}, got {kind!r}.")
    return positive_int("seed", seed, low=0)


def reproduce(kind: str, quick: bool = True, out=DEFAULT_OUT, *, seed: int = 0,
              argv=None, progress: bool = False, jobs: int | None = None,
              scheduler: Any = None, resume: bool = False) -> Path:
    """Build the report of one experiment; return its directory.

    Parameters
    ----------
    kind : {"synthetic", "routing", "all", "llm", "cpu"}
        The sections (:data:`SECTIONS`).
    quick : bool
        Reduced sizes (default) or paper scale (module docstring, "Sizes").
    out : path-like
        Directory under which the report directory is created.
    seed : int
        Base seed, ``>= 0``.
    argv : list of str, optional
        Command line recorded in the provenance.
    progress : bool
        Print section progress and one bar per study campaign.
    jobs : int, optional
        Worker processes of the campaigns (default every core; ``1``: in this process).
    scheduler : str or distributed.Client, optional
        Run the campaigns on a Dask cluster (default ``$DASK_SCHEDULER_ADDRESS``).
    resume : bool
        Keep the results files in ``<out>/campaigns`` and skip their finished tasks.

    Returns
    -------
    Path
        The report directory. Its provenance records the wall time of each
        section and the total (``timings_seconds``, ``total_seconds``): with
        ``kind="all"`` and ``quick=False`` that is the time of the full
        paper-scale reproduction.

    Raises
    ------
    reports.studies.runner.StudyInterrupted
        A campaign stopped early (Ctrl-C, SIGTERM, a dead worker): no report is
        written, the finished tasks are kept for ``resume=True``.
    reports.studies.runner.StudyTaskErrors
        Some task of a campaign raised (its error is in the results file).
    """
    seed = _reproduce_iv(kind, seed)
    return build_report(SECTIONS[kind], out_root=out, seed=seed, quick=bool(quick),
                        argv=argv, progress=progress, jobs=jobs, scheduler=scheduler,
                        resume=bool(resume), campaign_dir=campaign_dir(out))
