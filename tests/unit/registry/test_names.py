"""Names of logged and registered models, and the descriptions the registry shows."""

from __future__ import annotations

import pytest

from volforecast.registry.descriptions import model_description, version_description
from volforecast.registry.names import logged_model_name, registered_model_name


@pytest.mark.parametrize(
    ("model_type", "ticker", "logged", "registered"),
    [
        ("garch", "AAPL", "garch_aapl", "garch_volatility_aapl"),
        ("har", "MSFT", "har_msft", "har_volatility_msft"),
        ("GARCH", "^GSPC", "garch_gspc", "garch_volatility_gspc"),
        ("garch", "BRK.B", "garch_brk_b", "garch_volatility_brk_b"),
        ("gjr-garch-t", "AAPL", "gjr_garch_t_aapl", "gjr_garch_t_volatility_aapl"),
        ("lstm", "AAPL", "lstm_pooled", "lstm_volatility_pooled"),
        ("lstm", None, "lstm_pooled", "lstm_volatility_pooled"),
    ],
    ids=["garch", "har", "index", "share-class", "family-with-dashes", "pooled", "pooled-none"],
)
def test_logged_models_are_named_after_what_they_are(
    model_type: str, ticker: str | None, logged: str, registered: str
) -> None:
    assert logged_model_name(model_type, ticker) == logged
    assert registered_model_name(model_type, ticker) == registered


PARAMS = {
    "data.fit_start": "2014-03-28",
    "data.fit_end": "2018-07-10",
    "data.test_start": "2018-07-11",
    "data.test_end": "2018-12-31",
    "data.test_origins": 120,
}


def test_a_version_says_its_window_and_its_qlike() -> None:
    text = version_description(
        PARAMS, {"qlike_h1_range": 0.332291}, tickers=["^GSPC"], data_end="2018-12-31",
        converged=True, headline="qlike_h1_range",
    )  # fmt: skip
    assert text == (
        "Fit on ^GSPC 2014-03-28 to 2018-07-10; test window 2018-07-11 to 2018-12-31 "
        "(120 forecast origins). QLIKE 1-day (range proxy) 0.3323; lower is better."
    )


def test_a_pooled_version_lists_its_tickers_and_a_failed_fit_says_so() -> None:
    tickers = [f"T{i}" for i in range(12)]
    text = version_description(
        {"data.tickers": 12}, {"qlike_h5_squared": 1.5}, tickers=tickers, data_end="2018-12-31",
        converged=False, headline="qlike_h5_squared",
    )  # fmt: skip
    assert "Fit on 12 tickers (T0, T1, T2, T3, T4, T5, T6, T7, T8, T9 and 2 more)" in text
    assert "mean QLIKE 5-day (squared proxy) over the tickers 1.5000" in text
    assert text.endswith("The fit did not converge: this version is never promoted.")


def test_a_registered_model_says_what_it_serves() -> None:
    assert model_description("GARCH", ["BRK.B"], pooled=False).startswith(
        "GARCH volatility model of BRK.B. Forecasts the daily variance"
    )
    assert "pooled over 2 tickers, one network for all (A, B;" in model_description(
        "LSTM", ["A", "B"], pooled=True
    )
