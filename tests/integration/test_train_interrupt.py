"""Ctrl-C during training is raised at the job's next step boundary, never inside a step.

A ``KeyboardInterrupt`` raised wherever the main thread is can land between a lock's acquire
and its ``try`` (SQLAlchemy's pool under MLflow's store) and leave the clean-up waiting for
ever; the training job records the request and stops between steps instead.
"""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import make_settings
from volforecast.data import db
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.train import TrainConfig, TrainingInterrupted, train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("interrupted_after", "kept"),
    [(1, ["garch_volatility_gspc"]), (2, ["garch_volatility_gspc", "garch_volatility_ixic"])],
    ids=["during-the-first-ticker", "during-the-last-step"],
)
def test_ctrl_c_stops_the_training_between_two_tickers_and_says_what_was_kept(
    interrupted_after: int, kept: list[str], sqlite_url: str, tmp_path: Path
) -> None:
    # Given two tickers to train, and a Ctrl-C pressed while a ticker's step is under way
    settings = make_settings(home=tmp_path / "var", database_url=sqlite_url)
    engine = db.create_db_engine(settings)
    frame = load_sample().frame.groupby("ticker").tail(900).reset_index(drop=True)
    PriceRepository(engine).upsert(frame, ingested_at=dt.datetime.now(dt.UTC))
    steps_done: list[str] = []

    def ctrl_c_in_a_step(label: str) -> None:
        if len(steps_done) + 1 == interrupted_after:
            signal.raise_signal(signal.SIGINT)  # its handler runs before this call returns
        steps_done.append(label)

    # When the training runs
    # (one process: the step boundaries under test are the job's own, not its workers')
    config = TrainConfig(models=("garch",), plots=False, workers=1)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(engine, settings, config, progress=ctrl_c_in_a_step)
    engine.dispose()

    # Then the step it landed in finished, and the next one never began
    assert len(steps_done) == interrupted_after, "the Ctrl-C was raised inside the step"
    assert sorted(str(o.registered_model) for o in stopped.value.kept) == kept
    uri = settings.mlflow_tracking_uri
    registered = MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    assert sorted(m.name for m in registered) == kept
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
