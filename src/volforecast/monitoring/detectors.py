"""Drift detectors suited to volatility forecasts.

Each detector is a pure function of arrays and returns a :class:`Check`: the statistic, the
threshold it was held against, and whether it crossed it. Thresholds come from a nominal
false-alarm level (``alpha``, or an in-control average run length for CUSUM), so a detector
on data without a break fires at that rate, which the tests measure.

Units: ``returns_pct`` are percent log returns, ``sigma2`` and ``rv_sigma2`` daily variances
in percent², ``log_rv`` the natural log of a realized variance in percent².
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from volforecast.evaluation.stats import kupiec

Detector = Literal[
    "level_shift", "cusum", "kupiec_95", "kupiec_99", "ljung_box", "psi", "rmse", "data_quality"
]

# Siegmund's correction: the CUSUM overshoots its threshold by about this much, in units of
# the standard deviation, when the increments are normal.
_SIEGMUND_OVERSHOOT = 1.166


@dataclass(frozen=True)
class Check:
    """One detector's verdict on one day's data."""

    detector: Detector
    statistic: float
    threshold: float
    fired: bool
    detail: dict[str, float] = field(default_factory=dict)


# SciPy's quantile functions cost far more than the statistics they judge, and the monitor
# asks for the same few quantiles every day of every ticker.
@functools.lru_cache(maxsize=256)
def _chi2_quantile(q: float, df: int) -> float:
    return float(stats.chi2.ppf(q, df))


def _float_array(values: npt.ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _ar1_block_mean_variance(gamma0: float, phi: float, m: int) -> float:
    """Variance of the mean of ``m`` consecutive values of an AR(1) with variance ``gamma0``."""
    lags = np.arange(1, m)
    return gamma0 / m * (1.0 + 2.0 * float(np.sum((1.0 - lags / m) * phi**lags)))


@dataclass(frozen=True)
class LevelReference:
    """The reference level of log realized variance, ready for daily :meth:`check` calls.

    Built once per reference window by :meth:`from_window`; see :func:`level_shift`.
    """

    mean: float
    variance: float
    """Variance of the recent mean minus the reference mean under no shift."""
    recent_days: int
    threshold: float
    phi: float
    """Bias-corrected lag-1 autocorrelation of the reference."""

    @classmethod
    def from_window(
        cls, log_rv_reference: npt.ArrayLike, recent_days: int, *, alpha: float = 0.001
    ) -> LevelReference:
        """The level of ``log_rv_reference``, for comparisons with ``recent_days``-day means."""
        reference = _float_array(log_rv_reference)
        m, n = recent_days, len(reference)
        if m < 2 or n < 2 * m:
            msg = f"level_shift needs 2+ recent days and a reference twice as long, got {m}, {n}"
            raise ValueError(msg)
        e = reference - reference.mean()
        gamma0 = float(e @ e) / n
        raw = float(e[1:] @ e[:-1]) / float(e @ e) if gamma0 > 0 else 0.0
        phi = min(max(raw + (1.0 + 3.0 * raw) / n, -0.99), 0.99)  # Kendall's bias correction
        variance = sum(_ar1_block_mean_variance(gamma0, phi, size) for size in (m, n))
        effective_n = n * (1.0 - phi) / (1.0 + phi)
        threshold = float(stats.t.ppf(1.0 - alpha / 2.0, max(effective_n - 1.0, 2.0)))
        return cls(float(reference.mean()), variance, m, threshold, phi)

    def check(self, log_rv_recent: npt.ArrayLike) -> Check:
        """Whether the mean of the last ``recent_days`` values moved beyond the threshold."""
        recent = _float_array(log_rv_recent)[-self.recent_days :]
        difference = float(recent.mean()) - self.mean
        if self.variance > 0:
            z = difference / math.sqrt(self.variance)
        else:
            z = math.copysign(math.inf, difference) if difference else 0.0
        return Check("level_shift", z, self.threshold, abs(z) > self.threshold,
                     {"vol_ratio": math.exp(difference / 2.0), "phi": self.phi})  # fmt: skip


def level_shift(
    log_rv_reference: npt.ArrayLike, log_rv_recent: npt.ArrayLike, *, alpha: float = 0.001
) -> Check:
    r"""Test whether the level of realized volatility moved away from the reference window's.

    Parameters
    ----------
    log_rv_reference : array_like
        Log realized variance over the window the model was trained on (its last year).
    log_rv_recent : array_like
        Log realized variance of the last ``m`` days.
    alpha : float
        Two-sided false-alarm probability of one evaluation.

    Returns
    -------
    Check
        ``statistic`` is the t-score of the recent mean; ``detail['vol_ratio']`` is the
        geometric ratio of recent to reference volatility,
        :math:`\exp((\bar x_m - \bar x_{ref}) / 2)`.

    Notes
    -----
    Log realized variance is close to Gaussian but strongly autocorrelated, so a plain
    t-test would fire far too often. The reference is summarised as an AR(1) with variance
    :math:`\gamma_0` and lag-1 autocorrelation :math:`\phi` (Kendall's bias correction
    :math:`\hat\phi + (1 + 3\hat\phi)/n`), which gives the variance of the mean of
    :math:`m` consecutive days,

    .. math:: V_m = \frac{\gamma_0}{m}\Big(1 + 2\sum_{k=1}^{m-1}(1 - k/m)\phi^k\Big).

    :math:`t = (\bar x_m - \bar x_{ref}) / \sqrt{V_m + V_n}` is compared with Student's
    quantile at :math:`1 - \alpha/2` with :math:`n(1-\phi)/(1+\phi) - 1` degrees of
    freedom, the reference's effective size, so the false-alarm rate stays at
    :math:`\alpha` for persistent series too (the tests measure it for
    :math:`\phi` up to 0.9).
    """
    recent = _float_array(log_rv_recent)
    reference = LevelReference.from_window(log_rv_reference, len(recent), alpha=alpha)
    return reference.check(recent)


def cusum_threshold(arl0: float, k: float = 0.5) -> float:
    r"""Decision interval ``h`` of a one-sided CUSUM with in-control average run length ``arl0``.

    Parameters
    ----------
    arl0 : float
        Days between false alarms, on average, when the increments are iid N(0, 1).
    k : float
        Reference value (allowance), half the shift in standard deviations to detect fastest.

    Notes
    -----
    Siegmund's approximation [1]_ of the in-control run length with :math:`b = h + 1.166`:

    .. math:: ARL_0 \approx \frac{e^{2kb} - 2kb - 1}{2k^2},

    solved here for :math:`h`.

    References
    ----------
    .. [1] Siegmund, D. (1985). *Sequential Analysis: Tests and Confidence Intervals*.
       Springer.
    """
    if arl0 <= 1 or k <= 0:
        msg = "arl0 must exceed 1 and k must be positive"
        raise ValueError(msg)

    def gap(b: float) -> float:
        return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k) - arl0

    b = optimize.brentq(gap, 1e-9, 200.0 / k)
    return float(b - _SIEGMUND_OVERSHOOT)


@dataclass(frozen=True)
class CusumRun:
    """Where a two-sided CUSUM raised alarms.

    ``upper`` and ``lower`` are the two statistics after each day (reset to 0 after an
    alarm); ``alarms`` the positions where one crossed ``h``; ``direction`` +1 (forecasts too
    low: the errors drift up) or -1 for each alarm.
    """

    upper: np.ndarray
    lower: np.ndarray
    alarms: np.ndarray
    direction: np.ndarray
    h: float
    k: float


def cusum(u: npt.ArrayLike, *, h: float, k: float = 0.5) -> CusumRun:
    r"""Page's two-sided CUSUM of standardized errors ``u`` (mean 0, variance 1 in control).

    Notes
    -----
    :math:`S^+_t = \max(0, S^+_{t-1} + u_t - k)`, :math:`S^-_t = \max(0, S^-_{t-1} - u_t - k)`;
    an alarm is raised when either exceeds :math:`h`, and both restart at zero. Each day's
    decision uses that day and the ones before only, so the run is the same whether it is
    computed at once or day by day.

    References
    ----------
    .. [1] Page, E. S. (1954). Continuous inspection schemes. *Biometrika*, 41(1/2), 100–115.
    """
    values = _float_array(u)
    upper = np.zeros(len(values))
    lower = np.zeros(len(values))
    alarms: list[int] = []
    direction: list[int] = []
    s_hi = s_lo = 0.0
    for t, x in enumerate(values.tolist()):
        s_hi = max(0.0, s_hi + x - k)
        s_lo = max(0.0, s_lo - x - k)
        upper[t], lower[t] = s_hi, s_lo
        if s_hi > h or s_lo > h:
            alarms.append(t)
            direction.append(1 if s_hi > h else -1)
            s_hi = s_lo = 0.0
    return CusumRun(upper, lower, np.asarray(alarms, dtype=np.int64),
                    np.asarray(direction, dtype=np.int64), h, k)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _kupiec_null(n: int, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Kupiec's statistic for each possible count of exceedances in ``n`` days, and its odds.

    The odds are the binomial probabilities of the counts when the VaR is right. The arrays
    are cached and shared, so they are read-only.
    """
    counts = np.arange(n + 1)
    lr = np.array([kupiec(np.arange(n) < k, coverage).statistic for k in counts])
    pmf = stats.binom.pmf(counts, n, 1.0 - coverage)
    for array in (lr, pmf):
        array.setflags(write=False)
    return lr, pmf


