"""A production combination is judged from its members' paths the run has already forecast."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_settings
from volforecast.core.features import DailyData
from volforecast.evaluation.test_window import FIT_FRACTION, evaluate
from volforecast.jobs.combination_members import production_losses
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import build_model
from volforecast.models.combination import CombinationModel
from volforecast.registry import names


@pytest.fixture(scope="module")
def members(gspc: DailyData) -> dict[str, VolatilityModel]:
    fitted = gspc.head(int(len(gspc) * FIT_FRACTION))
    return {m: build_model(m).fit(fitted) for m in ("har", "gjr-garch-t")}


def _trainer() -> Any:
    config = SimpleNamespace(models=("har", "gjr-garch-t", "har+lstm+gjr-garch-t"))
    return SimpleNamespace(settings=make_settings(), config=config, member_paths={})


def _count_forecasts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kind of every model asked for paths from now on, in order."""
    forecast: list[str] = []
    forecast_paths = VolatilityModel.forecast_paths

    def counted(self: VolatilityModel, *args: Any, **kwargs: Any) -> np.ndarray:
        forecast.append(self.kind)
        return forecast_paths(self, *args, **kwargs)

    monkeypatch.setattr(VolatilityModel, "forecast_paths", counted)
    return forecast


def test_a_combination_averages_the_paths_its_members_were_judged_on(
    members: dict[str, VolatilityModel], gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer, ticker = _trainer(), gspc.ticker
    for member, model in members.items():
        name = names.registered_model_name(member, ticker)
        own = production_losses(trainer, member, name, "3", {ticker: model}, {ticker: gspc})
        pd.testing.assert_frame_equal(own, evaluate(model, gspc, trainer.settings).decision_losses)
    assert sorted(trainer.member_paths) == sorted(
        (names.registered_model_name(m, ticker), "3", ticker) for m in members
    )
    combination = CombinationModel.of_members(members, {"har": "3", "gjr-garch-t": "3"}, gspc)
    expected = evaluate(combination, gspc, trainer.settings).decision_losses

    forecast = _count_forecasts(monkeypatch)
    name = names.registered_model_name("har+lstm+gjr-garch-t", ticker)
    losses = production_losses(trainer, "har+lstm+gjr-garch-t", name, "2", {ticker: combination},
                               {ticker: gspc})  # fmt: skip
    pd.testing.assert_frame_equal(losses, expected)
    assert forecast == [], "no member is forecast over the window again"
    assert len(trainer.member_paths) == 2, "a combination's own paths are not kept"

    # A member version the run did not judge (the combination pins v2 of HAR) is forecast.
    older = CombinationModel.of_members(members, {"har": "2", "gjr-garch-t": "3"}, gspc)
    again = production_losses(trainer, "har+lstm+gjr-garch-t", name, "1", {ticker: older},
                              {ticker: gspc})  # fmt: skip
    pd.testing.assert_frame_equal(again, expected)
    assert forecast == [members["har"].kind]


def test_a_model_no_combination_needs_keeps_no_paths(
    members: dict[str, VolatilityModel], gspc: DailyData
) -> None:
    trainer = _trainer()
    trainer.config.models = ("har",)
    name = names.registered_model_name("har", gspc.ticker)
    production_losses(trainer, "har", name, "3", {gspc.ticker: members["har"]},
                      {gspc.ticker: gspc})  # fmt: skip
    assert trainer.member_paths == {}


def test_a_pooled_members_paths_are_kept_per_ticker(
    gspc: DailyData, ixic: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A HAR stands in for the pooled LSTM: one registered model and version for every ticker.
    datasets = {d.ticker: d for d in (gspc, ixic)}
    fitted = {t: d.head(int(len(d) * FIT_FRACTION)) for t, d in datasets.items()}
    pooled = {t: build_model("har").fit(f) for t, f in fitted.items()}
    trainer = _trainer()
    trainer.config.models = ("lstm", "har+lstm")
    name = names.registered_model_name("lstm", None)
    production_losses(trainer, "lstm", name, "4", pooled, datasets)
    assert sorted(trainer.member_paths) == [(name, "4", "^GSPC"), (name, "4", "^IXIC")]

    har = build_model("har").fit(fitted["^IXIC"])
    trainer.member_paths[(names.registered_model_name("har", "^IXIC"), "2", "^IXIC")] = evaluate(
        har, ixic, trainer.settings
    ).paths
    combination = CombinationModel.of_members(
        {"har": har, "lstm": pooled["^IXIC"]}, {"har": "2", "lstm": "4"}, ixic
    )
    expected = evaluate(combination, ixic, trainer.settings).decision_losses
    forecast = _count_forecasts(monkeypatch)
    losses = production_losses(trainer, "har+lstm", "har+lstm_volatility_ixic", "1",
                               {"^IXIC": combination}, {"^IXIC": ixic})  # fmt: skip
    pd.testing.assert_frame_equal(losses, expected)
    assert forecast == [], "^IXIC's own kept paths, not ^GSPC's under the same version"
