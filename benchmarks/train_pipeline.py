"""The weekly retrain end to end: every shared ticker, every candidate family, with MLflow.

Loads the shared S&P 500 file into a fresh SQLite database under a temporary home, then runs
the training job exactly as ``volforecast train --all`` does, with its defaults (every
candidate family of the catalog): quality gate, fit before each ticker's test window,
evaluation on it, MLflow runs with their metrics, fit reports, plots and pyfunc models,
registration, promotion decisions and metric rows, then each ticker's champion. The champion
stage's seconds are printed apart, with how many tickers each family won.
The first pass starts from an empty registry; ``--passes 2`` runs the job again, as next
week's retrain (forced, since the prices here do not change): it then also compares every
challenger with production, and fine-tunes the LSTM from production's weights.

    python benchmarks/train_pipeline.py [--workers N] [--passes 1] [--tracking-uri URI]

Workers are the job's default (one per usable core, as ``volforecast train`` starts) unless
``--workers`` says otherwise.

Target (issue 4): at most 10 minutes for all ~400 tickers on this 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow import MlflowClient

from _common import SHARED_FILE, main_with_page
from volforecast.core.parallel import default_workers
from volforecast.data.db import create_db_engine, ensure_schema
from volforecast.data.repositories.metrics import MetricRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_file
from volforecast.jobs.train import TrainConfig, TrainReport, train
from volforecast.models.lstm.config import LstmConfig
from volforecast.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="0 = the job's default")
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--tickers", type=int, default=0, help="first N tickers (0 = all)")
    parser.add_argument("--tracking-uri", default="", help="an mlflow server; local by default")
    parser.add_argument("--file", type=Path, default=SHARED_FILE)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="volforecast-pipeline-"))
    settings = Settings(home=home, mlflow_tracking_uri=args.tracking_uri)
    engine = create_db_engine(settings)
    ensure_schema(engine)
    prices = load_file(args.file).frame
    tickers = sorted(prices["ticker"].unique())
    if args.tickers:
        tickers = tickers[: args.tickers]
        prices = prices[prices["ticker"].isin(tickers)]
    started = time.perf_counter()
    PriceRepository(engine).upsert(prices, ingested_at=dt.datetime.now(dt.UTC))
    print(f"{len(tickers)} tickers, {len(prices):,} rows ingested in "
          f"{time.perf_counter() - started:.0f} s into {settings.database_url}")  # fmt: skip

    # Forced: the prices do not change between passes here, as they would from week to week.
    # The models and the LSTM with their defaults, as `volforecast train --all` trains them.
    config = TrainConfig(workers=args.workers or None, force=True)
    workers = args.workers or f"{default_workers()} (the default)"
    print(f"MLflow: {settings.mlflow_tracking_uri}; workers {workers}; LSTM {LstmConfig()}")
    print(f"models: {', '.join(config.models)} (the catalog's candidates)")
    for number in range(1, args.passes + 1):
        began = time.perf_counter()
        report = train(engine, settings, config)
        seconds = time.perf_counter() - began
        ok = [o for o in report.outcomes if o.ok]
        versions = {(o.registered_model, o.version) for o in ok}
        promoted = len({(o.registered_model, o.version) for o in ok if o.promoted})
        metric_rows = len(MetricRepository(engine).load())
        print(f"\npass {number}: {seconds:.0f} s ({seconds / 60:.1f} min) for "
              f"{len(report.outcomes)} models")  # fmt: skip
        for stage, stage_seconds in report.stage_seconds.items():
            if stage not in {"champions", "total"}:
                print(f"  {stage:<48} {stage_seconds:7.1f} s")
        champions = report.champions
        if champions is not None:
            wins = ", ".join(f"{name} {n}" for name, n in sorted(champions.wins.items()))
            print(f"  {'champions':<48} {report.stage_seconds.get('champions', 0.0):7.1f} s"
                  f"  ({wins or 'none'}; {len(champions.undecided)} undecided)")  # fmt: skip
        print(f"  {'total':<48} {report.stage_seconds['total']:7.1f} s")
        # The accuracy a faster training must keep: the pooled network's own held-out days.
        print(f"  lstm: {_lstm_losses(settings, report)}")
        print(
            f"  versions registered {len(versions)}, promoted {promoted}, "
            f"failed {len(report.failed)}; metric rows stored so far {metric_rows:,}"
        )
        for failure in report.failed[:10]:
            print(f"    {failure.ticker} {failure.model}: {failure.message}")
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"\npeak memory: {rss_self:.2f} GiB (this process), {rss_children:.2f} GiB (a worker)")
    print(f"state left in {home}")


def _lstm_losses(settings: Settings, report: TrainReport) -> str:
    """The pooled LSTM's best validation QLIKE and its test QLIKE, from its fit report."""
    runs = sorted({o.run_id for o in report.outcomes if o.model == "lstm" and o.run_id})
    if not runs:
        return "not trained"
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    fit_report = json.loads(Path(client.download_artifacts(runs[0], "fit_report.json")).read_text())
    # The epochs' own timestamps split the stage: training, then evaluating and publishing.
    run = client.get_run(runs[0])
    epochs = client.get_metric_history(runs[0], "validation_qlike")
    if not epochs or run.info.end_time is None:
        return str(fit_report["message"])
    trained_s = (max(e.timestamp for e in epochs) - run.info.start_time) / 1000
    after_s = (run.info.end_time - max(e.timestamp for e in epochs)) / 1000
    return (f"{fit_report['message']}; {len(epochs)} epochs trained in {trained_s:.1f} s, "
            f"then evaluated and registered in {after_s:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main_with_page(main, "The weekly retrain, end to end")