@functools.lru_cache(maxsize=64)
def kupiec_critical_value(n: int, coverage: float, alpha: float) -> float:
    """The smallest Kupiec statistic whose exact p-value over ``n`` days is at most ``alpha``."""
    lr, pmf = _kupiec_null(n, coverage)
    # A count's p-value is the mass of every count whose statistic is at least as large.
    pvalues = np.array([pmf[lr >= value - 1e-9].sum() for value in lr])
    allowed = lr[pvalues <= alpha]
    return float(allowed.min()) if len(allowed) else math.inf


def var_exceedance(
    returns_pct: npt.ArrayLike, var_pct: npt.ArrayLike, *, coverage: float, alpha: float = 0.01
) -> Check:
    r"""Kupiec's test of the served VaR's exceedance rate over a window of days.

    A day exceeds when its return falls below ``-var_pct``, the one-day VaR at ``coverage``
    the model served the evening before from its own tails
    (:func:`~volforecast.core.tail_risk.rolling_var_pct`); a day without one (NaN) is not
    judged. The check fires when the exceedance rate differs from ``1 - coverage`` at level
    ``alpha``; ``detail`` holds the observed ``rate`` and ``expected`` rate and the exact
    p-value.

    Notes
    -----
    With a year of days a 99 % VaR expects 2.5 exceedances, too few for the
    :math:`\chi^2_1` approximation of the likelihood ratio: it fires twice as often as it
    says. The p-value here is exact, the binomial probability of a statistic at least as
    large, so the false-alarm rate is at most ``alpha`` (less where the counts are too coarse
    to reach it exactly); ``threshold`` is the smallest statistic that fires. A normal
    quantile of the forecast would make it fire on the fat tails of daily stock returns
    rather than on drift.
    """
    r = np.asarray(returns_pct, dtype=np.float64)
    var = np.asarray(var_pct, dtype=np.float64)
    judged = np.isfinite(var)
    name: Detector = "kupiec_99" if coverage >= 0.99 else "kupiec_95"
    if not judged.any():
        return Check(name, 0.0, math.inf, False, {"days": 0.0})
    hits = r[judged] < -var[judged]
    result = kupiec(hits, coverage)
    lr, pmf = _kupiec_null(len(hits), coverage)
    pvalue = float(pmf[lr >= result.statistic - 1e-9].sum())
    threshold = kupiec_critical_value(len(hits), coverage, alpha)
    return Check(name, result.statistic, threshold, pvalue <= alpha,
                 {**result.detail, "pvalue": pvalue})  # fmt: skip


