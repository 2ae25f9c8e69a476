"""The dashboard on the monitor's real output: the daily job's alerts and accuracy, shown."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import UseEnv, run_app
from tests.dashboard.test_app import _tab
from tests.integration.test_monitor import forecast_since_training
from volforecast.data import db
from volforecast.jobs.monitor import monitor
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home whose production model forecast each evening since it was trained."""
    return forecast_since_training(tmp_path_factory.mktemp("monitored") / "var")


def test_the_dashboard_shows_what_the_monitor_stored(monitored: Settings, use_env: UseEnv) -> None:
    # Given the daily job's output on a real registry and database
    engine = db.create_db_engine(monitored)
    models = ProductionModels(connect(monitored))
    models.refresh()
    report = monitor(engine, monitored, models)
    engine.dispose()
    assert report.alerts, "the sample's closes after training raise an alert to show"
    # When the dashboard runs on the same settings (the API is down: it says so)
    use_env(monitored)
    at = run_app()
    assert not at.exception, [str(e.value) for e in at.exception]
    # Then the monitoring tab lists the same alerts, and the comparison tab charts accuracy
    frames = [d.value for d in _tab(at, "Monitoring").dataframe]
    alerts = next(f for f in frames if "detector" in f.columns and "observed_on" in f.columns)
    shown = {(r.ticker, r.detector, r.observed_on) for r in alerts.itertuples()}
    assert shown == {(a.ticker, a.detector, a.observed_on) for a in report.alerts}
    assert _tab(at, "Model comparison").get("plotly_chart"), "no accuracy chart"
