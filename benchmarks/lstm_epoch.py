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

import numpy as np
import torch

from _common import SHARED_FILE, main_with_page
from volforecast.core.features import market_log_rv
from volforecast.data.sources import load_file
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.models import lstm
from volforecast.settings import QualitySettings

BATCH_SIZES = (256, 512, 1024, 2048)


def step_seconds(network: lstm.LstmNetwork, batch: int, repeats: int = 20) -> float:
    """Seconds of one optimizer step on a synthetic batch of ``batch`` windows."""
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    inputs = network.lstm.input_size - network.embedding.embedding_dim
    windows = torch.randn(batch, 20, inputs)
    ids = torch.randint(0, network.embedding.num_embeddings, (batch,))
    targets = torch.randn(batch, lstm.MAX_HORIZON)
    mask = torch.ones(batch, lstm.MAX_HORIZON, dtype=torch.bool)
    stats = torch.tensor([[0.0, 1.0]]).repeat(batch, 1)
    season = None
    if network.season_weights is not None:
        season = torch.randn(batch, lstm.MAX_HORIZON, network.season_weights.shape[1])
    step = lstm.Batch(windows, ids, season, targets, mask, stats)
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
    parser.add_argument("--stride", type=int, default=lstm.LstmConfig().stride)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    datasets, _ = daily_data_by_ticker(load_file(SHARED_FILE).frame, QualitySettings())
    market = market_log_rv(datasets.values())
    data = [d.with_market(market) for d in datasets.values() if len(d) >= lstm.LstmModel.min_obs]
    config = lstm.LstmConfig(stride=args.stride)
    cuts = [(int(len(d) * 0.8), int(len(d) * 0.9)) for d in data]
    normalizers = [lstm.Normalizer.fit(d.head(c[0])) for d, c in zip(data, cuts, strict=True)]
    panel = lstm._Panel(
        data, normalizers, config.seq_len, market=config.market, seasonal=config.seasonal
    )

    def part(lo: int, hi: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
        positions, ends = [], []
        for i, cut in enumerate(cuts):
            start = 0 if lo < 0 else cut[lo]
            got = panel.origins(i, start, cut[hi], stride)
            positions.append(got)
            ends.append(np.full(len(got), panel.offsets[i] + cut[hi]))
        return np.concatenate(positions), np.concatenate(ends)

    train_pos, train_end = part(-1, 0, args.stride)
    print(f"{len(data)} tickers; {len(train_pos):,} training windows (stride {args.stride}); "
          f"torch {torch.__version__}, {args.threads} threads")  # fmt: skip

    network = lstm.LstmNetwork(len(data), config)
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
        loss = panel.batch(train_pos[chosen], train_end[chosen]).loss(network)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    per_step = (time.perf_counter() - started) / steps
    print(f"\nreal batches of {batch_size}: {per_step * 1000:.1f} ms a step, "
          f"{per_step * len(train_pos) / batch_size:.1f} s an epoch")  # fmt: skip

    device = torch.device("cpu")
    for stride in (1, args.stride):
        val_pos, val_end = part(0, 1, stride)
        started = time.perf_counter()
        lstm._evaluate(network, panel, val_pos, val_end, device)
        print(f"validation over every {stride}-th window ({len(val_pos):,}): "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main_with_page(main, "The LSTM epoch on the CPU")
