"""The forked worker pool shared by the studies (reports.studies.workers)."""
import os

from reports.studies.workers import map_in_workers, worker_processes


def _square_and_pid(x):
    return x * x, os.getpid()


def test_worker_processes_is_one_per_core_at_most_tasks():
    assert worker_processes(1) == 1
    assert worker_processes(0) == 1
    assert 1 <= worker_processes(64) <= (os.cpu_count() or 1)


def test_map_in_workers_keeps_order_and_forks():
    jobs = list(range(7))
    serial = map_in_workers(_square_and_pid, jobs, 1)
    assert [v for v, _ in serial] == [j * j for j in jobs]
    assert {pid for _, pid in serial} == {os.getpid()}
    if worker_processes(2) == 2:  # fork available and at least two cores
        par = map_in_workers(_square_and_pid, jobs, 2)
        assert [v for v, _ in par] == [j * j for j in jobs]
        assert os.getpid() not in {pid for _, pid in par}
