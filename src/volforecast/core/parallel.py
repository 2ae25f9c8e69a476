"""Worker processes that share the machine's cores instead of fighting over them."""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

MAX_DEFAULT_WORKERS = 8
"""Most worker processes a job starts unasked: each holds its own MLflow client and models,
and past eight they mostly queue on the tracking store's writes."""


MIN_TASKS_FOR_WORKERS = 16
"""Fewest tickers a stage hands to workers it was not asked for: a worker takes seconds to
start (it imports MLflow, torch and the models), more than a few tickers' fits take."""


def default_workers() -> int:
    """Worker processes a job starts when none are asked for: one per usable core, up to 8.

    The cores this process may run on (its CPU affinity, which a container's ``--cpuset-cpus``
    sets), not the machine's.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(usable or 1, MAX_DEFAULT_WORKERS))


def stage_workers(tickers: int, asked: int | None) -> int:
    """Processes for a job's stage of ``tickers`` (1: the job's own): as asked, else as worth it."""
    if tickers <= 1:
        return 1
    if asked is not None:
        return asked
    return default_workers() if tickers >= MIN_TASKS_FOR_WORKERS else 1


def one_blas_thread() -> None:
    """Limit this process's BLAS to one thread: the initializer of every worker pool.

    numpy's OpenBLAS starts a thread per core in every process, so N workers that each solve
    least squares oversubscribe N cores N-fold. On the 2-core machine the per-ticker stage
    of ``benchmarks/train_speed.py`` took 360 s that way and 79 s with this limit.
    """
    threadpool_limits(1, user_api="blas")
