"""One deadline for a tracking server that stops answering, shared by every request of a job.

MLflow's client retries each request on its own, and a request that fails sets off others (the
logged model marked ``FAILED``, the run ended as ``FAILED``), each with a fresh set of retries:
a training run against a server that accepted connections and never answered took minutes to
give up. Within :func:`tracking_deadline` a job has one budget instead:

* one request's retries and timeouts fit inside the deadline (:meth:`RetryPolicy.within`);
* the clock starts when the first request that goes unanswered was sent, and stops when any
  request is answered;
* until the deadline, later requests get one attempt, with a timeout no longer than the time
  left; after it, they fail at once without touching the network.

So a job gives up at most ``deadline_s`` after the first request the server did not answer.

MLflow has no hook for this. While a deadline is active, the one function that all of its REST
and artifact requests go through (``mlflow.utils.rest_utils._get_http_response_with_retries``)
is wrapped, and restored afterwards. Should a later MLflow rename it, the wrapper is left out
with a warning, and each request is still bounded by the policy that
:func:`~volforecast.registry.tracking.connect` hands MLflow through its environment variables.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import mlflow
import requests
import urllib3
from mlflow.exceptions import MlflowException
from mlflow.utils import rest_utils

log = logging.getLogger(__name__)

MIN_TIMEOUT_S = 2.0
"""Shortest attempt timeout worth a retry: below it, fewer and longer attempts fit instead."""

UNANSWERED = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.RetryError,
    requests.exceptions.ChunkedEncodingError,
)
"""How a server that does not answer shows itself: refused, silent, cut off, or only 5xx."""

_FUNNEL = "_get_http_response_with_retries"

Send = Callable[..., Any]


@dataclass(frozen=True)
class RetryPolicy:
    r"""How one request to the tracking server is retried by MLflow's client (urllib3).

    Notes
    -----
    urllib3 does not pause after the first failed attempt; after the :math:`k`-th
    (:math:`k \ge 2`) it pauses :math:`f\,2^{k-1}` seconds plus a random jitter of at most
    :math:`j`. With :math:`r` retries and a timeout of :math:`T` per attempt (to connect, and
    to wait for the answer; a dead server refuses or accepts at once), one request waits at
    most

    .. math:: W = (r + 1)\,T + \sum_{k=2}^{r} \left(f\,2^{k-1} + j\right).
    """

    retries: int
    timeout_s: float
    """Whole seconds from :meth:`within`: MLflow reads ``MLFLOW_HTTP_REQUEST_TIMEOUT`` as an
    integer."""
    backoff_factor: int = 1
    jitter_s: float = 1.0

    def backoff_s(self, failures: int) -> float:
        """The pause after ``failures`` failed attempts, without the jitter."""
        return 0.0 if failures <= 1 else float(self.backoff_factor * 2 ** (failures - 1))

    @property
    def worst_case_s(self) -> float:
        """The longest one request can take before it fails, :math:`W` in the Notes."""
        pauses = sum(self.backoff_s(k) + self.jitter_s for k in range(2, self.retries + 1))
        return (self.retries + 1) * self.timeout_s + pauses

    @classmethod
    def within(cls, deadline_s: float, *, retries: int, timeout_s: float) -> RetryPolicy:
        """The most retries (up to ``retries``) whose worst case fits ``deadline_s``.

        Each attempt keeps a timeout of at least :data:`MIN_TIMEOUT_S` (or ``timeout_s`` when
        that is shorter); a retry that would need a shorter one is dropped instead.
        """
        # Whole seconds, at least 1 (what MLflow can be told), 2 unless the settings ask less.
        floor_s = max(min(MIN_TIMEOUT_S, math.floor(timeout_s)), 1)
        for tries in range(retries, 0, -1):
            pauses_s = cls(tries, 0.0).worst_case_s
            fitting_s = math.floor(min(timeout_s, (deadline_s - pauses_s) / (tries + 1)))
            if fitting_s >= floor_s:
                return cls(tries, float(fitting_s))
        return cls(0, float(max(math.floor(min(timeout_s, deadline_s)), 1)))


class TrackingDeadlineError(requests.ConnectionError):
    """A request not sent: the tracking server has not answered for the whole deadline."""


class TrackingDeadline:
    """The budget of one job: how long the tracking server may go without answering."""

    def __init__(
        self, deadline_s: float, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.deadline_s = deadline_s
        self.policy = policy
        self.clock = clock
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self.first_failure: str | None = None
        """The request that began the current outage, e.g. ``no answer within 4 s to GET /x``."""

    @property
    def outage(self) -> bool:
        """Whether a request failed and none has been answered since."""
        with self._lock:
            return self._failing_since is not None

    def limits(self, now: float, url: str) -> RetryPolicy:
        """The retries and timeout a request starting ``now`` may have.

        Raises
        ------
        TrackingDeadlineError
            When the deadline has passed since the first unanswered request.
        """
        with self._lock:
            since = self._failing_since
        if since is None:
            return self.policy
        left_s = self.deadline_s - (now - since)
        if left_s <= 0:
            msg = f"not sent: the server has not answered for {self.deadline_s:g} s ({url})"
            raise TrackingDeadlineError(msg)
        # The server has failed already: one more attempt, without pauses, in the time left.
        return RetryPolicy(0, left_s, backoff_factor=0, jitter_s=0.0)

    def failed(self, started: float, what: str) -> None:
        """A request that began at ``started`` went unanswered."""
        with self._lock:
            if self._failing_since is not None:
                return
            # From the start of the request that failed: the deadline includes its retries.
            self._failing_since = started
            self.first_failure = what
        log.warning("the MLflow tracking server did not answer: %s", what)

    def answered(self) -> None:
        """A request was answered: the outage, if any, is over."""
        with self._lock:
            self._failing_since = None
            self.first_failure = None


class _Hook:
    """The deadline in force in this process, and MLflow's function it wraps."""

    active: TrackingDeadline | None = None
    original: Send | None = None


