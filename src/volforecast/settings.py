"""Settings, read from ``VOLFORECAST_*`` environment variables and an optional ``.env`` file.

Nothing here is built at import time: the CLI calls :func:`get_settings` once and hands the
result down; tests build their own :class:`Settings`. The embedded default keeps every piece
of state under ``./var/`` (a SQLite database and a local MLflow store), so a fresh machine
needs no server. ``VOLFORECAST_DATABASE_URL=postgresql+psycopg://user:pw@host/db`` switches the
price and prediction store to PostgreSQL with no other change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class QualitySettings(BaseModel):
    """Thresholds of the data-quality gate (``VOLFORECAST_QUALITY__<NAME>``).

    Returns are percent log returns of the adjusted close; gaps count NYSE sessions.
    """

    max_gap_trading_days: Annotated[int, Field(ge=1)] = 10
    """A hole of more missing NYSE sessions than this breaks a series."""
    stale_days: Annotated[int, Field(ge=2)] = 5
    """This many consecutive identical closes mark the repeats as stale."""
    max_abs_return_pct: Annotated[float, Field(gt=0)] = 100.0
    """A one-day move beyond this (log percent) that does not revert breaks a series."""
    spike_min_return_pct: Annotated[float, Field(gt=0)] = 30.0
    """A move at least this large (log percent) that the next day undoes is a bad print."""
    spike_reversal_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.1
    """How closely the next day must undo a move, as a fraction of the move, to be a spike."""
    split_tolerance_pct: Annotated[float, Field(gt=0)] = 5.0
    """How close (log percent) the adjusted move must be to the raw split move to be unreflected."""
    range_tolerance: Annotated[float, Field(ge=0)] = 1e-6
    """Relative slack for open and close lying inside [low, high] (float rounding of sources)."""


class PromotionSettings(BaseModel):
    """When a challenger replaces production (``VOLFORECAST_PROMOTION__<NAME>``).

    Both versions forecast the same test window (the challenger's); the challenger must have
    converged, have the lower mean QLIKE by at least ``margin`` (relative), and, when
    ``max_pvalue`` is below 1, a one-sided Diebold–Mariano p-value at most ``max_pvalue``.
    """

    horizon: Annotated[int, Field(ge=1, le=30)] = 1
    """Trading days over which QLIKE is computed for the decision."""
    proxy: Literal["range", "squared"] = "range"
    """Realized-variance proxy of the decision's QLIKE."""
    margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Relative QLIKE improvement required: 0.01 asks for 1 % lower loss."""
    max_pvalue: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Largest one-sided Diebold–Mariano p-value accepted; 1 does not require significance."""
    min_live_days: Annotated[int, Field(ge=0)] = 0
    """Live days a winning challenger forecasts beside production before the daily job
    promotes or rejects it (by the same rule, on its stored forecasts; at least 10 when
    ``max_pvalue`` is below 1, which the Diebold–Mariano test needs); 0 promotes it at
    training."""


class ChampionSettings(BaseModel):
    """Which family serves a ticker by default (``VOLFORECAST_CHAMPION__<NAME>``).

    Among the catalog's candidate families, the lowest mean QLIKE on the ticker's test window
    wins; it replaces the sitting champion (before the first decision, ``preferred``) only with
    a one-sided Diebold–Mariano p-value at most ``max_pvalue``.
    """

    max_pvalue: Annotated[float, Field(gt=0, le=1)] = 0.05
    """Largest p-value at which a better family replaces the champion; 1 needs no test."""
    preferred: str | None = "har+lstm+gjr-garch-t"
    """The candidate a ticker's first decision treats as sitting champion, so that another
    family replaces it only with the same evidence; None: the lowest QLIKE wins the first.
    The default blend was chosen on the validation period (``docs/results``): of those tried,
    it fell least short in both calm years and crashes, where a family that wins one test
    window may not."""

    @field_validator("preferred")
    @classmethod
    def _a_candidate(cls, value: str | None) -> str | None:
        from volforecast.models.catalog import CANDIDATES  # noqa: PLC0415  (catalog is heavier)

        if value is None or not value.strip():
            return None
        name = value.strip().lower()
        if name not in CANDIDATES:
            msg = f"preferred is one of the candidates {', '.join(CANDIDATES)}, got {value!r}"
            raise ValueError(msg)
        return name


class ApiSettings(BaseModel):
    """The prediction service (``volforecast serve``); env ``VOLFORECAST_API__*``."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    api_key: SecretStr | None = None
    """When set, every route but ``/``, ``/health`` and ``/metrics`` needs ``X-API-Key``."""
    cors_origins: list[str] = []
    """Origins a browser may call the API from (``["*"]`` for any); none by default."""
    max_body_bytes: Annotated[int, Field(ge=256)] = 16_384
    """Larger request bodies are refused with 413 before they are read."""
    max_batch_body_bytes: Annotated[int, Field(ge=256)] = 131_072
    """The same limit for ``POST /predict/batch``, whose 500 items need more room."""
    model_refresh_s: Annotated[float, Field(gt=0)] = 30.0
    """How often the registry is asked where the ``production`` aliases point."""
    prices_refresh_s: Annotated[float, Field(ge=0)] = 5.0
    """How often the latest stored close of each ticker is read; 0 reads it on every request."""
    pages_cache_s: Annotated[float, Field(ge=0)] = 2.0
    """How long a ``GET /predictions`` page is answered from memory. Rows a server process
    stores show at once in its answers; rows another process stores (the daily job, another
    worker) within this; 0 reads every time."""
    write_batch: Annotated[int, Field(ge=1)] = 500
    """Predictions written to the database per transaction."""
    write_interval_s: Annotated[float, Field(gt=0)] = 0.5
    """Longest a prediction waits in memory before it is written, or journaled under ``home``
    while the database is away."""
    max_pending: Annotated[int, Field(ge=1)] = 100_000
    """Prediction rows kept in memory; beyond, they go to the journal at once."""


class DashboardSettings(BaseModel):
    """The Streamlit dashboard (``volforecast dashboard``); env ``VOLFORECAST_DASHBOARD__*``."""

    api_url: str = "http://127.0.0.1:8000"
    """The prediction API the dashboard reads forecasts and models from."""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8501


class MonitoringSettings(BaseModel):
    """Drift detectors and the retraining trigger (``VOLFORECAST_MONITORING__<NAME>``).

    Every ``*_alpha`` is the false-alarm probability of one day's check on data without a
    break; volatilities are daily, in percent.
    """

    reference_days: Annotated[int, Field(ge=60)] = 250
    """Trading days at the end of a model's training window that stand for "normal"."""
    recent_days: Annotated[int, Field(ge=2, le=60)] = 10
    """Days whose mean log realized variance is compared with the reference level."""
    level_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.001
    cusum_k: Annotated[float, Field(gt=0)] = 0.5
    """CUSUM allowance, in standard deviations of the standardized error."""
    cusum_arl0_days: Annotated[float, Field(gt=10)] = 500.0
    """Days between false CUSUM alarms on average, both sides together."""
    var_window_days: Annotated[int, Field(ge=100)] = 250
    """Days of VaR exceedances in Kupiec's test."""
    var_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    ljung_box_lags: Annotated[int, Field(ge=1, le=50)] = 10
    ljung_box_window_days: Annotated[int, Field(ge=60)] = 250
    ljung_box_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.001
    psi_window_days: Annotated[int, Field(ge=20)] = 60
    """Recent returns whose distribution is compared with the reference's."""
    psi_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.001
    rmse_threshold_vol_pct: Annotated[float, Field(gt=0)] = 3.0
    """Retrain when the rolling RMSE of 1-day volatility forecasts exceeds this."""
    accuracy_window_days: Annotated[int, Field(ge=5)] = 20
    """Forecast dates in each rolling RMSE, MAE and QLIKE."""
    quiet_days: Annotated[int, Field(ge=0)] = 20
    """A detector that fired within this many trading days raises no new alert."""

    @model_validator(mode="after")
    def _check_windows(self) -> MonitoringSettings:
        # The level test compares a recent mean with the reference's; it needs the
        # reference to be at least twice as long to estimate its variance.
        if self.reference_days < 2 * self.recent_days:
            msg = (f"reference_days ({self.reference_days}) must be at least twice "
                   f"recent_days ({self.recent_days})")  # fmt: skip
            raise ValueError(msg)
        return self


class IngestSettings(BaseModel):
    """The daily load: ``volforecast ingest --configured`` and the ``ml_ingest_prices`` DAG.

    Env ``VOLFORECAST_INGEST__<NAME>``.
    """

    source: Literal["drop", "yfinance"] = "drop"
    """``drop``: the files in ``drop_dir``; ``yfinance``: Yahoo Finance (optional package)."""
    drop_dir: Path | None = None
    """Folder where price files (CSV or Parquet) are dropped; ``home/incoming`` when empty.
    Loaded files move to ``loaded/`` inside it, unreadable ones to ``failed/``."""
    yfinance_tickers: list[str] = []
    """Tickers the Yahoo source downloads; every stored ticker when empty."""
    yfinance_overlap_days: Annotated[int, Field(ge=0)] = 7
    """Calendar days before the last stored close read again (Yahoo revises recent rows)."""


class Settings(BaseSettings):
    """Everything volforecast can be configured with.

    Paths default below ``home`` (``./var``), resolved against the working directory when the
    settings are created.
    """

    model_config = SettingsConfigDict(
        env_prefix="VOLFORECAST_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Path("var")
    """Directory of the embedded state: SQLite database, MLflow store, downloaded data, and
    the journal of predictions the database has not taken yet."""
    database_url: str = ""
    """SQLAlchemy URL of the price and prediction store; SQLite under ``home`` when empty."""
    mlflow_tracking_uri: str = ""
    """MLflow tracking URI; a SQLite store under ``home`` when empty."""
    mlflow_artifact_location: str = ""
    """Where MLflow keeps model files; ``home/mlartifacts`` when empty."""
    mlflow_backend_store_uri: str = ""
    """Database of ``volforecast mlflow`` (the server); the SQLite store under ``home`` when
    empty. A PostgreSQL URL here gives the server a PostgreSQL backend."""
    mlflow_port: Annotated[int, Field(ge=1, le=65535)] = 5000
    """Port of ``volforecast mlflow``."""
    mlflow_deadline_s: Annotated[float, Field(ge=1)] = 30.0
    """Longest a training waits for a tracking server that stopped answering: from the start
    of the first request it did not answer to the error (exit code 4), at any stage. Every
    command fits each request's retries and timeout inside it, and a training retries nothing
    once it has passed; a server that refuses connections is given up on sooner."""
    mlflow_retries: Annotated[int, Field(ge=0, le=10)] = 3
    """Most retries of one request to the tracking server; fewer when ``mlflow_deadline_s``
    leaves no room for them (the deadline is the one to tune; this stays so that an existing
    ``.env`` still works)."""
    mlflow_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Longest one attempt waits for the tracking server; shorter when ``mlflow_deadline_s``
    asks for it (the deadline is the one to tune; this stays so that an existing ``.env``
    still works)."""
    data_dir: Path | None = None
    """Where downloaded or exported data lives; ``home/data`` when empty."""
    ingest_chunk_rows: Annotated[int, Field(ge=1_000)] = 100_000
    """Rows per upsert transaction during ingestion."""
    log_level: LogLevel = "INFO"
    quality: QualitySettings = QualitySettings()
    promotion: PromotionSettings = PromotionSettings()
    champion: ChampionSettings = ChampionSettings()
    api: ApiSettings = ApiSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    dashboard: DashboardSettings = DashboardSettings()
    ingest: IngestSettings = IngestSettings()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            msg = f"VOLFORECAST_DATABASE_URL is not a database URL: {exc}"
            raise ValueError(msg) from exc
        # psycopg 3 is the driver volforecast ships; a bare postgresql:// would ask for psycopg2.
        if url.drivername in {"postgresql", "postgres"}:
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            msg = f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql"
            raise ValueError(msg)
        return url.render_as_string(hide_password=False)

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        home = self.home = self.home.expanduser().resolve()
        self.database_url = self.database_url or f"sqlite:///{home / 'volforecast.db'}"
        self.mlflow_backend_store_uri = (
            self.mlflow_backend_store_uri or f"sqlite:///{home / 'mlflow.db'}"
        )
        # Embedded: the client writes to the same store a server would read.
        self.mlflow_tracking_uri = self.mlflow_tracking_uri or self.mlflow_backend_store_uri
        self.mlflow_artifact_location = self.mlflow_artifact_location or str(home / "mlartifacts")
        self.data_dir = self.data_dir or home / "data"
        self.ingest.drop_dir = self.ingest.drop_dir or home / "incoming"
        return self

    @property
    def database_backend(self) -> Literal["sqlite", "postgresql"]:
        """The database family of :attr:`database_url`."""
        backend = make_url(self.database_url).get_backend_name()
        return "postgresql" if backend == "postgresql" else "sqlite"

    @property
    def mlflow_tracking_uri_safe(self) -> str:
        """:attr:`mlflow_tracking_uri` with the password masked, for logs and messages."""
        return masked_uri(self.mlflow_tracking_uri)

    @property
    def database_url_safe(self) -> str:
        """:attr:`database_url` with the password masked, for logs and messages."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def masked_uri(uri: str) -> str:
    """A URI with its password masked, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process (environment, then ``.env``, then defaults)."""
    return Settings()
