"""The pooled LSTM stage of train_speed.py, on a machine that has PyTorch and little else.

A GPU machine may lack the rest of volforecast's dependencies (the quality gate, the
database layer). So the features are prepared here, from the shared file exactly as
train_speed.py prepares them, and saved; the timing step then imports only the LSTM.

    python benchmarks/lstm_gpu.py prepare var/lstm-input.npz
    python benchmarks/lstm_gpu.py time var/lstm-input.npz [--device cuda]

The arrays are stored as float32 to keep the file small (about 30 MB for 396 tickers); the
LSTM computes in float32 anyway. Target (issue 3): the LSTM stage under 2 minutes on a GPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import SHARED_FILE, main_with_page


def prepare(out: Path, file: Path, limit: int | None) -> None:
    """Write every ticker's features and the market series as the LSTM reads them."""
    from train_speed import load_datasets  # noqa: PLC0415  (the full stack, here only)

    data = load_datasets(file, limit)
    arrays: dict[str, np.ndarray] = {"tickers": np.array([d.ticker for d in data])}
    for i, d in enumerate(data):
        arrays[f"days_{i}"] = d.dates.to_numpy().astype("datetime64[D]").astype(np.int32)
        arrays[f"returns_pct_{i}"] = d.returns_pct.astype(np.float32)
        arrays[f"rv_sigma2_{i}"] = d.rv_sigma2.astype(np.float32)
        arrays[f"market_log_rv_{i}"] = np.asarray(d.market_log_rv, dtype=np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    days = sum(len(d) for d in data)
    print(f"{len(data)} tickers, {days:,} days -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` settings of the LSTM; numbers become numbers."""
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        value: object = text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        overrides[key.strip()] = value
    return overrides


def time_lstm(
    file: Path, device: str, *, history: bool = False, overrides: dict[str, object] | None = None
) -> None:
    """Train the pooled LSTM on the prepared features and print how long it took."""
    import torch  # noqa: PLC0415

    from volforecast.core.features import DailyData  # noqa: PLC0415
    from volforecast.models.lstm.model import LstmModel  # noqa: PLC0415
    from volforecast.models.lstm.network import resolve_device  # noqa: PLC0415

    with np.load(file) as arrays:
        data = [
            DailyData(
                str(ticker),
                pd.DatetimeIndex(arrays[f"days_{i}"].astype("datetime64[D]")),
                arrays[f"returns_pct_{i}"].astype(np.float64),
                arrays[f"rv_sigma2_{i}"].astype(np.float64),
                arrays[f"market_log_rv_{i}"].astype(np.float64),
            )
            for i, ticker in enumerate(arrays["tickers"])
        ]
    where = resolve_device(device)
    name = torch.cuda.get_device_name(where) if where.type == "cuda" else "CPU"
    print(f"{len(data)} tickers; torch {torch.__version__} on {where} ({name})")
    started = time.perf_counter()
    settings = overrides or {}  # LstmConfig's defaults unless --set changes one
    result = LstmModel.fit_panel(data, device=device, **settings).training
    seconds = time.perf_counter() - started
    print(
        f"LSTM, one network for {len(data)} tickers ({settings or 'no setting'} changed "
        f"from LstmConfig's defaults; market input {result.config.market}): {seconds:.1f} s, "
        f"{len(result.history)} epochs, {seconds / len(result.history):.1f} s an epoch; "
        f"{result.report.message}"
    )
    if where.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(where) / 2**30:.2f} GiB")
    if history:
        for epoch, (train, validation) in enumerate(result.history, start=1):
            print(f"  epoch {epoch:>3}: train QLIKE {train:.4f}, validation {validation:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    make = steps.add_parser("prepare", help="features of the shared file, saved for `time`")
    make.add_argument("out", type=Path)
    make.add_argument("--file", type=Path, default=SHARED_FILE)
    make.add_argument("--limit", type=int, help="only the first N tickers (a quick look)")
    run = steps.add_parser("time", help="train the pooled LSTM on prepared features")
    run.add_argument("file", type=Path)
    run.add_argument("--device", default="auto")
    run.add_argument("--history", action="store_true", help="print the losses of every epoch")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an LstmConfig setting other than its default (e.g. learning_rate=0.003)",
    )
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.out, args.file, args.limit)
    else:
        time_lstm(args.file, args.device, history=args.history, overrides=parse_overrides(args.set))


if __name__ == "__main__":
    main_with_page(main, "The pooled LSTM on a GPU")
