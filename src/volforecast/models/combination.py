"""An equal-weight combination of fitted models (``har+lstm``): a registered model of its own.

The backtest averages its members' paths itself (:func:`~volforecast.models.ensemble.equal_weight`);
training builds a :class:`CombinationModel` from members it has trained and registered, so
that the combination is logged, registered, judged, promoted and rolled back like any other
per-ticker model, and pins the member versions it averages. Its saved folder holds a copy of
each member (the pooled LSTM's per-ticker view, whole network included), so deleting or
rolling back a member's registered version never breaks a served combination.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.errors import ConfigurationError
from volforecast.models.base import VolatilityModel
from volforecast.models.ensemble import equal_weight
from volforecast.models.fit_report import FitReport

MEMBERS_FOLDER = "members"


class CombinationModel(VolatilityModel):
    r"""The mean of its members' variance paths, each member fitted (and registered) already.

    Parameters
    ----------
    members : sequence of str
        Catalog names of the members, two or more, e.g. ``("har", "lstm")``.
    weights : sequence of float, optional
        Fixed weights, one per member, positive and summing to one, chosen on the validation
        period; equal by default.

    Notes
    -----
    :math:`\hat\sigma^2_{t+h} = \frac{1}{M} \sum_{m=1}^{M} \hat\sigma^2_{m,t+h}`, the
    forecast combination that learns nothing and so cannot overfit (see
    :func:`~volforecast.models.ensemble.equal_weight`). A combination has no fit of its own:
    :meth:`of_members` builds it from fitted members; :meth:`fit` refuses.
    """

    kind = "combination"
    min_obs = 2

    def __init__(
        self,
        members: tuple[str, ...] | list[str] = ("har", "lstm"),
        weights: tuple[float, ...] | list[float] | None = None,
    ) -> None:
        super().__init__()
        names = tuple(str(m).strip().lower() for m in members)
        if len(names) < 2 or len(set(names)) != len(names):
            msg = f"a combination averages two or more different models, got {list(members)}"
            raise ConfigurationError(msg)
        self.members = names
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        if self.weights is not None and (
            len(self.weights) != len(names)
            or min(self.weights) <= 0
            or not np.isclose(sum(self.weights), 1.0)
        ):
            msg = f"weights are positive, one per member and sum to one, got {list(self.weights)}"
            raise ConfigurationError(msg)
        self._models: dict[str, VolatilityModel] = {}
        self._versions: dict[str, str] = {}

    @property
    def model_type(self) -> str:
        """``HAR+LSTM``: what forecasts and metrics are stored under (the catalog name)."""
        return "+".join(self.members).upper()

    @property
    def options(self) -> dict[str, Any]:
        """Constructor arguments."""
        if self.weights is None:
            return {"members": list(self.members)}
        return {"members": list(self.members), "weights": list(self.weights)}

    @property
    def member_models(self) -> dict[str, VolatilityModel]:
        """The fitted members by catalog name."""
        self._state()
        return dict(self._models)

    @property
    def warmup_days(self) -> int:
        """The longest history any member needs before a forecast origin."""
        return max(model.warmup_days for model in self.member_models.values())

    @property
    def member_versions(self) -> dict[str, str]:
        """The registered version of each member it combines (``"0"``: not registered)."""
        self._state()
        return dict(self._versions)

    @classmethod
    def of_members(
        cls,
        models: Mapping[str, VolatilityModel],
        versions: Mapping[str, str] | None = None,
        data: DailyData | None = None,
        weights: tuple[float, ...] | None = None,
    ) -> Self:
        """The combination of fitted ``models`` (by catalog name), at the end of ``data``.

        ``versions`` are the members' registered versions; ``data`` (by default the first
        member's) is the ticker's history, every member moved to its end; ``weights`` are
        the members' in the order of ``models`` (equal by default).
        """
        combination = cls(tuple(models), weights)
        fitted = [m for m in models.values() if m.is_fitted]
        if len(fitted) != len(models):
            msg = "a combination is built from fitted members: fit (or load) each first"
            raise ConfigurationError(msg)
        history = data if data is not None else fitted[0].data
        tickers = {m.data.ticker for m in fitted} | {history.ticker}
        if len(tickers) != 1:
            msg = f"a combination's members forecast one ticker, got {', '.join(sorted(tickers))}"
            raise ConfigurationError(msg)
        combination._models = dict(models)
        combination._versions = {m: str((versions or {}).get(m, "0")) for m in models}
        reports = [m.fit_report for m in fitted]
        report = FitReport(
            converged=all(r.converged for r in reports),
            message=f"{'equal-weight' if weights is None else 'weighted'} mean of " + ", ".join(
                f"{name} v{combination._versions[name]}" for name in combination.members
            ),
            warnings=tuple(f"{n}: {w}" for n, m in models.items() for w in m.fit_report.warnings),
            nobs=min(r.nobs for r in reports),
        )  # fmt: skip
        params = {f"{n}.{k}": v for n in combination.members for k, v in models[n].params.items()}
        combination._set_fitted(history, params, report)
        if data is not None:
            combination.update(data)
        return combination

    def fit(self, data: DailyData | pd.Series | pd.DataFrame, ticker: str | None = None) -> Self:
        """Refused: a combination is built from trained members (:meth:`of_members`)."""
        msg = (
            f"{'+'.join(self.members)} is built from trained members, it has no fit of its own: "
            f"train {', '.join(self.members)}, then `volforecast train --models "
            f"{'+'.join(self.members)}` (or CombinationModel.of_members in code)"
        )
        raise ConfigurationError(msg)

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:  # pragma: no cover
        self.fit(data)  # raises
        raise AssertionError

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        return equal_weight(
            [self._models[m].forecast_paths(data, origins, horizon) for m in self.members],
            self.weights,
        )

    def _one_step_sigma2(self, data: DailyData, origins: np.ndarray) -> np.ndarray:
        r"""The weighted mean of the members' one-step variances, read from their own pools.

        Notes
        -----
        A member's pool holds :math:`z_{m,t} = r_t / \sigma_{m,t|t-1}`, so its variance is
        :math:`(r_t / z_{m,t})^2` (equal to the forecast up to rounding) wherever
        :math:`r_t \neq 0`; only the other days are forecast again. Each member's pool is
        computed once and saved with it, so the combination does not forecast a thousand days
        of each member (the LSTM's were the costly part of training a combination) again.
        """
        dates = data.dates[origins + 1]
        returns_pct = data.returns_pct[origins + 1]
        paths = []
        for name in self.members:
            model = self._models[name]
            z = _kept_z(model, dates) if model.data is data else np.full(len(dates), np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                sigma2 = np.asarray((returns_pct / z) ** 2, dtype=np.float64)
            todo = np.flatnonzero(~(np.isfinite(sigma2) & (sigma2 > 0)))
            if len(todo):
                sigma2[todo] = model.forecast_paths(data, origins[todo], 1)[:, 0]
            paths.append(sigma2[:, None])
        return equal_weight(paths, self.weights)[:, 0]

    def _on_update(self, data: DailyData) -> None:
        for model in self._models.values():
            model.update(data)

    def _extra_state(self) -> dict[str, Any]:
        return {"member_versions": dict(self._versions)}

    def _save_files(self, path: Path) -> None:
        # Copies, not references: the combination's folder is all it needs to forecast.
        for name in self.members:
            target = path / MEMBERS_FOLDER / name
            if target.exists():
                shutil.rmtree(target)
            self._models[name].save(target)

    def _restore(self, extra: dict[str, Any], path: Path) -> None:
        self._models = {m: VolatilityModel.load(path / MEMBERS_FOLDER / m) for m in self.members}
        versions = extra.get("member_versions", {})
        self._versions = {m: str(versions.get(m, "0")) for m in self.members}


def _kept_z(model: VolatilityModel, dates: pd.DatetimeIndex) -> np.ndarray:
    """A member's standardized returns on ``dates`` from its own pool; NaN where it has none."""
    try:
        z = model.standardized_returns()  # computed once, then kept and saved with the member
    except (ValueError, ArithmeticError):  # too short a history for a pool
        return np.full(len(dates), np.nan)
    pool_dates = model.data.dates[len(model.data) - len(z) :]  # its pool ends on its last day
    return pd.Series(z, index=pool_dates).reindex(dates).to_numpy(dtype=np.float64)
