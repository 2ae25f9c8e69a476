"""The prediction API's reads, answered in the API's own schemas (:mod:`volforecast.api.schemas`).

Every call goes through :class:`~volforecast.api.client.ApiClient`; an API that does not answer
raises :class:`~volforecast.dashboard.sources.ApiUnavailableError`, one that refuses a read a
:class:`~volforecast.dashboard.sources.DashboardError` saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd
import requests
from pydantic import TypeAdapter

from volforecast.api.client import ApiClient
from volforecast.api.schemas import (
    Health,
    ModelCardResponse,
    ModelInfo,
    PredictionPage,
    PredictResponse,
)
from volforecast.dashboard import sources
from volforecast.settings import Settings

API_URL_ENV = "VOLFORECAST_DASHBOARD__API_URL"
API_KEY_ENV = "VOLFORECAST_API__API_KEY"
MAX_HORIZON_DAYS = 30

_LISTING = TypeAdapter(list[ModelInfo])


@dataclass(frozen=True)
class DashboardConfig:
    """Where the dashboard finds the prediction API (``settings.dashboard.api_url``)."""

    api_url: str
    api_key: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardConfig:
        """The API URL of the dashboard's settings, with the API's own key when it has one."""
        key = settings.api.api_key
        return cls(api_url=settings.dashboard.api_url.rstrip("/"),
                   api_key=None if key is None else key.get_secret_value())  # fmt: skip

    def client(self) -> ApiClient:
        """A client of the configured API."""
        return ApiClient(self.api_url, self.api_key, timeout_s=self.timeout_s)


def api_down_message(url: str) -> str:
    """What to tell the user when the API at ``url`` does not answer."""
    return (
        f"The prediction API at {url} is not answering: start it with `volforecast serve` "
        f"(or point {API_URL_ENV} at it)."
    )


@dataclass(frozen=True)
class ApiStatus:
    """Whether the API answers, and what its ``/health`` says."""

    up: bool
    detail: str
    degraded: bool = False


def api_status(client: ApiClient, timeout_s: float = 3.0) -> ApiStatus:
    """Ask ``GET /health`` once; a 503 still means the API answers (degraded)."""
    try:
        answer = client.session.get(f"{client.url}/health", timeout=timeout_s)
    except requests.RequestException as exc:
        return ApiStatus(up=False, detail=type(exc).__name__)
    try:
        health = Health.model_validate(answer.json())
    except ValueError:  # not JSON, or not the API's health answer
        return ApiStatus(up=False, detail=f"HTTP {answer.status_code}, not the API")
    failing = [f"{name}: {check.detail}" for name, check in health.checks.items() if not check.ok]
    if failing:
        return ApiStatus(up=True, detail="; ".join(failing), degraded=True)
    return ApiStatus(up=True, detail=f"ok, {health.models_served} served")


def _get(client: ApiClient, path: str, **params: Any) -> requests.Response:
    try:
        answer = client.session.get(f"{client.url}{path}", params=params, timeout=client.timeout_s)
    except requests.RequestException as exc:
        raise sources.ApiUnavailableError(api_down_message(client.url)) from exc
    if answer.status_code == 401:
        msg = f"The API at {client.url} wants a key: set {API_KEY_ENV} to the API's key."
        raise sources.DashboardError(msg)
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        msg = f"The API at {client.url} answered {path} with {answer.status_code}: {detail}"
        raise sources.DashboardError(msg)
    return answer


def api_models(client: ApiClient) -> list[ModelInfo]:
    """The registry as the API lists it (``GET /models``)."""
    return _LISTING.validate_python(_get(client, "/models").json())


def api_card(client: ApiClient, name: str, ticker: str | None = None) -> ModelCardResponse:
    """A production model's card (``GET /models/{name}/card``), for ``ticker`` when pooled."""
    params = {} if ticker is None else {"ticker": ticker}
    answer = _get(client, f"/models/{quote(name, safe='')}/card", **params)
    return ModelCardResponse.model_validate(answer.json())


def api_predictions(client: ApiClient, ticker: str, *, limit: int = 1_000) -> pd.DataFrame:
    """Stored forecast steps of ``ticker`` through ``GET /predictions/{ticker}``, newest first."""
    answer = _get(client, f"/predictions/{quote(ticker, safe='')}", limit=limit).json()
    page = PredictionPage.model_validate(answer)
    return pd.DataFrame(page.model_dump(mode="json")["items"])


def fetch_metrics(client: ApiClient) -> str:
    """The API's Prometheus text (``GET /metrics``)."""
    return _get(client, "/metrics").text


def production_model_types(models: Sequence[ModelInfo], ticker: str) -> list[str]:
    """Model types whose production version may serve ``ticker``.

    A per-ticker model serves its own ticker only; a pooled model (``ticker`` is None in the
    API's listing) is asked, and says 404 for a ticker it was not trained on.
    """
    types = {
        m.model_type.upper()
        for m in models
        if m.stage == "production" and m.ticker in {None, ticker}
    }
    return sorted(types, key=sources.model_order)


def _rows_of(answer: PredictResponse) -> pd.DataFrame:
    return pd.DataFrame({
        "model_type": answer.model_type,
        "model_version": answer.model_version,
        "origin_date": answer.origin_date,
        "step": range(1, len(answer.forecasts) + 1),
        "forecast_date": answer.forecast_dates,
        "predicted_volatility": answer.forecasts,
    })  # fmt: skip


def api_forecasts(
    client: ApiClient, ticker: str, model_types: Sequence[str],
    horizon: int = MAX_HORIZON_DAYS,
) -> sources.ForecastSet:  # fmt: skip
    """Each model type's forecast path of ``ticker`` from the API (``POST /predict``).

    A model type the API cannot forecast with (no production version serves the ticker, too
    little data) is left out and named in ``notes``.

    Raises
    ------
    sources.ApiUnavailableError
        When the API does not answer.
    """
    frames, notes = [], []
    for model_type in model_types:
        try:
            answer = PredictResponse.model_validate(client.predict(ticker, model_type, horizon))
        except requests.HTTPError as exc:
            notes.append(f"{model_type}: {exc}")
            continue
        except requests.RequestException as exc:
            raise sources.ApiUnavailableError(api_down_message(client.url)) from exc
        frames.append(_rows_of(answer))
    paths = sources.as_paths(pd.concat(frames), ["step"]) if frames else sources.empty_paths()
    return sources.ForecastSet(paths, "api", tuple(notes))
