"""Worker processes that share the machine's cores instead of fighting over them."""

from __future__ import annotations

import math
import os
from pathlib import Path

from threadpoolctl import threadpool_limits

MAX_DEFAULT_WORKERS = 8
"""Most worker processes a job starts unasked: each holds its own MLflow client, models and
memory, and all of them write to one tracking store."""

MIN_TASKS_FOR_WORKERS = 16
"""Fewest tickers a stage hands to workers it was not asked for: a worker takes seconds to
start (it imports MLflow, torch and the models), more than a few tickers' fits take."""

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""A container's CPU quota (cgroup v2): ``<quota> <period>`` in microseconds, or ``max``."""


def default_workers() -> int:
    """Worker processes a job starts when none are asked for: one per usable core, up to 8.

    Usable: the cores this process may run on (its CPU affinity, which ``--cpuset-cpus``
    sets), no more than its container's CPU quota allows (``--cpus``, Kubernetes'
    ``limits.cpu``), rounded up.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cpu_quota()
    cores = min(usable or 1, quota) if quota is not None else usable or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def _cpu_quota() -> int | None:
    """The cgroup's CPU quota in whole cores (rounded up), None when it sets none."""
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def stage_workers(tickers: int, asked: int | None) -> int:
    """Processes for a job's stage of ``tickers`` (1: the job's own): as asked, else as worth it.

    ``asked`` None or 0: the default, for a stage of at least 16 tickers.
    """
    if tickers <= 1:
        return 1
    if asked:
        return asked
    return default_workers() if tickers >= MIN_TASKS_FOR_WORKERS else 1


def one_blas_thread() -> None:
    """Limit this process's BLAS to one thread: the initializer of every worker pool.

    numpy's OpenBLAS starts a thread per core in every process, so N workers that each solve
    least squares oversubscribe N cores N-fold. On the 2-core machine the per-ticker stage
    of ``benchmarks/train_speed.py`` took 360 s that way and 79 s with this limit.
    """
    threadpool_limits(1, user_api="blas")
