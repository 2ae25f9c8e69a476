"""HAR+LSTM as a registered model: built by training from its members' versions, served, kept.

The registry is MLflow's embedded store under the test's home; training, loading and
serving go through volforecast's own job, loader and app.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy import Engine

from tests.conftest import make_settings
from volforecast.api.app import create_app
from volforecast.core.features import DailyData
from volforecast.data import db
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.evaluation.test_window import evaluate
from volforecast.jobs.market import with_market
from volforecast.jobs.train import TrainConfig, TrainReport, train
from volforecast.models.combination import CombinationModel
from volforecast.registry.relocate import local_path
from volforecast.registry.serving import download_models
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

LSTM_QUICK = {"max_epochs": 2, "batch_size": 256, "stride": 10}
DAYS = 1200
TICKERS = ["^GSPC", "^IXIC"]
COMBINED = ("har", "lstm", "har+lstm")


def _home(tmp_path: Path, sqlite_url: str, *, later: int = 0) -> tuple[Settings, Engine]:
    """A home with the sample's last DAYS closes stored, but for ^GSPC's ``later`` last."""
    settings = make_settings(
        home=tmp_path / "var", database_url=sqlite_url,
        api={"model_refresh_s": 0.2, "prices_refresh_s": 0.0, "write_interval_s": 0.1},
    )  # fmt: skip
    engine = db.create_db_engine(settings)
    frame = load_sample().frame.groupby("ticker").tail(DAYS).reset_index(drop=True)
    held = frame[frame["ticker"] == "^GSPC"].tail(later).index
    PriceRepository(engine).upsert(frame.drop(held), ingested_at=dt.datetime.now(dt.UTC))
    return settings, engine


def _train(engine: Engine, settings: Settings, models: tuple[str, ...], tickers: list[str],
           *, force: bool = False) -> TrainReport:  # fmt: skip
    config = TrainConfig(models=models, lstm_settings=LSTM_QUICK, plots=False, force=force)
    return train(engine, settings, config, tickers)


def _outcome(report: TrainReport, model: str, ticker: str) -> object:
    (found,) = [o for o in report.outcomes if o.model == model and o.ticker == ticker]
    return found


def _data(engine: Engine, ticker: str) -> DailyData:
    prices = PriceRepository(engine).load([ticker])
    data = {ticker: DailyData.from_prices(prices, ticker)}
    return with_market(data, MarketRepository(engine).load())[ticker]


def _check_cards(api: TestClient, combination: str) -> None:
    """The pooled network's card needs a ticker; models without a variance recursion have a
    term structure and no news-impact curve."""
    pooled = api.get("/models/lstm_volatility_pooled/card")
    assert pooled.status_code == 422, pooled.text
    assert "name one with ?ticker=" in pooled.text
    for name in ("lstm_volatility_pooled", combination):
        card = api.get(f"/models/{name}/card", params={"ticker": "^GSPC"})
        assert card.status_code == 200, card.text
        assert card.json()["news_impact"] is None
        assert [t["days"] for t in card.json()["term_structure"]] == [1, 5, 22, 126, 252]


def test_a_combination_is_registered_loaded_served_and_not_registered_twice(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings, engine = _home(tmp_path, sqlite_url)

    report = _train(engine, settings, COMBINED, TICKERS)

    assert report.complete, [o.message for o in report.failed]
    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    name = "har_lstm_volatility_gspc"
    version = client.get_model_version(name, "1")
    tags = version.tags
    assert tags["volforecast.member.har"] == "1"
    assert tags["volforecast.member.lstm"] == "1"
    assert tags["volforecast.model_type"] == "HAR+LSTM"
    assert tags["volforecast.ticker"] == "^GSPC"
    assert "production" in client.get_registered_model(name).aliases  # its first version

    # It is judged for each ticker's champion with the other candidates, on its own figures.
    assert report.champions is not None
    for choice in report.champions.choices:
        figure = _outcome(report, "har+lstm", choice.ticker).qlike  # type: ignore[attr-defined]
        assert choice.metrics["qlike_har+lstm"] == pytest.approx(figure, rel=1e-9)

    # Loaded back from the registry, it forecasts the mean of its members' registered paths.
    combination = download_models(name, "1")["^GSPC"]
    assert isinstance(combination, CombinationModel)
    assert combination.member_versions == {"har": "1", "lstm": "1"}
    har = download_models("har_volatility_gspc", "1")["^GSPC"]
    lstm = download_models("lstm_volatility_pooled", "1")["^GSPC"]
    data = _data(engine, "^GSPC")
    origins = np.array([len(data) - 300, len(data) - 100, len(data) - 1])
    np.testing.assert_allclose(
        combination.forecast_paths(data, origins, 30),
        (har.forecast_paths(data, origins, 30) + lstm.forecast_paths(data, origins, 30)) / 2,
        rtol=1e-10,
    )
    # Its test-window figures, made from the members' paths of the run, are those of the
    # loaded combination forecasting the window itself.
    qlike = _outcome(report, "har+lstm", "^GSPC").qlike  # type: ignore[attr-defined]
    again = evaluate(combination, data, settings).metrics["qlike_h1_range"]
    assert qlike == pytest.approx(again, rel=1e-6)

    with TestClient(create_app(settings)) as api:
        answer = api.post("/predict", json={"ticker": "^GSPC", "model_type": "har+lstm"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model_type"], body["model_name"], body["model_version"]) == (
            "HAR+LSTM", name, "1"
        )  # fmt: skip
        expected = np.sqrt((har.update(data).forecast(5).sigma2
                            + lstm.update(data).forecast(5).sigma2) / 2)  # fmt: skip
        np.testing.assert_allclose(body["forecasts"], expected, rtol=1e-6)
        _check_cards(api, name)

    # The same prices again: the members are unchanged, so is the combination.
    second = _train(engine, settings, COMBINED, TICKERS)
    for ticker in TICKERS:
        outcome = _outcome(second, "har+lstm", ticker)
        assert outcome.ok, outcome  # type: ignore[attr-defined]
        assert outcome.run_id is None, outcome  # type: ignore[attr-defined]
        assert "unchanged since v1" in outcome.message  # type: ignore[attr-defined]
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]

    # Alone, with --force, it is built again from the registered members (the pooled LSTM's
    # prices are those of both tickers): a new version pinning the same ones.
    alone = _train(engine, settings, ("har+lstm",), TICKERS, force=True)
    assert alone.complete, [o.message for o in alone.failed]
    for ticker in TICKERS:
        built = _outcome(alone, "har+lstm", ticker)
        assert built.version == "2"  # type: ignore[attr-defined]
        assert built.qlike == pytest.approx(  # type: ignore[attr-defined]
            _outcome(report, "har+lstm", ticker).qlike,
            rel=1e-9,  # type: ignore[attr-defined]
        )
    tags = client.get_model_version(name, "2").tags
    assert (tags["volforecast.member.har"], tags["volforecast.member.lstm"]) == ("1", "1")
    engine.dispose()


def test_a_combination_alone_uses_registered_members_and_survives_their_deletion(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings, engine = _home(tmp_path, sqlite_url)
    # HAR of both tickers; the pooled LSTM of ^GSPC alone: ^IXIC has no LSTM on these prices.
    assert _train(engine, settings, ("har",), TICKERS).complete
    assert _train(engine, settings, ("lstm",), ["^GSPC"]).complete

    report = _train(engine, settings, ("har+lstm",), TICKERS)

    refused = _outcome(report, "har+lstm", "^IXIC")
    assert not refused.ok  # type: ignore[attr-defined]
    assert refused.message == (  # type: ignore[attr-defined]
        "lstm has no converged version trained on these prices; train lstm first"
    )
    built = _outcome(report, "har+lstm", "^GSPC")
    assert built.ok, built  # type: ignore[attr-defined]
    assert built.version == "1"  # type: ignore[attr-defined]
    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    assert (
        client.get_model_version("har_lstm_volatility_gspc", "1").tags["volforecast.member.lstm"]
        == "1"
    )
    assert client.search_registered_models("name = 'har_lstm_volatility_ixic'") == []

    data = _data(engine, "^GSPC")
    before = download_models("har_lstm_volatility_gspc", "1")["^GSPC"].forecast(10).sigma2

    # The members' versions deleted and their files gone: the combination still loads.
    for member in ("har_volatility_gspc", "lstm_volatility_pooled"):
        where = local_path(client.get_model_version_download_uri(member, "1"))
        assert where is not None
        client.delete_model_version(member, "1")
        shutil.rmtree(where)
        assert not where.exists()
    loaded = download_models("har_lstm_volatility_gspc", "1")["^GSPC"]
    np.testing.assert_allclose(loaded.forecast(10).sigma2, before, rtol=1e-12)
    assert loaded.update(data).forecast(1).origin_date == data.last_date.date()

    # With its members' versions deleted, the next combination is refused, and says why.
    again = _train(engine, settings, ("har+lstm",), ["^GSPC"], force=True)
    (outcome,) = again.outcomes
    assert not outcome.ok
    assert outcome.message.startswith("har has no converged version trained on these prices")
    engine.dispose()


def test_prices_that_moved_on_refuse_a_combination_of_stale_members(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings, engine = _home(tmp_path, sqlite_url, later=1)
    assert _train(engine, settings, ("har", "lstm"), ["^GSPC"]).complete
    # A close more arrives for the index: its members were trained on the prices before it.
    frame = load_sample().frame
    PriceRepository(engine).upsert(
        frame[frame["ticker"] == "^GSPC"].tail(1), ingested_at=dt.datetime.now(dt.UTC)
    )

    report = _train(engine, settings, ("har+lstm",), ["^GSPC"])

    (outcome,) = report.outcomes
    assert not outcome.ok
    assert outcome.message.startswith("har has no converged version trained on these prices")
    engine.dispose()


def test_the_preferred_blend_is_registered_with_its_weights_and_serves_by_default(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings, engine = _home(tmp_path, sqlite_url)
    blend = "har+lstm+gjr-garch-t"
    assert settings.champion.preferred == blend

    report = _train(engine, settings, ("gjr-garch-t", "har", "lstm", blend), ["^GSPC"])

    assert report.complete, [o.message for o in report.failed]
    name = "har_lstm_gjr_garch_t_volatility_gspc"
    combination = download_models(name, "1")["^GSPC"]
    assert isinstance(combination, CombinationModel)
    assert combination.weights == (0.6, 0.1, 0.3)
    members = {
        "har": download_models("har_volatility_gspc", "1")["^GSPC"],
        "lstm": download_models("lstm_volatility_pooled", "1")["^GSPC"],
        "gjr-garch-t": download_models("gjr_garch_t_volatility_gspc", "1")["^GSPC"],
    }
    data = _data(engine, "^GSPC")
    origins = np.array([len(data) - 200, len(data) - 1])
    weighted = sum(
        weight * members[m].forecast_paths(data, origins, 30)
        for m, weight in zip(combination.members, combination.weights, strict=True)
    )
    np.testing.assert_allclose(combination.forecast_paths(data, origins, 30), weighted, rtol=1e-10)

    # The first decision: the blend sits, and only a significantly better family unseats it.
    assert report.champions is not None
    (choice,) = report.champions.choices
    assert choice.reason.startswith(f"first champion, {blend} preferred"), choice.reason
    unseated = choice.champion != blend
    assert unseated == (choice.metrics.get("dm_pvalue", 1.0) <= settings.champion.max_pvalue)
    with TestClient(create_app(settings)) as api:
        answer = api.post("/predict", json={"ticker": "^GSPC", "horizon": 5})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["champion"] is True
        assert body["model_type"] == choice.champion.upper()
        if not unseated:
            assert body["model_name"] == name
            expected = sum(
                weight * members[m].update(data).forecast(5).sigma2
                for m, weight in zip(combination.members, combination.weights, strict=True)
            )
            np.testing.assert_allclose(body["forecasts"], np.sqrt(expected), rtol=1e-6)
