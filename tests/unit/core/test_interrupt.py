"""Ctrl-C recorded by the handler and raised at the job's own step boundaries."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest

from volforecast.core.interrupt import deferred_interrupts, raise_if_interrupted


def test_a_ctrl_c_is_raised_at_the_check_not_where_it_lands() -> None:
    with deferred_interrupts():
        signal.raise_signal(signal.SIGINT)  # the handler runs before this call returns
        reached = True  # a KeyboardInterrupt here would be the race this module removes
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
        raise_if_interrupted()  # the request was taken once: the job may clean up in peace
    assert reached, "the Ctrl-C was raised where it landed"


def test_no_check_raises_without_a_ctrl_c() -> None:
    with deferred_interrupts():
        raise_if_interrupted()
    raise_if_interrupted()


def test_a_second_ctrl_c_raises_at_once() -> None:
    with deferred_interrupts():
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


def test_the_previous_handler_is_back_afterwards_and_no_request_outlives_the_block() -> None:
    heard: list[int] = []

    def previous(signum: int, _frame: FrameType | None) -> None:
        heard.append(signum)

    def job_that_fails() -> None:
        with deferred_interrupts():
            assert signal.getsignal(signal.SIGINT) is not previous
            signal.raise_signal(signal.SIGINT)
            raise RuntimeError  # the block ends with the request never taken

    before = signal.signal(signal.SIGINT, previous)
    try:
        with pytest.raises(RuntimeError):
            job_that_fails()
        assert signal.getsignal(signal.SIGINT) is previous
        raise_if_interrupted()  # a later job does not inherit it
        signal.raise_signal(signal.SIGINT)
        assert heard == [signal.SIGINT], "the previous handler does not hear Ctrl-C again"
    finally:
        signal.signal(signal.SIGINT, before)


def test_off_the_main_thread_it_is_a_no_op() -> None:
    failures: list[BaseException] = []

    def job() -> None:
        try:
            with deferred_interrupts():  # signal.signal would refuse this thread
                assert signal.getsignal(signal.SIGINT) is handler
                raise_if_interrupted()  # the main thread's request is not this thread's
        except BaseException as exc:  # noqa: BLE001  (reported to the test's thread)
            failures.append(exc)

    with deferred_interrupts():
        handler = signal.getsignal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        assert failures == []
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()


def test_a_nested_block_keeps_the_outer_request() -> None:
    with deferred_interrupts():
        signal.raise_signal(signal.SIGINT)
        with deferred_interrupts():
            pass
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
