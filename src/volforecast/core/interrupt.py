"""Ctrl-C taken at a job's step boundaries, not wherever the main thread happens to be.

Python raises ``KeyboardInterrupt`` at any bytecode: between a lock's acquire and the ``try``
that releases it (SQLAlchemy's connection pool, say) the lock stays held, and the clean-up that
needs it waits for ever. Within :func:`deferred_interrupts` a Ctrl-C is only recorded; the job
raises it at :func:`raise_if_interrupted`, where it holds no such lock.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = False


def _record(_signum: int, _frame: FrameType | None) -> None:
    global _requested  # noqa: PLW0603  (a signal handler has nowhere else to write)
    if _requested:
        raise KeyboardInterrupt  # a second Ctrl-C: the user means it, now
    _requested = True


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Within the block Ctrl-C is recorded (a second one raises at once); then the old handler.

    A no-op off the main thread (Airflow's task runners, pytest's workers), where Python
    allows no handler, and inside another such block, whose request it keeps. A request still
    untaken when the block ends came after the job's last step: the job finished, and it is
    dropped.
    """
    global _requested  # noqa: PLW0603
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is _record:
        yield
        return
    previous, _requested = signal.signal(signal.SIGINT, _record), False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        _requested = False


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was recorded: call it where stopping is safe."""
    global _requested  # noqa: PLW0603
    if _requested and threading.current_thread() is threading.main_thread():
        _requested = False
        raise KeyboardInterrupt
