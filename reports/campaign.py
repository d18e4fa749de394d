"""Campaigns: many independent tasks on joblib or Dask, with results that survive.

A *campaign* is a list of independent tasks. Each task has a stable id, JSON
parameters and its own seed, derived from the campaign seed and the task id
(:func:`task_seed`), never from the worker that runs it or the order in which
tasks finish. :func:`run_campaign` runs the tasks

- in the calling process (``jobs=1``), or
- through :class:`joblib.Parallel` on loky worker processes (``jobs=N``), or
- on a Dask cluster through joblib's Dask backend (``scheduler="tcp://..."``,
  a :class:`distributed.Client`, or the environment variable
  ``DASK_SCHEDULER_ADDRESS``; Dask is the optional ``dask`` extra),

one code path for the three. Every task runs with one BLAS thread
(:class:`threadpoolctl.ThreadpoolController`), so its numbers do not depend on the
backend. Every finished task is appended to the *results
file* as one JSON line and flushed as soon as it completes; the first line is a
header with the campaign's name, seed, settings and a digest of its tasks::

    {"format": "icsmdp-campaign/1", "campaign": "verify", "seed": 0,
     "settings": {...}, "tasks": 2000, "tasks_sha256": "..."}
    {"id": "instance-000017", "outcome": "ok", "seconds": 0.052, "result": {...}}
    {"id": "instance-000003", "outcome": "error", "seconds": 0.004,
     "error": "ValueError: ..."}

A task that raises is recorded with its error and the campaign goes on. Ctrl-C
(or SIGTERM under :class:`reports.arguments.TerminationSignals`), a killed
worker, or a lost cluster stops the run and loses at most the tasks in flight:
``resume=True`` skips every task already recorded ``ok`` (failed tasks run
again). Summaries are computed from the results file only, in task order, so
an interrupted-then-resumed campaign, ``jobs=1``, ``jobs=2`` and a Dask cluster
give the same summary, byte for byte.

Examples
--------
>>> import tempfile, pathlib
>>> from reports.campaign import Campaign, Task, run_campaign, square_task
>>> tasks = tuple(Task(f"x{k}", {"x": k}) for k in range(4))
>>> c = Campaign("demo", square_task, tasks, seed=0, settings={"n": 4})
>>> with tempfile.TemporaryDirectory() as d:
...     run = run_campaign(c, pathlib.Path(d) / "demo.jsonl", jobs=1)
>>> [r["square"] for r in run.results.values()], run.status
([0, 1, 4, 9], 'finished')
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from joblib import Parallel, delayed, parallel_config
from threadpoolctl import ThreadpoolController
from tqdm import tqdm

from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.results import Result, to_jsonable

__all__ = ["CAMPAIGN_FORMAT", "Task", "Campaign", "CampaignRun", "task_seed", "run_campaign",
           "read_results", "resolve_jobs", "dask_client", "square_task"]

#: The ``format`` string of a results file's header line.
CAMPAIGN_FORMAT = "icsmdp-campaign/1"
#: Environment variable naming a Dask scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: Seconds to wait for a Dask scheduler before giving up (one line, exit 2).
CONNECT_TIMEOUT = 10.0
#: Largest line of a results file read back (a line longer than this is refused).
MAX_LINE_BYTES = 64 * 2 ** 20


@dataclass(frozen=True)
class Task:
    """One independent unit of a campaign.

    Attributes
    ----------
    id : str
        Stable and unique within its campaign (it names the task in the results file).
    params : dict
        JSON-able arguments of the task function.
    seed : int or None
        The task's seed; ``None`` (default) derives it with :func:`task_seed`.
    """

    id: str
    params: dict = field(default_factory=dict)
    seed: int | None = None


@dataclass(frozen=True)
class Campaign:
    """A named list of tasks and the module-level function that runs one.

    Attributes
    ----------
    name : str
    func : callable
        ``func(params: dict, seed: int) -> dict``, defined at module level (it is
        pickled by reference to loky or Dask workers), deterministic given its
        arguments, returning JSON-able values (numpy scalars and arrays are
        converted; ``inf`` and ``nan`` are kept).
    tasks : tuple of Task
    seed : int
        The campaign seed every task seed derives from.
    settings : dict
        JSON-able settings written in the header; ``resume`` refuses a results
        file whose header differs.
    """

    name: str
    func: Callable[[dict, int], dict]
    tasks: tuple
    seed: int = 0
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        ids = [t.id for t in self.tasks]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InvalidArgumentError(f"campaign {self.name!r}: task id {dup!r} is not unique.")

    def seed_of(self, task: Task) -> int:
        """The seed passed to ``func`` for ``task``."""
        return task_seed(self.seed, task.id) if task.seed is None else int(task.seed)

    def digest(self) -> str:
        """SHA-256 of the task ids, parameters and seeds (the header's ``tasks_sha256``)."""
        h = hashlib.sha256()
        for t in self.tasks:
            h.update(json.dumps([t.id, to_jsonable(t.params), self.seed_of(t)],
                                sort_keys=True).encode())
            h.update(b"\n")
        return h.hexdigest()

    def header(self) -> dict:
        """The first line of the results file."""
        return {"format": CAMPAIGN_FORMAT, "campaign": self.name, "seed": int(self.seed),
                "settings": to_jsonable(self.settings), "tasks": len(self.tasks),
                "tasks_sha256": self.digest()}


@dataclass(frozen=True, kw_only=True, repr=False)
class CampaignRun(Result):
    """What :func:`run_campaign` leaves: the results read back from the file.

    Attributes
    ----------
    path : str
        The results file.
    results : dict
        Task id -> result dict of every task recorded ``ok``, in task order.
    failed : dict
        Task id -> error line of every task whose last record is an error, in task order.
    interrupted : bool
        The run stopped early (Ctrl-C, SIGTERM, a dead worker, a lost cluster).
    total, done, skipped : int
        Tasks in the campaign, tasks recorded ``ok``, tasks skipped by ``resume``.
    backend : str
        ``"serial"``, ``"loky"`` or ``"dask"`` (not part of any summary).
    """

    path: str
    results: dict
    failed: dict
    interrupted: bool
    total: int
    done: int
    skipped: int
    backend: str


def task_seed(campaign_seed: int, task_id: str) -> int:
    """The seed of task ``task_id``: a function of the campaign seed and the id only.

    ``SeedSequence([campaign_seed, w_0, ..., w_3])`` with ``w`` the first four
    32-bit words of ``SHA-256(task_id)``; its first 63 bits.

    >>> task_seed(0, "a") == task_seed(0, "a") != task_seed(1, "a")
    True
    """
    words = np.frombuffer(hashlib.sha256(task_id.encode()).digest()[:16], dtype="<u4")
    state = np.random.SeedSequence([int(campaign_seed), *map(int, words)]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))


