"""An LSTM that forecasts the whole 1-30 day variance path, trained on many tickers at once.

One network serves every ticker it was trained on (a pooled model): each ticker's inputs are
standardised with its own training-period statistics and it has a learned embedding, so the
network shares what volatility dynamics have in common and still tells tickers apart. Training
400 tickers therefore costs one training run, not 400. A single-ticker fit
(:meth:`LstmModel.fit`) is the same machinery with one ticker.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from volforecast.core.features import (
    SEASON_LAGS,
    SEASON_MEMORY,
    DailyData,
    season_peaks,
    seasonal_regressors,
)
from volforecast.errors import InvalidSeriesError
from volforecast.models.base import MAX_HORIZON, FitReport, VolatilityModel
from volforecast.models.lstm_config import N_FEATURES, LstmConfig

# The settings live apart from torch (the CLI's help and the backtest read them without it);
# they are still importable from here.
__all__ = [
    "N_FEATURES",
    "POOLED_DATA_FILE",
    "POOLED_FILE",
    "WEIGHTS_FILE",
    "Batch",
    "EpochCallback",
    "EpochReport",
    "LstmConfig",
    "LstmModel",
    "LstmNetwork",
    "Normalizer",
    "TrainingResult",
    "load_pooled",
    "qlike_log_loss",
    "resolve_device",
    "save_pooled",
    "train_lstm",
]

WEIGHTS_FILE = "lstm.pt"


@dataclass(frozen=True)
class EpochReport:
    """What one epoch of :func:`train_lstm` did, as its ``on_epoch`` callback hears it."""

    epoch: int
    """1-based."""
    max_epochs: int
    train_loss: float
    """Mean QLIKE over the epoch's training batches."""
    validation_loss: float
    best_epoch: int
    """1-based epoch of the best validation loss so far (whose weights are kept)."""
    seconds: float
    """Since training began."""
    last: bool
    """Training ends after this epoch (early stopping or ``max_epochs``)."""


EpochCallback = Callable[[EpochReport], None]


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
        self,
        windows: torch.Tensor,
        ticker_ids: torch.Tensor,
        season: torch.Tensor | None = None,
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
        season = None if self.season is None else self.season.to(device)
        return self._replace(
            windows=self.windows.to(device),
            ticker_ids=self.ticker_ids.to(device),
            season=season,
            targets=self.targets.to(device),
            mask=self.mask.to(device),
            stats=self.stats.to(device),
        )

    def loss(self, network: LstmNetwork) -> torch.Tensor:
        """The network's QLIKE on this batch."""
        output = network(self.windows, self.ticker_ids, self.season)
        return qlike_log_loss(output, self.targets, self.mask, self.stats)


class _Panel:
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


