"""The daily job stores each production model's VaR, ES and term structure beside its path.

Trained by volforecast's own job on the bundled sample, on SQLite and PostgreSQL: the stored
figures are those the service answers with, a re-run adds no row, and a job killed between
the path and the risk write leaves the next run to fill the gap.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from volforecast.data.repositories.predictions import PREDICTIONS
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.repositories.risk import RISK, TERMS, RiskRepository
from volforecast.data.sources import load_sample
from volforecast.errors import DatabaseUnavailableError
from volforecast.jobs.cards import card_of
from volforecast.jobs.predict import Forecaster
from volforecast.jobs.predict_daily import predict_all
from volforecast.jobs.risk import RiskDesk
from volforecast.jobs.train import TrainConfig, train
from volforecast.models.baselines import HarModel
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

TICKERS = ["^GSPC", "^IXIC"]


@pytest.fixture
def served(settings: Settings, engine: Engine) -> ProductionModels:
    """GARCH and HAR in production for both bundled indices."""
    frame = load_sample().frame.groupby("ticker").tail(900)
    PriceRepository(engine).upsert(frame, ingested_at=dt.datetime.now(dt.UTC))
    report = train(engine, settings, TrainConfig(models=("garch", "har"), plots=False), TICKERS)
    assert report.complete, report.outcomes
    models = ProductionModels(connect(settings))
    models.refresh()
    return models


def _count(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            int(connection.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (PREDICTIONS, RISK, TERMS)
        )


def test_the_stored_risk_figures_are_the_served_ones_and_a_rerun_adds_none(
    settings: Settings, engine: Engine, served: ProductionModels
) -> None:
    report = predict_all(engine, settings, served)

    assert report.complete, report.failures
    assert report.paths == 4
    # Per path: 30 steps, 3 levels at 1 and 10 days, 5 points of the term structure.
    assert _count(engine) == (4 * 30, 4 * 6, 4 * 5)
    assert report.risk_rows == 4 * (6 + 5)
    again = predict_all(engine, settings, served)
    assert again.complete
    assert _count(engine) == (4 * 30, 4 * 6, 4 * 5)

    stored = RiskRepository(engine).risk_frame(["^GSPC"])
    desk = RiskDesk(Forecaster(engine, settings, served))
    for model_type in ("GARCH", "HAR"):
        figures = desk.risk("^GSPC", model_type)
        rows = stored[stored["model_type"] == model_type].sort_values(["days", "level"])
        assert (rows["origin_date"] == figures.origin_date).all()
        np.testing.assert_allclose(rows["var_pct"], [r.var_pct for r in figures.risks])
        np.testing.assert_allclose(rows["es_pct"], [r.es_pct for r in figures.risks])

    terms = RiskRepository(engine).term_frame(["^IXIC"])
    card = card_of(Forecaster(engine, settings, served), "garch_volatility_ixic")
    garch = terms[terms["model_type"] == "GARCH"].sort_values("days")
    assert garch["days"].tolist() == list(card.term.days)
    np.testing.assert_allclose(garch["vol_ann_pct"], card.term.vol_ann_pct)


def test_a_job_killed_between_the_paths_and_the_risk_figures_is_repaired_by_the_next(
    settings: Settings, engine: Engine, served: ProductionModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dead(*_: object, **__: object) -> int:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patch:
        patch.setattr(RiskRepository, "upsert", dead)
        with pytest.raises(DatabaseUnavailableError):
            predict_all(engine, settings, served)
    assert _count(engine) == (4 * 30, 0, 0), "the paths are written first"

    report = predict_all(engine, settings, served)
    assert report.complete
    assert _count(engine) == (4 * 30, 4 * 6, 4 * 5)


def test_a_model_that_gives_a_path_but_no_var_stores_the_path_and_says_why(
    settings: Settings, engine: Engine, served: ProductionModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_short(*_: object, **__: object) -> None:
        raise ValueError("a pool of 40 standardized returns; at least 100 are needed")

    monkeypatch.setattr(HarModel, "tail_risk", too_short)
    report = predict_all(engine, settings, served)

    assert report.paths == 4
    assert sorted((f.ticker, f.model_type) for f in report.failures) == [
        ("^GSPC", "HAR"),
        ("^IXIC", "HAR"),
    ]
    assert all("at least 100" in f.message for f in report.failures)
    stored = RiskRepository(engine).risk_frame(TICKERS)
    assert set(stored["model_type"]) == {"GARCH"}
    # The term structure needs no pool: HAR's is stored all the same.
    assert _count(engine) == (4 * 30, 2 * 6, 4 * 5)
