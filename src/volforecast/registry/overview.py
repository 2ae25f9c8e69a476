"""Registered models at a glance, as ``volforecast models list`` shows them."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from volforecast.registry.names import (
    CHALLENGER,
    HEADLINE_METRIC,
    PRODUCTION,
    TAG_MODEL_TYPE,
    TAG_TICKER,
    TAG_TICKERS,
)
from volforecast.registry.serving import registered_models


@dataclass(frozen=True)
class ModelSummary:
    """One registered model as ``volforecast models list`` shows it."""

    name: str
    model_type: str
    serves: str
    """The ticker, or ``N tickers`` for a pooled model."""
    latest: str | None
    production: str | None
    challenger: str | None
    production_qlike: float | None


def overview(client: MlflowClient) -> list[ModelSummary]:
    """Every volforecast registered model with its aliases, by name."""
    summaries = []
    for model in registered_models(client):
        aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
        numbers = [int(v.version) for v in model.latest_versions or []]
        latest = str(max(numbers)) if numbers else None
        production, challenger = aliases.get(PRODUCTION), aliases.get(CHALLENGER)
        qlike = None
        serves = "?"
        model_type = model.name.split("_volatility_")[0].upper()
        if latest is not None:
            shown = client.get_model_version(model.name, production or latest)
            tags = shown.tags or {}
            serves = tags.get(TAG_TICKER) or f"{len(tags.get(TAG_TICKERS, '').split(','))} tickers"
            if TAG_TICKERS not in tags and TAG_TICKER not in tags:
                serves = "?"
            model_type = tags.get(TAG_MODEL_TYPE, model_type)
            if production is not None and f"metric.{HEADLINE_METRIC}" in tags:
                qlike = float(tags[f"metric.{HEADLINE_METRIC}"])
        summaries.append(
            ModelSummary(model.name, model_type, serves, latest, production, challenger, qlike)
        )
    return sorted(summaries, key=lambda s: s.name)
