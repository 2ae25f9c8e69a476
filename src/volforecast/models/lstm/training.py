"""Training one network on many tickers: the chronological split, the epochs, early stopping."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from volforecast.core.features import DailyData
from volforecast.core.interrupt import raise_if_interrupted
from volforecast.models.fit_report import FitReport
from volforecast.models.lstm.config import LstmConfig
from volforecast.models.lstm.network import LstmNetwork, Normalizer, resolve_device
from volforecast.models.lstm.windows import Windows


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
    config, notes = _market_if_everyone_has_it(datasets, config)
    split = Split.of(datasets, config)
    with _seeded(config.seed, device), _cpu_threads(config.cpu_threads, device):
        network = LstmNetwork(len(datasets), config)
        if warm_start is not None and warm_start.embedding.num_embeddings == len(datasets):
            network.load_state_dict(warm_start.state_dict())
        network = network.to(device)
        best = _run_epochs(network, split, config, on_epoch=on_epoch, started=started)
    if best.state is not None:
        network.load_state_dict(best.state)
    test_loss = math.nan
    if len(split.test[0]):
        with _cpu_threads(config.cpu_threads, device):
            test_loss = mean_loss(network, split.windows, *split.test)
    finite = math.isfinite(best.loss)
    report = FitReport(
        converged=finite,
        message=(
            f"best validation QLIKE {best.loss:.4f} at epoch {best.epoch + 1} of "
            f"{len(best.history)}; test QLIKE {test_loss:.4f}"
            if finite
            else "the validation loss never became finite"
        ),
        warnings=notes,
        nobs=int(sum(len(d) for d in datasets)),
        attempts=1,
    )
    return TrainingResult(
        network=network.to("cpu").eval(),
        config=config,
        normalizers=dict(zip(tickers, split.normalizers, strict=True)),
        tickers=tickers,
        report=report,
        history=best.history,
        test_loss=test_loss,
        seconds=time.perf_counter() - started,
    )


def _market_if_everyone_has_it(
    datasets: Sequence[DailyData], config: LstmConfig
) -> tuple[LstmConfig, tuple[str, ...]]:
    """The config with ``market`` off, and a note saying so, when a ticker lacks the series."""
    without_market = [d.ticker for d in datasets if d.market_log_rv is None]
    if not (config.market and without_market):
        return config, ()
    note = (
        f"trained without the market input: {len(without_market)} tickers came without "
        f"the market series ({', '.join(without_market[:3])})"
    )
    return replace(config, market=False), (note,)


Part = tuple[np.ndarray, np.ndarray]
"""Global positions of a part's origins, and for each the position where its targets stop."""


@dataclass(frozen=True)
class Split:
    """Each ticker's days cut in order into training, validation and test origins."""

    windows: Windows
    normalizers: list[Normalizer]
    train: Part
    validation: Part
    test: Part

    @classmethod
    def of(cls, datasets: Sequence[DailyData], config: LstmConfig) -> Split:
        """The split of ``datasets`` by ``config``'s fractions, thinned by its ``stride``."""
        cuts = [
            (
                int(len(d) * config.train_fraction),
                int(len(d) * (config.train_fraction + config.validation_fraction)),
                len(d),
            )
            for d in datasets
        ]
        normalizers = [Normalizer.fit(d.head(c[0])) for d, c in zip(datasets, cuts, strict=True)]
        windows = Windows(
            datasets, normalizers, config.seq_len, market=config.market, seasonal=config.seasonal
        )

        def part(k: int, stride: int) -> Part:
            positions, ends = [], []
            for i, cut in enumerate(cuts):
                lo = 0 if k == 0 else cut[k - 1]
                got = windows.origins(i, lo, cut[k], stride)
                positions.append(got)
                ends.append(np.full(len(got), windows.offsets[i] + cut[k]))
            return np.concatenate(positions), np.concatenate(ends)

        # Validation runs every epoch: thinned like training, or it costs a sixth of the epoch.
        split = cls(windows, normalizers, part(0, config.stride), part(1, config.stride),
                    part(2, 1))  # fmt: skip
        if len(split.train[0]) == 0 or len(split.validation[0]) == 0:
            msg = "too little data for a training and a validation window"
            raise ValueError(msg)
        return split


@dataclass
class _Best:
    """The best validation loss so far, its 0-based epoch and weights, and every epoch's losses."""

    loss: float = math.inf
    epoch: int = -1
    state: dict[str, torch.Tensor] | None = None
    history: list[tuple[float, float]] = field(default_factory=list)


def _run_epochs(
    network: LstmNetwork, split: Split, config: LstmConfig, *,
    on_epoch: EpochCallback | None, started: float,
) -> _Best:  # fmt: skip
    """Epochs until ``max_epochs`` or ``patience`` epochs without a better validation loss."""
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    shuffle = np.random.default_rng(config.seed)
    best = _Best()
    for epoch in range(config.max_epochs):
        network.train()
        order = shuffle.permutation(len(split.train[0]))
        train_loss = _train_epoch(network, optimizer, split, order, config.batch_size)
        val_loss = mean_loss(network, split.windows, *split.validation)
        best.history.append((train_loss, val_loss))
        improved = val_loss < best.loss - 1e-6
        if improved:
            best.loss, best.epoch = val_loss, epoch
            best.state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        stop = not improved and epoch - best.epoch >= config.patience
        if on_epoch is not None:
            on_epoch(
                EpochReport(
                    epoch=epoch + 1,
                    max_epochs=config.max_epochs,
                    train_loss=train_loss,
                    validation_loss=val_loss,
                    best_epoch=best.epoch + 1,
                    seconds=time.perf_counter() - started,
                    last=stop or epoch + 1 == config.max_epochs,
                )
            )
        if stop:
            break
    return best


def _train_epoch(
    network: LstmNetwork, optimizer: torch.optim.Optimizer, split: Split, order: np.ndarray,
    batch_size: int,
) -> float:  # fmt: skip
    """One pass over the training origins in ``order``; the mean training loss."""
    positions, ends = split.train
    device = next(network.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        raise_if_interrupted()  # a Ctrl-C during a training job stops between two steps
        chosen = order[start : start + batch_size]
        loss = split.windows.batch(positions[chosen], ends[chosen]).to(device).loss(network)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimizer.step()
        total += float(loss.detach()) * len(chosen)
        count += len(chosen)
    return total / max(count, 1)


@torch.no_grad()
def mean_loss(
    network: LstmNetwork,
    windows: Windows,
    positions: np.ndarray,
    ends: np.ndarray,
    *,
    chunk: int = 8192,
) -> float:
    """Mean QLIKE over the origins at ``positions`` (targets from ``ends`` on masked)."""
    network.eval()
    device = next(network.parameters()).device
    total, weight = 0.0, 0.0
    for start in range(0, len(positions), chunk):
        batch = windows.batch(positions[start : start + chunk], ends[start : start + chunk])
        batch = batch.to(device)
        n = float(batch.mask.sum())
        total += float(batch.loss(network)) * n
        weight += n
    return total / weight if weight else math.nan