def resolve_jobs(jobs: int | None) -> int:
    """``jobs`` worker processes; ``None`` means every core (``os.cpu_count()``)."""
    if jobs is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise InvalidArgumentError(f"`--jobs` must be an integer >= 1, got {jobs!r}.")
    return int(jobs)


def dask_client(scheduler: Any):
    """A :class:`distributed.Client` for ``scheduler`` (an address or a client), or ``None``.

    ``scheduler=None`` reads :data:`SCHEDULER_ENV`. Returns ``(client, owned)``
    where ``owned`` says the caller must close it.
    """
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    if scheduler is None:
        return None, False
    try:
        from distributed import Client  # optional: the `dask` extra
    except ImportError:
        raise InvalidArgumentError(
            "`--scheduler` needs Dask distributed (the `dask` extra): "
            "pip install -e '.[dask]'") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler:
        raise InvalidArgumentError(f"`--scheduler` must be an address like tcp://host:8786, "
                                   f"got {scheduler!r}.")
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT), True
    except (OSError, TimeoutError) as exc:
        raise InvalidArgumentError(f"`--scheduler`: cannot reach a Dask scheduler at "
                                   f"{scheduler} ({type(exc).__name__}).") from None


def square_task(params: dict, seed: int) -> dict:
    """A trivial task (doctests, a cluster smoke test, the overhead benchmark): ``{"square": x**2}``."""
    return {"square": params["x"] ** 2}


_CONTROLLER: list = []


