"""A forecast combination whose weights are learned on validation data only."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from volforecast.core.features import DailyData
from volforecast.core.losses import qlike_losses
from volforecast.models.base import MAX_HORIZON, VolatilityModel
from volforecast.models.fit_report import FitReport

DEFAULT_MEMBERS = ("garch", "gjr-garch-t", "har", "ewma")


def combination_weights(paths: np.ndarray, proxy: np.ndarray) -> np.ndarray:
    r"""Weights on the simplex that minimise the QLIKE of a combined variance forecast.

    Parameters
    ----------
    paths : numpy.ndarray
        Member forecasts, shape ``(members, observations)``, percent².
    proxy : numpy.ndarray
        Realized variance of the same days, shape ``(observations,)``, positive.

    Returns
    -------
    numpy.ndarray
        Non-negative weights summing to one.

    Notes
    -----
    Minimises :math:`\sum_t L(RV_t, \sum_m w_m h_{m,t})` over the simplex
    (:math:`w_m \geq 0`, :math:`\sum_m w_m = 1`) by SLSQP; QLIKE makes the weights robust to
    the noise of the proxy, and the simplex keeps the combination a variance.
    """
    k = paths.shape[0]

    def loss(w: np.ndarray) -> float:
        return float(np.mean(qlike_losses(proxy, np.maximum(w @ paths, 1e-12))))

    best = minimize(
        loss,
        np.full(k, 1.0 / k),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        options={"ftol": 1e-10, "maxiter": 200},
    )
    w = np.clip(best.x, 0.0, None)
    return np.asarray(w / w.sum(), dtype=np.float64)


def equal_weight(paths: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The average of member variance paths, with no weight learned: equal, or fixed ones.

    Parameters
    ----------
    paths : sequence of numpy.ndarray
        Member forecasts of the same origins and steps, percent²; NaN where a member has no
        forecast.
    weights : sequence of float, optional
        One per member, positive, summing to one: weights chosen beforehand (on the
        validation period), never on the data forecast. Equal by default.

    Returns
    -------
    numpy.ndarray
        Their (weighted) mean, NaN wherever any member is missing (half a combination is not
        one).

    Notes
    -----
    Equal weights are the combination that cannot overfit: with two or three strong members
    whose errors differ, estimated weights rarely beat them out of sample (the "forecast
    combination puzzle", Smith & Wallis 2009), and nothing about the test period can leak into
    them. It is how the pooled LSTM, which has no per-ticker validation forecasts to learn
    weights from in a walk-forward backtest, is combined with per-ticker models.
    """
    if len(paths) < 2:
        msg = "a combination needs at least two members"
        raise ValueError(msg)
    if weights is None:
        return np.asarray(np.mean(np.stack(paths), axis=0), dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(paths) or (w <= 0).any() or not np.isclose(w.sum(), 1.0):
        msg = f"a combination's weights are positive, one per member and sum to one: {list(w)}"
        raise ValueError(msg)
    return np.asarray(np.tensordot(w, np.stack(paths), axes=1), dtype=np.float64)


class EnsembleModel(VolatilityModel):
    """Weighted average of member forecasts, one weight vector per forecast step.

    Parameters
    ----------
    members : sequence of str
        Catalog names of the members.
    validation_fraction : float, default 0.1
        The most recent share of the fitting data on which the weights are learned.

    Notes
    -----
    The split mirrors the LSTM's: the members are fitted on the first
    ``1 - validation_fraction`` of the data, forecast every day of the rest with their
    parameters frozen, and the weights of each step are chosen on those out-of-sample
    forecasts (:func:`combination_weights`). Forecasts then filter all the data with the
    members' parameters kept. In a backtest the data ends before the test period, so neither
    the members nor the weights ever see it. Members whose fit does not converge get no
    weight.
    """

    kind = "ensemble"
    min_obs = 400

    def __init__(
        self,
        members: tuple[str, ...] | list[str] = DEFAULT_MEMBERS,
        validation_fraction: float = 0.1,
    ) -> None:
        super().__init__()
        if not members:
            msg = "an ensemble needs at least one member"
            raise ValueError(msg)
        if not 0.02 <= validation_fraction <= 0.5:
            msg = f"validation_fraction must be between 0.02 and 0.5, got {validation_fraction}"
            raise ValueError(msg)
        self.members = tuple(members)
        self.validation_fraction = validation_fraction
        self._models: list[VolatilityModel] = []
        self._weights = np.empty((0, 0))

    @property
    def options(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {"members": list(self.members), "validation_fraction": self.validation_fraction}

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        from volforecast.models.catalog import build_model  # noqa: PLC0415  (circular)

        n_validation = max(int(len(data) * self.validation_fraction), 2 * MAX_HORIZON)
        train = data.head(len(data) - n_validation)
        members = [build_model(name).fit(train) for name in self.members]
        usable = [i for i, m in enumerate(members) if m.fit_report.converged]
        notes = [
            f"{self.members[i]} did not converge and gets no weight"
            for i in range(len(members))
            if i not in usable
        ]
        # A member's own warnings (HAR fitted without the market, say) are the ensemble's too.
        notes += [
            f"{self.members[i]}: {warning}"
            for i in usable
            for warning in members[i].fit_report.warnings
        ]
        if not usable:
            return {}, FitReport(converged=False, message="; ".join(notes), nobs=len(data))
        origins = np.arange(len(train) - 1, len(data) - 1)
        paths = np.stack([members[i].forecast_paths(data, origins, MAX_HORIZON) for i in usable])
        weights = np.zeros((MAX_HORIZON, len(self.members)))
        for step in range(1, MAX_HORIZON + 1):
            rows = origins + step < len(data)
            proxy = data.rv_sigma2[origins[rows] + step]
            weights[step - 1, usable] = combination_weights(paths[:, rows, step - 1], proxy)
        self._models = members
        self._weights = weights
        params = {
            f"s{s + 1}.{name}": float(weights[s, j])
            for s in range(MAX_HORIZON)
            for j, name in enumerate(self.members)
        }
        report = FitReport(
            converged=True,
            warnings=tuple(notes),
            nobs=len(data),
            message=f"weights from the last {n_validation} days",
        )
        return params, report

    def _weights_now(self) -> np.ndarray:
        if self._weights.size == 0:
            p = self.params
            self._weights = np.array(
                [[p[f"s{s + 1}.{n}"] for n in self.members] for s in range(MAX_HORIZON)]
            )
        return self._weights

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        weights = self._weights_now()[:horizon]
        total = np.zeros((len(origins), horizon))
        for j, model in enumerate(self._models):
            if weights[:, j].any():
                total += weights[:, j] * model.forecast_paths(data, origins, horizon)
        return total

    def _save_files(self, path: Path) -> None:
        for name, model in zip(self.members, self._models, strict=True):
            target = path / "members" / name
            if target.exists():
                shutil.rmtree(target)
            model.save(target)

    def _restore(self, extra: dict[str, Any], path: Path) -> None:
        self._models = [VolatilityModel.load(path / "members" / n) for n in self.members]
