"""Where a pooled-LSTM epoch goes on this machine: training steps by batch size, validation.

Builds the pooled training and validation windows of every shared ticker (80/10/10, as
training does) and times, without training to the end:

- the forward and backward pass per window at several batch sizes (synthetic batches);
- 200 real training batches, extrapolated to one epoch;
- one validation pass over every window and over every ``--stride``-th one.

    python benchmarks/lstm_epoch.py [--stride N] [--threads N]

The network, the stride and the real batches are LstmConfig's defaults; the synthetic batches
vary the batch size on purpose, to show that the arithmetic per window barely changes with
it, so an epoch costs what its number of windows costs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from _common import SHARED_FILE, main_with_page
from volforecast.core.features import market_log_rv
from volforecast.data.sources import load_file
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.models.base import MAX_HORIZON
from volforecast.models.lstm.config import LstmConfig
from volforecast.models.lstm.model import LstmModel
from volforecast.models.lstm.network import LstmNetwork
from volforecast.models.lstm.training import Split, mean_loss
from volforecast.models.lstm.windows import Batch
from volforecast.settings import QualitySettings

BATCH_SIZES = (256, 512, 1024, 2048)


def step_seconds(network: LstmNetwork, batch: int, repeats: int = 20) -> float:
    """Seconds of one optimizer step on a synthetic batch of ``batch`` windows."""
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    inputs = network.lstm.input_size - network.embedding.embedding_dim
    windows = torch.randn(batch, 20, inputs)
    ids = torch.randint(0, network.embedding.num_embeddings, (batch,))
    targets = torch.randn(batch, MAX_HORIZON)
    mask = torch.ones(batch, MAX_HORIZON, dtype=torch.bool)
    stats = torch.tensor([[0.0, 1.0]]).repeat(batch, 1)
    season = None
    if network.season_weights is not None:
        season = torch.randn(batch, MAX_HORIZON, network.season_weights.shape[1])
    step = Batch(windows, ids, season, targets, mask, stats)
    for k in range(repeats + 3):
        if k == 3:  # the first steps warm up the allocator
            started = time.perf_counter()
        loss = step.loss(network)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=LstmConfig().stride)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    datasets, _ = daily_data_by_ticker(load_file(SHARED_FILE).frame, QualitySettings())
    market = market_log_rv(datasets.values())
    data = [d.with_market(market) for d in datasets.values() if len(d) >= LstmModel.min_obs]
    config = LstmConfig(stride=args.stride)
    split = Split.of(data, config)
    train_pos, train_end = split.train
    print(f"{len(data)} tickers; {len(train_pos):,} training windows (stride {args.stride}); "
          f"torch {torch.__version__}, {args.threads} threads")  # fmt: skip

    network = LstmNetwork(len(data), config)
    print("\nbatch   ms/step   µs/window   epoch of training windows")
    for batch in BATCH_SIZES:
        seconds = step_seconds(network, batch)
        per_window = seconds / batch
        print(f"{batch:>5} {seconds * 1000:>9.1f} {per_window * 1e6:>11.1f} "
              f"{per_window * len(train_pos):>12.1f} s")  # fmt: skip

    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    order = np.random.default_rng(0).permutation(len(train_pos))
    started = time.perf_counter()
    steps = 200
    batch_size = config.batch_size
    for k in range(steps):
        chosen = order[k * batch_size : (k + 1) * batch_size]
        loss = split.windows.batch(train_pos[chosen], train_end[chosen]).loss(network)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    per_step = (time.perf_counter() - started) / steps
    print(f"\nreal batches of {batch_size}: {per_step * 1000:.1f} ms a step, "
          f"{per_step * len(train_pos) / batch_size:.1f} s an epoch")  # fmt: skip

    for stride in (1, args.stride):
        every = split if stride == args.stride else Split.of(data, replace(config, stride=stride))
        val_pos, val_end = every.validation
        started = time.perf_counter()
        mean_loss(network, every.windows, val_pos, val_end)
        print(f"validation over every {stride}-th window ({len(val_pos):,}): "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main_with_page(main, "The LSTM epoch on the CPU")
