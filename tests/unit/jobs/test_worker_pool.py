"""A training job's workers: how many by default, started once for every stage, stopped early.

The pool spawns real processes (a second or two each to start): the behaviour under test is
theirs, not a stand-in's.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from threadpoolctl import threadpool_info

from tests.conftest import make_settings
from volforecast.core import parallel
from volforecast.jobs.worker_pool import StoppedError, WorkerPool, one_thread_here, stop_if_asked


@pytest.fixture
def no_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No container CPU quota, whatever the machine running the tests has."""
    monkeypatch.setattr(parallel, "CGROUP_CPU_MAX", tmp_path / "no-cpu.max")


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _pid_at(barrier: Any) -> int:
    barrier.wait(timeout=120)
    return os.getpid()


def _pid_unless_stopped(seconds: float) -> int:
    stop_if_asked()
    return _pid_after(seconds)


def _torch_threads() -> int:
    import torch as worker_torch  # noqa: PLC0415  (imported in the worker, after its start)

    return worker_torch.get_num_threads()


@pytest.mark.parametrize(("usable", "expected"), [(1, 1), (2, 2), (6, 6), (64, 8)])
@pytest.mark.usefixtures("no_quota")
def test_a_job_starts_one_worker_per_usable_core_up_to_eight(
    usable: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(usable)))
    assert parallel.default_workers() == expected


@pytest.mark.parametrize(
    ("tickers", "asked", "expected"),
    [(1, 4, 1), (2, 4, 4), (2, None, 1), (15, None, 1), (16, None, 6), (400, 0, 6)],
)
@pytest.mark.usefixtures("no_quota")
def test_a_stage_uses_the_workers_asked_for_else_only_when_it_has_16_tickers(
    tickers: int, asked: int | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(6)))
    assert parallel.stage_workers(tickers, asked) == expected


@pytest.mark.slow
def test_every_stage_of_a_job_is_served_by_the_same_workers(tmp_path: Path) -> None:
    # Given a job's pool of two workers, whose first stage used both (each of its two tasks
    # waits for the other, so they run in two processes)
    pool = WorkerPool(2, make_settings(home=tmp_path))
    with multiprocessing.get_context("spawn").Manager() as manager:
        both = manager.Barrier(2)
        try:
            first = {f.result() for f in [pool.executor().submit(_pid_at, both) for _ in range(2)]}
            assert len(first) == 2

            # When the next stage asks for workers
            both.reset()
            second = {f.result() for f in [pool.executor().submit(_pid_at, both) for _ in range(2)]}

            # Then no new process was started for it
            assert second == first
            # And a worker's torch, imported after it started, computes with one thread
            assert pool.executor().submit(_torch_threads).result() == 1
        finally:
            pool.close()
    # Closed with the job: a later job's pool starts afresh
    assert pool.executor().submit(_pid_after, 0.0).result() not in first
    pool.close()


@pytest.mark.slow
def test_a_stopped_pool_drops_the_tasks_not_begun(tmp_path: Path) -> None:
    pool = WorkerPool(2, make_settings(home=tmp_path))
    executor = pool.executor()
    executor.submit(_pid_after, 0.0).result()  # the workers are up
    futures = [executor.submit(_pid_unless_stopped, 1.0) for _ in range(8)]
    time.sleep(0.3)  # two tasks under way, six waiting

    pool.stop()

    assert all(f.done() for f in futures)
    dropped = [f for f in futures if f.cancelled() or isinstance(f.exception(), StoppedError)]
    assert len(dropped) >= 6, "tasks that had not begun ran after the stop"


def test_while_its_workers_run_the_job_computes_with_one_thread() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread_here():
            assert torch.get_num_threads() == 1
            blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
            assert blas
            assert all(i["num_threads"] == 1 for i in blas)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("max 100000", 6), ("150000 100000", 2), ("50000 100000", 1)]
)
def test_a_containers_cpu_quota_caps_the_default_workers(
    cpu_max: str, expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    monkeypatch.setattr(parallel, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(6)))
    assert parallel.default_workers() == expected
