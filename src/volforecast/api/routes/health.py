"""``GET /health``: the database, the registry and the models, each checked."""

from __future__ import annotations

import requests
from fastapi import APIRouter, Response
from sqlalchemy import text

from volforecast import __version__
from volforecast.api.deps import StateDep
from volforecast.api.schemas import Check, Health, PricesFreshness
from volforecast.api.state import ServiceState
from volforecast.jobs.freshness import judge, latest_closed_session
from volforecast.registry.tracking import is_server

router = APIRouter(tags=["service"])

CHECK_TIMEOUT_S = 2.0


def _database(state: ServiceState) -> Check:
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001  (any failure means down; the reason is shown)
        return Check(ok=False, detail=f"not answering: {type(exc).__name__}")
    pending = state.writer.stats
    detail = f"{state.engine.url.get_backend_name()} answering"
    if pending.last_error:
        # The error's kind only: the driver's message names hosts and ports; the log has it.
        kind = pending.last_error.partition(":")[0]
        return Check(ok=False, detail=f"{detail}, but writes fail ({kind}); see the service log")
    return Check(ok=True, detail=detail)


def _registry(state: ServiceState) -> Check:
    uri = state.settings.mlflow_tracking_uri
    try:
        if is_server(uri):
            requests.get(f"{uri.rstrip('/')}/health", timeout=CHECK_TIMEOUT_S).raise_for_status()
        else:
            state.client.search_registered_models(max_results=1)
    except Exception as exc:  # noqa: BLE001
        held = len(state.models)
        return Check(ok=False, detail=f"not answering ({type(exc).__name__}); "
                                      f"serving the {held} models loaded before")  # fmt: skip
    when = state.models.last_refresh
    seen = "never read yet" if when is None else f"read {when:%Y-%m-%d %H:%M:%S} UTC"
    return Check(ok=True, detail=f"answering; {seen}")


def _models(state: ServiceState) -> Check:
    errors = state.models.load_errors
    if errors:
        name, error = next(iter(errors.items()))
        # The version and the error's kind only: its message may name paths and URLs (the log
        # has it), and /health answers anyone.
        version, _, rest = error.partition(":")
        kind = rest.strip().partition(":")[0] or "error"
        return Check(ok=False, detail=f"{len(errors)} production versions failed to load, "
                                      f"e.g. {name} {version} ({kind})")  # fmt: skip
    return Check(ok=True, detail=f"{len(state.models)} registered models in production loaded")


def _prices(state: ServiceState) -> PricesFreshness:
    # The latest closes the service reads on its timer, not a scan of every stored price.
    session = latest_closed_session()
    try:
        judged = judge(state.forecaster.last_close(), session)
    except Exception as exc:  # noqa: BLE001  (the database check reports the cause)
        detail = f"unknown: the database did not answer ({type(exc).__name__})"
        return PricesFreshness(fresh=None, last_close=None, session=session, detail=detail)
    return PricesFreshness(fresh=judged.fresh, last_close=judged.last_close, session=session,
                           detail=judged.health_detail)  # fmt: skip


@router.get(
    "/health",
    summary="Health check",
    responses={503: {"model": Health, "description": "Something the service needs is down."}},
)
def health(state: StateDep, response: Response) -> Health:
    """200 when the database, the registry and every production model are fine, else 503.

    ``prices`` says whether the stored prices are fresh (``stale since ...``) without changing
    the status: stale data is the ingestion's problem, and restarting the API would not mend it.
    """
    checks = {"database": _database(state), "registry": _registry(state), "models": _models(state)}
    healthy = all(c.ok for c in checks.values())
    response.status_code = 200 if healthy else 503
    return Health(
        status="ok" if healthy else "degraded",
        version=__version__,
        checks=checks,
        models_served=len(state.models),
        predictions_pending=state.writer.stats.waiting,
        predictions_journaled=state.writer.stats.journaled,
        prices=_prices(state),
    )
