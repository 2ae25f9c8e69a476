"""The tracking deadline: one request's worst case, and one budget shared by all of a job's."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException
from urllib3.util import Retry

from volforecast.registry.deadline import (
    RetryPolicy,
    TrackingDeadline,
    TrackingDeadlineError,
    tracking_deadline,
    unanswered,
)


@pytest.mark.parametrize("deadline_s", [1, 1.5, 2, 5, 8, 12, 30, 60, 300])
@pytest.mark.parametrize(("retries", "timeout_s"), [(0, 10.0), (3, 10.0), (10, 60.0), (3, 0.5)])
def test_one_request_fits_the_deadline(deadline_s: float, retries: int, timeout_s: float) -> None:
    policy = RetryPolicy.within(deadline_s, retries=retries, timeout_s=timeout_s)
    assert policy.worst_case_s <= max(deadline_s, 1), policy
    assert policy.retries <= retries
    assert 1 <= policy.timeout_s <= max(timeout_s, 1)
    assert policy.timeout_s == int(policy.timeout_s), "MLflow reads whole seconds"


@pytest.mark.parametrize(
    ("deadline_s", "expected"),
    [
        (30, RetryPolicy(3, 5.0)),  # the default: 4 × 5 s + pauses of 3 and 5 s at most
        (8, RetryPolicy(1, 4.0)),  # a 2 s timeout would leave no room for the second pause
        (120, RetryPolicy(3, 10.0)),  # room to spare: the settings' own limits
        (1, RetryPolicy(0, 1.0)),
    ],
)
def test_retries_are_kept_while_each_attempt_keeps_a_usable_timeout(
    deadline_s: float, expected: RetryPolicy
) -> None:
    assert RetryPolicy.within(deadline_s, retries=3, timeout_s=10.0) == expected


@pytest.mark.parametrize("retries", [0, 1, 2, 3, 6])
def test_the_pauses_bound_what_urllib3_sleeps(retries: int) -> None:
    policy = RetryPolicy(retries, 0.0, backoff_factor=1, jitter_s=1.0)
    for jitter_s in (0.0, 1.0):
        retry = Retry(total=retries, backoff_factor=1, backoff_jitter=jitter_s)
        slept_s = 0.0
        for _ in range(retries):
            retry = retry.increment("GET", "/x", error=requests.ConnectionError())
            slept_s += retry.get_backoff_time()
        if jitter_s == 0:
            no_jitter = sum(policy.backoff_s(k) for k in range(1, retries + 1))
            assert slept_s == pytest.approx(no_jitter)
        assert slept_s <= policy.worst_case_s + 1e-9


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_starts_at_the_first_unanswered_request_and_never_restarts() -> None:
    policy = RetryPolicy(1, 4.0)
    clock = _Clock()
    deadline = TrackingDeadline(8.0, policy, clock)
    assert deadline.limits(clock(), "/x") == policy
    deadline.failed(100.0, "no answer within 4 s to GET /x")
    deadline.failed(107.0, "no answer within 4 s to POST /y")  # MLflow cleaning up: same outage
    assert deadline.first_failure == "no answer within 4 s to GET /x"
    later = deadline.limits(105.0, "/z")
    assert later.retries == 0
    assert later.timeout_s == pytest.approx(3.0)
    assert later.worst_case_s == pytest.approx(3.0)
    with pytest.raises(TrackingDeadlineError, match="not answered for 8 s"):
        deadline.limits(108.0, "/z")


def test_an_answer_ends_the_outage() -> None:
    policy = RetryPolicy(3, 5.0)
    deadline = TrackingDeadline(30.0, policy, _Clock())
    deadline.failed(100.0, "could not connect to GET /x")
    assert deadline.outage
    deadline.answered()
    assert not deadline.outage
    assert deadline.first_failure is None
    assert deadline.limits(1000.0, "/x") == policy


def _raised_from(cause: Exception) -> MlflowException:
    """What MLflow's ``http_request`` raises: its own error, the cause as its context only."""
    try:
        try:
            raise cause
        except (requests.RequestException, ValueError) as exc:
            raise MlflowException(f"API request to /x failed with exception {exc}")  # noqa: B904
    except MlflowException as wrapped:
        return wrapped


def test_a_dead_server_is_told_apart_by_types_not_messages() -> None:
    assert unanswered(_raised_from(requests.ConnectionError("refused"))) == "ConnectionError"
    assert unanswered(_raised_from(requests.exceptions.ReadTimeout())) == "ReadTimeout"
    # The same words without a request error behind them are something else.
    assert unanswered(MlflowException("API request to /x failed with exception boom")) is None
    assert unanswered(_raised_from(ValueError("bad JSON"))) is None
    assert unanswered(requests.HTTPError("404 Client Error")) is None


def test_an_mlflow_error_without_its_cause_counts_during_an_outage() -> None:
    # A failed download reports the messages of its files only, not their exceptions.
    aggregated = MlflowException("The following failures occurred while downloading ...")
    with tracking_deadline(30.0, RetryPolicy(3, 5.0)) as deadline:
        assert unanswered(aggregated) is None
        deadline.failed(deadline.clock(), "no answer within 5 s to GET /artifacts")
        assert unanswered(aggregated) == "no answer within 5 s to GET /artifacts"
        assert unanswered(ValueError("not a model")) is None
    assert unanswered(aggregated) is None