def _guarded(
    method: str,
    url: str,
    max_retries: int,
    backoff_factor: float,
    backoff_jitter: float,
    *args: Any,
    **kwargs: Any,
) -> Any:
    original = _Hook.original
    if original is None:  # pragma: no cover  (installed only once the original is kept)
        msg = f"{_FUNNEL} wrapped without the original"
        raise RuntimeError(msg)
    deadline = _Hook.active
    if deadline is None:  # a thread of MLflow's that outlived the job
        return original(method, url, max_retries, backoff_factor, backoff_jitter, *args, **kwargs)
    started = deadline.clock()
    limits = deadline.limits(started, url)
    # The limits cap what MLflow read from the environment, a user's own values included.
    given_s = kwargs.get("timeout")
    kwargs["timeout"] = limits.timeout_s if given_s is None else min(given_s, limits.timeout_s)
    kwargs["respect_retry_after_header"] = False  # a Retry-After may ask for minutes
    retries = min(max_retries, limits.retries)
    backoff = (min(backoff_factor, limits.backoff_factor), min(backoff_jitter, limits.jitter_s))
    try:
        response = original(method, url, retries, *backoff, *args, **kwargs)
    except UNANSWERED as exc:
        what = _what(exc, kwargs["timeout"])
        deadline.failed(started, f"{what} to {method} {urlsplit(url).path}")
        raise
    deadline.answered()
    return response


def _what(exc: requests.RequestException, timeout_s: float) -> str:
    """What went wrong, in words: requests wraps urllib3's reason after its retries."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.exceptions.RetryError):
        return "error responses only"
    if isinstance(exc, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "could not connect"
    return f"connection lost ({type(reason or exc).__name__})"


@contextlib.contextmanager
def tracking_deadline(deadline_s: float, policy: RetryPolicy) -> Iterator[TrackingDeadline]:
    """Within the block, every request of MLflow's client shares one deadline.

    One block at a time per process; a nested block replaces the outer deadline until it ends.
    """
    deadline = TrackingDeadline(deadline_s, policy)
    outer = _Hook.active
    if outer is None:
        _install()
    _Hook.active = deadline
    try:
        yield deadline
    finally:
        _Hook.active = outer
        if outer is None:
            _uninstall()


_HELD = contextlib.ExitStack()
"""The deadline :func:`hold_deadline` holds for the life of the process."""


def hold_deadline(deadline_s: float, policy: RetryPolicy) -> None:
    """From now on every request of this process shares one deadline: a worker process's.

    A worker does the job's requests for as long as it lives, so the job's deadline holds
    there as it does around the job in the job's own process.
    """
    _HELD.close()
    _HELD.enter_context(tracking_deadline(deadline_s, policy))


def unanswered(exc: BaseException) -> str | None:
    """What went unanswered when ``exc`` comes from a tracking server that does not answer.

    That is when a request error (:data:`UNANSWERED`) is among its causes, or when an MLflow
    error that names no cause (a failed download reports only the messages of its files) comes
    while the active deadline has an unanswered request on record. None for anything else.
    """
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    deadline = _Hook.active
    recorded = deadline.first_failure if deadline is not None and deadline.outage else None
    for error in chain:
        if isinstance(error, UNANSWERED):
            return recorded or type(error).__name__
    if recorded is not None and any(isinstance(e, MlflowException) for e in chain):
        return recorded
    return None


def _install() -> None:
    current = getattr(rest_utils, _FUNNEL, None)
    if current is None:
        log.warning(
            "MLflow %s has no %s: the tracking deadline bounds each request, not the whole job",
            mlflow.__version__,
            _FUNNEL,
        )
        return
    if current is not _guarded:
        _Hook.original = current
        setattr(rest_utils, _FUNNEL, _guarded)


def _uninstall() -> None:
    if _Hook.original is not None and getattr(rest_utils, _FUNNEL, None) is _guarded:
        setattr(rest_utils, _FUNNEL, _Hook.original)
