"""Worker processes that share the machine's cores instead of fighting over them."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> None:
    """Limit this process's BLAS to one thread: the initializer of every worker pool.

    numpy's OpenBLAS starts a thread per core in every process, so N workers that each solve
    least squares oversubscribe N cores N-fold. On the 2-core machine the per-ticker stage
    of ``benchmarks/train_speed.py`` took 360 s that way and 79 s with this limit.
    """
    threadpool_limits(1, user_api="blas")
