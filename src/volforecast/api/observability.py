"""Prometheus metrics of one service instance, and the ASGI middleware that counts requests.

Each app has its own registry (never prometheus_client's global one), so two apps in one
process, as in the tests, do not share counters.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from volforecast.api.errors import problem
from volforecast.jobs.writer import WriterStats

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """The counters, histograms and gauges ``GET /metrics`` shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.requests = counter(
            "volforecast_http_requests_total", "HTTP requests answered.",
            ["method", "route", "status"],
        )  # fmt: skip
        self.latency = Histogram(
            "volforecast_http_request_duration_seconds", "Time to answer a request.",
            ["method", "route"], buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )  # fmt: skip
        self.predictions = counter(
            "volforecast_predictions_total", "Forecasts answered.", ["model_type"]
        )
        self.prediction_errors = counter(
            "volforecast_prediction_errors_total", "Forecast requests that failed, by reason.",
            ["reason"],
        )  # fmt: skip
        self.model_loads = counter(
            "volforecast_model_loads_total", "Production versions loaded from the registry."
        )
        self.model_load_errors = counter(
            "volforecast_model_load_errors_total",
            "Production versions or registry listings that could not be loaded.",
        )
        self.models_served = gauge(
            "volforecast_models_served", "Registered models whose production version is loaded."
        )
        self.predictions_stored = counter(
            "volforecast_predictions_stored_total", "Prediction rows written to the database."
        )
        self.predictions_pending = gauge(
            "volforecast_predictions_pending",
            "Prediction rows waiting to be written, in memory or in the journal.",
        )
        self.predictions_journaled = gauge(
            "volforecast_predictions_journaled",
            "Prediction rows waiting in the journal under the service's home.",
        )

        # Each labelled child looked up once: ``labels()`` takes a lock and builds a key, a
        # cost every request paid three times.
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._answered_by: dict[str, Any] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record how long it took."""
        key = (method, route, status)
        children = self._answered.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)),
                        self.latency.labels(method, route))  # fmt: skip
            self._answered[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_prediction(self, model_type: str) -> None:
        """Count one forecast answered by a model of ``model_type``."""
        child = self._answered_by.get(model_type)
        if child is None:
            child = self._answered_by[model_type] = self.predictions.labels(model_type)
        child.inc()

    def observe_writer(self, stats: WriterStats) -> None:
        """Set the gauges of the prediction writer."""
        self.predictions_pending.set(stats.waiting)
        self.predictions_journaled.set(stats.journaled)


class MetricsMiddleware:
    """Counts every request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count and time it once answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route: Any = scope.get("route")
            # The template (/predictions/{ticker}), never the raw path: one series per route.
            template = getattr(route, "path", None) or "unmatched"
            elapsed_s = time.perf_counter() - started
            self.metrics.observe_request(scope.get("method", ""), template, status, elapsed_s)


class _TooLargeError(HTTPException):
    # An HTTPException, so that FastAPI, reading the body, answers 413 rather than 400.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuses a request body over ``max_bytes`` with 413, declared or streamed.

    ``per_path`` gives some paths a limit of their own (``/predict/batch``'s 500 items).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless its body is too large."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # behind a proxy's prefix: the route's own path
            path = path[len(root) :]
        limit = self.per_path.get(path, self.max_bytes)
        declared = next((v for k, v in scope.get("headers") or () if k == b"content-length"), None)
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await self._refuse(scope, receive, send, limit)
                return
            # The server reads no more than the declared length: nothing left to count.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def receiving() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLargeError(limit)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except _TooLargeError:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        detail = f"request body larger than {limit} bytes"
        await problem(Request(scope), 413, detail)(scope, receive, send)
