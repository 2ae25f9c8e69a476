"""Two ingests of the same file at once: nothing stored twice, and each report counts its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.factories import clean_prices
from tests.integration.servers import clean_env
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.prices import PriceRepository

pytestmark = pytest.mark.slow


def test_concurrent_loads_of_one_file_count_what_each_wrote(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    frame = pd.concat([clean_prices(f"T{i:03d}", 600, seed=i) for i in range(100)])
    frame.to_parquet(tmp_path / "prices.parquet")
    env = clean_env(home=str(tmp_path / "var"), database_url=database_url,
                    ingest_chunk_rows="5000")  # fmt: skip
    command = [sys.executable, "-m", "volforecast", "ingest", "--file", "prices.parquet"]
    loads = [
        subprocess.Popen(
            [*command, "--report-json", f"report-{n}.json"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in (1, 2)
    ]
    for load in loads:
        output, _ = load.communicate(timeout=600)
        assert load.returncode == 0, output
    reports = [json.loads((tmp_path / f"report-{n}.json").read_text()) for n in (1, 2)]
    assert PriceRepository(engine).count() == len(frame)
    assert sum(r["inserted"] for r in reports) == len(frame), reports
    for report in reports:
        assert report["inserted"] + report["updated"] + report["unchanged"] == len(frame)
        assert report["updated"] == 0
    assert MarketRepository(engine).stale() is None