def _blas_controller() -> ThreadpoolController:
    """This process's threadpool controller, made at its first task (after the task's module,
    and with it numpy and scipy, is imported: the controller sees the BLAS libraries loaded then)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _execute(func: Callable, task_id: str, params: dict, seed: int) -> str:
    """Run one task in a worker; return its results-file line (never raises ``Exception``)."""
    t0 = time.perf_counter()
    try:
        # one BLAS thread in every backend: a multithreaded BLAS sums in another order, so
        # results would differ in the last digits between jobs=1 (this process) and workers
        with _blas_controller().limit(limits=1, user_api="blas"):
            result = to_jsonable(func(params, seed))
        line = {"id": task_id, "outcome": "ok", "seconds": round(time.perf_counter() - t0, 6),
                "result": result}
        return json.dumps(line, separators=(",", ":"))
    except Exception as exc:  # recorded, the campaign goes on
        text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return json.dumps({"id": task_id, "outcome": "error",
                           "seconds": round(time.perf_counter() - t0, 6), "error": text},
                          separators=(",", ":"))


def _ignore_sigint() -> None:
    """Loky worker initializer: a terminal's Ctrl-C reaches the whole process group; the
    workers leave it to this process, which stops the campaign and shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _lines(campaign: Campaign, tasks: Sequence[Task], jobs: int, client) -> Iterator[str]:
    calls = (delayed(_execute)(campaign.func, t.id, t.params, campaign.seed_of(t)) for t in tasks)
    if client is not None:
        with parallel_config(backend="dask", client=client):
            yield from Parallel(n_jobs=-1, return_as="generator_unordered")(calls)
    elif jobs == 1:
        for t in tasks:
            yield _execute(campaign.func, t.id, t.params, campaign.seed_of(t))
    else:
        with parallel_config(backend="loky", inner_max_num_threads=1,
                             initializer=_ignore_sigint):
            yield from Parallel(n_jobs=jobs, return_as="generator_unordered")(calls)


def _fail(path: Path, line: int | None, why: str) -> InvalidInstanceError:
    where = f"{path}" + (f", line {line}" if line is not None else "")
    return InvalidInstanceError(f"{where}: {why}")


def read_results(path: str | os.PathLike, campaign: Campaign | None = None
                 ) -> tuple[dict, dict, int]:
    """Read a results file: ``(header, records, good_bytes)``.

    ``records`` maps task id -> its last record (an ``ok`` record is never
    replaced by a later error of the same task), in task order when
    ``campaign`` is given. A final line cut short (no newline: the writer was
    killed) is ignored; ``good_bytes`` is the length of the complete part.
    Every other defect raises :class:`InvalidInstanceError` naming the file,
    the line and the key.
    """
    path = Path(path)
    records: dict = {}
    good = 0
    with open(path, "rb") as fh:
        header = None
        for number, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), 1):
            if not raw.endswith(b"\n"):
                if len(raw) > MAX_LINE_BYTES:
                    raise _fail(path, number, f"line longer than {MAX_LINE_BYTES} bytes")
                break  # cut short by a kill: the task runs again
            try:
                doc = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _fail(path, number, f"not JSON ({exc})") from None
            if not isinstance(doc, dict):
                raise _fail(path, number, "a line must be a JSON object")
            if header is None:
                if doc.get("format") != CAMPAIGN_FORMAT:
                    raise _fail(path, number, f"key 'format' must be {CAMPAIGN_FORMAT!r}, "
                                              f"got {doc.get('format')!r}")
                header = doc
            else:
                tid, outcome = doc.get("id"), doc.get("outcome")
                if not isinstance(tid, str):
                    raise _fail(path, number, "key 'id' must be a string")
                if outcome == "ok":
                    if not isinstance(doc.get("result"), dict):
                        raise _fail(path, number, "key 'result' must be an object")
                elif outcome == "error":
                    if not isinstance(doc.get("error"), str):
                        raise _fail(path, number, "key 'error' must be a string")
                else:
                    raise _fail(path, number, f"key 'outcome' must be 'ok' or 'error', "
                                              f"got {outcome!r}")
                if records.get(tid, {}).get("outcome") != "ok":
                    records[tid] = doc
            good += len(raw)
    if header is None:
        raise _fail(path, None, "no header line")
    if campaign is not None:
        expected = campaign.header()
        for key in ("campaign", "seed", "settings", "tasks", "tasks_sha256"):
            if header.get(key) != expected[key]:
                raise _fail(path, 1, f"key {key!r} differs from this campaign's "
                                     f"({header.get(key)!r} != {expected[key]!r}): "
                                     "a results file can only be resumed by the same campaign")
        order = {t.id: k for k, t in enumerate(campaign.tasks)}
        unknown = [t for t in records if t not in order]
        if unknown:
            raise _fail(path, None, f"task id {unknown[0]!r} is not a task of campaign "
                                    f"{campaign.name!r}")
        records = dict(sorted(records.items(), key=lambda kv: order[kv[0]]))
    return header, records, good


