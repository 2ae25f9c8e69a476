"""The database, read-only through the repositories: prices, stored forecasts, monitoring, log.

Any failure to read means, to the user, that the database is not ready: it is raised as
:class:`~volforecast.dashboard.sources.DatabaseNotReadyError` with what to run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from volforecast.dashboard import sources
from volforecast.data import db
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.repositories.risk import RiskRepository
from volforecast.errors import DatabaseUnavailableError

ALERT_COLUMNS = (
    "observed_on", "ticker", "model_type", "detector", "statistic", "threshold", "detail",
)  # fmt: skip

NO_PRICES = (
    "No prices stored yet: run `volforecast ingest --sample` (or `volforecast ingest` with "
    "your own tickers)."
)


@contextmanager
def reading(engine: Engine) -> Iterator[None]:
    """Raise a failure to read ``engine`` as :class:`DatabaseNotReadyError`."""
    # Drivers raise OperationalError for a dead server and ProgrammingError for a missing table;
    # to the user both mean the same: the database is not ready to be read.
    try:
        yield
    except (SQLAlchemyError, DatabaseUnavailableError) as exc:
        msg = f"Reading the database {db.describe(engine)} failed: {sources.first_line(exc)}"
        raise sources.DatabaseNotReadyError(msg) from exc


def check_database(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReadyError` unless the database is at this version's schema.

    A SQLite file that does not exist is reported without being opened, so looking at the
    dashboard never creates an empty database.
    """
    url = engine.url
    where = db.describe(engine)
    local = url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}
    if local and not Path(str(url.database)).is_file():
        msg = (
            f"There is no database at {url.database} yet: run `volforecast db upgrade`, "
            "then `volforecast ingest --sample`."
        )
        raise sources.DatabaseNotReadyError(msg)
    try:
        current = db.current_revision(engine)
    except DatabaseUnavailableError as exc:
        msg = f"{exc}. Start it, or point VOLFORECAST_DATABASE_URL at one that is up."
        raise sources.DatabaseNotReadyError(msg) from exc
    head = db.head_revision()
    if current is None:
        msg = f"The database {where} has no volforecast tables yet: run `volforecast db upgrade`."
        raise sources.DatabaseNotReadyError(msg)
    if current != head:
        msg = (
            f"The database {where} is at schema revision {current}; this dashboard needs "
            f"{head}: run `volforecast db upgrade`."
        )
        raise sources.DatabaseNotReadyError(msg)


def stored_tickers(engine: Engine) -> list[str]:
    """Every ticker with stored prices, sorted."""
    with reading(engine):
        return [summary.ticker for summary in PriceRepository(engine).summary()]


def load_prices(engine: Engine, ticker: str) -> pd.DataFrame:
    """One ticker's stored prices in the raw layout, oldest first."""
    with reading(engine):
        return PriceRepository(engine).load([ticker])


def stored_forecasts(engine: Engine, ticker: str, *, limit: int = 1_000) -> sources.ForecastSet:
    """The newest stored path of each model type for ``ticker`` (``ml.volatility_predictions``).

    Newest means the latest origin and, for that origin, the highest model version. Only
    production's paths: a waiting challenger's (``served_as``) is not the model's forecast.
    """
    with reading(engine):
        page = PredictionRepository(engine).find(ticker, limit=limit)
    if not page.rows:
        return sources.ForecastSet(sources.empty_paths(), "database")
    rows = pd.DataFrame([vars(r) for r in page.rows])
    rows["version_number"] = pd.to_numeric(rows["model_version"], errors="coerce").fillna(-1)
    newest = (
        rows.sort_values(["origin_date", "version_number"])
        .groupby("model_type", sort=False)[["origin_date", "model_version"]]
        .last()
    )
    kept = rows.merge(newest.reset_index(), on=["model_type", "origin_date", "model_version"])
    return sources.ForecastSet(sources.as_paths(kept, ["step"]), "database")


def stored_risk(engine: Engine, ticker: str) -> pd.DataFrame:
    """Every stored VaR and ES of ``ticker`` (``ml.risk_forecasts``), oldest origin first.

    Of several versions of one model forecasting from the same close, the one stored first:
    the figure served that evening, not one a later version backfilled.
    """
    with reading(engine):
        frame = RiskRepository(engine).risk_frame([ticker])
    if frame.empty:
        return frame
    first = frame.groupby(["model_type", "origin_date"])["computed_at"].transform("min")
    kept = frame[frame["computed_at"] == first]
    # Two versions stored in the same instant: the higher one.
    kept = kept.assign(number=pd.to_numeric(kept["model_version"], errors="coerce").fillna(-1))
    kept = kept.sort_values(["origin_date", "number"])
    kept = kept.drop_duplicates(["model_type", "origin_date", "days", "level"], keep="last")
    return kept.drop(columns="number").reset_index(drop=True)


