"""The catalog's specs and the one panel entry point every family fits through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from volforecast.core.features import DailyData
from volforecast.errors import ConfigurationError, InsufficientDataError
from volforecast.models.catalog import (
    CATALOG,
    is_pooled,
    model_class_of_kind,
    spec_of,
)
from volforecast.models.garch import GarchModel
from volforecast.models.panel import fit_panel, load_panel


def test_the_catalog_is_the_one_source_of_names_kinds_and_pooling() -> None:
    assert spec_of(" GJR-GARCH-T ").build().model_type == "GJR-GARCH-T"
    assert [name for name, spec in CATALOG.items() if spec.pooled] == ["lstm"]
    assert is_pooled("LSTM")
    assert not is_pooled("garch")
    assert not is_pooled("prophet"), "an unknown name is no pooled model"
    assert model_class_of_kind("garch") is GarchModel
    with pytest.raises(ConfigurationError, match="unknown model 'prophet'"):
        spec_of("prophet")
    with pytest.raises(ValueError, match="unknown model kind 'arima'"):
        model_class_of_kind("arima")


def test_independent_fits_keep_going_past_a_refused_ticker(gspc: DailyData) -> None:
    short = DailyData("SHORT", gspc.dates[:50], gspc.returns_pct[:50], gspc.rv_sigma2[:50])
    panel = fit_panel(spec_of("garch"), [gspc.head(800), short])
    assert set(panel.models) == {"^GSPC"}
    assert isinstance(panel.failures["SHORT"], InsufficientDataError)
    assert panel.for_ticker("^GSPC").is_fitted
    with pytest.raises(KeyError, match=r"SHORT: .*needs at least"):
        panel.for_ticker("SHORT")
    with pytest.raises(KeyError, match="not in the panel"):
        panel.for_ticker("AAPL")


def test_a_warm_start_refits_the_same_instance(gspc: DailyData) -> None:
    first = fit_panel(spec_of("garch"), [gspc.head(800)])
    again = fit_panel(spec_of("garch"), [gspc.head(900)], warm_start=first)
    assert again.for_ticker("^GSPC") is first.for_ticker("^GSPC")
    assert again.for_ticker("^GSPC").data.last_date == gspc.dates[899]


def test_a_per_ticker_panel_saves_its_one_model_and_loads_back(
    gspc: DailyData, ixic: DailyData, tmp_path: Path
) -> None:
    panel = fit_panel(spec_of("har"), [gspc.head(900)])
    loaded = load_panel(panel.save(tmp_path / "har"))
    assert set(loaded.models) == {"^GSPC"}
    assert_allclose(
        loaded.for_ticker("^GSPC").forecast(10).sigma2,
        panel.for_ticker("^GSPC").forecast(10).sigma2,
        rtol=1e-9,
    )
    two = fit_panel(spec_of("ewma"), [gspc.head(300), ixic.head(300)])
    with pytest.raises(ValueError, match="saves one ticker, this one has 2"):
        two.save(tmp_path / "two")
    with pytest.raises(FileNotFoundError, match="holds no saved volforecast model"):
        load_panel(tmp_path / "nothing")


def test_only_a_pooled_class_fits_a_panel_in_one_go(gspc: DailyData) -> None:
    with pytest.raises(NotImplementedError, match="one ticker at a time"):
        GarchModel.fit_panel([gspc.head(300)])
    assert not np.isnan(
        fit_panel(spec_of("historical"), [gspc.head(300)]).for_ticker("^GSPC").forecast(1).sigma2[0]
    )


def test_a_saved_model_of_an_unknown_kind_names_its_folder(gspc: DailyData, tmp_path: Path) -> None:
    saved = fit_panel(spec_of("ewma"), [gspc.head(300)]).save(tmp_path / "ewma")
    state = saved / "model.json"
    state.write_text(state.read_text().replace('"kind": "ewma"', '"kind": "arima"'))
    with pytest.raises(ValueError, match=r"ewma: unknown model kind 'arima'"):
        load_panel(saved)
