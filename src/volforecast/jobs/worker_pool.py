"""A training job's worker processes: started once, kept from stage to stage, ended with the job.

A spawned worker imports MLflow, torch and the models before its first task, and connects to
the tracking store: seconds of CPU on a small machine. One pool per job pays that once, not
once per stage. While the workers run, the job's own process computes with one thread (BLAS
and torch): its share of the work is small steps between theirs, and a second thread per
process only makes the cores' owners wait for each other.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.synchronize import Event as EventType

from threadpoolctl import threadpool_limits

from volforecast.core.parallel import one_blas_thread
from volforecast.registry.deadline import RetryPolicy, hold_deadline
from volforecast.registry.tracking import quiet_mlflow_logs, retry_policy
from volforecast.settings import Settings


class StoppedError(Exception):
    """The job asked its workers to stop: what was not begun is left undone."""


_STOP: list[EventType] = []
"""A worker's stop signal from the job (none in the job's own process)."""


def stop_if_asked() -> None:
    """Raise :class:`StoppedError` in a worker whose job has asked its workers to stop."""
    if _STOP and _STOP[0].is_set():
        raise StoppedError


class WorkerPool:
    """``size`` worker processes for one job, started by the first stage that has work for them."""

    def __init__(self, size: int, settings: Settings) -> None:
        self.size = size
        self._settings = settings
        self._executor: ProcessPoolExecutor | None = None
        self._stop: EventType | None = None

    def executor(self) -> ProcessPoolExecutor:
        """The running pool, started now if no stage has started it."""
        if self._executor is None:
            # Spawned, not forked: the parent holds MLflow's and torch's threads.
            context = multiprocessing.get_context("spawn")
            self._stop = context.Event()
            mlflow_level = logging.getLogger("mlflow").getEffectiveLevel()
            start = (self._stop, mlflow_level, self._settings.mlflow_deadline_s,
                     retry_policy(self._settings))  # fmt: skip
            self._executor = ProcessPoolExecutor(
                max_workers=self.size, mp_context=context, initializer=_worker_start,
                initargs=start,
            )  # fmt: skip
        return self._executor

    def stop(self) -> None:
        """Drop the tasks not begun; wait for the workers to end the step they are in."""
        executor, self._executor = self._executor, None  # forgotten first: never shut twice
        if executor is not None and self._stop is not None:
            self._stop.set()
            executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """End the workers once their tasks are done (the job's last stage is over)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@contextlib.contextmanager
def one_thread_here() -> Iterator[None]:
    """Limit this process to one BLAS and torch thread while its workers use the cores."""
    torch = sys.modules.get("torch")  # imported only by a job that has an LSTM to run
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)


def _worker_start(
    stop: EventType, mlflow_level: int, deadline_s: float, policy: RetryPolicy
) -> None:
    """A worker: one BLAS and torch thread, deaf to Ctrl-C, MLflow's messages as the job's.

    Ctrl-C stops the job at its next step boundary instead (a worker cut short by it could
    leave a run half logged). Every MLflow request of the worker shares one deadline, as the
    job's own do.
    """
    one_blas_thread()
    # MLflow runs a logged model on its input example, an LSTM's network too: one thread, as
    # torch reads it when it is imported (or is told, when it already is).
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if mlflow_level >= logging.WARNING:
        quiet_mlflow_logs()
    _STOP[:] = [stop]
    hold_deadline(deadline_s, policy)