def kupiec_size(n: int, coverage: float, alpha: float) -> float:
    """The exact false-alarm probability of :func:`var_exceedance` over ``n`` days."""
    lr, pmf = _kupiec_null(n, coverage)
    return float(pmf[lr >= kupiec_critical_value(n, coverage, alpha) - 1e-9].sum())


def ljung_box(
    returns_pct: npt.ArrayLike, sigma2: npt.ArrayLike, *, lags: int = 10, alpha: float = 0.01
) -> Check:
    r"""Ljung–Box test on squared standardized residuals: volatility the model left unexplained.

    Notes
    -----
    With :math:`z_t = r_t / \sigma_t` and :math:`\hat\rho_k` the autocorrelations of
    :math:`z_t^2`, :math:`Q = n(n+2)\sum_{k=1}^{L}\hat\rho_k^2/(n-k)` is
    :math:`\chi^2_L` when the model captured the clustering.

    References
    ----------
    .. [1] Ljung, G. M., & Box, G. E. P. (1978). On a measure of lack of fit in time series
       models. *Biometrika*, 65(2), 297–303.
    """
    z2 = _float_array(returns_pct) ** 2 / _float_array(sigma2)
    n = len(z2)
    if n <= lags + 1:
        msg = f"Ljung–Box with {lags} lags needs more than {lags + 1} days, got {n}"
        raise ValueError(msg)
    e = z2 - z2.mean()
    denominator = float(e @ e)
    q = 0.0
    if denominator > 0:
        for k in range(1, lags + 1):
            rho = float(e[k:] @ e[:-k]) / denominator
            q += rho * rho / (n - k)
        q *= n * (n + 2)
    threshold = _chi2_quantile(1.0 - alpha, lags)
    return Check("ljung_box", q, threshold, q > threshold, {"lags": float(lags)})


