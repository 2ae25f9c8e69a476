"""Training windows: every ticker's days end to end, gathered into batches by index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from volforecast.core.features import DailyData, season_peaks, seasonal_regressors
from volforecast.models.base import MAX_HORIZON
from volforecast.models.lstm.network import LstmNetwork, Normalizer


class Batch(NamedTuple):
    """What one step of training or evaluation reads, for a batch of forecast origins."""

    windows: torch.Tensor
    ticker_ids: torch.Tensor
    season: torch.Tensor | None
    targets: torch.Tensor
    mask: torch.Tensor
    stats: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``."""
        return Batch._make(None if tensor is None else tensor.to(device) for tensor in self)

    def loss(self, network: LstmNetwork) -> torch.Tensor:
        """The network's QLIKE on this batch."""
        output = network(self.windows, self.ticker_ids, self.season)
        return qlike_log_loss(output, self.targets, self.mask, self.stats)


class Windows:
    """All tickers' days end to end, so windows are gathered by index, not copied."""

    def __init__(
        self,
        datasets: Sequence[DailyData],
        normalizers: Sequence[Normalizer],
        seq_len: int,
        *,
        market: bool,
        seasonal: bool = False,
    ) -> None:
        self.seq_len = seq_len
        lengths = np.array([len(d) for d in datasets])
        self.offsets = np.concatenate(([0], np.cumsum(lengths)))
        pairs = zip(datasets, normalizers, strict=True)
        self.features = torch.from_numpy(
            np.concatenate([n.features(d, market=market) for d, n in pairs])
        )
        # Padded at the end so that every origin can read 30 targets; padding is masked.
        rv = np.concatenate([d.rv_sigma2 for d in datasets] + [np.ones(MAX_HORIZON)])
        self.log_rv = torch.from_numpy(np.log(rv).astype(np.float32))
        self.ticker_of_day = torch.from_numpy(np.repeat(np.arange(len(datasets)), lengths))
        self.stats = torch.tensor(
            [[n.log_rv_mean, n.log_rv_std] for n in normalizers], dtype=torch.float32
        )
        self.peaks = (
            np.concatenate([season_peaks(d) for d in datasets]).astype(np.float32)
            if seasonal
            else None
        )

    def origins(self, ticker: int, start: int, stop: int, stride: int = 1) -> np.ndarray:
        """Global positions of origins ``start <= t < stop`` (local) with a full input window."""
        first = max(start, self.seq_len - 1)
        return np.asarray(self.offsets[ticker] + np.arange(first, stop, stride))

    def batch(self, positions: np.ndarray, target_end: np.ndarray | None) -> Batch:
        """The batch of the origins at ``positions``; targets from ``target_end`` on masked."""
        pos = torch.from_numpy(positions)
        lags = torch.arange(-self.seq_len + 1, 1)
        windows = self.features[pos[:, None] + lags]
        tickers = self.ticker_of_day[pos]
        steps = torch.arange(1, MAX_HORIZON + 1)
        targets = self.log_rv[pos[:, None] + steps]
        if target_end is None:
            mask = torch.ones_like(targets, dtype=torch.bool)
        else:
            mask = (pos[:, None] + steps) < torch.from_numpy(target_end)[:, None]
        stats = self.stats[tickers]
        season = None
        if self.peaks is not None:
            # A lag before the ticker's own first day is 0; the latest day a peak rests on is
            # 9 before the origin, so nothing is read ahead or from the next ticker. Gathered
            # per batch: every day's 30 x 4 terms, stored, would take ~0.8 GB for the shared
            # tickers.
            first = self.offsets[tickers.numpy()][:, None]
            terms = seasonal_regressors(self.peaks, (pos[:, None] + steps).numpy(), first)
            season = torch.from_numpy(terms) / stats[:, 1, None, None]
        return Batch(windows, tickers, season, targets, mask, stats)


def qlike_log_loss(
    output: torch.Tensor, log_proxy: torch.Tensor, mask: torch.Tensor, stats: torch.Tensor
) -> torch.Tensor:
    r"""Mean QLIKE of ``exp(output * std + mean)`` against the proxy, over unmasked steps.

    Written in logs, :math:`e^{\ln p - \ln h} - (\ln p - \ln h) - 1`, so it stays finite for
    any network output.
    """
    log_h = output * stats[:, 1:2] + stats[:, 0:1]
    gap = log_proxy - log_h
    losses = torch.exp(gap) - gap - 1.0
    return (losses * mask).sum() / mask.sum().clamp(min=1)
