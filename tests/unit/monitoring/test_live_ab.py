"""The live A/B record on hand-made stored forecasts and realized days."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from volforecast.core.features import DailyData
from volforecast.monitoring.live_ab import LiveRecord, live_losses, live_record
from volforecast.settings import PromotionSettings

DATES = pd.bdate_range("2024-01-01", periods=40)
RV_SIGMA2 = np.linspace(1.0, 2.0, len(DATES))  # realized range variance, percent²


def _data(days: int = len(DATES)) -> DailyData:
    return DailyData(
        ticker="AAPL",
        dates=DATES[:days],
        returns_pct=np.full(days, 0.5),
        rv_sigma2=RV_SIGMA2[:days],
    )


def _stored(
    version: str, vol_pct: float | np.ndarray, first: int = 0, steps: int = 2
) -> pd.DataFrame:
    """Stored paths of ``version`` from origins ``first`` on, each step ``vol_pct``."""
    vols = np.broadcast_to(vol_pct, len(DATES))
    rows = [
        {"ticker": "AAPL", "model_type": "GARCH", "origin_date": DATES[i].date(), "step": s,
         "forecast_date": DATES[min(i + s, len(DATES) - 1)].date(),
         "predicted_volatility": float(vols[i]), "model_version": version, "run_id": None,
         "prediction_timestamp": dt.datetime(2024, 3, 1, tzinfo=dt.UTC)}
        for i in range(first, len(DATES) - 1)
        for s in range(1, steps + 1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _qlike(realized: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    ratio = realized / forecast
    return ratio - np.log(ratio) - 1


def test_one_step_losses_are_qlike_of_the_next_days_realized_variance() -> None:
    stored = _stored("2", 1.5, first=5)
    data = _data(20)  # judged on day 19: the origin of day 18 is the last one realized
    losses = live_losses(stored, data, "2", since=DATES[5].date(), settings=PromotionSettings())
    assert losses["origin_date"].tolist() == list(DATES[5:19])
    expected = _qlike(RV_SIGMA2[6:20], np.full(14, 1.5**2))
    np.testing.assert_allclose(losses["loss"].to_numpy(), expected)


def test_the_decision_horizon_sums_the_stored_steps_and_the_realized_days() -> None:
    stored = _stored("2", 1.2)
    settings = PromotionSettings(horizon=2)
    losses = live_losses(stored, _data(10), "2", since=DATES[3].date(), settings=settings)
    # Origins 3..7: each needs the two following days, the last realized day is 9.
    assert losses["origin_date"].tolist() == list(DATES[3:8])
    realized = RV_SIGMA2[4:9] + RV_SIGMA2[5:10]
    np.testing.assert_allclose(losses["loss"].to_numpy(), _qlike(realized, np.full(5, 2 * 1.44)))


def test_only_the_versions_own_rows_before_nothing_else_count() -> None:
    stored = pd.concat([_stored("1", 3.0), _stored("2", 1.0, first=10)])
    settings = PromotionSettings()
    since = DATES[12].date()
    mine = live_losses(stored, _data(), "2", since=since, settings=settings)
    theirs = live_losses(stored, _data(), "1", since=since, settings=settings)
    assert mine["origin_date"].min() == DATES[12]
    assert len(mine) == len(theirs) == len(DATES) - 1 - 12
    np.testing.assert_allclose(theirs["loss"], _qlike(RV_SIGMA2[13:], np.full(27, 9.0)))
    assert live_losses(stored, _data(), "3", since=since, settings=settings).empty


def _record(
    challenger_vol: float | np.ndarray, days: int, min_days: int, max_pvalue: float = 1.0
) -> LiveRecord:
    settings = PromotionSettings(min_live_days=min_days, max_pvalue=max_pvalue)
    stored = pd.concat([_stored("1", 2.5), _stored("2", challenger_vol)])
    data = _data(days + 1)  # origins 0..days-1 are realized
    since = DATES[0].date()
    losses = (
        live_losses(stored, data, "2", since=since, settings=settings),
        live_losses(stored, data, "1", since=since, settings=settings),
    )
    return live_record("garch_volatility_aapl", "1", "2", since, losses, settings)


def test_a_challenger_that_beats_production_waits_for_its_days_then_would_promote() -> None:
    early = _record(1.2, days=4, min_days=5)
    assert early.live_days == 4
    assert early.status == "waiting"
    assert early.decision is not None
    assert early.decision.promote
    assert not early.ready
    assert "4 of 5 live days" in early.why
    ready = _record(1.2, days=5, min_days=5)
    assert ready.live_days == 5
    assert ready.status == "would promote"
    assert ready.ready
    summary = ready.summary()
    assert summary["qlike_challenger"] < summary["qlike_production"]
    assert summary["dm_pvalue"] is None, "under 10 days the DM test gives no p"


def test_a_challenger_that_does_not_beat_production_never_gets_ready() -> None:
    record = _record(5.0, days=30, min_days=5)
    assert record.live_days == 30
    assert record.status == "not beating production"
    assert not record.ready
    assert record.decision is not None
    assert record.decision.metrics["dm_pvalue"] > 0.5


def test_the_pvalue_limit_holds_back_a_noisy_advantage() -> None:
    # Alternately much better and much worse than production: lower on average, but the
    # one-sided Diebold-Mariano p is far from 0.05.
    noisy = np.where(np.arange(len(DATES)) % 2 == 0, 1.4, 3.4)
    strict = _record(noisy, days=12, min_days=5, max_pvalue=0.05)
    assert strict.decision is not None
    assert strict.decision.metrics["qlike_ratio"] < 1
    assert 0.05 < strict.decision.metrics["dm_pvalue"] < 0.5
    assert strict.status == "not beating production"
    assert _record(noisy, days=12, min_days=5).status == "would promote"


@pytest.mark.parametrize("days", [0, 3])
def test_without_production_rows_there_are_no_live_days(days: int) -> None:
    settings = PromotionSettings(min_live_days=2)
    stored = _stored("2", 1.0)
    data = _data(days + 1)
    since = DATES[0].date()
    losses = (
        live_losses(stored, data, "2", since=since, settings=settings),
        live_losses(stored, data, "1", since=since, settings=settings),
    )
    record = live_record("garch_volatility_aapl", "1", "2", since, losses, settings)
    assert record.live_days == 0
    assert record.decision is None
    assert record.status == "waiting"
