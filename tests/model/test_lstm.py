"""The LSTM: reproducible, pooled, trained on the past only, on the device it finds."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from tests.factories import quarterly_reports
from volforecast.core.features import (
    SEASON_MEMORY,
    DailyData,
    market_log_rv,
    season_peaks,
    seasonal_regressors,
)
from volforecast.errors import InvalidSeriesError
from volforecast.models.base import MAX_HORIZON, STATE_FILE, VolatilityModel
from volforecast.models.lstm.config import BACKTEST_REFIT, WEEKLY_RETRAIN, LstmConfig
from volforecast.models.lstm.model import LstmModel
from volforecast.models.lstm.network import Normalizer, resolve_device
from volforecast.models.lstm.panel import LstmPanel
from volforecast.models.lstm.training import EpochReport, train_lstm
from volforecast.models.lstm.windows import Windows

FAST = {"max_epochs": 4, "patience": 2, "batch_size": 64}


def test_the_defaults_are_the_specifications_architecture_with_limits_a_cpu_finishes() -> None:
    config = LstmConfig()
    assert (config.num_layers, config.hidden_size, config.dropout, config.seq_len) == (
        2,
        64,
        0.2,
        20,
    )
    assert config.learning_rate == 1e-3
    assert (config.train_fraction, config.validation_fraction) == (0.8, 0.1)
    # What the README's accuracy and training times were measured with.
    assert (config.batch_size, config.stride, config.patience) == (256, 5, 5)
    assert config.max_epochs <= 20
    assert (WEEKLY_RETRAIN.max_epochs, WEEKLY_RETRAIN.patience) == (5, 2)
    assert BACKTEST_REFIT.max_epochs == 1


def test_each_epoch_is_reported_once_with_its_losses(gspc: DailyData) -> None:
    heard: list[EpochReport] = []
    config = LstmConfig(**(FAST | {"max_epochs": 6, "patience": 1}))
    result = train_lstm([gspc.head(700)], config, on_epoch=heard.append)
    assert [r.epoch for r in heard] == list(range(1, len(result.history) + 1))
    assert [(r.train_loss, r.validation_loss) for r in heard] == result.history
    assert [r.last for r in heard] == [False] * (len(heard) - 1) + [True]
    assert {r.max_epochs for r in heard} == {6}
    best = min(range(len(result.history)), key=lambda i: result.history[i][1])
    assert heard[-1].best_epoch == best + 1
    assert all(b.seconds >= a.seconds for a, b in itertools.pairwise(heard))


def test_an_exception_in_the_epoch_callback_stops_training(gspc: DailyData) -> None:
    heard: list[int] = []

    def stop_after_two(report: EpochReport) -> None:
        heard.append(report.epoch)
        if report.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LstmModel.fit_panel([gspc.head(700)], on_epoch=stop_after_two, **FAST)
    assert heard == [1, 2]


def test_auto_device_is_the_gpu_when_there_is_one() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_the_same_seed_gives_the_same_model_and_leaves_global_state_alone(
    gspc: DailyData,
) -> None:
    data = gspc.head(600)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = LstmModel(seed=7, **FAST).fit(data).forecast(30).sigma2
    assert torch.rand(1) == before, "training must not consume the caller's random stream"
    second = LstmModel(seed=7, **FAST).fit(data).forecast(30).sigma2
    other = LstmModel(seed=8, **FAST).fit(data).forecast(30).sigma2
    assert_allclose(first, second, rtol=1e-6)
    assert not np.allclose(first, other, rtol=1e-3)


def test_pooled_training_serves_every_ticker(gspc: DailyData, ixic: DailyData) -> None:
    panel = LstmModel.fit_panel([gspc.head(700), ixic.head(700)], **FAST)
    models, result = panel.models, panel.training
    assert set(models) == {"^GSPC", "^IXIC"}
    assert result.report.converged
    assert len(result.history) >= 1
    a, b = models["^GSPC"].forecast(5), models["^IXIC"].forecast(5)
    assert a.ticker == "^GSPC"
    assert not np.allclose(a.sigma2, b.sigma2), "each ticker gets its own forecast"
    assert models["^GSPC"]._network is models["^IXIC"]._network, "one network for both"


def test_normalisation_and_weights_see_only_the_training_part(gspc: DailyData) -> None:
    data = gspc.head(1000)
    config = LstmConfig(**FAST)
    result = train_lstm([data], config)
    cut = int(len(data) * config.train_fraction)
    assert result.normalizers["^GSPC"] == Normalizer.fit(data.head(cut))
    # Wild values in the test part (the last 10 %) change the test loss and nothing else.
    n_test = len(data) - int(len(data) * 0.9)
    rv = data.rv_sigma2.copy()
    rv[-n_test:] *= 50.0
    shocked = DailyData(data.ticker, data.dates, data.returns_pct, rv)
    again = train_lstm([shocked], config)
    for name, weight in result.network.state_dict().items():
        assert torch.equal(weight, again.network.state_dict()[name]), name
    assert again.test_loss != pytest.approx(result.test_loss)


def test_a_warm_start_continues_from_the_given_weights(gspc: DailyData) -> None:
    first = train_lstm([gspc.head(700)], LstmConfig(**(FAST | {"max_epochs": 1})))
    # With a learning rate of zero nothing moves, so what comes out is where training began.
    frozen = LstmConfig(**(FAST | {"max_epochs": 1, "learning_rate": 0.0}))
    warm = train_lstm([gspc.head(760)], frozen, warm_start=first.network)
    cold = train_lstm([gspc.head(760)], frozen)
    trained = first.network.state_dict()
    assert all(torch.equal(w, trained[k]) for k, w in warm.network.state_dict().items())
    assert not all(torch.equal(w, trained[k]) for k, w in cold.network.state_dict().items())


def _with_market(*datasets: DailyData) -> list[DailyData]:
    market = market_log_rv(datasets)
    return [d.with_market(market) for d in datasets]


def test_the_market_input_is_used_kept_and_required(
    gspc: DailyData, ixic: DailyData, tmp_path: Path
) -> None:
    pool = _with_market(gspc.head(700), ixic.head(700))
    panel = LstmModel.fit_panel(pool, **FAST)
    models, result = panel.models, panel.training
    model = models["^GSPC"]
    assert result.config.market
    assert model.config.market
    assert model.network.lstm.input_size == 3 + model.config.embedding_dim
    assert result.report.warnings == ()
    with pytest.raises(InvalidSeriesError, match="trained with the market series"):
        model.update(gspc.head(700)).forecast(5)

    model.update(pool[0])
    loaded = VolatilityModel.load(model.save(tmp_path / "one"))
    pooled = LstmPanel.load(panel.save(tmp_path / "pool")).models["^GSPC"]
    for other in (loaded, pooled):
        assert isinstance(other, LstmModel)
        assert other.config.market
        assert_allclose(other.forecast(10).sigma2, model.forecast(10).sigma2, rtol=1e-6)


def test_data_without_the_market_trains_without_it_and_says_so(
    gspc: DailyData, ixic: DailyData
) -> None:
    model = LstmModel(**FAST).fit(gspc.head(600))
    assert not model.config.market
    assert model.network.lstm.input_size == 2 + model.config.embedding_dim
    assert "without the market input" in model.fit_report.warnings[0]
    # The next fit, on data with the series, has the input again.
    model.fit(_with_market(gspc.head(600), ixic.head(600))[0])
    assert model.config.market
    assert model.network.lstm.input_size == 3 + model.config.embedding_dim


def test_an_lstm_saved_before_the_market_input_and_season_terms_loads_without_them(
    gspc: DailyData, tmp_path: Path
) -> None:
    model = LstmModel(seasonal=False, **FAST).fit(gspc.head(600))
    state = model.save(tmp_path / "old") / STATE_FILE
    payload = json.loads(state.read_text())
    del payload["options"]["market"], payload["extra"]["market"]
    del payload["options"]["seasonal"], payload["extra"]["seasonal"]
    state.write_text(json.dumps(payload))
    loaded = VolatilityModel.load(tmp_path / "old")
    assert isinstance(loaded, LstmModel)
    assert not loaded.config.market
    assert not loaded.config.seasonal
    assert_allclose(loaded.forecast(5).sigma2, model.forecast(5).sigma2, rtol=1e-6)


def test_the_season_terms_raise_the_forecast_where_a_report_is_due() -> None:
    origin = 900
    # Step 5 is a report day; twenty days of inputs cannot see the last one, 58 days back.
    data = quarterly_reports(origin + 1, first=origin + 5 - 63 * 14, seed=1)
    # Every window (stride 1): one ticker's 900 days are too few to thin.
    fast = {"max_epochs": 5, "patience": 2, "batch_size": 64, "learning_rate": 0.01, "stride": 1}
    seasonal = LstmModel(**fast).fit(data).forecast(10).sigma2
    plain = LstmModel(seasonal=False, **fast).fit(data).forecast(10).sigma2
    # The season terms look two sessions either side of a quarter-ago date, so steps 3 to 7
    # go up, and only those.
    outside = np.r_[seasonal[:2], seasonal[7:]]
    assert seasonal[2:7].min() > 1.15 * outside.max()
    assert plain.max() < 1.15 * plain.min()


def test_training_and_forecasts_read_the_same_season_terms(
    gspc: DailyData, ixic: DailyData
) -> None:
    datasets = [gspc.head(900), ixic.head(700)]
    normalizers = [Normalizer.fit(d) for d in datasets]
    panel = Windows(datasets, normalizers, 20, market=False, seasonal=True)
    local = np.array([19, 300, 640])
    for i, data in enumerate(datasets):
        batch = panel.batch(panel.offsets[i] + local, None)
        assert batch.season is not None
        targets = local[:, None] + np.arange(1, MAX_HORIZON + 1)
        expected = seasonal_regressors(season_peaks(data), targets) / normalizers[i].log_rv_std
        assert_allclose(batch.season.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_pooled_save_keeps_the_days_the_season_terms_read(
    gspc: DailyData, ixic: DailyData, tmp_path: Path
) -> None:
    panel = LstmModel.fit_panel([gspc.head(900), ixic.head(800)], **FAST)
    models = panel.models
    pooled = LstmPanel.load(panel.save(tmp_path / "pool", keep_days=20)).models
    for ticker, model in models.items():
        assert len(pooled[ticker].data) == SEASON_MEMORY
        assert_allclose(pooled[ticker].forecast(30).sigma2, model.forecast(30).sigma2, rtol=1e-6)


def test_a_cpu_training_uses_its_threads_and_gives_the_callers_back(gspc: DailyData) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        during: list[int] = []
        config = LstmConfig(**(FAST | {"max_epochs": 1, "device": "cpu"}))
        assert config.cpu_threads == 1
        train_lstm(
            [gspc.head(400)], config, on_epoch=lambda _: during.append(torch.get_num_threads())
        )
        assert during == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
