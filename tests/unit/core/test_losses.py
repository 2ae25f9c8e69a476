"""Loss functions against hand-computed values, and QLIKE's defining property."""

from __future__ import annotations

import math

import numpy as np
import pytest

from volforecast.core.losses import mae, mse, qlike, qlike_losses, rmse

ACTUAL = [1.0, 2.0, 4.0]
FORECAST = [2.0, 2.0, 1.0]


def test_mse_mae_rmse_by_hand() -> None:
    # Errors: -1, 0, 3.
    assert mse(ACTUAL, FORECAST) == pytest.approx(10 / 3, rel=1e-15)
    assert mae(ACTUAL, FORECAST) == pytest.approx(4 / 3, rel=1e-15)
    assert rmse(ACTUAL, FORECAST) == pytest.approx(math.sqrt(10 / 3), rel=1e-15)


def test_qlike_by_hand() -> None:
    expected = sum(a / h - math.log(a / h) - 1 for a, h in zip(ACTUAL, FORECAST, strict=True)) / 3
    assert qlike(ACTUAL, FORECAST) == pytest.approx(expected, rel=1e-15)


def test_qlike_is_zero_for_a_perfect_forecast_and_positive_otherwise() -> None:
    assert qlike(ACTUAL, ACTUAL) == 0.0
    assert (qlike_losses(ACTUAL, FORECAST) > 0).sum() == 2  # the middle forecast is exact


def test_qlike_expected_loss_is_smallest_at_the_true_variance() -> None:
    # With a noisy but unbiased proxy (squared normal returns), the forecast that minimises the
    # average loss is the true variance: the property that makes QLIKE a robust loss.
    rng = np.random.default_rng(3)
    true_sigma2 = 2.0
    proxy = rng.normal(0.0, math.sqrt(true_sigma2), 200_000) ** 2
    candidates = np.linspace(1.0, 3.0, 41)
    losses = [qlike(proxy, np.full_like(proxy, h)) for h in candidates]
    assert candidates[int(np.argmin(losses))] == pytest.approx(true_sigma2, abs=0.05)


def test_qlike_penalises_under_prediction_more_than_over_prediction() -> None:
    proxy = np.full(10, 4.0)
    assert qlike(proxy, np.full(10, 2.0)) - qlike(proxy, proxy) > qlike(
        proxy, np.full(10, 6.0)
    ) - qlike(proxy, proxy)


@pytest.mark.parametrize(
    ("actual", "forecast", "message"),
    [
        ([1.0, 2.0], [1.0], "differ in shape"),
        ([], [], "at least one"),
        ([1.0, math.nan], [1.0, 1.0], "finite"),
    ],
)
def test_bad_inputs_are_refused(actual: list[float], forecast: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mse(actual, forecast)


def test_qlike_refuses_non_positive_forecasts_and_proxies() -> None:
    with pytest.raises(ValueError, match="strictly positive"):
        qlike([1.0], [0.0])
    with pytest.raises(ValueError, match="zero or negative proxy"):
        qlike([0.0], [1.0])
