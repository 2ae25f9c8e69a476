r"""The champion rule, pure: which model family serves a ticker when nobody names one.

Every candidate family's production version forecasts the same test window of the ticker;
:func:`choose_champion` picks the one with the lowest mean QLIKE, but lets it replace the
sitting champion only when a one-sided Diebold–Mariano test says it is better (p at most
``max_pvalue``). Before a ticker's first champion, a ``preferred`` family may sit in its
place: the family chosen on the validation period keeps the ticker unless another is
significantly better on the ticker's own window. A family that does not forecast the ticker
(a pooled network trained without it) is no candidate there. Every decision is this function's
(:mod:`volforecast.jobs.champion` calls it for training, the DAG and the command line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from volforecast.registry.decision import one_sided_dm


@dataclass(frozen=True)
class ChampionChoice:
    """The champion of one ticker after a decision, and the figures that made it."""

    ticker: str
    champion: str | None
    """Catalog name of the family that serves the ticker; None when no family forecasts it."""
    incumbent: str | None
    """The champion before the decision."""
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the decision names another champion than the incumbent."""
        return self.champion is not None and self.champion != self.incumbent


def choose_champion(
    ticker: str,
    losses: Mapping[str, pd.DataFrame],
    incumbent: str | None,
    *,
    max_pvalue: float,
    preferred: str | None = None,
) -> ChampionChoice:
    r"""Decide a ticker's champion from every candidate's QLIKE losses on the same window.

    Parameters
    ----------
    ticker : str
        The ticker decided on.
    losses : Mapping[str, pandas.DataFrame]
        Per candidate family (catalog name, in catalog order), its production version's
        :class:`~volforecast.core.schemas.LossesSchema` losses of this ticker. A family with
        no rows is no candidate here.
    incumbent : str or None
        The sitting champion, None before the first decision.
    max_pvalue : float
        Largest one-sided Diebold–Mariano p-value at which the best family replaces the
        incumbent; 1 replaces it on the lower mean loss alone.

    Returns
    -------
    ChampionChoice
        ``metrics`` holds each candidate's mean QLIKE (``qlike_<name>``), the number of
        origins compared and, where the incumbent was challenged, the test's statistic and
        one-sided p-value.
    preferred : str or None
        Before the first decision (``incumbent`` None), the family judged as if it were the
        sitting champion, when it forecasts the ticker.

    Notes
    -----
    The means are taken over the origins every candidate forecast, so no family is judged on
    days another was spared. A tie goes to the incumbent, then to the earlier family in the
    catalog's order.
    """
    present = {name: frame for name, frame in losses.items() if len(frame)}
    if incumbent is None and preferred in present:
        choice = _decide(ticker, present, preferred, max_pvalue)
        if not choice.metrics:  # no common origin: no evidence to seat the preference on
            return _decide(ticker, present, None, max_pvalue)
        why = f"first champion, {preferred} preferred unless beaten significantly"
        reason = choice.reason.replace(f"{preferred} stays", "it stays")
        return replace(choice, incumbent=None, reason=f"{why}: {reason}")
    return _decide(ticker, present, incumbent, max_pvalue)


def _decide(
    ticker: str, present: Mapping[str, pd.DataFrame], incumbent: str | None, max_pvalue: float
) -> ChampionChoice:
    if not present:
        return ChampionChoice(ticker, None, incumbent, "no candidate forecasts this ticker")
    wide = pd.concat(
        {name: frame.groupby("origin_date")["loss"].mean() for name, frame in present.items()},
        axis=1,
        join="inner",
    ).sort_index()
    if wide.empty:
        return ChampionChoice(ticker, incumbent, incumbent, "the candidates share no origin")
    means = wide.mean()
    metrics = {f"qlike_{name}": float(value) for name, value in means.items()}
    metrics["n_origins"] = float(len(wide))
    best = str(means.idxmin())  # the first of equal means: catalog order
    if incumbent is not None and incumbent in present and means[incumbent] <= means[best]:
        best = incumbent
    figures = ", ".join(f"{name} {value:.4f}" for name, value in means.items())
    if incumbent not in present:
        why = "first champion" if incumbent is None else f"{incumbent} no longer forecasts it"
        return ChampionChoice(ticker, best, incumbent, f"{why}: lowest QLIKE ({figures})", metrics)
    if best == incumbent:
        return ChampionChoice(
            ticker, best, incumbent, f"keeps the lowest QLIKE ({figures})", metrics
        )
    metrics |= one_sided_dm(wide[best], wide[incumbent])
    pvalue = metrics["dm_pvalue"]
    if max_pvalue >= 1.0 or pvalue <= max_pvalue:
        reason = f"{best} beats {incumbent}: QLIKE {figures}, DM p = {pvalue:.3g}"
        return ChampionChoice(ticker, best, incumbent, reason, metrics)
    why = (
        f"too few common origins ({len(wide)}) to test"
        if math.isnan(pvalue)
        else f"not significantly (p = {pvalue:.3g} > {max_pvalue})"
    )
    reason = f"{best} has the lower QLIKE, but {why}: {incumbent} stays ({figures})"
    return ChampionChoice(ticker, incumbent, incumbent, reason, metrics)
