"""Training speed: every model on every shared ticker's full history, and peak memory.

Per-ticker models (the GARCH family, EWMA, historical, HAR, ensemble) are fitted in a pool
of worker processes; the LSTM is one pooled network for all tickers, trained with early
stopping on each ticker's validation split. Prints seconds per stage and the peak resident
memory of this process and of its workers.

    python benchmarks/train_speed.py [--workers 2] [--device auto|cpu|cuda] [--lstm-only]

Target (issue 3): at most 10 minutes in all on a 2-core machine, peak memory under 4 GiB;
the LSTM stage under 2 minutes on a GPU.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from _common import SHARED_FILE, main_with_page
from volforecast.core.features import DailyData, market_log_rv
from volforecast.core.parallel import one_blas_thread
from volforecast.data.sources import load_file
from volforecast.errors import VolforecastError
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.models.catalog import build_model
from volforecast.models.lstm.model import LstmModel
from volforecast.models.lstm.network import resolve_device
from volforecast.settings import QualitySettings

PER_TICKER = ("garch", "gjr-garch-t", "egarch-t", "ewma", "historical", "har", "ensemble")


def fit_all(data: DailyData) -> tuple[str, int, int, list[str]]:
    fitted = converged = 0
    failures = []
    for name in PER_TICKER:
        try:
            model = build_model(name).fit(data)
        except VolforecastError as exc:
            failures.append(f"{data.ticker}/{name}: {exc}")
            continue
        fitted += 1
        converged += model.fit_report.converged
    return data.ticker, fitted, converged, failures


def load_datasets(file: Path, limit: int | None = None) -> list[DailyData]:
    """Every ticker of ``file`` with enough days for the LSTM, with the market series.

    HAR and the LSTM read the market series, as training from the database gives it them.
    """
    datasets, _ = daily_data_by_ticker(load_file(file).frame, QualitySettings())
    market = market_log_rv(datasets.values())
    data = [d.with_market(market) for d in datasets.values() if len(d) >= LstmModel.min_obs]
    return data[:limit] if limit else data


def peak_gib() -> tuple[float, float]:
    kib = 1024 * 1024  # ru_maxrss is in KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=SHARED_FILE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lstm-only", action="store_true")
    parser.add_argument("--no-lstm", action="store_true", help="the per-ticker models only")
    parser.add_argument("--limit", type=int, help="only the first N tickers (a quick look)")
    args = parser.parse_args()

    started = time.perf_counter()
    data = load_datasets(args.file, args.limit)
    days = sum(len(d) for d in data)
    load_s = time.perf_counter() - started
    device = resolve_device(args.device)
    print(
        f"{len(data)} tickers, {days:,} days; torch {torch.__version__} on {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    print(f"load and quality gate: {load_s:.1f} s")

    per_ticker_s = 0.0
    if not args.lstm_only:
        t0 = time.perf_counter()
        fitted = converged = 0
        failures: list[str] = []
        with ProcessPoolExecutor(max_workers=args.workers, initializer=one_blas_thread) as pool:
            for _, n, c, f in pool.map(fit_all, data, chunksize=4):
                fitted, converged, failures = fitted + n, converged + c, failures + f
        per_ticker_s = time.perf_counter() - t0
        print(
            f"per-ticker models ({', '.join(PER_TICKER)}): {fitted} fits "
            f"({converged} converged, {len(failures)} failed) in {per_ticker_s:.1f} s "
            f"with {args.workers} workers"
        )
        for failure in failures[:5]:
            print(f"  {failure}")

    if not args.no_lstm:
        t0 = time.perf_counter()
        result = LstmModel.fit_panel(data, device=args.device).training  # LstmConfig's defaults
        lstm_s = time.perf_counter() - t0
        print(
            f"LSTM, one network for {len(data)} tickers ({result.config}): "
            f"{lstm_s:.1f} s, {len(result.history)} epochs; "
            f"{result.report.message}"
        )
    own, children = peak_gib()
    total = time.perf_counter() - started
    print(
        f"total {total:.1f} s ({total / 60:.1f} min); peak memory {own:.2f} GiB in this "
        f"process, {children:.2f} GiB in the largest worker"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main_with_page(main, "Training time of every model")
