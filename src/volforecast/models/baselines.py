"""Baselines every forecast must beat: RiskMetrics EWMA, rolling historical volatility, HAR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

from volforecast.core.features import (
    RV_FLOOR_FRACTION,
    SEASON_LAGS,
    DailyData,
    season_peaks,
    seasonal_regressors,
)
from volforecast.errors import InsufficientDataError, InvalidSeriesError
from volforecast.models.base import MAX_HORIZON, VolatilityModel
from volforecast.models.fit_report import FitReport

_HAR_WEEK = 5
_HAR_MONTH = 22
_HAR_QUARTER = 66
# The optional groups of terms that read a series DailyData may lack, and that series.
_OPTIONAL_SERIES = {"market": "market_log_rv", "split": "overnight_sigma2"}
# With a seasonal variance, the lowest log-residual variance a step may predict, as a share
# of its constant one: a regression on squared residuals is noisy and may fall near zero or
# below in a quiet season, which would drop the log-normal correction it exists to adjust.
VARIANCE_FLOOR_SHARE = 0.25


def _mean_of_last(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values at each day; NaN for the first ``k - 1`` days."""
    if k == 1:
        return np.asarray(values, dtype=np.float64)  # exact, not a difference of sums
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    out = np.full(len(values), np.nan)
    out[k - 1 :] = (cumulative[k:] - cumulative[:-k]) / k
    return out


class EwmaModel(VolatilityModel):
    r"""RiskMetrics exponentially weighted moving average.

    Parameters
    ----------
    lam : float, default 0.94
        Decay per day (RiskMetrics' value for daily data).

    Notes
    -----
    .. math:: \sigma^2_{t+1} = \lambda \sigma^2_t + (1 - \lambda) r_t^2

    with zero mean and the recursion started at the mean square of the first 30 returns. The
    forecast is flat: EWMA is a random walk in variance, which is why it over-reacts at long
    horizons.

    References
    ----------
    .. [1] J.P. Morgan/Reuters (1996). *RiskMetrics — Technical Document*, 4th ed.
    """

    kind = "ewma"
    min_obs = 30

    def __init__(self, lam: float = 0.94) -> None:
        super().__init__()
        if not 0.0 < lam < 1.0:
            msg = f"lam must be strictly between 0 and 1, got {lam}"
            raise ValueError(msg)
        self.lam = lam

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        return {"lambda": self.lam}, FitReport(converged=True, persistence=1.0, nobs=len(data))

    def _filtered(self, data: DailyData) -> np.ndarray:
        """``sigma2`` for the day after each day of ``data``."""
        squared = data.returns_pct**2
        start = float(np.mean(squared[: self.min_obs]))
        # y_t = lam * y_{t-1} + (1 - lam) x_t, with y_{-1} = start
        filtered, _ = lfilter([1.0 - self.lam], [1.0, -self.lam], squared, zi=[self.lam * start])
        return np.asarray(filtered, dtype=np.float64)

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(self._filtered(data)[origins][:, None], horizon, axis=1)


class HistoricalModel(VolatilityModel):
    """Rolling historical volatility: the mean squared return of the last ``window`` days.

    The forecast is flat at that level. Zero mean, as for EWMA, so the two differ only in how
    they weigh the past.
    """

    kind = "historical"
    min_obs = 30

    def __init__(self, window: int = 22) -> None:
        super().__init__()
        if window < 2:
            msg = f"window must be at least 2 days, got {window}"
            raise ValueError(msg)
        self.window = window

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        return {"window": float(self.window)}, FitReport(converged=True, nobs=len(data))

    def _rolling(self, data: DailyData) -> np.ndarray:
        squared = data.returns_pct**2
        cumulative = np.concatenate(([0.0], np.cumsum(squared)))
        ends = np.arange(1, len(squared) + 1)
        starts = np.maximum(ends - self.window, 0)
        return (cumulative[ends] - cumulative[starts]) / (ends - starts)

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(self._rolling(data)[origins][:, None], horizon, axis=1)


