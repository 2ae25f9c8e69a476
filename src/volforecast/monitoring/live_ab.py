r"""The live A/B record, pure: a waiting challenger and production judged on the same days.

While a challenger waits for live evidence (``PromotionSettings.min_live_days``), the daily
job stores its forecasts beside production's in ``ml.volatility_predictions``. Here both
versions' stored paths of one ticker are judged against what was realized, exactly as the
training decision judges a test window: the ``h``-step variance sum of each stored path
(``h`` and the proxy from :class:`~volforecast.settings.PromotionSettings`) against the
realized proxy summed over the same ``h`` days, by QLIKE. The decision over those days is
:func:`~volforecast.registry.decision.compare`, the rule training uses.

No I/O here: :mod:`volforecast.jobs.live_ab` reads the stored rows and prices and acts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.core.losses import qlike_losses
from volforecast.evaluation.metrics import horizon_targets
from volforecast.registry.decision import Decision, compare, losses_frame
from volforecast.settings import PromotionSettings

LiveStatus = Literal[
    "waiting", "would promote", "not beating production", "promoted", "rejected", "none"
]
"""Where a live A/B stands: ``waiting`` for days, ready (``would promote``), losing after its
days (``not beating production``: the daily job rejects it), ``promoted``, ``rejected``, or
``none`` waiting."""

DAY_COLUMNS = ["ticker", "origin_date", "qlike_production", "qlike_challenger"]


def live_losses(
    stored: pd.DataFrame,
    data: DailyData,
    version: str,
    *,
    since: dt.date,
    settings: PromotionSettings,
) -> pd.DataFrame:
    r"""QLIKE of one version's stored forecasts of one ticker, per origin, as training judges.

    Parameters
    ----------
    stored : pandas.DataFrame
        The ticker's stored rows of one model type
        (:class:`~volforecast.core.schemas.PredictionsSchema`), any versions.
    data : DailyData
        The ticker's history up to the judged day: only origins whose ``h`` following days
        are in it are judged.
    version : str
        The registered version whose rows are judged.
    since : datetime.date
        The first origin judged (the last close the challenger was trained on).
    settings : PromotionSettings
        ``horizon`` (``h``) and ``proxy`` of the decision.

    Returns
    -------
    pandas.DataFrame
        A :class:`~volforecast.core.schemas.LossesSchema` frame: ``ticker``, ``origin_date``,
        ``loss``.

    Notes
    -----
    The stored ``predicted_volatility`` is daily volatility in percent, so the forecast
    variance of an origin is :math:`\sum_{s=1}^{h}\hat\sigma_s^2` (percent squared), compared
    with the realized proxy summed over the same ``h`` trading days by
    :math:`\mathrm{QLIKE} = \mathrm{RV}/\hat\sigma^2 - \log(\mathrm{RV}/\hat\sigma^2) - 1`.
    Paths missing a step up to ``h``, and origins that are not trading days of ``data``, are
    left out.
    """
    h = settings.horizon
    empty = losses_frame(data.ticker, pd.DatetimeIndex([]), np.array([], dtype=np.float64))
    if stored.empty or len(data) == 0:
        return empty
    origins = pd.to_datetime(stored["origin_date"])
    rows = stored[
        (stored["model_version"].astype(str) == str(version))
        & (stored["step"] <= h)
        & (origins >= pd.Timestamp(since))
    ]
    if rows.empty:
        return empty
    wide = rows.pivot_table(
        index="origin_date", columns="step", values="predicted_volatility", aggfunc="last"
    )
    wide = wide.reindex(columns=range(1, h + 1)).dropna()
    positions = data.dates.get_indexer(pd.DatetimeIndex(pd.to_datetime(wide.index)))
    on_days = positions >= 0
    sigma2 = wide.to_numpy(dtype=np.float64)[on_days] ** 2
    if not on_days.any():
        return empty
    targets = horizon_targets(data, positions[on_days], sigma2, h, settings.proxy)
    if not len(targets.rows):
        return empty  # nothing realized yet
    judged = pd.DatetimeIndex(pd.to_datetime(wide.index[on_days]))[targets.rows]
    return losses_frame(data.ticker, judged, qlike_losses(targets.realized, targets.forecast))


@dataclass(frozen=True)
class LiveRecord:
    """One registered model's live A/B: per-day QLIKE of both versions and the decision."""

    registered_model: str
    production: str | None
    challenger: str | None
    since: dt.date | None
    min_days: int
    days: pd.DataFrame
    """``ticker``, ``origin_date``, ``qlike_production``, ``qlike_challenger``: every origin
    both versions forecast and that is realized (one row per ticker for a pooled model)."""
    decision: Decision | None
    """:func:`~volforecast.registry.decision.compare` over those days; None without any."""
    promoted: bool = False
    """The challenger was promoted on this record (now or on an earlier day)."""
    rejected: bool = False
    """The daily job rejected the challenger on this record."""

    @property
    def live_days(self) -> int:
        """Distinct forecast origins both versions were judged on."""
        return int(self.days["origin_date"].nunique())

    @property
    def ready(self) -> bool:
        """Enough live days, on which it beat production by the promotion rule."""
        return (
            self.live_days >= self.min_days and self.decision is not None and self.decision.promote
        )

    @property
    def status(self) -> LiveStatus:
        """Where the A/B stands (see :data:`LiveStatus`)."""
        if self.promoted:
            return "promoted"
        if self.rejected:
            return "rejected"
        if self.challenger is None:
            return "none"
        if self.live_days < self.min_days:
            return "waiting"
        return "would promote" if self.ready else "not beating production"

    @property
    def why(self) -> str:
        """One sentence for the log and the report."""
        figures = "" if self.decision is None else f": {self.decision.reason}"
        match self.status:
            case "none":
                return "no challenger waits for live evidence"
            case "waiting":
                return f"waiting: {self.live_days} of {self.min_days} live days{figures}"
            case "not beating production":
                return f"not beating production after {self.live_days} live days{figures}"
            case "rejected":
                return f"rejected after {self.live_days} live days{figures}"
            case "would promote":
                return f"beat production over {self.live_days} live days{figures}"
        return f"promoted after {self.live_days} live days{figures}"

    def summary(self) -> dict[str, object]:
        """The figures as JSON holds them (NaN as null)."""
        metrics = {} if self.decision is None else self.decision.metrics
        mean = {
            side: _finite(float(self.days[f"qlike_{side}"].mean())) if len(self.days) else None
            for side in ("production", "challenger")
        }
        return {
            "registered_model": self.registered_model,
            "production": self.production,
            "challenger": self.challenger,
            "since": None if self.since is None else self.since.isoformat(),
            "live_days": self.live_days,
            "min_live_days": self.min_days,
            "qlike_production": mean["production"],
            "qlike_challenger": mean["challenger"],
            "dm_pvalue": _finite(metrics.get("dm_pvalue", math.nan)),
            "status": self.status,
            "reason": self.why,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def live_record(
    registered_model: str,
    production: str | None,
    challenger: str | None,
    since: dt.date | None,
    losses: tuple[pd.DataFrame, pd.DataFrame],
    settings: PromotionSettings,
    *,
    promoted: bool = False,
) -> LiveRecord:
    """The record of ``losses`` = (challenger's, production's) :func:`live_losses` frames.

    Only origins both versions were judged on count; the decision is the training rule
    (:func:`~volforecast.registry.decision.compare`) on them.
    """
    challenger_losses, production_losses = losses
    both = challenger_losses.merge(
        production_losses, on=["ticker", "origin_date"], suffixes=("_challenger", "_production")
    ).rename(columns={"loss_challenger": "qlike_challenger", "loss_production": "qlike_production"})
    days = both[DAY_COLUMNS].sort_values(["origin_date", "ticker"]).reset_index(drop=True)
    decision = None
    if len(days):
        decision = compare(challenger_losses, production_losses, converged=True, settings=settings)
    return LiveRecord(
        registered_model, production, challenger, since, settings.min_live_days, days, decision,
        promoted,
    )  # fmt: skip
