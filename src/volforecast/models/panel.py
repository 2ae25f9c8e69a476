"""One way to fit any catalog model on many tickers: a panel in, a fitted panel out.

A per-ticker model's panel is independent fits, one per ticker; a pooled model's (the LSTM)
is one fit whose per-ticker forecasters share it. Training, the backtest and serving all go
through :func:`fit_panel` and :func:`load_panel`, so none of them asks which kind it has.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volforecast.core.features import DailyData
from volforecast.errors import VolforecastError
from volforecast.models.base import STATE_FILE, VolatilityModel
from volforecast.models.catalog import ModelSpec, model_class_of_kind

if TYPE_CHECKING:
    from volforecast.models.lstm.training import EpochCallback

PANEL_FILE = "pooled.json"
"""What a pooled panel's directory holds besides its weights (``kind`` names its class)."""


@dataclass
class FittedPanel:
    """The fitted models of one :func:`fit_panel`, by ticker, and the tickers that failed."""

    models: dict[str, VolatilityModel]
    """The per-ticker forecasters (a pooled panel's share one fit)."""
    failures: dict[str, VolforecastError] = field(default_factory=dict)
    """Tickers whose fit was refused (too short, constant, ...), with the reason."""
    history: list[tuple[float, float]] = field(default_factory=list)
    """A pooled training's (train, validation) loss per epoch; empty for independent fits."""

    def for_ticker(self, ticker: str) -> VolatilityModel:
        """The forecaster of ``ticker``; ``KeyError`` saying why when there is none."""
        model = self.models.get(ticker)
        if model is None:
            why = self.failures.get(ticker, "it was not in the panel")
            msg = f"no fitted model of {ticker}: {why}"
            raise KeyError(msg)
        return model

    def save(self, path: Path) -> Path:
        """Write the panel's one model to ``path``, as :meth:`VolatilityModel.save` does.

        Independent fits are registered one ticker each; a pooled panel saves itself whole.
        """
        if len(self.models) != 1:
            msg = f"a panel of independent fits saves one ticker, this one has {len(self.models)}"
            raise ValueError(msg)
        return next(iter(self.models.values())).save(path)


def fit_panel(
    spec: ModelSpec,
    datasets: Sequence[DailyData],
    *,
    warm_start: FittedPanel | None = None,
    on_epoch: EpochCallback | None = None,
    **settings: Any,
) -> FittedPanel:
    """Fit ``spec``'s model (its options updated with ``settings``) on every dataset.

    ``warm_start`` is an earlier fit of the same tickers: a per-ticker model refits its own
    instance (a GARCH then starts from its previous parameters when the default start fails),
    a pooled one continues from its weights; ``on_epoch`` hears each epoch of a pooled
    training. A per-ticker model's refused fits are in ``failures``, the others go on; a
    pooled fit serves every ticker or raises.
    """
    options = {**spec.options, **settings}
    if spec.pooled:
        return spec.model_kind.fit_panel(
            datasets, warm_start=warm_start, on_epoch=on_epoch, **options
        )
    panel = FittedPanel({})
    for data in datasets:
        earlier = warm_start.models.get(data.ticker) if warm_start is not None else None
        model = earlier or spec.model_kind(**options)
        try:
            panel.models[data.ticker] = model.fit(data)
        except VolforecastError as exc:
            panel.failures[data.ticker] = exc
    return panel


def load_panel(path: Path) -> FittedPanel:
    """The panel a :meth:`FittedPanel.save` (or a pooled panel's own save) wrote to ``path``."""
    if (path / PANEL_FILE).exists():
        # Pools saved before other pooled kinds existed name none: they are the LSTM's.
        kind = json.loads((path / PANEL_FILE).read_text()).get("kind", "lstm")
        return model_class_of_kind(kind).load_panel(path)
    if (path / STATE_FILE).exists():
        model = VolatilityModel.load(path)
        return FittedPanel({model.data.ticker: model})
    msg = f"{path} holds no saved volforecast model"
    raise FileNotFoundError(errno.ENOENT, msg, str(path / STATE_FILE))
