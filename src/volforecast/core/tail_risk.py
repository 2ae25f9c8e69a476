r"""Value at risk and expected shortfall from a model's own tails, at 1 day and over several.

A volatility forecast gives the scale of tomorrow's return; its tails come from the
standardized shocks :math:`z = r / \sigma`, which for daily stock returns are far fatter than
normal. Two sources of shocks are offered, both with unit variance:

- :class:`EmpiricalShocks`: a pool of the model's own past standardized returns, filtered
  historical simulation (Barone-Adesi, Giannopoulos and Vosper 1999);
- :class:`ParametricShocks`: the quantile function of a fitted distribution (the Student-t
  or skewed-t of a GARCH model).

:func:`tail_risk` is the one function that turns a forecast path and shocks into VaR and
ES; the service, the stored risk rows and the benchmarks all call it. Units: ``sigma2`` is a
daily variance in percent², a VaR or ES is a loss over the horizon as a positive percent log
return, and the mean return is taken as zero, as in :mod:`volforecast.core.risk`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Recursion = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Next day's variance from today's variance and today's return, elementwise (percent²)."""

RISK_LEVELS: tuple[float, ...] = (0.95, 0.975, 0.99)
RISK_DAYS: tuple[int, ...] = (1, 10)
DEFAULT_SIMULATIONS = 10_000
_LEGENDRE_NODES, _LEGENDRE_WEIGHTS = np.polynomial.legendre.leggauss(64)
MIN_POOL = 100
"""Fewest standardized returns a pool may hold: a 99 % tail of fewer has one value in it."""


class Shocks(Protocol):
    """Standardized shocks with unit variance: their lower tail and a way to draw them."""

    @property
    def method(self) -> str:
        """How the tails are made, in words a risk report can print."""
        ...

    def var_es(self, level: float) -> tuple[float, float]:
        """The one-day VaR and ES of a unit-variance shock at ``level``, as positive losses."""
        ...

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Independent shocks of the given shape."""
        ...


@dataclass(frozen=True)
class TailRisk:
    """VaR and ES of one forecast at one confidence level over ``days`` trading days."""

    level: float
    days: int
    var_pct: float
    """Loss exceeded with probability ``1 - level``, percent log return, positive."""
    es_pct: float
    """Mean loss beyond the VaR, percent log return, positive; at least ``var_pct``."""
    method: str = ""
    """How the tails were made: the shocks' source, and for several days the simulation."""


def _checked_level(level: float) -> float:
    if not 0.5 < level < 1.0:
        msg = f"a VaR level lies strictly between 0.5 and 1, got {level}"
        raise ValueError(msg)
    return float(level)


def _check_positive(sigma2: np.ndarray) -> np.ndarray:
    if not len(sigma2) or not (np.isfinite(sigma2).all() and (sigma2 > 0).all()):
        msg = f"a variance path is positive and finite, got {sigma2.tolist()[:5]}"
        raise ValueError(msg)
    return sigma2


