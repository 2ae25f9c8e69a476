"""The served forecast, backtested: the champion rule applied walk-forward at each refit.

At the first session of every refit block the rule training applies
(:func:`~volforecast.registry.champion.choose_champion`) chooses among the candidate families
of one ticker, its incumbent carried from the previous refit, and the family it chooses
forecasts the block. This is the forecast a user is served when a request names no model.

The window judged is the one training would judge on that date: the ticker's test window
(:func:`~volforecast.evaluation.test_window.window_origins`, the last 10 % of its days up to
the day before the refit), with the decision's loss (QLIKE of the
``settings.promotion.horizon``-day sum on ``settings.promotion.proxy``). Training forecasts
that window out of sample, with parameters fitted before it; the backtest's own paths for
those origins are out of sample too, each made by the fit of its block, so they are used
as they are. The window's origins before the backtest's first one have no backtest path:
:func:`~volforecast.evaluation.served_window.first_window_paths` forecasts them as training
would have on the last training day, and the caller passes them with the backtest's. Only
origins whose target was realized before the refit enter, so nothing after the refit date is
used. Where no family has forecast any origin of the window, the ticker keeps its champion,
or before its first is served :data:`~volforecast.models.catalog.DEFAULT_MODEL`, as the
service serves a ticker without a champion.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.core.losses import qlike_losses
from volforecast.evaluation.metrics import Proxy, horizon_targets
from volforecast.evaluation.test_window import window_origins
from volforecast.models.catalog import DEFAULT_MODEL
from volforecast.registry.champion import ChampionChoice, choose_champion
from volforecast.registry.decision import losses_frame


@dataclass(frozen=True)
class ServedRule:
    """How the rule judges: the decision's horizon, proxy and significance level."""

    max_pvalue: float
    horizon: int = 1
    proxy: Proxy = "range"
    default: str = DEFAULT_MODEL
    """The family that serves a ticker before its first champion."""
    preferred: str | None = None
    """The family the first decision treats as sitting champion (``ChampionSettings``)."""


@dataclass
class ServedTicker:
    """One ticker's served paths and the choice made at each refit."""

    ticker: str
    sigma2: np.ndarray
    """Served variance paths, one row per backtest origin (NaN where the served family has
    none)."""
    choices: list[ChampionChoice] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    """The family served in each block."""
    origins: Counter[str] = field(default_factory=Counter)
    """How many origins each family served."""

    @property
    def champion(self) -> str | None:
        """The champion after the last refit; None when none was ever chosen."""
        return self.choices[-1].champion if self.choices else None


def window_losses(
    data: DailyData,
    origin_positions: np.ndarray,
    sigma2_paths: np.ndarray,
    refit: pd.Timestamp,
    rule: ServedRule,
) -> pd.DataFrame:
    """The losses of one family that the rule may see at ``refit``: its test window's.

    Parameters
    ----------
    data : DailyData
        The ticker's data (any length: only the days before ``refit`` are read).
    origin_positions : numpy.ndarray
        Positions in ``data`` of the rows of ``sigma2_paths``.
    sigma2_paths : numpy.ndarray
        The family's forecast paths, percent², shape ``(origins, steps)``.
    refit : pandas.Timestamp
        First session of the block about to be served.
    rule : ServedRule
        The decision's horizon and proxy.

    Returns
    -------
    pandas.DataFrame
        A :class:`~volforecast.core.schemas.LossesSchema` frame: the QLIKE of each origin
        of the test window up to the day before ``refit`` whose ``horizon``-day target was
        realized by then.
    """
    # Training's window (not the previous block alone): the champion is decided on the same
    # days training would decide it on at this date, so the backtest judges the rule served.
    history = data.until(refit - pd.Timedelta(days=1))
    window = window_origins(history)
    # A target ending at or after the refit's day is not known yet.
    seen = np.isin(origin_positions, window) & (origin_positions + rule.horizon < len(history))
    positions = origin_positions[seen]
    targets = horizon_targets(history, positions, sigma2_paths[seen], rule.horizon, rule.proxy)
    if not len(targets.rows):
        return losses_frame(data.ticker, pd.DatetimeIndex([]), np.array([]))
    return losses_frame(
        data.ticker,
        history.dates[positions[targets.rows]],
        qlike_losses(targets.realized, targets.forecast),
    )


def served_walk_forward(
    data: DailyData,
    origin_positions: np.ndarray,
    paths: Mapping[str, np.ndarray],
    refits: Sequence[pd.Timestamp],
    rule: ServedRule,
) -> ServedTicker:
    """Choose the champion at each refit and serve its paths in the block that follows.

    Parameters
    ----------
    data : DailyData
        The ticker's data.
    origin_positions : numpy.ndarray
        Positions in ``data`` of the backtest's origins (the rows of every path array).
    paths : Mapping[str, numpy.ndarray]
        Each candidate family's backtest paths (catalog name, in catalog order).
    refits : Sequence[pandas.Timestamp]
        First session of every block, in order.
    rule : ServedRule
        How the rule judges.

    Returns
    -------
    ServedTicker
        The served paths, each refit's :class:`ChampionChoice` and the family served.
    """
    steps = next(iter(paths.values())).shape[1] if paths else 1
    served = ServedTicker(data.ticker, np.full((len(origin_positions), steps), np.nan))
    origin_dates = data.dates[origin_positions]
    ends = [*refits[1:], None]
    incumbent: str | None = None
    for refit, end in zip(refits, ends, strict=True):
        losses = {
            name: window_losses(data, origin_positions, family, refit, rule)
            for name, family in paths.items()
        }
        choice = choose_champion(
            data.ticker, losses, incumbent, max_pvalue=rule.max_pvalue, preferred=rule.preferred
        )
        incumbent = choice.champion or incumbent  # no forecast at all keeps the champion
        family = incumbent or rule.default
        served.choices.append(choice)
        served.served.append(family)
        block = np.asarray(origin_dates >= refit)
        if end is not None:
            block &= np.asarray(origin_dates < end)
        served.origins[family] += int(block.sum())
        if family in paths:
            served.sigma2[block] = paths[family][block]
    return served
