"""Data for model tests: a real index history from the bundled sample."""

from __future__ import annotations

import pytest

from volforecast.core.features import DailyData
from volforecast.data.sources import load_sample


@pytest.fixture(scope="session")
def gspc() -> DailyData:
    """The S&P 500, 1999-2018, as features."""
    frame = load_sample().frame
    return DailyData.from_prices(frame[frame["ticker"] == "^GSPC"])


@pytest.fixture(scope="session")
def ixic() -> DailyData:
    """The NASDAQ Composite, 1999-2018, as features."""
    frame = load_sample().frame
    return DailyData.from_prices(frame[frame["ticker"] == "^IXIC"])
