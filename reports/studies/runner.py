"""Running a study's campaign (:mod:`reports.campaign`) and building its data from the results.

Every study of :mod:`reports.studies` is a campaign: ``<study>_campaign(seed,
quick)`` lists its independent grid points as tasks and ``<study>_data(seed,
quick, results)`` builds the study's dataclass from the results read back from
the results file only. :func:`run_study` runs one study that way, either into
a temporary results file or into ``<results_dir>/<study>-seed{S}-{quick|full}.jsonl``
(:func:`results_path`), a stable name so that ``resume=True`` finds the tasks
finished by an earlier (interrupted) run.

A run that stops early raises :class:`StudyInterrupted` (a
:class:`KeyboardInterrupt`: ``icsmdp report`` stops as on Ctrl-C), a run with
failed tasks raises :class:`StudyTaskErrors`; the finished tasks stay in the
results file in both cases.

Examples
--------
>>> results_path("out/campaigns", "t1", 0, True).as_posix()
'out/campaigns/t1-seed0-quick.jsonl'
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from icsmdp_theory.errors import ICSMDPError, InvalidArgumentError
from reports.campaign import Campaign, CampaignRun, run_campaign

__all__ = ["StudyInterrupted", "StudyTaskErrors", "results_path", "run_study", "study_options",
           "study_number", "study_result"]


class StudyInterrupted(KeyboardInterrupt):
    """A study's campaign stopped early (Ctrl-C, SIGTERM, a dead worker); ``run`` says how
    many tasks are kept and where (``str(exc)`` tells to rerun with ``--resume``)."""

    def __init__(self, run: CampaignRun):
        super().__init__(run.message)
        self.run = run


class StudyTaskErrors(ICSMDPError, RuntimeError):
    """Some tasks of a study's campaign raised; their errors are in the results file."""

    def __init__(self, run: CampaignRun, name: str = "study"):
        listed = "; ".join(f"{tid}: {err}" for tid, err in list(run.failed.items())[:3])
        more = f" (and {len(run.failed) - 3} more)" if len(run.failed) > 3 else ""
        super().__init__(f"{name}: {len(run.failed)} of {run.total} tasks raised (recorded in "
                         f"{run.path}): {listed}{more}; run again with --resume to retry them")
        self.run = run


def results_path(results_dir: str | os.PathLike, study: str, seed: int, quick: bool) -> Path:
    """``<results_dir>/<study>-seed{seed}-{quick|full}.jsonl``, the study's results file."""
    return Path(results_dir) / f"{study}-seed{int(seed)}-{'quick' if quick else 'full'}.jsonl"


def study_options(ctx: Any) -> dict:
    """The campaign options a report context carries (:class:`reports.builder.ReportContext`):
    ``results_dir, jobs, scheduler, resume, progress`` for :func:`run_study`."""
    return {"results_dir": getattr(ctx, "campaign_dir", None), "jobs": getattr(ctx, "jobs", None),
            "scheduler": getattr(ctx, "scheduler", None),
            "resume": bool(getattr(ctx, "resume", False)),
            "progress": bool(getattr(ctx, "progress", False))}


def study_number(x: Any) -> float:
    """A float read back from a results file: ``None`` (a ``nan`` on the way in) is ``nan``,
    ``"inf"``/``"-inf"`` are infinite (:func:`icsmdp_theory.results.to_jsonable`).

    >>> study_number(None), study_number("inf"), study_number(2)
    (nan, inf, 2.0)
    """
    return float("nan") if x is None else float(x)


def study_result(results: dict, task_id: str, study: str) -> dict:
    """``results[task_id]``, or a located error naming the missing task."""
    try:
        return results[task_id]
    except KeyError:
        raise InvalidArgumentError(f"`results` of study {study!r} lack task {task_id!r} "
                                   f"(have {len(results)} tasks: {list(results)[:5]}).") from None


def run_study(campaign: Campaign, make_data: Callable[..., Any], *, seed: int, quick: bool,
              results_dir: str | os.PathLike | None = None, jobs: int | None = None,
              scheduler: Any = None, resume: bool = False, progress: bool = False) -> Any:
    """Run ``campaign`` and return ``make_data(seed, quick, run.results, ...)``.

    Parameters
    ----------
    campaign : Campaign
        ``<study>_campaign(seed, quick)``; its name is the study's (``t1``, ``t2``, ``routing``).
    make_data : callable
        ``<study>_data``; called with ``results_file`` (the path, ``None`` for a
        temporary file) and ``started`` (``time.perf_counter()`` before the run).
    seed, quick :
        The study's settings (they name the results file).
    results_dir : path-like, optional
        Keep the results in :func:`results_path` there (created if missing);
        default a temporary file, removed afterwards.
    jobs, scheduler, resume, progress :
        As for :func:`reports.campaign.run_campaign`.

    Raises
    ------
    StudyInterrupted
        The run stopped early; the finished tasks are kept.
    StudyTaskErrors
        Some tasks raised.
    """
    started = time.perf_counter()
    options = dict(jobs=jobs, scheduler=scheduler, progress=progress)
    if results_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"icsmdp-{campaign.name}-") as tmp:
            run = run_campaign(campaign, Path(tmp) / "results.jsonl", resume=False, **options)
        path = None
    else:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        path = results_path(results_dir, campaign.name, seed, quick)
        run = run_campaign(campaign, path, resume=resume, **options)
    if run.interrupted:
        raise StudyInterrupted(run)
    if run.failed:
        raise StudyTaskErrors(run, campaign.name)
    return make_data(seed, quick, run.results, results_file=None if path is None else str(path),
                     started=started)