@dataclass
class TrainingResult:
    """A trained network and what happened."""

    network: LstmNetwork
    config: LstmConfig
    """The settings it was trained with (``market`` as it turned out)."""
    normalizers: dict[str, Normalizer]
    tickers: list[str]
    report: FitReport
    history: list[tuple[float, float]]
    """(train loss, validation loss) per epoch."""
    test_loss: float
    seconds: float


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    # Weight init and dropout draw from torch's global generator; forking it confines the seed
    # to this block, so training is reproducible without touching the caller's random state.
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _cpu_threads(count: int, device: torch.device) -> Iterator[None]:
    """Torch's CPU threads set to ``count`` for a training on the CPU, then given back."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_lstm(
    datasets: Sequence[DailyData],
    config: LstmConfig,
    warm_start: LstmNetwork | None = None,
    *,
    on_epoch: EpochCallback | None = None,
) -> TrainingResult:
    """Train one network on the given tickers (80/10/10 chronological split per ticker).

    ``warm_start`` is a network trained before on the same tickers in the same order; its
    weights are the starting point (a refit on more data). Otherwise training starts afresh.
    ``on_epoch`` hears an :class:`EpochReport` after each epoch (progress, loss curves); an
    exception it raises, ``KeyboardInterrupt`` included, ends training.

    The first ``train_fraction`` of each ticker's days trains, the next ``validation_fraction``
    decides early stopping (the best epoch's weights are kept), the rest gives the test loss
    in the report. No target ever crosses from one part into the next: a window's 30 targets
    are masked beyond the end of its part. Normalisers use the training part only.
    """
    started = time.perf_counter()
    device = resolve_device(config.device)
    tickers = [d.ticker for d in datasets]
    if len(set(tickers)) != len(tickers):
        msg = "each ticker may appear once in a pooled training run"
        raise ValueError(msg)
    notes: tuple[str, ...] = ()
    without_market = [d.ticker for d in datasets if d.market_log_rv is None]
    if config.market and without_market:
        config = replace(config, market=False)
        notes = (
            f"trained without the market input: {len(without_market)} tickers came without "
            f"the market series ({', '.join(without_market[:3])})",
        )
    cuts = [
        (
            int(len(d) * config.train_fraction),
            int(len(d) * (config.train_fraction + config.validation_fraction)),
            len(d),
        )
        for d in datasets
    ]
    normalizers = [Normalizer.fit(d.head(cut[0])) for d, cut in zip(datasets, cuts, strict=True)]
    panel = _Panel(
        datasets, normalizers, config.seq_len, market=config.market, seasonal=config.seasonal
    )

    def part(k: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
        positions, ends = [], []
        for i, cut in enumerate(cuts):
            lo = 0 if k == 0 else cut[k - 1]
            got = panel.origins(i, lo, cut[k], stride)
            positions.append(got)
            ends.append(np.full(len(got), panel.offsets[i] + cut[k]))
        return np.concatenate(positions), np.concatenate(ends)

    train_pos, train_end = part(0, config.stride)
    # Validation runs every epoch: thinned like training, or it costs a sixth of the epoch.
    val_pos, val_end = part(1, config.stride)
    test_pos, test_end = part(2, 1)
    if len(train_pos) == 0 or len(val_pos) == 0:
        msg = "too little data for a training and a validation window"
        raise ValueError(msg)

    with _seeded(config.seed, device), _cpu_threads(config.cpu_threads, device):
        network = LstmNetwork(len(datasets), config)
        if warm_start is not None and warm_start.embedding.num_embeddings == len(datasets):
            network.load_state_dict(warm_start.state_dict())
        network = network.to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        shuffle = np.random.default_rng(config.seed)
        best_loss, best_epoch, best_state = math.inf, -1, None
        history: list[tuple[float, float]] = []
        for epoch in range(config.max_epochs):
            network.train()
            order = shuffle.permutation(len(train_pos))
            total, count = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                chosen = order[start : start + config.batch_size]
                loss = panel.batch(train_pos[chosen], train_end[chosen]).to(device).loss(network)
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(network.parameters(), 5.0)
                optimizer.step()
                total += float(loss.detach()) * len(chosen)
                count += len(chosen)
            val_loss = _evaluate(network, panel, val_pos, val_end, device)
            history.append((total / max(count, 1), val_loss))
            improved = val_loss < best_loss - 1e-6
            if improved:
                best_loss, best_epoch = val_loss, epoch
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            stop = not improved and epoch - best_epoch >= config.patience
            if on_epoch is not None:
                on_epoch(
                    EpochReport(
                        epoch=epoch + 1,
                        max_epochs=config.max_epochs,
                        train_loss=history[-1][0],
                        validation_loss=val_loss,
                        best_epoch=best_epoch + 1,
                        seconds=time.perf_counter() - started,
                        last=stop or epoch + 1 == config.max_epochs,
                    )
                )
            if stop:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    test_loss = math.nan
    if len(test_pos):
        with _cpu_threads(config.cpu_threads, device):
            test_loss = _evaluate(network, panel, test_pos, test_end, device)
    finite = math.isfinite(best_loss)
    report = FitReport(
        converged=finite,
        message=(
            f"best validation QLIKE {best_loss:.4f} at epoch {best_epoch + 1} of "
            f"{len(history)}; test QLIKE {test_loss:.4f}"
            if finite
            else "the validation loss never became finite"
        ),
        warnings=notes,
        nobs=int(sum(len(d) for d in datasets)),
        attempts=1,
    )
    network = network.to("cpu").eval()
    return TrainingResult(
        network=network,
        config=config,
        normalizers=dict(zip(tickers, normalizers, strict=True)),
        tickers=tickers,
        report=report,
        history=history,
        test_loss=test_loss,
        seconds=time.perf_counter() - started,
    )


@torch.no_grad()
def _evaluate(
    network: LstmNetwork,
    panel: _Panel,
    positions: np.ndarray,
    ends: np.ndarray,
    device: torch.device,
    *,
    chunk: int = 8192,
) -> float:
    network.eval()
    total, weight = 0.0, 0.0
    for start in range(0, len(positions), chunk):
        batch = panel.batch(positions[start : start + chunk], ends[start : start + chunk])
        batch = batch.to(device)
        n = float(batch.mask.sum())
        total += float(batch.loss(network)) * n
        weight += n
    return total / weight if weight else math.nan


class LstmModel(VolatilityModel):
    """The LSTM behind the :class:`VolatilityModel` contract, for one ticker.

    Parameters
    ----------
    **settings
        Fields of :class:`LstmConfig`.

    Notes
    -----
    Inputs per day are the percent return and the log of the range-based realized variance,
    each standardised with the ticker's training-period moments, plus a learned ticker
    embedding. The head outputs the standardised log variance of each of the next 30 days at
    once (a direct multi-output forecast, no feedback of its own predictions), trained with
    QLIKE against the range-based realized variance of those days, so the exponentiated
    output estimates the conditional variance rather than its median. With the defaults it
    also reads the market's log range variance each day (``market``) and adds HAR's
    earnings-season terms of each day it forecasts to that day's output (``seasonal``).
    :meth:`fit_many` trains one network for many tickers.
    """

    kind = "lstm"
    min_obs = 200

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.config = LstmConfig(**settings)
        # A fit on data without the market series turns config.market off; the next fit still
        # asks for the input.
        self._market_asked = self.config.market
        self._network: LstmNetwork | None = None
        self._ticker_index = 0
        self._normalizer: Normalizer | None = None
        self._history: list[tuple[float, float]] = []

    @property
    def options(self) -> dict[str, Any]:
        """The configuration."""
        return asdict(self.config)

    @property
    def history(self) -> list[tuple[float, float]]:
        """(train, validation) QLIKE per epoch of the run that trained the network."""
        return list(self._history)

    @classmethod
    def fit_many(
        cls,
        datasets: Sequence[DailyData],
        *,
        warm_start: LstmNetwork | None = None,
        on_epoch: EpochCallback | None = None,
        **settings: Any,
    ) -> tuple[dict[str, LstmModel], TrainingResult]:
        """Train one network on all ``datasets``; return a fitted model per ticker.

        ``warm_start`` continues from an earlier network of the same tickers, ``on_epoch``
        hears each epoch (see :func:`train_lstm`).
        """
        config = LstmConfig(**settings)
        for data in datasets:
            cls()._check(data)
        result = train_lstm(datasets, config, warm_start, on_epoch=on_epoch)
        models = {}
        for index, data in enumerate(datasets):
            model = cls(**asdict(result.config))
            model._attach(result, index)
            model._set_fitted(data, model._params(), result.report)
            models[data.ticker] = model
        return models, result

    def _attach(self, result: TrainingResult, index: int) -> None:
        self._network = result.network
        self._ticker_index = index
        self._normalizer = result.normalizers[result.tickers[index]]
        self._history = result.history

    def _normalizer_or_raise(self) -> Normalizer:
        if self._normalizer is None:
            msg = "the LSTM has no normaliser; fit or load it first"
            raise RuntimeError(msg)
        return self._normalizer

    def _params(self) -> dict[str, float]:
        normalizer = self._normalizer_or_raise()
        return {f"normalizer.{k}": v for k, v in asdict(normalizer).items()} | {
            "ticker_index": float(self._ticker_index)
        }

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        result = train_lstm([data], replace(self.config, market=self._market_asked))
        self.config = result.config
        self._attach(result, 0)
        return self._params(), result.report

    @property
    def network(self) -> LstmNetwork:
        """The (possibly shared) network; a warm start for the next training run."""
        return self._net()

    def _net(self) -> LstmNetwork:
        if self._network is None:
            msg = "the LSTM has no network; fit or load it first"
            raise RuntimeError(msg)
        return self._network

    @torch.no_grad()
    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        assert self._normalizer is not None  # noqa: S101  (set with the network)
        seq = self.config.seq_len
        if int(origins.min()) < seq - 1:
            msg = f"the LSTM needs {seq} days of history before a forecast origin"
            raise ValueError(msg)
        history = data.head(int(origins.max()) + 1)
        features = torch.from_numpy(self._normalizer.features(history, market=self.config.market))
        windows = features[torch.from_numpy(origins)[:, None] + torch.arange(-seq + 1, 1)]
        ids = torch.full((len(origins),), self._ticker_index, dtype=torch.long)
        n = self._normalizer
        season = None
        if self.config.seasonal:
            targets = origins[:, None] + np.arange(1, MAX_HORIZON + 1)
            peaks = seasonal_regressors(season_peaks(history), targets) / n.log_rv_std
            season = torch.from_numpy(peaks.astype(np.float32))
        network = self._net().eval()
        outputs = [
            network(
                windows[i : i + 8192],
                ids[i : i + 8192],
                None if season is None else season[i : i + 8192],
            )
            for i in range(0, len(origins), 8192)
        ]
        log_sigma2 = torch.cat(outputs).double().numpy()[:, :horizon]
        return np.exp(log_sigma2 * n.log_rv_std + n.log_rv_mean)

    def _forecast(self, data: DailyData, horizon: int) -> np.ndarray:
        return np.asarray(self._forecast_paths(data, np.array([len(data) - 1]), horizon)[0])

    def _extra_state(self) -> dict[str, Any]:
        return {
            "n_tickers": self._net().embedding.num_embeddings,
            "history": self._history,
            "market": self.config.market,
            "seasonal": self.config.seasonal,
        }

    def _save_files(self, path: Path) -> None:
        torch.save(self._net().state_dict(), path / WEIGHTS_FILE)

    def _restore(self, extra: dict[str, Any], path: Path) -> None:
        # Models saved before the market input or the season terms existed had none.
        self.config = replace(
            self.config,
            market=bool(extra.get("market", False)),
            seasonal=bool(extra.get("seasonal", False)),
        )
        network = LstmNetwork(int(extra["n_tickers"]), self.config)
        network.load_state_dict(torch.load(path / WEIGHTS_FILE, weights_only=True))
        self._network = network.eval()
        params = self.params
        self._ticker_index = int(params["ticker_index"])
        self._normalizer = Normalizer(
            **{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("normalizer.")}
        )
        self._history = [(float(a), float(b)) for a, b in extra.get("history", [])]

    def with_settings(self, **settings: Any) -> LstmModel:
        """An unfitted copy with some settings changed."""
        return LstmModel(**asdict(replace(self.config, **settings)))


POOLED_FILE = "pooled.json"
POOLED_DATA_FILE = "pooled_data.npz"


def save_pooled(models: dict[str, LstmModel], path: Path, *, keep_days: int = 60) -> Path:
    """Write the per-ticker models of one pooled network to ``path``, the weights once.

    :meth:`VolatilityModel.save` on each ticker would write the network ~400 times. Here it is
    written once, with each ticker's normaliser and embedding index, and the last
    ``keep_days`` days of each ticker's data, or more where a forecast from the stored origin
    needs more (the last ``seq_len``, and with the season terms the last
    :data:`~volforecast.core.features.SEASON_MEMORY`); :meth:`VolatilityModel.update` brings
    in newer days.
    """
    if not models:
        msg = "no models to save"
        raise ValueError(msg)
    first = next(iter(models.values()))
    network = first._net()
    if any(m._net() is not network for m in models.values()):
        msg = "save_pooled needs models that share one network (from LstmModel.fit_many)"
        raise ValueError(msg)
    keep = max(keep_days, first.config.seq_len, SEASON_MEMORY if first.config.seasonal else 0)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path / WEIGHTS_FILE)
    tails = {t: m.data.tail(keep) for t, m in models.items()}
    arrays: dict[str, np.ndarray] = {}
    for i, data in enumerate(tails.values()):
        arrays |= data.to_arrays(suffix=f"_{i}")
    np.savez_compressed(path / POOLED_DATA_FILE, **arrays)  # type: ignore[arg-type]
    payload = {
        "config": asdict(first.config),
        "version": first.version,
        "n_tickers": network.embedding.num_embeddings,
        "history": first.history,
        "fit_report": first.fit_report.to_dict(),
        "tickers": {
            t: {"index": m._ticker_index, "normalizer": asdict(m._normalizer_or_raise())}
            for t, m in models.items()
        },
    }
    (path / POOLED_FILE).write_text(json.dumps(payload, indent=2))
    return path


def load_pooled(path: Path) -> dict[str, LstmModel]:
    """The models :func:`save_pooled` wrote, by ticker, sharing one network."""
    payload = json.loads((path / POOLED_FILE).read_text())
    # Pools saved before the market input or the season terms existed had none.
    config = LstmConfig(**{"market": False, "seasonal": False, **payload["config"]})
    network = LstmNetwork(int(payload["n_tickers"]), config)
    network.load_state_dict(torch.load(path / WEIGHTS_FILE, weights_only=True))
    network.eval()
    report = FitReport.from_dict(payload["fit_report"])
    history = [(float(a), float(b)) for a, b in payload["history"]]
    models: dict[str, LstmModel] = {}
    with np.load(path / POOLED_DATA_FILE) as arrays:
        for i, (ticker, entry) in enumerate(payload["tickers"].items()):
            data = DailyData.from_arrays(ticker, arrays, suffix=f"_{i}")
            model = LstmModel(**asdict(config))
            model.version = str(payload["version"])
            model._network = network
            model._ticker_index = int(entry["index"])
            model._normalizer = Normalizer(**entry["normalizer"])
            model._history = history
            model._set_fitted(data, model._params(), report)
            models[ticker] = model
    return models
