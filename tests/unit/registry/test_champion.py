"""The champion rule on hand-made loss series."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from volforecast.jobs.champion import ChampionReport
from volforecast.registry.champion import choose_champion
from volforecast.registry.decision import losses_frame

DATES = pd.bdate_range("2018-01-01", periods=120)


def losses(level: float, *, noise: float = 0.05, seed: int = 0, dates=DATES) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = level + noise * rng.standard_normal(len(dates))
    return losses_frame("AAPL", pd.DatetimeIndex(dates), values)


def test_the_first_champion_is_the_lowest_loss_without_a_test():
    choice = choose_champion(
        "AAPL", {"garch": losses(1.2), "har": losses(1.0, seed=1)}, None, max_pvalue=0.05
    )
    assert choice.champion == "har"
    assert choice.changed
    assert choice.reason.startswith("first champion")
    assert choice.metrics["qlike_har"] < choice.metrics["qlike_garch"]
    assert "dm_pvalue" not in choice.metrics


def test_a_preferred_family_keeps_the_first_decision_unless_beaten_significantly():
    garch, har = losses(1.0, noise=1.0, seed=2), losses(1.0, noise=1.0, seed=3)
    har["loss"] = garch["loss"].to_numpy() - 0.001 + 0.5 * (har["loss"].to_numpy() - 1.0)
    kept = choose_champion(
        "AAPL", {"garch": garch, "har": har}, None, max_pvalue=0.05, preferred="garch"
    )
    assert kept.metrics["qlike_har"] < kept.metrics["qlike_garch"]
    assert (kept.champion, kept.incumbent) == ("garch", None)
    assert kept.changed  # a first champion is a change from none
    assert kept.reason.startswith("first champion, garch preferred")
    assert "not significantly" in kept.reason

    clear = {"garch": losses(1.2), "har": losses(1.0, seed=1)}
    beaten = choose_champion("AAPL", clear, None, max_pvalue=0.05, preferred="garch")
    assert (beaten.champion, beaten.incumbent) == ("har", None)
    assert beaten.metrics["dm_pvalue"] < 0.05


def test_a_preferred_family_is_no_sitting_champion_after_the_first_or_where_absent():
    clear = {"garch": losses(1.0), "har": losses(1.2, seed=1)}
    # A stored champion is judged as such: the preference only stands in for none.
    sitting = choose_champion("AAPL", clear, "har", max_pvalue=0.05, preferred="har")
    assert sitting.incumbent == "har"
    assert sitting.champion == "garch"
    absent = choose_champion(
        "AAPL", {**clear, "lstm": losses(0.5)[:0]}, None, max_pvalue=0.05, preferred="lstm"
    )
    assert absent.champion == "garch"
    assert absent.reason.startswith("first champion: lowest QLIKE")
    # Candidates that share no origin give no evidence: the preference is not seated on none.
    apart = {"garch": losses(1.0), "har": losses(1.2, dates=DATES + pd.Timedelta(days=400))}
    unseated = choose_champion("AAPL", apart, None, max_pvalue=0.05, preferred="har")
    assert unseated.champion is None
    assert unseated.reason == "the candidates share no origin"


def test_a_significantly_better_family_replaces_the_incumbent():
    choice = choose_champion(
        "AAPL", {"garch": losses(1.2), "har": losses(1.0, seed=1)}, "garch", max_pvalue=0.05
    )
    assert (choice.champion, choice.incumbent) == ("har", "garch")
    assert choice.changed
    assert choice.metrics["dm_pvalue"] < 0.05


def test_a_winner_without_significance_leaves_the_incumbent():
    # Nearly the same mean loss under heavy noise: lower, but nowhere near significant.
    garch, har = losses(1.0, noise=1.0, seed=2), losses(1.0, noise=1.0, seed=3)
    har["loss"] = garch["loss"].to_numpy() - 0.001 + 0.5 * (har["loss"].to_numpy() - 1.0)
    choice = choose_champion("AAPL", {"garch": garch, "har": har}, "garch", max_pvalue=0.05)
    assert choice.metrics["qlike_har"] < choice.metrics["qlike_garch"]
    assert choice.metrics["dm_pvalue"] > 0.05
    assert choice.champion == "garch"
    assert not choice.changed
    assert "not significantly" in choice.reason


def test_max_pvalue_one_replaces_on_the_lower_mean_alone():
    garch, har = losses(1.0, noise=1.0, seed=2), losses(1.0, noise=1.0, seed=3)
    har["loss"] = garch["loss"].to_numpy() - 0.001 + 0.5 * (har["loss"].to_numpy() - 1.0)
    choice = choose_champion("AAPL", {"garch": garch, "har": har}, "garch", max_pvalue=1.0)
    assert choice.champion == "har"


def test_a_tie_keeps_the_incumbent_and_otherwise_goes_to_catalog_order():
    same = losses(1.0)
    tied = {"garch": same, "har": same.copy(), "lstm": same.copy()}
    assert choose_champion("AAPL", tied, "lstm", max_pvalue=1.0).champion == "lstm"
    assert choose_champion("AAPL", tied, None, max_pvalue=1.0).champion == "garch"


def test_a_family_that_does_not_forecast_the_ticker_is_no_candidate():
    empty = losses(0.1).iloc[:0]
    choice = choose_champion("AAPL", {"garch": losses(1.2), "lstm": empty}, None, max_pvalue=0.05)
    assert choice.champion == "garch"
    assert "qlike_lstm" not in choice.metrics


def test_an_incumbent_that_no_longer_forecasts_the_ticker_is_replaced():
    empty = losses(0.1).iloc[:0]
    choice = choose_champion("AAPL", {"garch": losses(1.2), "lstm": empty}, "lstm", max_pvalue=0.05)
    assert (choice.champion, choice.incumbent) == ("garch", "lstm")
    assert "lstm no longer forecasts it" in choice.reason


def test_no_candidate_at_all_names_no_champion():
    choice = choose_champion("AAPL", {"lstm": losses(1.0).iloc[:0]}, None, max_pvalue=0.05)
    assert choice.champion is None
    assert not choice.changed


def test_only_the_origins_every_candidate_forecast_are_compared():
    # HAR's extra, very bad days come before GARCH's first origin: they must not count.
    early = pd.bdate_range(end=DATES[0] - pd.offsets.BDay(), periods=20)
    har = pd.concat([losses(50.0, dates=early), losses(1.0, seed=1)])
    choice = choose_champion("AAPL", {"garch": losses(1.2), "har": har}, None, max_pvalue=0.05)
    assert choice.champion == "har"
    assert choice.metrics["n_origins"] == len(DATES)


@pytest.mark.parametrize("count", [5, 9])
def test_too_few_common_origins_to_test_leave_the_incumbent(count):
    short = DATES[:count]
    choice = choose_champion(
        "AAPL",
        {"garch": losses(1.2, dates=short), "har": losses(1.0, seed=1, dates=short)},
        "garch",
        max_pvalue=0.05,
    )
    assert choice.champion == "garch"
    assert np.isnan(choice.metrics["dm_pvalue"])
    assert f"too few common origins ({count}) to test: garch stays" in choice.reason


def test_the_report_is_strict_json_even_without_a_test() -> None:
    short = DATES[:5]
    choice = choose_champion(
        "AAPL",
        {"garch": losses(1.2, dates=short), "har": losses(1.0, seed=1, dates=short)},
        "garch",
        max_pvalue=0.05,
    )
    payload = ChampionReport([choice], {"MSFT": "why"}).to_dict()
    text = json.dumps(payload, allow_nan=False)  # a NaN p-value would raise here
    assert json.loads(text)["choices"][0]["metrics"]["dm_pvalue"] is None
    assert payload["wins"] == {"garch": 1}
