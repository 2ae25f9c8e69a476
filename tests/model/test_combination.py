"""An equal-weight combination of fitted members: its paths, its files, what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from volforecast.core.features import DailyData
from volforecast.errors import ConfigurationError
from volforecast.models.base import MAX_HORIZON, STATE_FILE, VolatilityModel
from volforecast.models.catalog import build_model
from volforecast.models.combination import CombinationModel


@pytest.fixture(scope="module")
def members(gspc: DailyData) -> dict[str, VolatilityModel]:
    data = gspc.head(1200)
    return {"har": build_model("har").fit(data), "garch": build_model("garch").fit(data)}


def test_its_paths_are_the_mean_of_its_members_paths(
    members: dict[str, VolatilityModel], gspc: DailyData
) -> None:
    longer = gspc.head(1300)
    combination = CombinationModel.of_members(members, {"har": "3", "garch": "5"}, longer)
    origins = np.array([1199, 1250, 1299])
    expected = np.mean(
        [m.forecast_paths(longer, origins, MAX_HORIZON) for m in members.values()], axis=0
    )
    assert_allclose(combination.forecast_paths(longer, origins, MAX_HORIZON), expected, rtol=1e-12)
    forecast = combination.forecast(MAX_HORIZON)
    assert forecast.origin_date == longer.last_date.date()
    assert_allclose(forecast.sigma2, expected[-1], rtol=1e-12)
    assert forecast.model == "HAR+GARCH"
    assert combination.member_versions == {"har": "3", "garch": "5"}
    assert combination.fit_report.message == "equal-weight mean of har v3, garch v5"


def test_its_folder_holds_copies_of_its_members(
    members: dict[str, VolatilityModel], tmp_path: Path
) -> None:
    combination = CombinationModel.of_members(members, {"har": "3", "garch": "5"})
    folder = combination.save(tmp_path / "combination")
    assert sorted(p.name for p in (folder / "members").iterdir()) == ["garch", "har"]
    state = json.loads((folder / STATE_FILE).read_text())
    assert state["extra"] == {"member_versions": {"har": "3", "garch": "5"}}

    loaded = VolatilityModel.load(folder)
    assert isinstance(loaded, CombinationModel)
    assert loaded.member_versions == {"har": "3", "garch": "5"}
    assert_allclose(loaded.forecast(10).sigma2, combination.forecast(10).sigma2, rtol=1e-12)


def test_members_of_other_tickers_or_unfitted_ones_are_refused(
    members: dict[str, VolatilityModel], ixic: DailyData
) -> None:
    other = build_model("har").fit(ixic.head(1200))
    with pytest.raises(ConfigurationError, match="one ticker"):
        CombinationModel.of_members({"har": other, "garch": members["garch"]})
    with pytest.raises(ConfigurationError, match="fitted members"):
        CombinationModel.of_members({"har": build_model("har"), "garch": members["garch"]})
    with pytest.raises(ConfigurationError, match="two or more different"):
        CombinationModel(["har"])


def test_fixed_weights_weigh_its_members_and_survive_a_save(
    members: dict[str, VolatilityModel], gspc: DailyData, tmp_path: Path
) -> None:
    longer = gspc.head(1300)
    combination = CombinationModel.of_members(members, data=longer, weights=(0.7, 0.3))
    origins = np.array([1199, 1299])
    har, garch = (m.forecast_paths(longer, origins, 5) for m in members.values())
    assert_allclose(combination.forecast_paths(longer, origins, 5), 0.7 * har + 0.3 * garch)
    assert combination.fit_report.message == "weighted mean of har v0, garch v0"
    loaded = VolatilityModel.load(combination.save(tmp_path / "weighted"))
    assert isinstance(loaded, CombinationModel)
    assert loaded.weights == (0.7, 0.3)
    assert_allclose(loaded.forecast(5).sigma2, combination.forecast(5).sigma2, rtol=1e-12)
    for bad in ((0.5, 0.6), (1.0, 0.0), (0.5, 0.25, 0.25)):
        with pytest.raises(ConfigurationError, match="sum to one"):
            CombinationModel(["har", "garch"], bad)


def test_its_standardized_returns_read_its_members_pools(
    gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each member forecasts its thousand days once, for its own pool, and never again for
    # the combination's; a zero return (z = 0 says nothing of the variance) is forecast.
    arrays = {k: v.copy() for k, v in gspc.head(1600).to_arrays().items()}
    arrays["returns_pct"][-500] = 0.0
    data = DailyData.from_arrays(gspc.ticker, arrays)
    fitted = {"har": build_model("har").fit(data), "garch": build_model("garch").fit(data)}
    combination = CombinationModel.of_members(fitted, {"har": "1", "garch": "1"}, data, (0.3, 0.7))
    origins = np.arange(max(combination.warmup_days, len(data) - 1001), len(data) - 1)
    sigma2 = combination.forecast_paths(data, origins, 1)[:, 0]
    expected = data.returns_pct[origins + 1] / np.sqrt(sigma2)
    assert expected[-500] == 0.0
    asked: list[int] = []
    forecast_paths = VolatilityModel.forecast_paths

    def counted(self: VolatilityModel, *args: object, **kwargs: object) -> np.ndarray:
        asked.append(len(args[1]))  # type: ignore[arg-type]
        return forecast_paths(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(VolatilityModel, "forecast_paths", counted)
    pool = combination.standardized_returns()
    assert_allclose(pool, expected, rtol=1e-10)
    assert asked.count(len(origins)) == 2  # each member's own pool
    zeros = int((data.returns_pct[origins + 1] == 0).sum())  # this one and any in the data
    assert sorted(n for n in asked if n != len(origins)) == [zeros, zeros]