class HarModel(VolatilityModel):
    r"""Heterogeneous autoregressive model of range-based realized variance, in logs.

    Parameters
    ----------
    horizon : int, default 30
        Steps estimated; one regression per step (a direct forecast, no iteration).
    leverage : bool, default True
        Add the day's and the week's negative returns (the leverage effect).
    quarterly : bool, default True
        Add the mean over a quarter (66 days) to the daily, weekly and monthly terms.
    seasonal : bool, default False
        Add the earnings-season terms of the target day (below). The catalog's ``har`` has
        them; the default stays off so that models saved before they existed load unchanged.
    market : bool, default False
        Add the market's daily, weekly and monthly log range variance (below), read from the
        data's market series (:meth:`DailyData.with_market`). Data that comes without one
        is fitted without the terms, and the fit report says so; a model fitted with them
        refuses to forecast from data without the series.
    split : bool, default False
        Replace the whole day's terms by those of its two parts, the session (open to close)
        and the overnight move (below). Data without OHLC prices is fitted with the whole
        day's terms, and the fit report says so; a model fitted with the parts refuses to
        forecast from data without them.
    seasonal_variance : bool, default False
        Let the log-normal correction grow with the earnings-season terms (below) instead of
        one constant per step. Needs ``seasonal=True``.
    half_life_days : float, optional
        :math:`H` below: weigh each day of the fit by :math:`2^{-a/H}`, :math:`a` being the
        trading days between its target and the last one. ``None``, the default, weighs
        every day alike.

    Notes
    -----
    With :math:`RV_t` the day's range-based variance (Garman–Klass with the overnight move),
    :math:`\overline{RV}^{(k)}_t` its mean over the last :math:`k` days and
    :math:`r^-_t = \min(r_t, 0)`, step :math:`s` is

    .. math::
        \ln RV_{t+s} = b_{0} + b_{d} \ln RV_t + b_{w} \ln \overline{RV}^{(5)}_t
                       + b_{m} \ln \overline{RV}^{(22)}_t + b_{q} \ln \overline{RV}^{(66)}_t
                       + \ell_{d} r^-_t + \ell_{w} \overline{r^-}^{(5)}_t + u_{t+s},

    each coefficient specific to the step, fitted by least squares.

    With ``split=True`` the terms in :math:`RV` become those of its two parts,
    :math:`RV_t = O_t + S_t`, with :math:`O_t` the squared overnight return and :math:`S_t`
    the session's Garman–Klass variance:

    .. math::
        b_{d} \ln S_t + b_{w} \ln \overline{S}^{(5)}_t + b_{m} \ln \overline{S}^{(22)}_t
        + b_{q} \ln \overline{S}^{(66)}_t
        + o_{w} \ln \overline{O}^{(5)}_t + o_{m} \ln \overline{O}^{(22)}_t,

    each part floored at 1 % of the whole day's variance over the same days (a stale open
    makes :math:`O_t` zero). The overnight move, a single squared return, enters only through
    its weekly and monthly means.

    With ``seasonal=True``
    step :math:`s` also has :math:`\sum_k c_{k} A_{t+s-L_k}` for the lags
    :math:`L = 63, 126, 189, 252` sessions (one to four quarters), where :math:`A_j` is the
    largest abnormal log variance within two sessions of day :math:`j`, and a day's
    abnormal log variance is :math:`\ln RV_i` less the median of :math:`\ln RV` over the 45
    sessions centred on it. They read no price after the origin (the latest day they look at
    is 39 sessions before the target day, and a forecast reaches 30 ahead).

    With ``market=True`` step :math:`s` also has
    :math:`m_{d} \ln M_t + m_{w} \ln \overline{M}^{(5)}_t + m_{m} \ln \overline{M}^{(22)}_t`,
    where :math:`\ln M_t` is the cross-sectional mean of :math:`\ln RV_t` across every
    stored ticker on day :math:`t` (:func:`~volforecast.core.features.market_log_rv`).

    The forecast undoes the log with the log-normal correction
    :math:`\hat\sigma^2_{t+s} = \exp(\hat b_s' x_t + \hat s^2_s / 2)`, :math:`\hat s^2_s`
    being the residual variance; without it the forecast would be the median, not the mean.
    With ``leverage=False, quarterly=False`` this is Corsi's log-HAR.

    With ``seasonal_variance=True`` the residual variance depends on the target day,
    :math:`\hat s^2_{s,t} = \max(g_{s,0} + \sum_k g_{s,k} \max(A_{t+s-L_k}, 0),\,
    \hat s^2_s / 4)`, with :math:`g_s` fitted by least squares of the squared residuals on
    the same season terms.

    With ``half_life_days`` :math:`= H` every least-squares fit above, the variance's
    included, is weighted: a day whose target is :math:`a` trading days older than the last
    weighs :math:`2^{-a/H}`.

    Why each term is there, and the backtests that chose it, is on the HAR page of the
    documentation (``docs/models/har.md``).

    References
    ----------
    .. [1] Corsi, F. (2009). A simple approximate long-memory model of realized volatility.
       *Journal of Financial Econometrics*, 7(2), 174–196.
    .. [2] Corsi, F., & Renò, R. (2012). Discrete-time volatility forecasting with persistent
       leverage effect and the link with continuous-time volatility modeling. *Journal of
       Business & Economic Statistics*, 30(3), 368–380.
    .. [3] Patton, A. J., & Verardo, M. (2012). Does beta move with news? Firm-specific
       information flows and learning about profitability. *Review of Financial Studies*,
       25(9), 2789–2839 (realized volatility on and around earnings announcements).
    """

    kind = "har"
    min_obs = 250

    def __init__(
        self,
        horizon: int = MAX_HORIZON,
        *,
        leverage: bool = True,
        quarterly: bool = True,
        seasonal: bool = False,
        market: bool = False,
        split: bool = False,
        seasonal_variance: bool = False,
        half_life_days: float | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= horizon <= MAX_HORIZON:
            msg = f"horizon must be between 1 and {MAX_HORIZON}, got {horizon}"
            raise ValueError(msg)
        if seasonal_variance and not seasonal:
            msg = "seasonal_variance reads the earnings-season terms: it needs seasonal=True"
            raise ValueError(msg)
        if half_life_days is not None and not half_life_days > 0:
            msg = f"half_life_days must be positive, or None for equal weights: {half_life_days}"
            raise ValueError(msg)
        self.horizon = horizon
        self.leverage = leverage
        self.quarterly = quarterly
        self.seasonal = seasonal
        self.market = market
        self.split = split
        self.seasonal_variance = seasonal_variance
        self.half_life_days = half_life_days
        # The optional groups the last fit had the series for: set by _fit, kept by save and
        # load. Until a fit, a group is in when asked for.
        self._fitted_with: dict[str, bool] | None = None

    @property
    def terms(self) -> tuple[str, ...]:
        """Names of the regressors, in order: those of the origin, then those of the target."""
        memory = ["daily", "weekly", "monthly"] + (["quarterly"] if self.quarterly else [])
        names = ["const"]
        if self._with("split"):
            names += [f"session_{m}" for m in memory]
            names += ["overnight_weekly", "overnight_monthly"]
        else:
            names += memory
        names += ["neg_return", "neg_return_week"] if self.leverage else []
        names += ["market_daily", "market_weekly", "market_monthly"] if self._with("market") else []
        names += [f"season_{lag}" for lag in SEASON_LAGS] if self.seasonal else []
        return tuple(names)

    @property
    def variance_terms(self) -> tuple[str, ...]:
        """Names of the log-residual variance's regressors; ``()`` when it is one constant."""
        if not self.seasonal_variance:
            return ()
        return ("const", *(f"season_{lag}" for lag in SEASON_LAGS))

    @staticmethod
    def _variance_design(design: np.ndarray) -> np.ndarray:
        """The variance regressors of a design: a constant, then the season terms above zero.

        A season term below zero (a quiet day a year ago) says nothing about this one's
        spread; only its abnormal days do.
        """
        season = design[:, -len(SEASON_LAGS) :]  # _design puts them last
        return np.column_stack([np.ones(len(design)), np.maximum(season, 0.0)])

    def _with(self, group: str) -> bool:
        """Whether an optional group of terms is in: asked for and, once fitted, fitted with."""
        if self._fitted_with is None:
            return bool(getattr(self, group))
        return self._fitted_with[group]

    def _series(self, data: DailyData, group: str) -> np.ndarray:
        """The series an optional group reads, or a clear error when the data lacks it."""
        series = getattr(data, _OPTIONAL_SERIES[group])
        if series is None:
            need = {
                "market": "the market series (`volforecast ingest` refreshes the stored one; "
                "DailyData.with_market attaches one)",
                "split": "the overnight returns (prices with an open, not returns alone)",
            }[group]
            msg = f"{data.ticker}: this HAR was fitted with {need}, and the data came without"
            raise InvalidSeriesError(msg)
        return np.asarray(series)

    def _weights(self, rows: np.ndarray) -> np.ndarray:
        """Least-squares weight of each origin: halved every ``half_life_days`` back."""
        if self.half_life_days is None:
            return np.ones(len(rows))
        return np.asarray(0.5 ** ((rows[-1] - rows) / self.half_life_days), dtype=np.float64)

    def _residual_variance(
        self, data: DailyData, weights: np.ndarray, residuals: np.ndarray, k: int
    ) -> float:
        r"""The weighted residual variance, corrected for ``k`` coefficients as ``ddof`` does.

        With equal weights this is ``residuals.var(ddof=k)``; with decaying ones the count of
        days becomes Kish's effective sample size, :math:`(\sum w)^2 / \sum w^2`. That
        correction is exact for a mean alone and close when the coefficients are few against
        the effective days (sixteen against some 2,500 for the catalog's ``har`` on fifteen
        years of history).
        """
        effective = weights.sum() ** 2 / (weights @ weights)
        if effective <= 2 * k:
            msg = (
                f"{data.ticker}: a half-life of {self.half_life_days} days leaves "
                f"{effective:.0f} effective days for {k} coefficients"
            )
            raise InsufficientDataError(msg)
        return float(weights @ residuals**2 / weights.sum() * effective / (effective - k))

    @property
    def _lookback(self) -> int:
        return _HAR_QUARTER if self.quarterly else _HAR_MONTH

    def regressors(self, data: DailyData) -> np.ndarray:
        """One row of regressors per day (see :attr:`terms`); NaN until the lookback is full."""
        rv = data.rv_sigma2
        windows = [1, _HAR_WEEK, _HAR_MONTH] + ([_HAR_QUARTER] if self.quarterly else [])
        columns = [np.ones(len(rv))]
        if self._with("split"):
            overnight = self._series(data, "split")
            session = np.asarray(data.session_sigma2)
            columns += [np.log(_mean_of_last(session, k)) for k in windows]
            for k in (_HAR_WEEK, _HAR_MONTH):
                floor = RV_FLOOR_FRACTION * _mean_of_last(rv, k)
                columns.append(np.log(np.maximum(_mean_of_last(overnight, k), floor)))
        else:
            columns += [np.log(_mean_of_last(rv, k)) for k in windows]
        if self.leverage:
            negative = np.minimum(data.returns_pct, 0.0)
            columns += [negative, _mean_of_last(negative, _HAR_WEEK)]
        if self._with("market"):
            market_log_rv = self._series(data, "market")
            market_rv = np.exp(market_log_rv)
            columns += [
                market_log_rv,
                np.log(_mean_of_last(market_rv, _HAR_WEEK)),
                np.log(_mean_of_last(market_rv, _HAR_MONTH)),
            ]
        return np.column_stack(columns)

    def _design(
        self, x: np.ndarray, peaks: np.ndarray | None, origins: np.ndarray, step: int
    ) -> np.ndarray:
        """Regressors of the forecasts ``step`` days ahead from ``origins``."""
        own = np.asarray(x[origins], dtype=np.float64)
        if peaks is None:
            return own
        return np.column_stack([own, seasonal_regressors(peaks, origins + step)])

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        self._fitted_with = {
            group: bool(getattr(self, group)) and getattr(data, series) is not None
            for group, series in _OPTIONAL_SERIES.items()
        }
        missing = {
            "market": "without the market term: the data came without the market series",
            "split": "with the whole day's variance, not its session and overnight parts: "
            "the data came without opening prices",
        }
        warnings = tuple(
            f"{data.ticker}: fitted {missing[group]}"
            for group in _OPTIONAL_SERIES
            if getattr(self, group) and not self._fitted_with[group]
        )
        x = self.regressors(data)
        peaks = season_peaks(data) if self.seasonal else None
        log_rv = np.log(data.rv_sigma2)
        params: dict[str, float] = {}
        for step in range(1, self.horizon + 1):
            rows = np.arange(self._lookback - 1, len(data) - step)
            design = self._design(x, peaks, rows, step)
            weights = self._weights(rows)
            root = np.sqrt(weights)
            target = log_rv[rows + step]
            coef, *_ = np.linalg.lstsq(design * root[:, None], target * root, rcond=None)
            residuals = target - design @ coef
            s2 = self._residual_variance(data, weights, residuals, design.shape[1])
            for name, value in zip(self.terms, coef, strict=True):
                params[f"s{step}.{name}"] = float(value)
            params[f"s{step}.resid_var"] = s2
            if self.seasonal_variance:
                gamma, *_ = np.linalg.lstsq(
                    self._variance_design(design) * root[:, None], residuals**2 * root, rcond=None
                )
                for name, value in zip(self.variance_terms, gamma, strict=True):
                    params[f"s{step}.var_{name}"] = float(value)
        # Every term in a log variance of the ticker's own: scaling all its variances by c
        # moves the forecast's log by persistence * ln c.
        memory = [
            t
            for t in self.terms
            if t.removeprefix("session_").removeprefix("overnight_")
            in {"daily", "weekly", "monthly", "quarterly"}
        ]
        persistence = sum(params[f"s1.{k}"] for k in memory)
        report = FitReport(
            converged=True, persistence=persistence, warnings=warnings, nobs=len(data)
        )
        return params, report

    def _extra_state(self) -> dict[str, Any]:
        return {f"fitted_with_{group}": self._with(group) for group in _OPTIONAL_SERIES}

    def _restore(self, extra: dict[str, Any], path: Path) -> None:
        # A model saved before a group existed was fitted as it was asked (without it).
        self._fitted_with = {
            group: bool(extra.get(f"fitted_with_{group}", getattr(self, group)))
            for group in _OPTIONAL_SERIES
        }

    def _coefficients(self, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Per step: coefficients, residual variance, and the variance's coefficients or None."""
        if horizon > self.horizon:
            msg = f"this HAR was fitted for {self.horizon} steps, not {horizon}"
            raise ValueError(msg)
        p = self.params
        steps = range(1, horizon + 1)
        coef = np.array([[p[f"s{s}.{n}"] for n in self.terms] for s in steps])
        s2 = np.array([p[f"s{s}.resid_var"] for s in steps])
        if not self.variance_terms:
            return coef, s2, None
        gamma = np.array([[p[f"s{s}.var_{n}"] for n in self.variance_terms] for s in steps])
        return coef, s2, gamma

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        coef, s2, gamma = self._coefficients(horizon)
        history = data.head(int(origins.max()) + 1)
        x = self.regressors(history)
        if np.isnan(x[origins]).any():
            msg = f"HAR needs {self._lookback} days of history before a forecast origin"
            raise ValueError(msg)
        peaks = season_peaks(history) if self.seasonal else None
        columns = []
        for step in range(1, horizon + 1):
            design = self._design(x, peaks, origins, step)
            resid_var = np.full(len(origins), s2[step - 1])
            if gamma is not None:
                predicted = self._variance_design(design) @ gamma[step - 1]
                resid_var = np.maximum(predicted, VARIANCE_FLOOR_SHARE * s2[step - 1])
            columns.append(design @ coef[step - 1] + resid_var / 2.0)
        return np.asarray(np.exp(np.column_stack(columns)), dtype=np.float64)
