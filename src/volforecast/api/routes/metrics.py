"""``GET /metrics``: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from volforecast.api.deps import StateDep

router = APIRouter(tags=["service"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Request counts and latencies per route, predictions, model loads and errors."""
    state.metrics.observe_writer(state.writer.stats)
    state.metrics.models_served.set(len(state.models))
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
