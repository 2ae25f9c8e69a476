"""The daily job's warning when N live days cannot pass the Diebold-Mariano test asked for."""

from __future__ import annotations

import pytest

from volforecast.jobs.live_ab import dm_warning
from volforecast.registry.decision import DM_MIN_DATES
from volforecast.settings import PromotionSettings


@pytest.mark.parametrize("days", [1, 5, DM_MIN_DATES - 1])
def test_fewer_live_days_than_the_test_needs_with_significance_asked_are_warned_of(
    days: int,
) -> None:
    warning = dm_warning(PromotionSettings(min_live_days=days, max_pvalue=0.05))
    assert warning is not None
    assert f"MIN_LIVE_DAYS={days}" in warning
    assert f"at least {DM_MIN_DATES} live days" in warning


@pytest.mark.parametrize(
    ("days", "max_pvalue"),
    [(0, 0.05), (DM_MIN_DATES, 0.05), (30, 0.01), (5, 1.0)],
    ids=["no-live-ab", "just-enough", "plenty", "no-significance-asked"],
)
def test_enough_days_or_no_test_asked_are_not_warned_of(days: int, max_pvalue: float) -> None:
    assert dm_warning(PromotionSettings(min_live_days=days, max_pvalue=max_pvalue)) is None
