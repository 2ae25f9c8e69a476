"""What `make run` stored, dumped to CSV, and two dumps compared: the redesign's yardstick.

    python benchmarks/run_record.py dump HOME OUT     # HOME: a VOLFORECAST_HOME (./var)
    python benchmarks/run_record.py compare OUT_A OUT_B

A dump holds the stored forecast paths, the model metrics and every MLflow metric value of
the embedded default (SQLite files in HOME), ordered so that two runs of the same code give
byte-identical files. ``compare`` says which files differ and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import pandas as pd

FILES = ("predictions.csv", "model_metrics.csv", "mlflow_metrics.csv")


def dump(home: Path, out: Path) -> None:
    """Write the three CSVs of what the run in ``home`` stored."""
    out.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(home / "volforecast.db") as store:
        pd.read_sql(
            "SELECT ticker, model_type, origin_date, step, forecast_date, predicted_volatility,"
            " model_version FROM volatility_predictions ORDER BY 1, 2, 3, 4",
            store,
        ).to_csv(out / FILES[0], index=False)
        metrics = pd.read_sql("SELECT * FROM model_metrics", store)
    metrics = metrics.drop(columns=[c for c in ("id", "created_at", "run_id") if c in metrics])
    metrics.sort_values(list(metrics.columns[:4])).to_csv(out / FILES[1], index=False)
    with sqlite3.connect(home / "mlflow.db") as tracking:
        pd.read_sql(
            "SELECT r.name AS run, m.key, m.value, m.step FROM metrics m"
            " JOIN runs r ON r.run_uuid = m.run_uuid ORDER BY 1, 2, 4",
            tracking,
        ).to_csv(out / FILES[2], index=False)
    print(f"dumped {home} to {out}")


def compare(a: Path, b: Path) -> int:
    """Print each file as identical or different; 1 if any differs."""
    differ = 0
    for name in FILES:
        same = (a / name).read_bytes() == (b / name).read_bytes()
        differ += not same
        print(f"{name}: {'identical' if same else 'DIFFERENT'}")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command, first, second in (("dump", "home", "out"), ("compare", "a", "b")):
        one = sub.add_parser(command)
        one.add_argument(first, type=Path)
        one.add_argument(second, type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.home, args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
