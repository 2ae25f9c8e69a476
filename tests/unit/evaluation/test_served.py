"""The champion rule walk-forward: who serves each block, from what the rule could see."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.evaluation.served import ServedRule, served_walk_forward, window_losses

N_DAYS = 400
ORIGINS = np.arange(300, N_DAYS - 1)
"""The backtest's origins: five blocks of 20 days from day 300 (the last has 19)."""
REFIT_AT = (300, 320, 340, 360, 380)
RULE = ServedRule(max_pvalue=0.05)


def toy() -> DailyData:
    rng = np.random.default_rng(0)
    rv = rng.lognormal(0.0, 0.5, N_DAYS)
    returns = np.sqrt(rv) * rng.choice([-1.0, 1.0], N_DAYS)
    return DailyData("TOY", pd.bdate_range("2010-01-04", periods=N_DAYS), returns, rv)


def paths(data: DailyData, log_error_sd: list[float], seed: int) -> np.ndarray:
    """1-step paths off the next day's variance by a log error of the given sd per block."""
    rng = np.random.default_rng(seed)
    sd = np.repeat(log_error_sd, 20)[: len(ORIGINS)]
    return (data.rv_sigma2[ORIGINS + 1] * np.exp(rng.normal(0.0, 1.0, len(ORIGINS)) * sd))[:, None]


def refits(data: DailyData) -> list[pd.Timestamp]:
    return [data.dates[p] for p in REFIT_AT]


def takeover_case() -> tuple[DailyData, dict[str, np.ndarray]]:
    """GARCH better in the first block; from the second on HAR is near perfect."""
    data = toy()
    garch = paths(data, [0.3] * 5, seed=1)
    har = paths(data, [0.6, 0.02, 0.02, 0.02, 0.02], seed=2)
    return data, {"garch": garch, "har": har}


def test_the_first_block_is_served_the_default_and_a_clear_winner_takes_over() -> None:
    data, families = takeover_case()
    served = served_walk_forward(data, ORIGINS, families, refits(data), RULE)
    # Refit 1: no origin of the window has been forecast yet; the service's default serves.
    assert served.choices[0].champion is None
    assert served.served[0] == "garch"
    # Refit 2: only the first block was seen, where GARCH was better: first champion.
    assert served.choices[1].champion == "garch"
    assert served.choices[1].incumbent is None
    # By refit 4 the window holds only blocks where HAR is near perfect: it takes over,
    # significantly, and serves from then on.
    takeover = served.choices[3]
    assert (takeover.incumbent, takeover.champion) == ("garch", "har"), takeover.reason
    assert takeover.metrics["dm_pvalue"] <= 0.05
    assert served.served[3:] == ["har", "har"]
    assert served.origins == {"garch": 60, "har": 39}
    assert served.champion == "har"
    block4 = (ORIGINS >= 360) & (ORIGINS < 380)
    np.testing.assert_array_equal(served.sigma2[block4], families["har"][block4])
    block2 = (ORIGINS >= 320) & (ORIGINS < 340)
    np.testing.assert_array_equal(served.sigma2[block2], families["garch"][block2])


def test_a_winner_without_significance_does_not_replace_the_incumbent() -> None:
    data = toy()
    # GARCH clearly better in block 1; then HAR a little better, not significantly.
    garch = paths(data, [0.3, 0.3, 0.3, 0.3, 0.3], seed=4)
    har = paths(data, [0.9, 0.25, 0.25, 0.25, 0.25], seed=5)
    families = {"garch": garch, "har": har}
    strict = served_walk_forward(data, ORIGINS, families, refits(data), RULE)
    no_test = served_walk_forward(data, ORIGINS, families, refits(data), ServedRule(max_pvalue=1.0))
    assert [c.champion for c in strict.choices[1:]] == ["garch"] * 4
    # Where HAR's mean was lower, only the test kept GARCH.
    lower = [
        k
        for k, c in enumerate(strict.choices)
        if c.metrics.get("qlike_har", np.inf) < c.metrics.get("qlike_garch", np.inf)
    ]
    assert lower, "the case needs a refit where HAR's mean QLIKE is lower"
    for k in lower:
        assert strict.choices[k].metrics["dm_pvalue"] > 0.05
        assert "garch stays" in strict.choices[k].reason
    assert no_test.choices[lower[0]].champion == "har"


def test_the_preferred_family_sits_before_the_first_champion() -> None:
    data = toy()
    # HAR a little better throughout, never significantly: preferred, GARCH keeps every block.
    garch = paths(data, [0.3] * 5, seed=4)
    har = paths(data, [0.28] * 5, seed=5)
    families = {"garch": garch, "har": har}
    plain = served_walk_forward(data, ORIGINS, families, refits(data), RULE)
    preferred = ServedRule(max_pvalue=0.05, preferred="garch")
    served = served_walk_forward(data, ORIGINS, families, refits(data), preferred)
    assert plain.choices[1].champion == "har", "the case needs HAR's lower first-window mean"
    assert "garch preferred" in served.choices[1].reason
    assert [c.champion for c in served.choices[1:]] == ["garch"] * 4
    assert served.origins == {"garch": 99}


def test_nothing_after_the_refit_enters_the_choice() -> None:
    data, families = takeover_case()
    before = served_walk_forward(data, ORIGINS, families, refits(data), RULE)
    # Change every realized day from the fourth refit on, and every forecast made from it.
    rv = data.rv_sigma2.copy()
    rv[360:] *= 50.0
    changed = DailyData(data.ticker, data.dates, data.returns_pct, rv)
    later = ORIGINS >= 360
    garbled = {name: np.where(later[:, None], p * 40.0, p) for name, p in families.items()}
    after = served_walk_forward(changed, ORIGINS, garbled, refits(data), RULE)
    for k in range(4):  # the refits up to and including day 360
        assert after.choices[k] == before.choices[k]
    assert after.choices[4] != before.choices[4]


def test_the_window_is_the_test_window_of_the_days_before_the_refit() -> None:
    data, families = takeover_case()
    refit = data.dates[340]
    losses = window_losses(data, ORIGINS, families["garch"], refit, RULE)
    # The test window of the 340 days before: origins 305..338; the backtest's start at 300,
    # and the last origin's 1-day target (day 339) is the last day before the refit.
    assert losses["origin_date"].iloc[0] == data.dates[305]
    assert losses["origin_date"].iloc[-1] == data.dates[338]
    assert len(losses) == 34


def test_a_family_that_does_not_forecast_the_ticker_is_no_candidate() -> None:
    data, families = takeover_case()
    families["lstm"] = np.full_like(families["garch"], np.nan)  # a pooled net without it
    served = served_walk_forward(data, ORIGINS, families, refits(data), RULE)
    assert "lstm" not in served.served
    assert all("qlike_lstm" not in c.metrics for c in served.choices)
    assert served.champion == "har"


def test_a_refit_where_no_family_forecast_the_window_keeps_the_champion() -> None:
    data, families = takeover_case()
    # Every fit failed for the blocks from day 340 on: the last refit's window has no loss.
    failed = ORIGINS >= 340
    gaps = {name: np.where(failed[:, None], np.nan, p) for name, p in families.items()}
    served = served_walk_forward(data, ORIGINS, gaps, refits(data), RULE)
    assert served.choices[-1].champion is None
    assert served.served[-1] == served.served[-2]
    assert served.served[-1] == served.choices[-2].champion
