"""The pyfunc face of saved models, and the pooled LSTM saved once for all its tickers."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from volforecast.core.calendar import trading_days_after
from volforecast.core.features import DailyData
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import build_model
from volforecast.models.lstm.model import WEIGHTS_FILE, LstmModel
from volforecast.models.lstm.panel import POOLED_DATA_FILE, LstmPanel
from volforecast.models.panel import PANEL_FILE as POOLED_FILE
from volforecast.registry.pyfunc import forecast_table, load_models

OUTPUT_COLUMNS = ["ticker", "origin_date", "step", "forecast_date", "sigma2", "vol_pct"]
# A small network: the tests are about saving and loading, not about forecasting well.
LSTM_FAST = {"max_epochs": 2, "batch_size": 256, "stride": 5, "seed": 0, "hidden_size": 16}


@pytest.fixture(scope="module")
def garch(gspc: DailyData) -> VolatilityModel:
    return build_model("garch").fit(gspc.head(1500))


@pytest.fixture(scope="module")
def panel(gspc: DailyData, ixic: DailyData) -> LstmPanel:
    return LstmModel.fit_panel([gspc.head(300), ixic.head(300)], **LSTM_FAST)


@pytest.fixture
def pooled(panel: LstmPanel) -> dict[str, LstmModel]:
    return panel.models


def test_a_saved_garch_forecasts_through_the_table_exactly_as_the_model(
    garch: VolatilityModel, tmp_path: Path
) -> None:
    garch.save(tmp_path / "garch")
    models = load_models(tmp_path / "garch")
    assert list(models) == ["^GSPC"]
    table = forecast_table(models, pd.DataFrame({"horizon": [5]}))
    expected = garch.forecast(5)
    assert list(table.columns) == OUTPUT_COLUMNS
    assert len(table) == 5
    assert (table["ticker"] == "^GSPC").all()
    assert table["step"].tolist() == [1, 2, 3, 4, 5]
    origin = garch.data.last_date.date()
    assert (table["origin_date"] == origin.isoformat()).all()
    assert table["forecast_date"].tolist() == [d.isoformat() for d in trading_days_after(origin, 5)]
    assert all(d > origin.isoformat() for d in table["forecast_date"])
    np.testing.assert_array_equal(table["sigma2"].to_numpy(), expected.sigma2)
    assert_allclose(table["vol_pct"].to_numpy(), np.sqrt(expected.sigma2), rtol=1e-12)


def test_the_table_has_one_block_per_request_row(garch: VolatilityModel) -> None:
    models = {"^GSPC": garch}
    requests = pd.DataFrame({"ticker": ["^GSPC", "^GSPC"], "horizon": [2, 3]})
    table = forecast_table(models, requests)
    assert table["step"].tolist() == [1, 2, 1, 2, 3]
    np.testing.assert_array_equal(table["sigma2"].to_numpy()[2:], garch.forecast(3).sigma2)


def test_an_unknown_ticker_is_named(garch: VolatilityModel) -> None:
    requests = pd.DataFrame({"ticker": ["AAPL"], "horizon": [5]})
    with pytest.raises(ValueError, match="AAPL"):
        forecast_table({"^GSPC": garch}, requests)


def test_a_row_naming_another_ticker_is_refused_even_beside_an_empty_one(
    garch: VolatilityModel,
) -> None:
    requests = pd.DataFrame({"ticker": ["AAPL", None], "horizon": [2, 2]})
    with pytest.raises(ValueError, match="AAPL"):
        forecast_table({"^GSPC": garch}, requests)


def test_an_empty_ticker_means_the_one_ticker_a_model_serves(garch: VolatilityModel) -> None:
    requests = pd.DataFrame({"ticker": ["^GSPC", None], "horizon": [2, 2]})
    assert forecast_table({"^GSPC": garch}, requests)["ticker"].tolist() == ["^GSPC"] * 4


@pytest.mark.parametrize("horizon", [2.9, None])
def test_a_horizon_that_is_not_a_whole_number_is_refused(
    garch: VolatilityModel, horizon: float | None
) -> None:
    with pytest.raises(ValueError, match="whole number"):
        forecast_table({"^GSPC": garch}, pd.DataFrame({"horizon": [horizon]}))


def test_a_request_without_a_horizon_is_refused(garch: VolatilityModel) -> None:
    with pytest.raises(ValueError, match="horizon"):
        forecast_table({"^GSPC": garch}, pd.DataFrame({"ticker": ["^GSPC"]}))


@pytest.mark.parametrize("horizon", [0, 31])
def test_a_horizon_outside_1_to_30_is_refused(garch: VolatilityModel, horizon: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (the message is the model's)
        forecast_table({"^GSPC": garch}, pd.DataFrame({"horizon": [horizon]}))


def test_a_pooled_model_needs_a_ticker_column(pooled: dict[str, LstmModel]) -> None:
    with pytest.raises(ValueError, match="ticker"):
        forecast_table(dict(pooled), pd.DataFrame({"horizon": [5]}))


def test_an_empty_directory_holds_no_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_models(tmp_path)


def test_a_saved_pooled_lstm_forecasts_exactly_as_before(
    panel: LstmPanel, pooled: dict[str, LstmModel], tmp_path: Path
) -> None:
    path = panel.save(tmp_path / "pooled")
    assert (path / POOLED_FILE).is_file()
    assert sorted(p.name for p in path.rglob("*")) == sorted(
        [WEIGHTS_FILE, POOLED_FILE, POOLED_DATA_FILE]
    ), "one weights file for all tickers, no per-ticker directories"
    loaded = LstmPanel.load(path).models
    assert set(loaded) == set(pooled) == {"^GSPC", "^IXIC"}
    for ticker, model in pooled.items():
        assert loaded[ticker].data.last_date == model.data.last_date
        assert_allclose(loaded[ticker].forecast(30).sigma2, model.forecast(30).sigma2, rtol=1e-6)
    assert loaded["^GSPC"]._network is loaded["^IXIC"]._network, "one network for both"
    assert not np.allclose(loaded["^GSPC"].forecast(5).sigma2, loaded["^IXIC"].forecast(5).sigma2)


def test_a_pooled_directory_loads_through_the_pyfunc(
    panel: LstmPanel, pooled: dict[str, LstmModel], tmp_path: Path
) -> None:
    panel.save(tmp_path / "pooled")
    models = load_models(tmp_path / "pooled")
    requests = pd.DataFrame({"ticker": ["^IXIC", "^GSPC"], "horizon": [3, 2]})
    table = forecast_table(models, requests)
    assert list(table.columns) == OUTPUT_COLUMNS
    assert table["ticker"].tolist() == ["^IXIC"] * 3 + ["^GSPC"] * 2
    assert_allclose(table["sigma2"].to_numpy()[:3], pooled["^IXIC"].forecast(3).sigma2, rtol=1e-6)
    assert_allclose(table["sigma2"].to_numpy()[3:], pooled["^GSPC"].forecast(2).sigma2, rtol=1e-6)


def test_save_pooled_refuses_models_of_different_networks(
    panel: LstmPanel, pooled: dict[str, LstmModel], tmp_path: Path
) -> None:
    # A deep copy has its own network, even with the very same weights.
    mixed = {"^GSPC": pooled["^GSPC"], "^IXIC": copy.deepcopy(pooled["^IXIC"])}
    with pytest.raises(ValueError, match="share one network"):
        LstmPanel(mixed, training=panel.training).save(tmp_path / "mixed")
    assert not (tmp_path / "mixed" / WEIGHTS_FILE).exists()


def test_save_pooled_refuses_nothing(panel: LstmPanel, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no models"):
        LstmPanel({}, training=panel.training).save(tmp_path / "empty")
