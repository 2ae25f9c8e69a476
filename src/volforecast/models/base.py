"""The one contract every volatility model honours, and the values it returns.

A model is fitted on a :class:`~volforecast.core.features.DailyData` (or on prices or percent
returns, converted on the way in), then forecasts the variance path of the next 1-30 trading
days. :meth:`VolatilityModel.update` feeds it newer data with its parameters frozen, which is
how a daily forecast is made without refitting; :meth:`VolatilityModel.forecast_paths` does
the same for many origins at once, which is how the walk-forward backtest stays fast.

Errors: :class:`~volforecast.errors.InsufficientDataError` for a series shorter than the
model's ``min_obs``, :class:`~volforecast.errors.InvalidSeriesError` for NaN or constant
data, :class:`~volforecast.errors.ModelNotFittedError` for using a model before fitting it.
Non-convergence is not an error: it is recorded in the :class:`FitReport`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd

from volforecast.core.calendar import trading_days_after
from volforecast.core.features import DailyData, as_daily_data
from volforecast.core.tail_risk import (
    DEFAULT_SIMULATIONS,
    RISK_DAYS,
    RISK_LEVELS,
    EmpiricalShocks,
    Recursion,
    Shocks,
    TailRisk,
    tail_risk,
)
from volforecast.core.term_structure import (
    TERM_DAYS,
    TermStructure,
    annualized_vol_pct,
    decay_persistence,
    extend_path,
)
from volforecast.errors import InsufficientDataError, InvalidSeriesError, ModelNotFittedError
from volforecast.models.fit_report import FitReport
from volforecast.models.pool import POOL_FILE, ReturnPool, load_pool

if TYPE_CHECKING:
    from volforecast.models.panel import FittedPanel

MAX_HORIZON = 30
TAIL_POOL_DAYS = 1000
"""Days of a model's own standardized returns behind its VaR and ES: about four years, so
that the 99 % tail holds ten of them."""
STATE_FILE = "model.json"
DATA_FILE = "data.npz"


@dataclass(frozen=True)
class VolatilityForecast:
    """A forecast path of daily variances."""

    model: str
    """Model type (``GARCH``, ``LSTM``, ...)."""
    version: str
    """Model version (the registry's; ``"0"`` for an unregistered model)."""
    ticker: str
    """What the forecast is for."""
    origin_date: dt.date
    """Date of the last close the forecast uses."""
    forecast_dates: tuple[dt.date, ...]
    """The next trading days, one per step."""
    sigma2: np.ndarray
    """Variance of each day's return in percent², one per step (not cumulative)."""

    def __post_init__(self) -> None:
        if len(self.forecast_dates) != len(self.sigma2):
            msg = "one variance per forecast date"
            raise ValueError(msg)
        self.sigma2.setflags(write=False)

    @property
    def horizon(self) -> int:
        """Number of trading days forecast."""
        return len(self.sigma2)

    @property
    def vol_pct(self) -> np.ndarray:
        """Daily volatility in percent, ``sqrt(sigma2)``."""
        return np.asarray(np.sqrt(self.sigma2), dtype=np.float64)

    def to_frame(self) -> pd.DataFrame:
        """One row per step: step, forecast_date, sigma2, vol_pct."""
        return pd.DataFrame(
            {
                "step": np.arange(1, self.horizon + 1),
                "forecast_date": list(self.forecast_dates),
                "sigma2": self.sigma2,
                "vol_pct": self.vol_pct,
            }
        )


@dataclass
class _Fitted:
    data: DailyData
    report: FitReport
    params: dict[str, float]
    long_run_sigma2: float
    """The mean of the proxy over the fitted data, percent² a day."""


class VolatilityModel(ABC):
    """Base class of every model: validation, dates, persistence; subclasses do the maths.

    Subclasses set ``kind`` (the registry key), ``min_obs`` and implement :meth:`_fit`, and
    :meth:`_forecast` or, for speed, :meth:`_forecast_paths`, which then serves both.
    """

    kind: ClassVar[str]
    min_obs: ClassVar[int] = 100

    def __init__(self) -> None:
        self.version = "0"
        self._fitted: _Fitted | None = None
        self._pool: ReturnPool | None = None  # standardized returns by date (saved with it)

    # ---------------------------------------------------------------- public contract

    @property
    def model_type(self) -> str:
        """The name stored with forecasts and metrics: ``GARCH``, ``LSTM``, ..."""
        return self.kind.upper()

    @property
    def options(self) -> dict[str, Any]:
        """Constructor arguments, enough to build an unfitted twin.

        As scikit-learn's ``get_params``, the attributes named after ``__init__``'s parameters,
        in their order; a model that keeps its arguments otherwise overrides this.
        """
        parameters = inspect.signature(type(self)).parameters
        return {name: getattr(self, name) for name in parameters}

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run."""
        return self._fitted is not None

    @property
    def params(self) -> dict[str, float]:
        """Fitted parameters by name."""
        return dict(self._state().params)

    @property
    def fit_report(self) -> FitReport:
        """How the last fit went."""
        return self._state().report

    @property
    def data(self) -> DailyData:
        """The data the model last saw (fitted on, or updated with)."""
        return self._state().data

    def fit(self, data: DailyData | pd.Series | pd.DataFrame, ticker: str | None = None) -> Self:
        """Estimate the parameters on ``data``; forecasts then start from its last day."""
        daily = self._check(as_daily_data(data, ticker))
        params, report = self._fit(daily)
        self._set_fitted(daily, params, report)
        return self

    def update(self, data: DailyData | pd.Series | pd.DataFrame) -> Self:
        """Move the forecast origin to the end of ``data`` with the parameters frozen.

        ``data`` is the whole history up to the new origin (it may also be shorter, to look
        back in time); nothing is re-estimated.
        """
        state = self._state()
        daily = as_daily_data(data, state.data.ticker)
        if len(daily) < 2:
            msg = f"{daily.ticker}: an update needs at least 2 observations"
            raise InsufficientDataError(msg)
        self._fitted = _Fitted(daily, state.report, state.params, state.long_run_sigma2)
        self._on_update(daily)
        return self

    def forecast(self, horizon: int = 1) -> VolatilityForecast:
        """The variance path of the next ``horizon`` trading days (1 to 30)."""
        _check_horizon(horizon)  # before the fitted check, as forecast_paths orders them
        data = self.data
        sigma2 = self.forecast_paths(data, np.array([len(data) - 1]), horizon)[0]
        origin = data.last_date.date()
        return VolatilityForecast(
            model=self.model_type,
            version=self.version,
            ticker=data.ticker,
            origin_date=origin,
            forecast_dates=tuple(trading_days_after(origin, horizon)),
            sigma2=sigma2,
        )

    def forecast_paths(
        self, data: DailyData, origins: np.ndarray, horizon: int = MAX_HORIZON
    ) -> np.ndarray:
        """Variance paths from many origins of ``data`` with the parameters frozen.

        Parameters
        ----------
        data : DailyData
            A history that extends the fitted one (or equals it).
        origins : numpy.ndarray of int
            Positions in ``data``; the path from origin ``i`` uses days ``0..i`` only.
        horizon : int
            Steps per path.

        Returns
        -------
        numpy.ndarray
            ``sigma2`` of shape ``(len(origins), horizon)`` in percent².
        """
        _check_horizon(horizon)
        self._state()
        positions = np.asarray(origins, dtype=np.int64)
        if len(positions) and (positions.min() < 1 or positions.max() >= len(data)):
            msg = "origins must be positions inside the data, after its first day"
            raise ValueError(msg)
        paths = np.asarray(self._forecast_paths(data, positions, horizon), dtype=np.float64)
        if not (np.isfinite(paths).all() and (paths > 0).all()):
            msg = f"{self.kind} produced a variance that is not a positive number"
            raise ArithmeticError(msg)
        return paths

    def save(self, path: Path) -> Path:
        """Write the model to the directory ``path`` (created); :meth:`load` reads it back."""
        state = self._state()
        path.mkdir(parents=True, exist_ok=True)
        payload = {
            "kind": self.kind,
            "version": self.version,
            "options": self.options,
            "params": state.params,
            "fit_report": state.report.to_dict(),
            "ticker": state.data.ticker,
            "long_run_sigma2": state.long_run_sigma2,
            "extra": self._extra_state(),
        }
        (path / STATE_FILE).write_text(json.dumps(payload, indent=2, default=_json_default))
        np.savez_compressed(path / DATA_FILE, **state.data.to_arrays())  # type: ignore[arg-type]
        self._save_files(path)
        (path / POOL_FILE).unlink(missing_ok=True)  # never another version's
        with contextlib.suppress(ValueError, ArithmeticError):  # too short: made when asked
            self.standardized_returns()  # saved: a daily VaR then computes the days since only
        if self._pool is not None and self._pool.source is state.data:
            self._pool.save(path)
        return path

    @staticmethod
    def load(path: Path) -> VolatilityModel:
        """A model written by :meth:`save`, ready to forecast."""
        from volforecast.models.catalog import model_class_of_kind  # noqa: PLC0415  (circular)

        payload = json.loads((path / STATE_FILE).read_text())
        try:
            cls = model_class_of_kind(payload["kind"])
        except ValueError as exc:
            msg = f"{path}: {exc}"
            raise ValueError(msg) from exc
        model = cls(**payload["options"])
        model.version = str(payload["version"])
        with np.load(path / DATA_FILE) as arrays:
            data = DailyData.from_arrays(payload["ticker"], arrays)
        params = {k: float(v) for k, v in payload["params"].items()}
        report = FitReport.from_dict(payload["fit_report"])
        # Saved before the long run was kept: the saved data is the fitted data.
        model._set_fitted(data, params, report, payload.get("long_run_sigma2"))
        model._restore(payload["extra"], path)
        model._pool = load_pool(path, data)
        return model

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"

    # ---------------------------------------------------------------- risk

    def standardized_returns(self, days: int = TAIL_POOL_DAYS) -> np.ndarray:
        r"""The model's own standardized returns over the last ``days`` days of its data.

        Notes
        -----
        :math:`z_t = r_t / \sigma_{t|t-1}`, with :math:`\sigma^2_{t|t-1}` the one-step
        forecast made the day before with the frozen parameters (for GARCH the fit's
        conditional volatility). The mean return is left in, as a VaR here is of the return
        with no mean forecast. The pool moves with :meth:`update`, so that it ends where the
        forecast starts, and begins after :attr:`warmup_days`. Values computed once (and
        saved with the model) are reused while the data up to their day is unchanged
        (:mod:`volforecast.models.pool`).
        """
        data = self.data
        origins = np.arange(max(self.warmup_days, len(data) - 1 - days), len(data) - 1)
        dates = data.dates[origins + 1]
        z = np.full(len(dates), np.nan) if self._pool is None else self._pool.known(data, dates)
        todo = np.flatnonzero(~np.isfinite(z))
        if len(todo):
            sigma2 = self._one_step_sigma2(data, origins[todo])
            z[todo] = data.returns_pct[origins[todo] + 1] / np.sqrt(sigma2)
        self._pool = ReturnPool(pd.Series(z, index=dates), data)
        return z

    def _one_step_sigma2(self, data: DailyData, origins: np.ndarray) -> np.ndarray:
        """The one-step variance forecasts from ``origins`` behind :meth:`standardized_returns`."""
        return self.forecast_paths(data, origins, 1)[:, 0]

    @property
    def warmup_days(self) -> int:
        """Days of history a forecast origin needs; by default the fewest a fit takes."""
        return max(1, self.min_obs)

    def tail_shocks(self, pool: np.ndarray | None = None) -> Shocks:
        """The shocks of its VaR and ES: ``pool``, by default :meth:`standardized_returns`."""
        return EmpiricalShocks(self.standardized_returns() if pool is None else pool)

    def variance_recursion(self) -> Recursion | None:
        """A day's return to the next day's variance; None (HAR, LSTM): tails follow the path."""
        return None

    def long_run_sigma2(self) -> float:
        """Variance the forecasts tend to, percent² a day: by default the fitted mean proxy."""
        return self._state().long_run_sigma2

    def term_persistence(self, sigma2_path: np.ndarray, long_run_sigma2: float) -> float:
        """Daily decay to the long run past the model's own path: by default what its path shows."""
        return decay_persistence(sigma2_path, long_run_sigma2)

    def term_structure(
        self, days: Sequence[int] = TERM_DAYS, *, sigma2_path: np.ndarray | None = None
    ) -> TermStructure:
        """Annualised volatility from the data's last day to a year (``sigma2_path``: made)."""
        path = self.forecast(MAX_HORIZON).sigma2 if sigma2_path is None else sigma2_path
        long_run = self.long_run_sigma2()
        persistence = self.term_persistence(path, long_run)
        full = extend_path(path, long_run, persistence, max(days))
        vol = tuple(float(v) for v in annualized_vol_pct(full, days))
        return TermStructure(tuple(days), vol, long_run, persistence)

    def tail_risk(
        self,
        levels: Sequence[float] = RISK_LEVELS,
        days: Sequence[int] = RISK_DAYS,
        *,
        rng: np.random.Generator,
        n_sims: int = DEFAULT_SIMULATIONS,
        sigma2_path: np.ndarray | None = None,
    ) -> list[TailRisk]:
        """VaR and ES from the data's last day: the model's own path, shocks and recursion.

        ``sigma2_path``: the path, when made already (``max(days)`` long at least).
        """
        path = self.forecast(max(days)).sigma2 if sigma2_path is None else sigma2_path
        return tail_risk(
            path[: max(days)], self.tail_shocks(), levels=levels, days=days,
            rng=rng, n_sims=n_sims, recursion=self.variance_recursion(),
        )  # fmt: skip

    @classmethod
    def fit_panel(
        cls,
        datasets: Sequence[DailyData],
        *,
        warm_start: FittedPanel | None = None,
        on_epoch: Callable[[Any], None] | None = None,
        **options: Any,
    ) -> FittedPanel:
        """One fit for every ticker of ``datasets``: only a pooled model (the LSTM) has one.

        :func:`~volforecast.models.panel.fit_panel` calls it for a catalog entry with
        ``pooled=True``; every other model fits one ticker at a time.
        """
        msg = f"{cls.__name__} fits one ticker at a time; it has no pooled fit"
        raise NotImplementedError(msg)

    @classmethod
    def load_panel(cls, path: Path) -> FittedPanel:
        """The pooled panel its :meth:`fit_panel`'s panel saved to ``path``."""
        msg = f"{cls.__name__} saves one ticker per directory; {path} is no pooled panel"
        raise NotImplementedError(msg)

    # ---------------------------------------------------------------- for subclasses

    @abstractmethod
    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        """Estimate on ``data``; return the parameters and the report."""

    def _forecast(self, data: DailyData, horizon: int) -> np.ndarray:
        """The variance path from the last day of ``data`` with the fitted parameters."""
        msg = f"{type(self).__name__} implements neither _forecast nor _forecast_paths"
        raise NotImplementedError(msg)

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Paths from many origins; the default loops, subclasses vectorise."""
        return np.stack([self._forecast(data.head(int(i) + 1), horizon) for i in origins])

    def _on_update(self, data: DailyData) -> None:  # noqa: B027  (an optional hook)
        """Hook for models that cache a filtered state."""

    def _extra_state(self) -> dict[str, Any]:
        """JSON-ready state beyond the parameters (a scale, a normaliser)."""
        return {}

    def _save_files(self, path: Path) -> None:  # noqa: B027  (an optional hook)
        """Write state that is not JSON (network weights)."""

    def _restore(self, extra: dict[str, Any], path: Path) -> None:  # noqa: B027
        """Read back what :meth:`_extra_state` and :meth:`_save_files` wrote."""

    # ---------------------------------------------------------------- helpers

    def _set_fitted(
        self,
        data: DailyData,
        params: dict[str, float],
        report: FitReport,
        long_run_sigma2: float | None = None,
    ) -> None:
        """Mark the model fitted (also from outside :meth:`fit`: a pooled training run).

        ``long_run_sigma2`` is the mean of the proxy over the fitted data, when ``data`` is
        not all of it (a pooled panel saves only the last days of each ticker).
        """
        if long_run_sigma2 is None:
            long_run_sigma2 = float(np.mean(data.rv_sigma2))
        self._fitted = _Fitted(data, report, params, long_run_sigma2)
        self._pool = None  # new parameters, new standardized returns

    def _state(self) -> _Fitted:
        if self._fitted is None:
            msg = f"{self.model_type} is not fitted yet: call fit() first"
            raise ModelNotFittedError(msg)
        return self._fitted

    def _check(self, data: DailyData) -> DailyData:
        if len(data) < self.min_obs:
            msg = (f"{data.ticker}: {self.model_type} needs at least {self.min_obs} "
                   f"observations, got {len(data)}")  # fmt: skip
            raise InsufficientDataError(msg)
        if float(np.std(data.returns_pct)) == 0.0:
            msg = f"{data.ticker}: the returns are constant; there is no volatility to model"
            raise InvalidSeriesError(msg)
        return data


def _check_horizon(horizon: int) -> None:
    if not 1 <= horizon <= MAX_HORIZON:
        msg = f"horizon must be between 1 and {MAX_HORIZON} trading days, got {horizon}"
        raise ValueError(msg)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()
    msg = f"cannot store {type(value).__name__} in model.json"
    raise TypeError(msg)
