r"""Value at risk of normal returns: the quantile the dashboard's bands and the Kupiec test share.

Units: ``vol_pct`` is a daily volatility in percent; a value at risk is a one-day loss as a
percent log return.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from scipy import stats


# SciPy's quantile function costs far more than the statistics it serves, and the monitor asks
# for the same few levels every day of every ticker.
@functools.lru_cache(maxsize=256)
def normal_quantile(level: float) -> float:
    r"""The standard normal quantile :math:`z_\alpha` of ``level`` (1.645 at 0.95)."""
    return float(stats.norm.ppf(level))


def normal_var_pct(vol_pct: npt.ArrayLike, level: float) -> np.ndarray:
    r"""The one-day normal value at risk at confidence ``level`` of daily volatilities, in percent.

    Notes
    -----
    For a forecast daily volatility :math:`\sigma_{t+h}` (``vol_pct``) and confidence level
    :math:`\alpha`,

    .. math:: \mathrm{VaR}_\alpha(t+h) = z_\alpha \, \sigma_{t+h},

    the loss, as a percent log return, that day :math:`t+h` exceeds with probability
    :math:`1-\alpha` when returns are normal with mean zero. The mean is left out because a
    daily mean return is a few hundredths of a percent, far inside the forecast error of
    :math:`\sigma`, and no volforecast model forecasts it.
    """
    return normal_quantile(level) * np.asarray(vol_pct, dtype=np.float64)