def empirical_var_es(sample: npt.ArrayLike, level: float) -> tuple[float, float]:
    r"""VaR and ES of a sample's lower tail at confidence ``level``, as positive losses.

    Parameters
    ----------
    sample : array_like
        Finite values (standardized shocks, or simulated returns over a horizon).
    level : float
        Confidence level, e.g. 0.99.

    Returns
    -------
    tuple of float
        ``(var, es)``.

    Notes
    -----
    The VaR is minus the :math:`(1-c)` quantile taken as the :math:`k`-th smallest of
    :math:`n` values with :math:`k = (1-c)(n+1)`, interpolated (``method="weibull"``): a new
    draw falls below it with probability :math:`1-c` (see
    :func:`~volforecast.evaluation.stats.filtered_var_exceedances`). The ES is minus the mean
    of the values at or below that quantile, so that it is never less than the VaR; with
    fewer than one value in the tail the smallest value stands for it.
    """
    values = np.asarray(sample, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        msg = f"a tail needs two or more finite values, got {values.size}"
        raise ValueError(msg)
    tail = 1.0 - _checked_level(level)
    q = float(np.quantile(values, tail, method="weibull"))
    below = values[values <= q]
    es = -float(below.mean()) if len(below) else -float(values.min())
    return -q, max(es, -q)


@dataclass(frozen=True)
class EmpiricalShocks:
    """A pool of the model's own past standardized returns, drawn from as they are.

    The pool is not rescaled to unit variance: a model whose forecasts run low leaves
    shocks of variance above one, and the VaR built on them makes up for it. Non-finite
    values are dropped.
    """

    pool: np.ndarray
    method: str = "filtered historical simulation"

    def __post_init__(self) -> None:
        z = np.asarray(self.pool, dtype=np.float64).ravel()
        z = z[np.isfinite(z)]
        if len(z) < MIN_POOL:
            msg = f"a pool of standardized returns needs {MIN_POOL} or more values, got {len(z)}"
            raise ValueError(msg)
        object.__setattr__(self, "pool", z)

    def var_es(self, level: float) -> tuple[float, float]:
        """The pool's VaR and ES (:func:`empirical_var_es`)."""
        return empirical_var_es(self.pool, level)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Values of the pool drawn with replacement."""
        return np.asarray(rng.choice(self.pool, size=shape, replace=True))


@dataclass(frozen=True)
class ParametricShocks:
    """Shocks from a fitted distribution, given by its quantile function (unit variance).

    ``sampler`` draws from it directly where that is faster than the quantile of uniforms
    (a Student-t's by NumPy's generator: a hundred times faster than SciPy's quantile).
    """

    ppf: Callable[[np.ndarray], np.ndarray]
    method: str = "fitted distribution"
    sampler: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray] | None = None

    def var_es(self, level: float) -> tuple[float, float]:
        r"""The distribution's VaR and ES.

        Notes
        -----
        :math:`\mathrm{ES}_c = -\frac{1}{1-c}\int_0^{1-c} F^{-1}(u)\,du`, so that any
        distribution with a quantile function is served alike. With :math:`u = (1-c)s^4`
        the integrand vanishes at :math:`s = 0` despite the quantile's pole there, and a
        64-node Gauss-Legendre rule on :math:`s \in (0, 1)` gives it to about 1e-9
        relative for Student-t tails down to 2.5 degrees of freedom, in one call of the
        quantile function.
        """
        tail = 1.0 - _checked_level(level)
        q = float(self.ppf(np.array([tail]))[0])
        s = (_LEGENDRE_NODES + 1.0) / 2.0
        integrand = self.ppf(tail * s**4) * 4.0 * s**3
        area = float(np.sum(_LEGENDRE_WEIGHTS / 2.0 * integrand))  # the mean over the tail
        return -q, max(-area, -q)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draws by ``sampler``, or by the inverse transform of uniforms."""
        if self.sampler is not None:
            return np.asarray(self.sampler(rng, shape), dtype=np.float64)
        u = rng.uniform(size=int(np.prod(shape)))
        return np.asarray(self.ppf(u), dtype=np.float64).reshape(shape)


def simulate_returns(
    sigma2_path: npt.ArrayLike,
    shocks: Shocks,
    days: int,
    *,
    rng: np.random.Generator,
    n_sims: int = DEFAULT_SIMULATIONS,
    recursion: Recursion | None = None,
) -> np.ndarray:
    r"""Simulated returns summed over the first ``days`` days of a forecast, percent.

    Parameters
    ----------
    sigma2_path : array_like
        The forecast's variance path, percent² a day, at least ``days`` long (only its first
        value is read when ``recursion`` is given).
    shocks : Shocks
        Where the standardized shocks come from.
    days : int
        Days summed.
    rng : numpy.random.Generator
        The source of randomness.
    n_sims : int
        Simulated paths.
    recursion : callable, optional
        The model's variance recursion. Given, each day's shock feeds the next day's
        variance, as in ``arch``'s simulation and bootstrap forecasts; absent (HAR, the
        LSTM: no recursion in the shocks), every path follows the forecast's variance path.

    Returns
    -------
    numpy.ndarray
        ``n_sims`` summed log returns.

    Notes
    -----
    :math:`R = \sum_{h=1}^{d} \sigma_h z_h` with :math:`z_h` independent draws. Without a
    recursion :math:`\sigma_h^2` is the forecast path; with one,
    :math:`\sigma_{h+1}^2 = g(\sigma_h^2, \sigma_h z_h)` from the forecast's first day. Never
    :math:`\sqrt{d}` times the one-day figure: the path's shape and the tails of a sum are
    kept.
    """
    path = np.asarray(sigma2_path, dtype=np.float64)[: 1 if recursion is not None else days]
    if days < 1 or len(path) < (1 if recursion is not None else days):
        msg = f"a {days}-day simulation needs a variance path of {days} days, got {len(path)}"
        raise ValueError(msg)
    _check_positive(path)
    z = shocks.draw(rng, (n_sims, days))
    if recursion is None:
        return np.asarray(z @ np.sqrt(path))
    total = np.zeros(n_sims)
    sigma2 = np.full(n_sims, path[0])
    for h in range(days):
        returns = np.sqrt(sigma2) * z[:, h]
        total += returns
        sigma2 = recursion(sigma2, returns)
    return total


def tail_risk(
    sigma2_path: npt.ArrayLike,
    shocks: Shocks,
    *,
    levels: Sequence[float] = RISK_LEVELS,
    days: Sequence[int] = RISK_DAYS,
    rng: np.random.Generator,
    n_sims: int = DEFAULT_SIMULATIONS,
    recursion: Recursion | None = None,
) -> list[TailRisk]:
    r"""VaR and ES of one forecast at every level and horizon asked.

    Parameters
    ----------
    sigma2_path : array_like
        The forecast's variance path from its first day, percent² a day.
    shocks : Shocks
        The model's standardized shocks (:class:`EmpiricalShocks` or
        :class:`ParametricShocks`).
    levels, days : sequence
        Confidence levels and horizons in trading days.
    rng : numpy.random.Generator
        The source of randomness for horizons over one day (one simulation serves every
        level of a horizon).
    n_sims : int
        Simulated paths per horizon over one day.
    recursion : callable, optional
        The model's variance recursion (:func:`simulate_returns`).

    Returns
    -------
    list of TailRisk
        One per (horizon, level), horizons first.

    Notes
    -----
    One day needs no simulation: :math:`\mathrm{VaR}_c = \sigma_1 v_c` and
    :math:`\mathrm{ES}_c = \sigma_1 e_c`, with :math:`v_c, e_c` the shocks' own VaR and ES.
    """
    path = np.asarray(sigma2_path, dtype=np.float64)
    out: list[TailRisk] = []
    for d in days:
        if d == 1:
            sigma = float(np.sqrt(_check_positive(path[:1])[0]))
            for level in levels:
                v, e = shocks.var_es(level)
                out.append(TailRisk(level, 1, sigma * v, sigma * e, shocks.method))
            continue
        summed = simulate_returns(path, shocks, d, rng=rng, n_sims=n_sims, recursion=recursion)
        fed = "each shock feeding the variance" if recursion else "along the forecast path"
        method = f"{shocks.method}, {n_sims:,} paths simulated {fed}"
        for level in levels:
            v, e = empirical_var_es(summed, level)
            out.append(TailRisk(level, d, v, e, method))
    return out


def rolling_var_pct(
    returns_pct: npt.ArrayLike,
    sigma2: npt.ArrayLike,
    shocks_of: Callable[[np.ndarray], Shocks],
    level: float,
    *,
    pool_days: int,
    start: int = 0,
) -> np.ndarray:
    r"""Each day's one-day VaR as the model served it the evening before.

    Parameters
    ----------
    returns_pct : array_like
        Each day's return, percent, in date order.
    sigma2 : array_like
        The variance forecast for each of those days, made the evening before, percent².
    shocks_of : callable
        The model's shocks given a pool of its standardized returns (its ``tail_shocks``).
    level : float
        Confidence level, e.g. 0.99.
    pool_days : int
        Standardized returns before a day that make its pool (the model's ``TAIL_POOL_DAYS``).
    start : int, default 0
        The first day whose VaR is wanted; the days before it only fill pools.

    Returns
    -------
    numpy.ndarray
        A positive loss in percent per day from ``start``; NaN before it, and, for shocks
        drawn from a pool, for a day with fewer than :data:`MIN_POOL` days before it.

    Notes
    -----
    Day :math:`i`'s VaR is :math:`\sigma_i v_c(z_{i-p}, \dots, z_{i-1})` with
    :math:`z_j = r_j / \sigma_j`: the pool a model holds when it forecasts from day
    :math:`i-1`'s close with its parameters frozen, so that the monitor judges the VaR the
    service and the daily job gave, never one that knew the day.
    """
    r = np.asarray(returns_pct, dtype=np.float64)
    s2 = _check_positive(np.asarray(sigma2, dtype=np.float64))
    z = r / np.sqrt(s2)
    v = np.full(len(r), np.nan)
    try:
        kind = shocks_of(z)  # only to tell a fitted distribution from a pool
    except ValueError:  # too few returns for any pool
        return v
    if isinstance(kind, ParametricShocks):  # the pool plays no part: every day from start
        v[start:] = kind.var_es(level)[0]
        return np.asarray(np.sqrt(s2) * v)
    begin = max(MIN_POOL, start)
    if len(r) <= begin:
        return v
    full = max(begin, pool_days)
    for i in range(begin, min(full, len(r))):  # pools still growing: one at a time
        v[i] = shocks_of(z[max(0, i - pool_days) : i]).var_es(level)[0]
    if len(r) > full and isinstance(kind, EmpiricalShocks):
        # Every full pool at once, with the quantile empirical_var_es takes.
        windows = np.lib.stride_tricks.sliding_window_view(z[:-1], pool_days)[full - pool_days :]
        v[full:] = -np.quantile(windows, 1.0 - _checked_level(level), axis=1, method="weibull")
    else:
        for i in range(full, len(r)):
            v[i] = shocks_of(z[i - pool_days : i]).var_es(level)[0]
    return np.asarray(np.sqrt(s2) * v)


def gjr_recursion(omega: float, alpha: float, gamma: float, beta: float) -> Recursion:
    r"""The GJR-GARCH(1,1,1) variance recursion; ``gamma = 0`` gives GARCH(1,1).

    Notes
    -----
    :math:`\sigma_{t+1}^2 = \omega + (\alpha + \gamma\,1\{\epsilon_t < 0\})\,\epsilon_t^2
    + \beta\,\sigma_t^2` (Glosten, Jagannathan and Runkle 1993), with :math:`\epsilon_t` the
    day's return less its mean, taken as zero.
    """

    def step(sigma2: np.ndarray, eps: np.ndarray) -> np.ndarray:
        return np.asarray(omega + (alpha + gamma * (eps < 0)) * eps**2 + beta * sigma2)

    return step


def egarch_recursion(omega: float, alpha: float, gamma: float, beta: float) -> Recursion:
    r"""The EGARCH(1,1,1) variance recursion, as ``arch`` writes it.

    Notes
    -----
    :math:`\ln\sigma_{t+1}^2 = \omega + \alpha(|z_t| - \sqrt{2/\pi}) + \gamma z_t
    + \beta\ln\sigma_t^2` with :math:`z_t = \epsilon_t / \sigma_t` (Nelson 1991).
    """
    centre = math.sqrt(2.0 / math.pi)

    def step(sigma2: np.ndarray, eps: np.ndarray) -> np.ndarray:
        z = eps / np.sqrt(sigma2)
        return np.asarray(
            np.exp(omega + alpha * (np.abs(z) - centre) + gamma * z + beta * np.log(sigma2))
        )

    return step
