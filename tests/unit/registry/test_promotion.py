"""Promotion decisions and registry names: what reaches production, and what it is called."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pandera.errors import SchemaError

from volforecast.evaluation.stats import diebold_mariano
from volforecast.registry import tracking
from volforecast.registry.decision import compare, losses_frame
from volforecast.registry.names import registered_model_name, ticker_slug
from volforecast.registry.tracking import mlflow_key
from volforecast.settings import PromotionSettings

N = 300
DATES = pd.bdate_range("2020-01-01", periods=N)
DEFAULT = PromotionSettings()


def _losses(seed: int = 0, n: int = N) -> np.ndarray:
    """Positive, varying QLIKE-like losses."""
    return 0.2 + np.random.default_rng(seed).exponential(0.5, n)


def _noisy_small_improvement() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A challenger 0.5 % better on average, buried in day-to-day noise."""
    rng = np.random.default_rng(42)
    production = 1.0 + rng.exponential(1.0, N)
    noise = rng.normal(0.0, 0.3, N)
    challenger = production + (noise - noise.mean()) - 0.005 * production.mean()
    return losses_frame("AAPL", DATES, challenger), losses_frame("AAPL", DATES, production)


def test_losses_frame_has_the_layout_compare_reads() -> None:
    frame = losses_frame("AAPL", DATES[:3], np.array([1.0, 2.0, 3.0]))
    assert list(frame.columns) == ["ticker", "origin_date", "loss"]
    assert frame["ticker"].tolist() == ["AAPL"] * 3
    assert frame["loss"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("production_factor", [None, 1.3, 100.0])
def test_a_challenger_that_did_not_converge_is_never_promoted(
    production_factor: float | None,
) -> None:
    losses = _losses()
    challenger = losses_frame("AAPL", DATES, losses)
    production = (
        None
        if production_factor is None
        else losses_frame("AAPL", DATES, losses * production_factor)
    )
    decision = compare(challenger, production, converged=False, settings=DEFAULT)
    assert decision.promote is False
    assert "converge" in decision.reason


def test_the_first_converged_version_is_promoted() -> None:
    losses = _losses()
    decision = compare(losses_frame("AAPL", DATES, losses), None, converged=True, settings=DEFAULT)
    assert decision.promote is True
    assert decision.metrics["qlike"] == pytest.approx(losses.mean())


def test_clearly_lower_losses_are_promoted_with_significant_figures() -> None:
    losses = _losses()
    challenger = losses_frame("AAPL", DATES, losses)
    production = losses_frame("AAPL", DATES, losses * 1.3)
    decision = compare(challenger, production, converged=True, settings=DEFAULT)
    assert decision.promote is True
    metrics = decision.metrics
    assert metrics["qlike_challenger"] == pytest.approx(losses.mean())
    assert metrics["qlike_production"] == pytest.approx(1.3 * losses.mean())
    assert metrics["qlike_ratio"] == pytest.approx(1 / 1.3)
    assert metrics["qlike_ratio"] < 1
    assert metrics["n_origins"] == N
    assert metrics["dm_statistic"] < 0
    assert metrics["dm_pvalue"] < 1e-6


def test_equal_losses_are_not_promoted() -> None:
    losses = _losses()
    frame = losses_frame("AAPL", DATES, losses)
    decision = compare(frame, frame.copy(), converged=True, settings=DEFAULT)
    assert decision.promote is False
    assert decision.metrics["qlike_ratio"] == pytest.approx(1.0)


def test_worse_losses_are_not_promoted_and_the_one_sided_pvalue_says_so() -> None:
    losses = _losses()
    challenger = losses_frame("AAPL", DATES, losses * 1.3)
    production = losses_frame("AAPL", DATES, losses)
    decision = compare(challenger, production, converged=True, settings=DEFAULT)
    assert decision.promote is False
    assert decision.metrics["qlike_ratio"] == pytest.approx(1.3)
    assert decision.metrics["dm_statistic"] > 0
    assert decision.metrics["dm_pvalue"] > 0.99


def test_a_margin_refuses_an_improvement_smaller_than_it() -> None:
    losses = _losses()
    challenger = losses_frame("AAPL", DATES, losses * 0.9)  # 10 % better
    production = losses_frame("AAPL", DATES, losses)
    assert compare(challenger, production, converged=True, settings=DEFAULT).promote
    strict = compare(challenger, production, converged=True, settings=PromotionSettings(margin=0.5))
    assert strict.promote is False
    assert "margin" in strict.reason
    lenient = compare(
        challenger, production, converged=True, settings=PromotionSettings(margin=0.05)
    )
    assert lenient.promote is True


def test_a_pvalue_limit_refuses_a_tiny_noisy_improvement() -> None:
    challenger, production = _noisy_small_improvement()
    strict = compare(
        challenger, production, converged=True, settings=PromotionSettings(max_pvalue=0.01)
    )
    assert strict.metrics["qlike_challenger"] < strict.metrics["qlike_production"]
    assert strict.metrics["dm_pvalue"] > 0.1, "the construction must be noisy"
    assert strict.promote is False
    assert "significant" in strict.reason
    lenient = compare(
        challenger, production, converged=True, settings=PromotionSettings(max_pvalue=1.0)
    )
    assert lenient.promote is True


def test_pooled_losses_are_compared_on_shared_ticker_and_origin_only() -> None:
    a, b = _losses(1), _losses(2)
    challenger = pd.concat(
        [
            losses_frame("AAPL", DATES, a),
            losses_frame("MSFT", DATES[:250], b[:250]),
            # Only the challenger forecast these: ignored.
            losses_frame("NVDA", DATES[:50], np.full(50, 1e6)),
        ],
        ignore_index=True,
    )
    production = pd.concat(
        [
            losses_frame("AAPL", DATES[20:], a[20:] * 1.3),  # not the first 20 AAPL origins
            losses_frame("MSFT", DATES, b * 1.3),  # 50 MSFT origins the challenger lacks
            losses_frame("TSLA", DATES[:50], np.full(50, 1e6)),  # only production
        ],
        ignore_index=True,
    )
    decision = compare(challenger, production, converged=True, settings=DEFAULT)
    metrics = decision.metrics
    assert metrics["n_origins"] == (N - 20) + 250
    shared_a, shared_b = a[20:], b[:250]
    expected = np.concatenate([shared_a, shared_b]).mean()
    assert metrics["qlike_challenger"] == pytest.approx(expected)
    assert metrics["qlike_production"] == pytest.approx(1.3 * expected)
    assert decision.promote is True


def test_pooled_significance_is_tested_on_the_per_date_mean() -> None:
    a, b = _losses(1), _losses(2)
    pa, pb = a * 1.1 + 0.05, b * 0.95 + 0.1
    challenger = pd.concat(
        [losses_frame("AAPL", DATES, a), losses_frame("MSFT", DATES, b)], ignore_index=True
    )
    production = pd.concat(
        [losses_frame("AAPL", DATES, pa), losses_frame("MSFT", DATES, pb)], ignore_index=True
    )
    decision = compare(challenger, production, converged=True, settings=DEFAULT)
    expected = diebold_mariano((a + b) / 2, (pa + pb) / 2)
    assert decision.metrics["n_origins"] == 2 * N
    assert decision.metrics["dm_statistic"] == pytest.approx(expected.statistic)


def test_no_shared_origin_is_not_promoted() -> None:
    challenger = losses_frame("AAPL", DATES[:100], _losses(n=100))
    production = losses_frame("AAPL", DATES[100:200], _losses(n=100) * 2)
    decision = compare(challenger, production, converged=True, settings=DEFAULT)
    assert decision.promote is False


def test_too_few_origins_for_a_test_leave_the_pvalue_undefined() -> None:
    losses = _losses(n=5)
    challenger = losses_frame("AAPL", DATES[:5], losses)
    production = losses_frame("AAPL", DATES[:5], losses * 1.3)
    decision = compare(challenger, production, converged=True, settings=DEFAULT)
    assert math.isnan(decision.metrics["dm_pvalue"])
    assert decision.promote is True  # max_pvalue = 1 asks for no significance
    strict = compare(
        challenger, production, converged=True, settings=PromotionSettings(max_pvalue=0.5)
    )
    assert strict.promote is False


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda f: f.drop(columns="loss"), "column 'loss' not in dataframe"),
        (lambda f: f.assign(loss=f["loss"].astype(str)), "'loss' to have type float64"),
        (lambda f: f.assign(loss=np.nan), "non-nullable series 'loss' contains null values"),
        (lambda f: f.assign(loss=np.inf), "less_than(inf)"),
        (lambda f: pd.concat([f, f], ignore_index=True), "<Check one_row_per_ticker_and_origin>"),
    ],
    ids=["no loss column", "text losses", "NaN loss", "infinite loss", "an origin twice"],
)
def test_losses_that_break_the_losses_schema_are_refused_from_either_version(
    broken: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    # Given one version's good losses and a broken copy
    good = losses_frame("AAPL", DATES, _losses())
    # Then the decision refuses the broken one, as the challenger's and as production's
    with pytest.raises(SchemaError, match=re.escape(message)):
        compare(broken(good), good, converged=True, settings=DEFAULT)
    with pytest.raises(SchemaError, match=re.escape(message)):
        compare(good, broken(good), converged=True, settings=DEFAULT)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("model_type", "ticker", "expected"),
    [
        ("garch", "AAPL", "garch_volatility_aapl"),
        ("garch", "^GSPC", "garch_volatility_gspc"),
        ("garch", "BRK.B", "garch_volatility_brk_b"),
        ("GARCH", " aapl ", "garch_volatility_aapl"),
        ("lstm", "AAPL", "lstm_volatility_pooled"),
        ("lstm", None, "lstm_volatility_pooled"),
        ("LSTM", "^GSPC", "lstm_volatility_pooled"),
    ],
)
def test_registered_model_names(model_type: str, ticker: str | None, expected: str) -> None:
    assert registered_model_name(model_type, ticker) == expected


@pytest.mark.parametrize("ticker", ["^^", "", "  ", ".-"])
def test_a_ticker_without_letters_or_digits_has_no_slug(ticker: str) -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        ticker_slug(ticker)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("alpha[1]", "alpha_1"), ("beta", "beta"), ("omega(x)", "omega_x"), ("a.b-c d", "a.b-c d")],
)
def test_mlflow_keys(name: str, expected: str) -> None:
    assert mlflow_key(name) == expected


def test_mlflow_client_settings_follow_the_latest_connect_but_never_override_the_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    monkeypatch.setattr(tracking, "_ENV_SET_HERE", {})
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")  # the user's own choice
    tracking._client_env("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    tracking._client_env("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    tracking._client_env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "10"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
