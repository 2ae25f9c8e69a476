r"""The promotion decision, pure: does a challenger beat production on the same test window.

:func:`compare` reads both versions' QLIKE losses (:func:`losses_frame`) and
returns a :class:`Decision`; it touches neither MLflow nor the database
(:mod:`volforecast.registry.aliases` acts on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from volforecast.evaluation.stats import diebold_mariano
from volforecast.settings import PromotionSettings

DM_MIN_DATES = 10
"""Fewest dates on which :func:`one_sided_dm` gives a p-value."""

LIVE_GRACE_DAYS = 10
"""Weekdays beyond twice N after which an A/B that has not reached its N live days ends."""


def live_overdue(since: str, day: str, min_live_days: int) -> bool:
    """Whether an A/B that began on ``since`` ran past its time by ``day`` (ISO dates).

    A challenger whose forecasts cannot be stored beside production's (its files are gone,
    production was deleted) never reaches N live days; after ``2 N + LIVE_GRACE_DAYS``
    weekdays it is rejected and may be replaced, so that it blocks no later version.
    """
    weekdays = int(np.busday_count(since[:10], day[:10]))
    return weekdays > 2 * min_live_days + LIVE_GRACE_DAYS


@dataclass(frozen=True)
class Decision:
    """Whether a challenger replaces production, and the figures that decided it."""

    promote: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    live: bool = False
    """It won, and stays challenger to forecast beside production for
    ``PromotionSettings.min_live_days`` before the daily job may promote it."""


def compare(
    challenger: pd.DataFrame,
    production: pd.DataFrame | None,
    *,
    converged: bool,
    settings: PromotionSettings,
) -> Decision:
    r"""Decide on a challenger from both versions' QLIKE losses on the same test window.

    Parameters
    ----------
    challenger, production : pandas.DataFrame
        :class:`~volforecast.core.schemas.LossesSchema` frames; ``production`` is None when
        there is no production version yet.
    converged : bool
        Whether the challenger's fit converged; a version that did not is never promoted.
    settings : PromotionSettings
        The margin and the significance asked for.

    Returns
    -------
    Decision
        ``metrics`` holds both mean losses, their ratio, the Diebold–Mariano statistic and
        its one-sided p-value (challenger better), and the number of origins compared.

    Notes
    -----
    The comparison uses the origins both versions forecast. With several tickers (a pooled
    model) the losses are averaged across tickers per date first, so the Diebold–Mariano test
    runs on one time series and cross-sectional correlation cannot inflate its significance.
    """
    from volforecast.core.schemas import LossesSchema  # noqa: PLC0415  (imports pandera)

    LossesSchema.validate(challenger)
    if not converged:
        return Decision(False, "its fit did not converge, so it can never be promoted")
    if production is None:
        mean = float(challenger["loss"].mean()) if len(challenger) else math.nan
        return Decision(True, "first version: nothing in production yet", {"qlike": mean})
    LossesSchema.validate(production)
    both = challenger.merge(
        production, on=["ticker", "origin_date"], suffixes=("_challenger", "_production")
    )
    if both.empty:
        return Decision(False, "the two versions share no forecast origin to compare on")
    a, b = both["loss_challenger"], both["loss_production"]
    metrics = {
        "qlike_challenger": float(a.mean()),
        "qlike_production": float(b.mean()),
        "qlike_ratio": float(a.mean() / b.mean()),
        "n_origins": float(len(both)),
    }
    by_date = both.groupby("origin_date")[["loss_challenger", "loss_production"]].mean()
    metrics |= one_sided_dm(by_date["loss_challenger"], by_date["loss_production"])
    threshold = metrics["qlike_production"] * (1.0 - settings.margin)
    better = metrics["qlike_challenger"] < threshold
    figures = (
        f"QLIKE {metrics['qlike_challenger']:.4f} vs {metrics['qlike_production']:.4f} "
        f"(ratio {metrics['qlike_ratio']:.3f}, DM p = {metrics['dm_pvalue']:.3g}, "
        f"{len(both)} origins)"
    )
    if not better:
        margin = f" by the margin of {settings.margin:.1%}" if settings.margin else ""
        return Decision(False, f"does not beat production{margin}: {figures}", metrics)
    significant = settings.max_pvalue >= 1.0 or metrics["dm_pvalue"] <= settings.max_pvalue
    if not significant:
        return Decision(
            False, f"better, but not significantly (p > {settings.max_pvalue}): {figures}", metrics
        )
    return Decision(True, f"beats production: {figures}", metrics)


def one_sided_dm(challenger: pd.Series, incumbent: pd.Series) -> dict[str, float]:
    """The Diebold–Mariano statistic and its one-sided p-value that ``challenger`` is better.

    Both are loss series in date order; ``dm_pvalue`` is NaN under :data:`DM_MIN_DATES`
    dates, too few to test (so a ``max_pvalue`` below 1 is never met on them).
    """
    if len(challenger) < DM_MIN_DATES:
        return {"dm_pvalue": math.nan}
    test = diebold_mariano(challenger.to_numpy(), incumbent.to_numpy())
    # One-sided: evidence that the challenger's loss is smaller (a negative statistic).
    one_sided = test.pvalue / 2 if test.statistic < 0 else 1 - test.pvalue / 2
    return {"dm_statistic": test.statistic, "dm_pvalue": float(one_sided)}


def losses_frame(ticker: str, dates: pd.DatetimeIndex, losses: np.ndarray) -> pd.DataFrame:
    """One ticker's losses as :func:`compare` reads them: a ``LossesSchema`` frame."""
    return pd.DataFrame({"ticker": ticker, "origin_date": dates, "loss": losses})
