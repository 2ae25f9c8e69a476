"""The stored predictions frame the monitor and the dashboard read, and its schema."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandera.errors import SchemaError

from tests.conftest import make_settings
from volforecast.core.schemas import PredictionsSchema
from volforecast.data import db
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow

STORED = dt.datetime(2024, 1, 8, 22, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Two steps of a stored GARCH path, as the repository reads them back from SQLite."""
    path = tmp_path_factory.mktemp("predictions") / "volforecast.db"
    engine = db.create_db_engine(make_settings(database_url=f"sqlite:///{path}"))
    db.upgrade(engine)
    origin = dt.date(2024, 1, 8)
    PredictionRepository(engine).upsert([
        PredictionRow("AAPL", "GARCH", origin, 1, dt.date(2024, 1, 9), 1.1, "1", None, STORED),
        PredictionRow("AAPL", "GARCH", origin, 2, dt.date(2024, 1, 10), 1.2, "1", "r", STORED),
    ])  # fmt: skip
    frame = PredictionRepository(engine).frame(["AAPL"])
    engine.dispose()
    return frame


def test_the_stored_frame_has_the_schemas_columns(stored: pd.DataFrame) -> None:
    assert list(stored.columns) == list(PredictionsSchema.to_schema().columns)
    assert stored["step"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda f: f.drop(columns="model_version"), "column 'model_version' not in dataframe"),
        (
            lambda f: f.assign(step=f["step"] - 1),
            "'step' failed element-wise validator number 0: greater_than_or_equal_to(1)",
        ),
        (lambda f: f.assign(predicted_volatility=-f["predicted_volatility"]), "greater_than(0)"),
        (lambda f: f.assign(forecast_date=f["forecast_date"].astype(str)), "to have type date"),
        (lambda f: f.assign(step=f["step"].astype(float)), "'step' to have type int64"),
    ],
    ids=["no model_version", "step 0", "negative volatility", "dates as text", "float steps"],
)
def test_a_frame_that_breaks_the_predictions_schema_is_refused(
    stored: pd.DataFrame, broken: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    with pytest.raises(SchemaError, match=re.escape(message)):
        PredictionsSchema.validate(broken(stored))


def test_a_nan_an_older_version_stored_is_read_not_refused(stored: pd.DataFrame) -> None:
    # Before migration 0005, PostgreSQL let NaN pass `predicted_volatility > 0`
    old = stored.assign(predicted_volatility=[np.nan, 1.2])
    assert PredictionsSchema.validate(old)["predicted_volatility"].isna().sum() == 1


def test_a_stored_row_keeps_what_it_was_first_served_as(tmp_path: Path) -> None:
    engine = db.create_db_engine(make_settings(database_url=f"sqlite:///{tmp_path}/v.db"))
    db.upgrade(engine)
    origin, day = dt.date(2024, 1, 8), dt.date(2024, 1, 9)
    repository = PredictionRepository(engine)
    repository.upsert([PredictionRow("AAPL", "GARCH", origin, 1, day, 1.1, "2", None, STORED,
                                     served_as="challenger")])  # fmt: skip
    # v2 was promoted that evening; the day's forecast asked again is no production row.
    later = STORED + dt.timedelta(hours=1)
    repository.upsert([PredictionRow("AAPL", "GARCH", origin, 1, day, 1.1, "2", None, later)])
    rows = repository.frame(["AAPL"], served_as=None)
    engine.dispose()
    assert rows["served_as"].tolist() == ["challenger"]
    # SQLite reads the time back without its zone; it was written in UTC.
    assert pd.to_datetime(rows["prediction_timestamp"], utc=True).tolist() == [later]
