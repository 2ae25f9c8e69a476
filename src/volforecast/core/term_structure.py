r"""A volatility term structure to one year, as NYU's V-Lab publishes it.

A model forecasts its variance path 1-30 days ahead; a risk desk reads volatility out to a
year. :func:`extend_path` carries a path beyond its last day toward the model's long-run
variance at a persistence of its own, and :func:`annualized_vol_pct` turns a path into V-Lab's
annualised volatility over each horizon. Units: ``sigma2`` is a daily variance in percent²,
``vol_ann_pct`` an annualised volatility in percent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TERM_DAYS: tuple[int, ...] = (1, 5, 22, 126, 252)
"""V-Lab's horizons: a day, a week, a month, six months and a year of trading days."""
TERM_HORIZON = 252
TRADING_DAYS_A_YEAR = 252
MAX_PERSISTENCE = 0.995
"""The slowest decay a measured path may claim (a half-life of 138 days): a path that does
not decay in 30 days says nothing of the next 222, and must still come home."""


@dataclass(frozen=True)
class TermStructure:
    """A model's annualised volatility at V-Lab's horizons, and what carried it there."""

    days: tuple[int, ...]
    vol_ann_pct: tuple[float, ...]
    """``sqrt(252 * mean(sigma2 over the first d days))`` for each ``d`` of ``days``, percent."""
    long_run_sigma2: float
    """The variance the path tends to, percent² a day."""
    persistence: float
    """Daily decay of the distance to the long-run variance beyond the model's own path."""

    @property
    def half_life_days(self) -> float:
        """Trading days for the distance to the long-run variance to halve."""
        return half_life_days(self.persistence)

    @property
    def long_run_vol_ann_pct(self) -> float:
        """The long-run variance as an annualised volatility, percent."""
        return math.sqrt(TRADING_DAYS_A_YEAR * self.long_run_sigma2)


def half_life_days(persistence: float) -> float:
    r""":math:`\ln 0.5 / \ln\phi`; infinite at or above 1, zero at or below 0."""
    if persistence >= 1.0:
        return math.inf
    if persistence <= 0.0:
        return 0.0
    return math.log(0.5) / math.log(persistence)


def decay_persistence(sigma2_path: npt.ArrayLike, long_run_sigma2: float) -> float:
    r"""The daily persistence a forecast path shows on its way to ``long_run_sigma2``.

    Notes
    -----
    With :math:`d_h = \sigma^2_h - \bar\sigma^2`, a path that decays geometrically has
    :math:`d_h = d_1 \phi^{h-1}`. :math:`\phi` is the slope, by least squares through the
    origin, of :math:`\ln(d_h / d_1)` on :math:`h - 1` over the steps on the same side as
    :math:`d_1`; it is exact for GARCH(1,1) and GJR-GARCH, whose persistence it recovers.
    A path that starts at the long-run level or never moves toward it gives
    :data:`MAX_PERSISTENCE`; the result is clipped to ``[0, MAX_PERSISTENCE]``.
    """
    d = np.asarray(sigma2_path, dtype=np.float64) - long_run_sigma2
    if len(d) < 2 or d[0] == 0.0:
        return MAX_PERSISTENCE
    ratio = d / d[0]
    steps = np.arange(len(d), dtype=np.float64)
    usable = ratio > 0
    x, y = steps[usable][1:], np.log(ratio[usable][1:])
    if not len(x):
        return 0.0  # the path crossed the long-run level at once
    slope = float(np.dot(x, y) / np.dot(x, x))
    return float(np.clip(math.exp(slope), 0.0, MAX_PERSISTENCE))


def extend_path(
    sigma2_path: npt.ArrayLike,
    long_run_sigma2: float,
    persistence: float,
    horizon: int = TERM_HORIZON,
) -> np.ndarray:
    r"""A variance path carried from its last day to ``horizon`` days.

    Notes
    -----
    Beyond the path's last step :math:`H`,
    :math:`\sigma^2_h = \bar\sigma^2 + (\sigma^2_H - \bar\sigma^2)\,\phi^{h-H}`: the
    distance to the long-run variance decays by :math:`\phi` a day, as a GARCH(1,1)
    forecast does with its own persistence and unconditional variance.
    """
    path = np.asarray(sigma2_path, dtype=np.float64)
    if len(path) >= horizon:
        return path[:horizon].copy()
    if not 0.0 <= persistence < 1.0 or not long_run_sigma2 > 0:
        msg = (
            "a path is carried to its long-run variance (positive) at a persistence in "
            f"[0, 1), got {long_run_sigma2} and {persistence}"
        )
        raise ValueError(msg)
    beyond = np.arange(1, horizon - len(path) + 1, dtype=np.float64)
    tail = long_run_sigma2 + (path[-1] - long_run_sigma2) * persistence**beyond
    return np.concatenate([path, tail])


def annualized_vol_pct(sigma2_path: npt.ArrayLike, days: Sequence[int] = TERM_DAYS) -> np.ndarray:
    r"""V-Lab's annualised volatility over each horizon of ``days``.

    Notes
    -----
    :math:`\mathrm{vol}_{ann}(d) = \sqrt{252 \cdot \frac1d \sum_{h=1}^{d} \sigma^2_h}`, in
    percent when :math:`\sigma^2_h` is in percent².
    """
    path = np.asarray(sigma2_path, dtype=np.float64)
    if max(days) > len(path) or min(days) < 1:
        msg = f"horizons must lie within the path's {len(path)} days, got {list(days)}"
        raise ValueError(msg)
    means = np.cumsum(path)[np.asarray(days) - 1] / np.asarray(days, dtype=np.float64)
    return np.asarray(np.sqrt(TRADING_DAYS_A_YEAR * means))
