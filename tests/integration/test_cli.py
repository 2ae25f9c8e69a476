"""The command line: exit codes, messages, and the real console script."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.factories import clean_prices, with_row
from tests.integration.test_ingest import planted_faults
from volforecast.cli import ExitCode, app
from volforecast.data import db
from volforecast.data.db import create_db_engine
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.settings import get_settings

# The bundled sample ends on this session: predictions for it are fresh (see test_freshness).
SAMPLE_END = "2018-12-31"

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run commands in an empty directory against the test's database."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("VOLFORECAST_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("VOLFORECAST_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_ingest_sample_then_tickers_then_quality(cli_env: Path) -> None:
    code, output = invoke("ingest", "--sample")
    assert code == ExitCode.OK, output
    assert "complete: 10,062 rows inserted" in output
    code, output = invoke("ingest", "--sample")
    assert code == ExitCode.OK
    assert "0 rows inserted, 0 updated, 10,062 unchanged" in output
    code, output = invoke("tickers")
    assert code == ExitCode.OK
    assert "^GSPC" in output
    assert "^IXIC" in output
    assert "1999-01-04" in output
    code, output = invoke("quality", "--report-json", "q.json")
    assert code == ExitCode.OK, output
    report = json.loads((cli_env / "q.json").read_text())
    assert report["rows_received"] == 10_062
    assert {t["status"] for t in report["tickers"].values()} == {"ok"}


def test_planted_faults_exit_partial_with_a_per_ticker_report(cli_env: Path) -> None:
    planted_faults().to_csv(cli_env / "faults.csv", index=False)
    code, output = invoke(
        "ingest", "--file", "faults.csv", "--rejects", "rejects.csv", "--report-json", "report.json"
    )
    assert code == ExitCode.PARTIAL, output
    assert output.count("partial") >= 2
    for text in (
        "#$%@!",
        "bad_ticker",
        "non_positive_price",
        "high_below_low",
        "duplicate_date",
        "gap",
        "BAD",
    ):
        assert text in output, f"{text!r} missing from the report"
    assert "GOOD1" not in output, "clean tickers are summarised, not listed"
    report = json.loads((cli_env / "report.json").read_text())
    assert report["status"] == "partial"
    assert report["quality"]["tickers"]["GOOD1"]["status"] == "ok"
    assert (cli_env / "rejects.csv").is_file()


def test_a_file_with_nothing_good_fails(cli_env: Path) -> None:
    bad = with_row(clean_prices("#BAD#", 5), 0, low=-1.0)
    bad.to_csv(cli_env / "bad.csv", index=False)
    code, output = invoke("ingest", "--file", "bad.csv")
    assert code == ExitCode.ERROR
    assert "failed" in output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ingest",), ExitCode.USAGE, "give exactly one of --sample"),
        (("ingest", "--sample", "--file", "x.csv"), ExitCode.USAGE, "exactly one"),
        (("ingest", "--yfinance", "AAPL"), ExitCode.USAGE, "--yfinance needs --start"),
        (("ingest", "--file", "missing.csv"), ExitCode.ERROR, "no such file: missing.csv"),
        (("quality", "--tickers", "NOPE"), ExitCode.ERROR, "no stored prices for NOPE"),
        (("ingest", "--bogus"), ExitCode.USAGE, "No such option"),
        (("models", "rollback", ""), ExitCode.ERROR, "'' is not a registered model's name"),
        (("models", "rollback", "nope"), ExitCode.ERROR, "nope has no production version"),
    ],
)
def test_bad_input_gets_one_clear_sentence(
    cli_env: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    exit_code, output = invoke(*args)
    assert exit_code == code
    assert message in output
    assert "Traceback" not in output


def test_a_dead_database_exits_unavailable(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLFORECAST_DATABASE_URL", "postgresql://vf:pw@127.0.0.1:9/vf")
    get_settings.cache_clear()
    code, output = invoke("ingest", "--sample")
    assert code == ExitCode.UNAVAILABLE
    assert "vf:***@127.0.0.1:9/vf is unavailable" in output
    assert "pw" not in output


def test_bad_settings_name_the_variable(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLFORECAST_QUALITY__STALE_DAYS", "one")
    get_settings.cache_clear()
    code, output = invoke("tickers")
    assert code == ExitCode.ERROR
    assert "VOLFORECAST_QUALITY__STALE_DAYS" in output


def test_db_commands(cli_env: Path) -> None:
    code, output = invoke("db", "current")
    assert code == ExitCode.OK
    assert "up to date" in output
    code, output = invoke("db", "downgrade", "base", "--yes")
    assert code == ExitCode.OK
    assert "revision base" in output
    code, output = invoke("db", "upgrade")
    assert code == ExitCode.OK
    assert f"revision {db.head_revision()}" in output


def test_help_explains_the_commands() -> None:
    code, output = invoke("--help")
    assert code == ExitCode.OK
    for command in ("ingest", "quality", "tickers", "db", "train", "models", "mlflow"):
        assert command in output
    code, output = invoke("ingest", "--help")
    assert "adjusted_close" in output
    assert "--rejects" in output


def test_the_console_script_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFORECAST_")}
    env["VOLFORECAST_HOME"] = str(tmp_path / "var")
    script = Path(sys.executable).parent / "volforecast"
    version = subprocess.run(
        [script, "--version"], capture_output=True, text=True, env=env, check=True, cwd=tmp_path
    )
    assert version.stdout.startswith("volforecast ")
    done = subprocess.run(
        [script, "ingest", "--sample"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "var" / "volforecast.db").is_file()


def test_log_level_comes_from_settings_unless_a_flag_says_otherwise(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("ingest", "--sample")
    monkeypatch.setenv("VOLFORECAST_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    assert "Checked 10062 stored rows" not in invoke("quality")[1]
    assert "Checked 10062 stored rows" in invoke("--verbose", "quality")[1]


def test_backtest_from_the_database_writes_every_forecast(cli_env: Path) -> None:
    invoke("ingest", "--sample")
    code, output = invoke(
        "backtest",
        "--from-db",
        "--all",
        "--train-end",
        "2017-12-29",
        "--test-end",
        "2018-02-28",
        "--models",
        "garch,har,ewma",
        "--out",
        "bt.csv",
    )
    assert code == ExitCode.OK, output
    assert "Median QLIKE relative to GARCH" in output
    frame = pd.read_csv(cli_env / "bt.csv")
    assert list(frame.columns) == [
        "ticker",
        "model",
        "origin_date",
        "step",
        "forecast_date",
        "predicted_volatility",
    ]
    assert set(frame["ticker"]) == {"^GSPC", "^IXIC"}
    assert len(frame) == 2 * 3 * 40 * 30  # tickers x models x origins x steps


def test_backtest_reads_the_shared_layout_directly(cli_env: Path, sp500_file: Path) -> None:
    code, output = invoke(
        "backtest",
        "--prices",
        str(sp500_file),
        "--tickers",
        "AAPL,JPM",
        "--train-end",
        "2018-06-29",
        "--test-end",
        "2018-07-31",
        "--models",
        "garch,har+ewma",
        "--combine",
        "learned",
        "--out",
        "bt.parquet",
    )
    assert code == ExitCode.OK, output
    assert "HAR+EWMA" in output
    frame = pd.read_parquet(cli_env / "bt.parquet")
    assert set(frame["ticker"]) == {"AAPL", "JPM"}
    assert set(frame["model"]) == {"GARCH", "HAR+EWMA"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tickers", "X", "--models", "garch"), "exactly one of --prices FILE and --from-db"),
        (("--from-db", "--models", "garch"), "give --tickers A,B,... or --all"),
        (("--from-db", "--all", "--models", "arima"), "unknown model 'arima'"),
        (("--from-db", "--all", "--out", "x.txt"), "write forecasts to a .csv or a .parquet"),
        (("--from-db", "--all", "--combine", "best"), "combine must be one of equal, learned"),
    ],
)
def test_backtest_bad_input_is_one_sentence(
    cli_env: Path, args: tuple[str, ...], message: str
) -> None:
    invoke("ingest", "--sample")
    code, output = invoke("backtest", *args)
    assert code in {ExitCode.USAGE, ExitCode.ERROR}
    assert message in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_train_registers_and_the_models_commands_read_the_registry(cli_env: Path) -> None:
    assert invoke("ingest", "--sample")[0] == ExitCode.OK
    assert invoke("predict")[0] == ExitCode.USAGE  # --tickers or --all
    code, output = invoke("predict", "--all")
    assert code == ExitCode.ERROR
    assert "no model is in production yet" in output
    trained = cli_env / "train.json"
    code, output = invoke(
        "train", "--all", "--models", "garch", "--no-plots", "--report-json", str(trained)
    )
    assert code == ExitCode.OK, output
    assert "garch_volatility_gspc v1" in output
    outcomes = json.loads(trained.read_text())["outcomes"]
    assert {(o["ticker"], o["version"], o["promoted"]) for o in outcomes} == {
        ("^GSPC", "1", True),
        ("^IXIC", "1", True),
    }
    assert "production" in output
    code, output = invoke("train", "--all", "--models", "garch", "--no-plots")
    assert code == ExitCode.OK, output
    assert output.count("unchanged since v1") == 2  # the same day again registers nothing
    code, output = invoke("models", "list")
    assert code == ExitCode.OK
    assert "garch_volatility_ixic" in output
    code, output = invoke("models", "history", "garch_volatility_gspc", "--at", "2100-01-01")
    assert code == ExitCode.OK
    assert "served in production at 2100-01-01 00:00: v1" in output
    code, output = invoke("models", "rollback", "garch_volatility_gspc")
    assert code == ExitCode.ERROR
    assert "no production version before v1" in output

    # The daily job: every production model, every ticker, stored once however often it runs.
    report = cli_env / "predict.json"
    for _ in range(2):
        code, output = invoke("predict", "--all", "--horizon", "10", "--as-of", SAMPLE_END,
                              "--report-json", str(report))  # fmt: skip
        assert code == ExitCode.OK, output
        assert "2 paths, 20 rows and 22 risk rows stored" in output
    assert json.loads(report.read_text())["summary"]["GARCH"]["count"] == 2
    code, output = invoke("predict", "--tickers", "^GSPC", "--models", "garch", "--horizon", "3",
                          "--as-of", SAMPLE_END)  # fmt: skip
    assert code == ExitCode.OK
    assert "1 paths, 3 rows and 11 risk rows stored" in output
    engine = create_db_engine(get_settings())
    stored = PredictionRepository(engine)
    assert stored.find("^GSPC").total == 10, "no row stored twice"
    # A backfill: the forecast made from the close of 2018-06-29 (a Friday).
    code, output = invoke("predict", "--all", "--as-of", "2018-07-01", "--horizon", "2")
    assert code == ExitCode.OK, output
    backfilled = stored.find("^GSPC", end=dt.date(2018, 7, 31)).rows
    assert {r.origin_date for r in backfilled} == {dt.date(2018, 6, 29)}
    assert [r.forecast_date for r in backfilled] == [dt.date(2018, 7, 2), dt.date(2018, 7, 3)]
    code, output = invoke("predict", "--tickers", "^GSPC,NOPE", "--horizon", "3",
                          "--as-of", SAMPLE_END)  # fmt: skip
    assert code == ExitCode.PARTIAL, "NOPE failed; ^GSPC was stored"
    assert "NOPE: no production model serves it" in output
    code, output = invoke("predict", "--all", "--as-of", "1990-01-01")
    assert code == ExitCode.STALE, "no close at all is as stale as it gets"
    assert "no stored close on or before 1990-01-01" in output
    engine.dispose()


def test_train_refuses_unknown_models_and_tickers(cli_env: Path) -> None:
    code, output = invoke("train", "--all", "--models", "garch,prophet")
    assert code == ExitCode.USAGE
    assert "unknown model 'prophet'" in output
    code, output = invoke("train", "--tickers", "NOPE")
    assert code == ExitCode.ERROR
    assert "no stored prices for NOPE" in output


def test_an_mlflow_server_that_is_down_is_exit_code_4(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLFORECAST_MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("VOLFORECAST_MLFLOW_RETRIES", "0")
    monkeypatch.setenv("VOLFORECAST_MLFLOW_TIMEOUT_S", "1")
    code, output = invoke("models", "list")
    assert code == ExitCode.UNAVAILABLE
    assert "not answering" in output
    assert "volforecast mlflow" in output
