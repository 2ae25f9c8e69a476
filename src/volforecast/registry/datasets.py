"""The prices a training run read, logged as an MLflow dataset ("Datasets used" in the UI).

MLflow computes a pandas dataset's digest from its first 10,000 rows only, so a price that
changes further down would keep the digest; the digest logged here is the start of
:func:`~volforecast.registry.fingerprint.data_hash`, the SHA-256 of every row the model saw,
and changes whenever any of them does. The source says where the rows are: the price store (its
URL without password), the tickers and the dates, enough for :meth:`PriceStoreSource.load` to
read them again.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any, Self

import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import register_dataset_source
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.models import infer_signature
from mlflow.types import Schema
from sqlalchemy import Engine, create_engine

from volforecast.settings import masked_uri

SCHEMA_ROWS = 1_000
"""Rows the schema is read from: the price layout is fixed, and MLflow's inference over a
whole table of millions of rows takes seconds."""
DIGEST_CHARS = 32
"""MLflow stores at most 36 characters of a digest."""
TRAINING: str = "training"
"""The context of the training data in MLflow's inputs."""


class PriceStoreSource(DatasetSource):
    """Rows of volforecast's price table: which database, tickers and dates."""

    def __init__(self, database: str, tickers: list[str], start: str, end: str) -> None:
        self.database = database
        self.tickers = tickers
        self.start = start
        self.end = end

    @staticmethod
    def _get_source_type() -> str:
        return "volforecast_prices"

    def load(self, engine: Engine | None = None, **_: Any) -> pd.DataFrame:
        """The rows again, from ``engine`` (needed when the URL's password is masked)."""
        from volforecast.data.repositories.prices import PriceRepository  # noqa: PLC0415  (no cycle at import)

        engine = engine or create_engine(self.database)
        return PriceRepository(engine).load(
            self.tickers,
            start=dt.date.fromisoformat(self.start),
            end=dt.date.fromisoformat(self.end),
        )

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> Self:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The source as MLflow stores it (JSON)."""
        return {"database": self.database, "tickers": self.tickers, "start": self.start,
                "end": self.end}  # fmt: skip

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> Self:
        """The source back from what :meth:`to_dict` stored."""
        return cls(
            str(source_dict["database"]),
            [str(t) for t in source_dict["tickers"]],
            str(source_dict["start"]),
            str(source_dict["end"]),
        )


# MLflow registers source classes (its own annotation says an instance).
register_dataset_source(PriceStoreSource)  # type: ignore[arg-type]


class PriceDataset(PandasDataset):
    """A pandas dataset whose schema is read from its first rows (see :data:`SCHEMA_ROWS`)."""

    @cached_property
    def schema(self) -> Schema | None:
        """The columns and their types."""
        inputs: Schema = infer_signature(self.df.head(SCHEMA_ROWS)).inputs
        return inputs


def price_dataset(
    prices: pd.DataFrame, *, name: str, input_hash: str, database_url: str
) -> PriceDataset:
    """The stored price rows (raw layout) of one training run as an MLflow dataset ``name``.

    Its digest is the start of ``input_hash``, the rows' SHA-256; its source names the
    ``database_url`` with the password masked.
    """
    dates = pd.to_datetime(prices["date"])
    source = PriceStoreSource(
        masked_uri(database_url),
        sorted(str(t) for t in prices["ticker"].unique()),
        dates.min().date().isoformat(),
        dates.max().date().isoformat(),
    )
    return PriceDataset(prices, source=source, name=name, digest=input_hash[:DIGEST_CHARS])
