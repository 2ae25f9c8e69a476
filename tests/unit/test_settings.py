"""Settings: the embedded default, the PostgreSQL switch, environment and .env files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings
from volforecast.settings import MonitoringSettings, Settings


def test_embedded_default_keeps_everything_under_home(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path / "var")
    home = (tmp_path / "var").resolve()
    assert settings.database_url == f"sqlite:///{home / 'volforecast.db'}"
    assert settings.database_backend == "sqlite"
    assert settings.mlflow_tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert settings.mlflow_artifact_location == str(home / "mlartifacts")
    assert settings.data_dir == home / "data"


def test_a_postgres_url_switches_backend_and_gets_the_psycopg_driver() -> None:
    settings = make_settings(database_url="postgresql://vf:secret@db:5432/volforecast")
    assert settings.database_backend == "postgresql"
    assert settings.database_url == "postgresql+psycopg://vf:secret@db:5432/volforecast"
    assert "secret" not in settings.database_url_safe


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://x@y/z", "unsupported database 'mysql'"), ("not a url", "not a database URL")],
)
def test_unusable_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(database_url=url)


def test_environment_and_dotenv_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "VOLFORECAST_DATABASE_URL=postgresql+psycopg://a@b/c\nVOLFORECAST_QUALITY__STALE_DAYS=7\n"
    )
    monkeypatch.setenv("VOLFORECAST_INGEST_CHUNK_ROWS", "5000")
    monkeypatch.setenv("VOLFORECAST_QUALITY__MAX_GAP_TRADING_DAYS", "3")
    settings = Settings()
    assert settings.database_backend == "postgresql"
    assert settings.quality.stale_days == 7
    assert settings.quality.max_gap_trading_days == 3
    assert settings.ingest_chunk_rows == 5000
    assert settings.home == (tmp_path / "var").resolve()


def test_environment_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VOLFORECAST_LOG_LEVEL=ERROR\n")
    monkeypatch.setenv("VOLFORECAST_LOG_LEVEL", "DEBUG")
    assert Settings().log_level == "DEBUG"


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValidationError, match="stale_days"):
        make_settings(quality={"stale_days": 1})


def test_monitoring_windows_are_checked_together() -> None:
    with pytest.raises(ValidationError, match="at least twice"):
        MonitoringSettings(reference_days=60, recent_days=40)
    assert MonitoringSettings(reference_days=80, recent_days=40).recent_days == 40