def _start(path: Path, campaign: Campaign) -> None:
    """Write a new results file holding only the header (atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(campaign.header(), sort_keys=True, allow_nan=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def run_campaign(campaign: Campaign, path: str | os.PathLike, *, jobs: int | None = None,
                 scheduler: Any = None, resume: bool = False,
                 progress: bool = False) -> CampaignRun:
    """Run the tasks of ``campaign``, appending each finished one to ``path``.

    Parameters
    ----------
    campaign : Campaign
    path : path-like
        The results file (JSON Lines, module docstring). Its directory must exist.
    jobs : int, optional
        Worker processes on this machine (joblib, loky backend); default every
        core; ``1`` runs in this process. Ignored with a Dask scheduler.
    scheduler : str or distributed.Client, optional
        Run on a Dask cluster through joblib's Dask backend; default the
        environment variable ``DASK_SCHEDULER_ADDRESS``, else this machine.
    resume : bool
        Keep ``path`` and skip the tasks it records ``ok`` (its header must be
        this campaign's); without it the file is started over.
    progress : bool
        One tqdm bar on stderr (tasks done / total, rate, ETA).

    Returns
    -------
    CampaignRun
        Read back from ``path``: status ``finished``, ``task_errors`` (some tasks
        raised; ``success=False``) or ``interrupted``.
    """
    t0 = time.perf_counter()
    path = Path(path)
    jobs = resolve_jobs(jobs)
    client, owned = dask_client(scheduler)
    try:
        done: set = set()
        if resume and path.exists():
            _, records, good = read_results(path, campaign)
            done = {t for t, r in records.items() if r["outcome"] == "ok"}
            with open(path, "r+b") as fh:  # drop a line cut short by a kill
                fh.truncate(good)
        else:
            _start(path, campaign)
        pending = [t for t in campaign.tasks if t.id not in done]
        backend = "dask" if client is not None else ("serial" if jobs == 1 else "loky")
        reason = None
        bar = tqdm(total=len(campaign.tasks), initial=len(campaign.tasks) - len(pending),
                   desc=campaign.name, unit="task", disable=not progress, smoothing=0.05)
        with open(path, "a", encoding="utf-8") as fh:
            try:
                for line in _lines(campaign, pending, jobs, client):
                    fh.write(line + "\n")
                    fh.flush()
                    bar.update(1)
            except KeyboardInterrupt:
                reason = "interrupted (Ctrl-C or SIGTERM)"
            except Exception as exc:  # a dead worker, a lost cluster: keep what finished
                reason = f"stopped: {type(exc).__name__}: {exc}".replace("\n", " ")
            finally:
                bar.close()
    finally:
        if owned:
            client.close()
    _, records, _ = read_results(path, campaign)
    results = {t: r["result"] for t, r in records.items() if r["outcome"] == "ok"}
    failed = {t: r["error"] for t, r in records.items() if r["outcome"] == "error"}
    total = len(campaign.tasks)
    if reason is not None:
        status, success = "interrupted", False
        message = (f"{campaign.name}: {reason}; {len(results)} of {total} tasks are kept in "
                   f"{path}: run again with --resume to finish")
    elif failed:
        status, success = "task_errors", False
        message = f"{campaign.name}: {len(failed)} of {total} tasks raised (listed in `failed`)"
    else:
        status, success = "finished", True
        message = f"{campaign.name}: all {total} tasks finished"
    return CampaignRun(success=success, status=status, message=message, iterations=len(pending),
                       settings={"jobs": jobs, "resume": bool(resume)},
                       elapsed=time.perf_counter() - t0, path=str(path), results=results,
                       failed=failed, interrupted=reason is not None, total=total,
                       done=len(results), skipped=total - len(pending), backend=backend)
