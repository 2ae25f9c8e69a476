"""Idempotency: a training on the same prices with the same options registers nothing new."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from volforecast import __version__
from volforecast.registry import names


def data_hash(prices: pd.DataFrame) -> str:
    """SHA-256 of the price rows a model saw: the same hash means the same input."""
    hashed = pd.util.hash_pandas_object(prices.reset_index(drop=True), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def fingerprint(model_name: str, options: dict[str, Any], input_hash: str) -> str:
    """What makes two trainings the same: model, options, volforecast version, input prices."""
    key = json.dumps([model_name, options, __version__, input_hash], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


def latest_with_fingerprint(client: MlflowClient, name: str, fingerprint_: str) -> Any:
    """The latest version of ``name`` when it has this fingerprint (None otherwise)."""
    latest = client.search_model_versions(
        f"name = '{name}'", max_results=1, order_by=["version_number DESC"]
    )
    tags = (latest[0].tags or {}) if latest else {}
    # A version never decided (its run died) is no reason to skip: training again judges it.
    if tags.get(names.TAG_DECISION) in {names.PENDING, names.ABANDONED}:
        return None
    if tags.get(names.TAG_FINGERPRINT) == fingerprint_:
        return latest[0]
    return None
