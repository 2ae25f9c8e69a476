"""The network, its per-ticker input normaliser, and where it runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from volforecast.core.features import SEASON_LAGS, DailyData
from volforecast.errors import InvalidSeriesError
from volforecast.models.base import MAX_HORIZON
from volforecast.models.lstm.config import LstmConfig


def resolve_device(name: str) -> torch.device:
    """``auto`` is the GPU when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class LstmNetwork(nn.Module):
    """LSTM over the last ``seq_len`` days, a linear head to 30 log-variance steps."""

    def __init__(self, n_tickers: int, config: LstmConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tickers, config.embedding_dim)
        self.lstm = nn.LSTM(
            config.n_inputs + config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(config.hidden_size, MAX_HORIZON)
        # Zero at the start: the network begins as one without the season and learns how much
        # each lag says at each day ahead.
        self.season_weights: nn.Parameter | None = (
            nn.Parameter(torch.zeros(MAX_HORIZON, len(SEASON_LAGS))) if config.seasonal else None
        )

    def forward(
        self, windows: torch.Tensor, ticker_ids: torch.Tensor, season: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Standardised log variance of the next 30 days, shape ``(batch, 30)``.

        ``season`` holds the season terms of those days, ``(batch, 30, lags)``, in units of
        the ticker's standardised log variance; a network built with ``seasonal`` needs it.
        """
        embedded = self.embedding(ticker_ids)[:, None, :].expand(-1, windows.shape[1], -1)
        output, _ = self.lstm(torch.cat([windows, embedded], dim=2))
        out = torch.as_tensor(self.head(output[:, -1]))
        if self.season_weights is None:
            return out
        if season is None:
            msg = "this network reads the earnings-season terms of the days it forecasts"
            raise ValueError(msg)
        return out + (season * self.season_weights).sum(dim=2)


@dataclass(frozen=True)
class Normalizer:
    """Per-ticker statistics of the training period only."""

    return_mean: float
    return_std: float
    log_rv_mean: float
    log_rv_std: float
    market_mean: float = 0.0
    market_std: float = 1.0

    @classmethod
    def fit(cls, data: DailyData) -> Normalizer:
        """Moments of the returns and log realized variances of ``data`` (and its market's)."""
        log_rv = np.log(data.rv_sigma2)
        market = data.market_log_rv
        return cls(
            float(data.returns_pct.mean()),
            float(data.returns_pct.std()) or 1.0,
            float(log_rv.mean()),
            float(log_rv.std()) or 1.0,
            0.0 if market is None else float(market.mean()),
            1.0 if market is None else float(market.std()) or 1.0,
        )

    def features(self, data: DailyData, *, market: bool = False) -> np.ndarray:
        """``(days, 2)`` standardised inputs, ``(days, 3)`` with the market's."""
        columns = [
            (data.returns_pct - self.return_mean) / self.return_std,
            (np.log(data.rv_sigma2) - self.log_rv_mean) / self.log_rv_std,
        ]
        if market:
            if data.market_log_rv is None:
                msg = (
                    f"{data.ticker}: this LSTM was trained with the market series, and the "
                    "data came without it (`volforecast ingest` refreshes the stored one)"
                )
                raise InvalidSeriesError(msg)
            columns.append((data.market_log_rv - self.market_mean) / self.market_std)
        return np.column_stack(columns).astype(np.float32)
