"""Worker processes that share the machine's cores instead of fighting over them."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> None:
    """Limit this process's BLAS to one thread: the initializer of every worker pool.

    numpy's OpenBLAS starts a thread per core in every process, so N workers that each solve
    least squares oversubscribe N cores N-fold. On the 2-core machine that made the
    per-ticker fits of ``benchmarks/train_speed.py`` 3.7 times slower (40 tickers, two
    workers: 32.9 s against 8.8 s).
    """
    threadpool_limits(1, user_api="blas")
