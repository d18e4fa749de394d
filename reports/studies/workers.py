"""Independent studies mapped over forked worker processes (shared by the studies).

The full-scale studies (T1's rho sweep, routing's graph families) run one
independent task per worker process. The workers are *forked* after the
caller has filled its caches (the instance, its oracle), so they share them
without pickling; on a platform without ``fork`` everything runs serially.

Examples
--------
>>> map_in_workers(abs, [-1, 2, -3], 1)
[1, 2, 3]
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

__all__ = ["worker_processes", "map_in_workers"]


def worker_processes(tasks: int) -> int:
    """Worker processes for ``tasks`` independent studies: one per core, at most ``tasks``.

    Parameters
    ----------
    tasks : int
        Number of independent jobs.

    Returns
    -------
    int
        ``max(1, min(tasks, os.cpu_count()))``, or 1 when the ``fork`` start
        method is unavailable.
    """
    if "fork" not in mp.get_all_start_methods():
        return 1
    return max(1, min(tasks, os.cpu_count() or 1))


def map_in_workers(func: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> list:
    """``[func(j) for j in jobs]``, in ``workers`` forked processes when ``workers > 1``.

    Parameters
    ----------
    func : callable
        A module-level function (picklable by reference); its results must be
        picklable.
    jobs : sequence
        The arguments, one per call.
    workers : int
        Number of processes; ``1`` runs in the calling process.

    Returns
    -------
    list
        The results in the order of ``jobs``.
    """
    if workers == 1:
        return [func(j) for j in jobs]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(func, jobs))
