"""Returns and split/dividend adjustment of OHLC prices."""

from __future__ import annotations

import numpy as np
import pandas as pd

OHLC = ("open", "high", "low", "close")


def log_returns_pct(adj_close: pd.Series) -> pd.Series:
    r"""Percent log returns of an adjusted close series.

    Parameters
    ----------
    adj_close : pandas.Series
        Split- and dividend-adjusted closes in date order, all positive.

    Returns
    -------
    pandas.Series
        ``returns_pct`` with the same index; the first value is NaN.

    Notes
    -----
    .. math:: r_t = 100 \left(\ln P_t - \ln P_{t-1}\right)

    Percent units keep GARCH parameters near one, the scale ``arch`` optimises best on.
    """
    if (adj_close <= 0).any():
        msg = "log returns need positive prices"
        raise ValueError(msg)
    log_price = pd.Series(np.log(adj_close.to_numpy(dtype="float64")), index=adj_close.index)
    return 100.0 * log_price.diff()


def adjusted_ohlc(prices: pd.DataFrame) -> pd.DataFrame:
    r"""Open, high, low and close scaled onto the adjusted-close basis.

    Parameters
    ----------
    prices : pandas.DataFrame
        Columns ``open``, ``high``, ``low``, ``close`` (as traded) and ``adj_close``.

    Returns
    -------
    pandas.DataFrame
        Columns ``open``, ``high``, ``low``, ``close``, all multiplied by the day's
        adjustment factor; ``close`` equals ``adj_close``.

    Notes
    -----
    With :math:`f_t = \tilde C_t / C_t` (adjusted over traded close), every price of day
    :math:`t` is multiplied by :math:`f_t`. Ratios within a day (high over low, close over
    open) are unchanged, so range estimators are unaffected, while the overnight return
    :math:`\ln(f_t O_t / \tilde C_{t-1})` no longer jumps on split and dividend days.
    """
    factor = prices["adj_close"] / prices["close"]
    out = prices.loc[:, list(OHLC)].mul(factor, axis=0)
    out["close"] = prices["adj_close"]
    return out
