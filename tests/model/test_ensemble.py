"""Ensemble weights: on the simplex, learned on validation data, and sensible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.core.features import DailyData
from volforecast.models.ensemble import EnsembleModel, combination_weights


def test_weights_pick_the_true_variance_out_of_noise() -> None:
    rng = np.random.default_rng(0)
    true_sigma2 = rng.gamma(4.0, 0.5, 3000)
    proxy = true_sigma2 * rng.chisquare(1, 3000)  # a squared return of that variance
    members = np.vstack([true_sigma2, 3.0 * true_sigma2, np.full(3000, true_sigma2.mean())])
    w = combination_weights(members, proxy)
    assert w.sum() == pytest.approx(1.0)
    assert (w >= 0).all()
    assert w[0] > 0.8


def test_the_weights_never_see_data_after_the_fit(gspc: DailyData) -> None:
    data = gspc.head(1500)
    model = EnsembleModel(("har", "historical")).fit(data)
    weights = model._weights_now()
    assert np.allclose(weights.sum(axis=1), 1.0)
    later = gspc.head(1800)
    shocked = DailyData(later.ticker, later.dates, later.returns_pct * 5, later.rv_sigma2 * 25)
    model.update(shocked)
    assert np.array_equal(model._weights_now(), weights)


def test_the_better_member_gets_the_weight(gspc: DailyData) -> None:
    # On range-based targets, HAR (which models them) beats a 22-day historical average.
    model = EnsembleModel(("har", "historical")).fit(gspc.head(3000))
    weights = pd.DataFrame(model._weights_now(), columns=["har", "historical"])
    assert (weights["har"] > weights["historical"]).mean() > 0.8


def test_a_members_warning_is_the_ensembles_too(gspc: DailyData) -> None:
    # gspc comes without the market series, so HAR (with its market term) warns.
    model = EnsembleModel(("har", "historical")).fit(gspc.head(1500))
    assert any(w.startswith("har: ") and "market" in w for w in model.fit_report.warnings)