def promotion_log(engine: Engine) -> pd.DataFrame:
    """Every move of a registry alias, newest first."""
    # Imported here: the registry package imports MLflow, which takes seconds.
    from volforecast.registry.promotion_log import PromotionLog  # noqa: PLC0415

    with reading(engine):
        events = PromotionLog(engine).events()
    columns = ["created_at", "registered_model", "seq", "alias", "action", "version",
               "previous_version", "reason", "actor", "metrics"]  # fmt: skip
    rows = [asdict(e) | {"metrics": _pairs(e.metrics)} for e in events]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["created_at", "seq"], ascending=False).reset_index(drop=True)


def champions(engine: Engine) -> pd.DataFrame:
    """Each ticker's champion (``ml.model_champions``): the family a request naming none gets.

    Columns ``ticker, champion`` (the model type, upper case, as the other tables show it),
    ``since, decided_at, reason``; sorted by ticker.
    """
    # Imported here: the registry package imports MLflow, which takes seconds.
    from volforecast.registry.champion_book import ChampionBook  # noqa: PLC0415

    with reading(engine):
        stored = ChampionBook(engine).all()
    rows = [
        {"ticker": c.ticker, "champion": c.model.upper(), "since": c.since,
         "decided_at": c.decided_at, "reason": c.reason}
        for c in stored.values()
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["ticker", "champion", "since", "decided_at", "reason"])
    return frame.sort_values("ticker").reset_index(drop=True)


def accuracy(engine: Engine, ticker: str, *, proxy: str | None = None) -> pd.DataFrame:
    """Rolling accuracy rows of ``ticker`` (``ml.forecast_accuracy``), oldest first.

    ``rmse_vol_pct`` and ``mae_vol_pct`` are daily volatility in percent; ``qlike`` is on
    variances.
    """
    with reading(engine):
        frame = MonitoringRepository(engine).accuracy(ticker=ticker, proxy=proxy)
    if not frame.empty:
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
        frame["model_type"] = frame["model_type"].astype(str).str.upper()
    return frame


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(values.items()))  # fmt: skip


def _detail_text(detail: object) -> str:
    try:
        values = json.loads(str(detail)) if detail else {}
    except ValueError:
        return str(detail)
    return _pairs(values) if isinstance(values, dict) else str(values)


def _checks_frame(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    out = frame.copy()
    out["detail"] = out["detail"].map(_detail_text)
    out["observed_on"] = pd.to_datetime(out["observed_on"]).dt.date
    return out


def alerts(engine: Engine, *, ticker: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Alert onsets (detector, ticker, statistic, threshold, date), newest first."""
    with reading(engine):
        frame = MonitoringRepository(engine).alerts(ticker=ticker, limit=limit)
    if frame.empty:
        return pd.DataFrame(columns=list(ALERT_COLUMNS))
    return _checks_frame(frame).loc[:, list(ALERT_COLUMNS)]


def latest_checks(engine: Engine) -> pd.DataFrame:
    """Every detector's verdict on the last day the monitor ran for (``ml.drift_checks``).

    The data-quality gate's findings are among them, as the monitor stored them (detector
    ``data_quality``): the dashboard shows them and never runs the gate itself.
    """
    columns = ["observed_on", "ticker", "model_type", "detector", "statistic", "threshold",
               "fired", "ratio", "detail"]  # fmt: skip
    with reading(engine):
        frame = MonitoringRepository(engine).latest_checks()
    if frame.empty:
        return pd.DataFrame(columns=columns)
    out = _checks_frame(frame)
    out["fired"] = out["fired"].astype(bool)
    threshold = out["threshold"].astype("float64")
    out["ratio"] = out["statistic"].astype("float64") / threshold.where(threshold != 0)
    return out.loc[:, columns]


def retrain_queue(engine: Engine) -> pd.DataFrame:
    """Every retraining request, newest first."""
    with reading(engine):
        frame = MonitoringRepository(engine).retrain_queue()
    columns = ["ticker", "requested_on", "status", "reason", "created_at", "done_at"]
    return pd.DataFrame(columns=columns) if frame.empty else frame.loc[:, columns]
