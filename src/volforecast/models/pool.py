"""A model's standardized returns kept by date, and the data they were computed from.

A model's VaR and ES read its own standardized returns over the last 1,000 days
(:meth:`~volforecast.models.base.VolatilityModel.standardized_returns`): a thousand one-step
forecasts. With the parameters frozen, a day's value depends only on the data up to that day,
so a model keeps what it computed (and saves it as ``pool.npz``): tomorrow's forecast
computes one day, not a thousand. A kept value is reused only where the data up to its day
is what it was computed from; a revised price, a day the quality gate now drops or another
start of the history makes the days from there on computed again.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData

log = logging.getLogger(__name__)

POOL_FILE = "pool.npz"


@dataclass(frozen=True)
class ReturnPool:
    """Standardized returns by date, and the data they were computed from."""

    z: pd.Series
    source: DailyData

    def known(self, data: DailyData, dates: pd.DatetimeIndex) -> np.ndarray:
        """The kept values of ``dates`` that ``data`` leaves valid; NaN for the others."""
        values = np.array(self.z.reindex(dates), dtype=np.float64)  # a copy, to fill in
        values[dates > self.valid_until(data)] = np.nan
        return values

    def valid_until(self, data: DailyData) -> pd.Timestamp:
        """The last date up to which ``data`` is the data the pool was computed from."""
        before = pd.Timestamp.min
        src, n = self.source, min(len(self.source), len(data))
        if n == 0 or src.dates[0] != data.dates[0]:
            return before
        same = (src.dates[:n] == data.dates[:n]) & (src.returns_pct[:n] == data.returns_pct[:n])
        same &= src.rv_sigma2[:n] == data.rv_sigma2[:n]
        for old, new in ((src.market_log_rv, data.market_log_rv),
                         (src.overnight_sigma2, data.overnight_sigma2)):  # fmt: skip
            if (old is None) != (new is None):
                return before
            if old is not None and new is not None:
                same &= old[:n] == new[:n]
        first_change = n if same.all() else int(np.argmin(same))
        return data.dates[first_change - 1] if first_change else before

    def save(self, path: Path) -> None:
        """Write the values as ``path/pool.npz`` (the source is the model's saved data)."""
        np.savez(path / POOL_FILE, dates=self.z.index.to_numpy(dtype="datetime64[ns]"),
                 z=self.z.to_numpy(dtype=np.float64))  # fmt: skip


def load_pool(path: Path, source: DailyData) -> ReturnPool | None:
    """The pool saved in ``path`` for the model's saved data ``source``; None without one.

    A file that cannot be read is only a lost cache: it is logged and computed again.
    """
    file = path / POOL_FILE
    if not file.exists():
        return None
    try:
        with np.load(file) as saved:
            z = pd.Series(saved["z"], index=pd.DatetimeIndex(saved["dates"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("%s cannot be read, its values are computed again: %s", file, exc)
        return None
    return ReturnPool(z, source)