def _bin_shares(values: np.ndarray, edges: np.ndarray, bins: int) -> np.ndarray:
    """Share of each row of ``values`` in each bin cut by the matching row of ``edges``."""
    index = (values[..., None] > edges[..., None, :]).sum(axis=-1)
    counts = (index[..., None] == np.arange(bins)).sum(axis=-2)
    return np.asarray(counts / values.shape[-1])


def _psi_value(ref: np.ndarray, new: np.ndarray, edges: np.ndarray, bins: int) -> np.ndarray:
    """PSI of each row of ``new`` against the matching row of ``ref``, binned by ``edges``."""
    # Half an observation in an empty bin keeps the log finite.
    q = np.maximum(_bin_shares(ref, edges, bins), 0.5 / ref.shape[-1])
    p = np.maximum(_bin_shares(new, edges, bins), 0.5 / new.shape[-1])
    return np.asarray(((p - q) * np.log(p / q)).sum(axis=-1))


@functools.lru_cache(maxsize=32)
def psi_null_quantile(bins: int, n_ref: int, n_recent: int, q: float) -> float:
    """The ``q`` quantile of :func:`psi`'s statistic for two iid samples of one distribution.

    PSI with quantile bins depends on the data only through ranks, so its null distribution
    is the same for every continuous distribution: 20,000 pairs of uniform samples estimate
    it (a fixed seed makes the threshold reproducible; at ``q = 0.999`` the estimate rests on
    the 20 largest draws).
    """
    rng = np.random.default_rng(1_000_003)
    draws = 20_000
    levels = np.linspace(0, 1, bins + 1)[1:-1]
    values = []
    for _ in range(draws // 1_000):
        ref = rng.random((1_000, n_ref))
        new = rng.random((1_000, n_recent))
        edges = np.quantile(ref, levels, axis=1).T
        values.append(_psi_value(ref, new, edges, bins))
    return float(np.quantile(np.concatenate(values), q))


def psi(
    reference: npt.ArrayLike, recent: npt.ArrayLike, *, bins: int = 10, alpha: float = 0.001
) -> Check:
    r"""Population stability index of a recent sample's distribution against a reference.

    The monitor gives it standardized returns, each return over its forecast volatility.

    Notes
    -----
    Bins are the reference's quantiles (deciles by default);
    :math:`PSI = \sum_i (p_i - q_i)\ln(p_i / q_i)` with recent shares :math:`p_i` and
    reference shares :math:`q_i`. The customary fixed threshold of 0.25 fires on noise with
    a 60-day window, and the :math:`\chi^2` approximation fires too often with so few
    returns per bin; the threshold here is the :math:`1-\alpha` quantile under no change,
    simulated once per window size (:func:`psi_null_quantile`). When it fires, ``detail``
    adds the two-sample Kolmogorov–Smirnov statistic and p-value.
    """
    ref = _float_array(reference)
    new = _float_array(recent)
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
    value = float(_psi_value(ref, new, edges, bins))
    threshold = psi_null_quantile(bins, len(ref), len(new), 1.0 - alpha)
    if value <= threshold:
        return Check("psi", value, threshold, False)
    ks = stats.ks_2samp(ref, new)
    return Check("psi", value, threshold, True,
                 {"ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)})  # fmt: skip
