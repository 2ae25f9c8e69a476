"""The docs' "How to add a model", followed to the letter: one file, one catalog line.

A copy of the package gets ``tests/fixtures/toy_model.py`` (which the page shows) as
``models/toy.py`` and the page's one entry in its catalog; then the real command line, run
from that copy, trains and promotes the toy, serves it, backtests it beside GARCH and
monitors it, as a user's day would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from numpy.testing import assert_allclose

from tests.conftest import REPO, make_settings
from tests.integration.servers import clean_env, free_port, volforecast_server
from volforecast.core.features import DailyData
from volforecast.data import db
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.sources import load_sample
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

PAGE = REPO / "docs" / "models" / "add-a-model.md"
TOY_FILE = REPO / "tests" / "fixtures" / "toy_model.py"
TRAINED_UNTIL = "2018-11-30"
"""Training sees the closes up to here; monitoring judges the December after it."""
WINDOW, DECAY = 22, 0.9
"""The toy's default options (see the fixture)."""


def catalog_line() -> str:
    """The one line the page adds to ``CATALOG``, once it has checked the page shows the toy."""
    page = PAGE.read_text()
    assert f'--8<-- "{TOY_FILE.relative_to(REPO)}"' in page, "the page shows the toy's file"
    lines = [line.strip() for line in page.splitlines() if line.lstrip().startswith("_spec(")]
    assert len(lines) == 1, lines
    return lines[0]


def add_the_toy(src: Path) -> Path:
    """The package copied under ``src``, with the toy added as the page says; its folder."""
    package = shutil.copytree(REPO / "src" / "volforecast", src / "volforecast",
                              ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copyfile(TOY_FILE, package / "models" / "toy.py")
    catalog = package / "models" / "catalog.py"
    lines = catalog.read_text().splitlines(keepends=True)
    lstm = next(i for i, line in enumerate(lines) if line.lstrip().startswith('_spec("lstm"'))
    indent = lines[lstm][: len(lines[lstm]) - len(lines[lstm].lstrip())]
    lines.insert(lstm, f"{indent}{catalog_line()}\n")
    catalog.write_text("".join(lines))
    return package


@dataclass(frozen=True)
class Home:
    """The copy with the toy, and the settings its commands run with."""

    folder: Path
    package: Path
    env: dict[str, str]

    def run(self, *args: str) -> str:
        """``python -m volforecast ARGS`` from the copy; its output, once it succeeded."""
        done = subprocess.run([sys.executable, "-m", "volforecast", *args], env=self.env,
                              cwd=self.folder, capture_output=True, text=True, timeout=300,
                              check=False)  # fmt: skip
        assert done.returncode == 0, f"volforecast {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    @property
    def settings(self) -> Settings:
        """What the commands read: an embedded home (SQLite, local MLflow store)."""
        return make_settings(home=self.folder / "var")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The toy added as the page says, trained on the closes to TRAINED_UNTIL; then the rest."""
    folder = tmp_path_factory.mktemp("add-a-model")
    package = add_the_toy(folder / "src")
    env = clean_env(home=str(folder / "var")) | {"PYTHONPATH": str(folder / "src")}
    home = Home(folder, package, env)
    sample = load_sample().frame
    sample[sample["date"] <= pd.Timestamp(TRAINED_UNTIL)].to_csv(folder / "early.csv", index=False)
    home.run("ingest", "--file", "early.csv")
    home.run("train", "--all", "--models", "toy", "--no-plots", "--report-json", "train.json")
    home.run("ingest", "--sample")
    return home


def test_the_copy_runs_and_the_toy_honours_the_contract(home: Home) -> None:
    # `python -m volforecast` imports what this does (and the worktree's catalog has no toy)
    code = "import volforecast; print(volforecast.__file__)"
    shown = subprocess.run([sys.executable, "-c", code], env=home.env, cwd=home.folder,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(shown.stdout.strip()) == home.package / "__init__.py", "the copy is what runs"
    contract = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/model/test_contract.py", "-k", "toy", "-q",
         "-p", "no:cacheprovider"],
        env=home.env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert contract.returncode == 0, contract.stdout[-3000:]
    assert " passed" in contract.stdout


def test_train_registers_each_tickers_toy_in_production(home: Home) -> None:
    outcomes = json.loads((home.folder / "train.json").read_text())["outcomes"]
    assert {(o["ticker"], o["version"], o["promoted"]) for o in outcomes} == {
        ("^GSPC", "1", True),
        ("^IXIC", "1", True),
    }, outcomes
    uri = home.settings.mlflow_tracking_uri
    # The registry's too: an earlier test in this process may have set MLflow's global one.
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in ("toy_volatility_gspc", "toy_volatility_ixic"):
        assert str(registry.get_model_version_by_alias(name, "production").version) == "1"


def test_the_service_answers_with_the_toys_path(home: Home) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    request = {"ticker": "^GSPC", "model_type": "toy", "horizon": 5}
    with volforecast_server(["serve", "--port", str(port)], home.env,
                            home.folder / "serve.log", f"{url}/health"):  # fmt: skip
        listed = requests.get(f"{url}/models", timeout=30).json()
        answer = requests.post(f"{url}/predict", json=request, timeout=60)
    assert {(m["model_name"], m["model_type"], m["stage"]) for m in listed} >= {
        ("toy_volatility_gspc", "TOY", "production")
    }, listed
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_type"], body["model_name"], body["model_version"], body["origin_date"]) == (
        "TOY", "toy_volatility_gspc", "1", "2018-12-31",
    )  # fmt: skip
    # The path is the toy's formula from the last close: the recent mean square of ^GSPC,
    # reverting by DECAY a day to the long-run variance (solved for from the first step).
    sample = load_sample().frame
    gspc = DailyData.from_prices(sample[sample["ticker"] == "^GSPC"])
    sigma2 = np.square(body["forecasts"])
    recent = float(np.mean(gspc.returns_pct[-WINDOW:] ** 2))
    long_run = (sigma2[0] - DECAY * recent) / (1 - DECAY)
    expected = long_run + (recent - long_run) * DECAY ** np.arange(1, 6)
    assert_allclose(sigma2, expected, rtol=1e-9)
    assert 0.5 < long_run < 2.5, "the mean square of 1999-2018's daily returns in percent²"


def test_the_backtest_holds_the_toys_rows_beside_garchs(home: Home) -> None:
    period = ("--train-end", "2018-10-31", "--test-end", "2018-11-30", "--horizon", "5")
    home.run("backtest", "--from-db", "--all", "--models", "toy,garch", *period, "--out", "bt.csv")
    frame = pd.read_csv(home.folder / "bt.csv")
    # November 2018 had 21 sessions: a path of 5 steps from each, for both tickers
    assert frame.groupby("model").size().to_dict() == {"GARCH": 2 * 21 * 5, "TOY": 2 * 21 * 5}
    toy = frame[frame["model"] == "TOY"]["predicted_volatility"].to_numpy()
    garch = frame[frame["model"] == "GARCH"]["predicted_volatility"].to_numpy()
    assert (toy > 0).all()
    assert not np.allclose(toy, garch)


def test_monitoring_judges_the_toy_on_the_days_since_training(home: Home) -> None:
    # Given the daily job's forecasts of December's sessions, the toy's first after training
    home.run("predict", "--all", "--from", "2018-12-03", "--to", "2018-12-31", "--horizon", "5")
    home.run("monitor", "run", "--all", "--report-json", "monitor.json")
    report = json.loads((home.folder / "monitor.json").read_text())
    assert (report["checked"], report["failures"], report["skipped"]) == (2, {}, []), report
    engine = db.create_db_engine(home.settings)
    store = MonitoringRepository(engine)
    checks, accuracy = store.latest_checks(), store.accuracy(horizon=1)
    engine.dispose()
    judged = checks[checks["model_type"] == "TOY"]
    assert set(judged["ticker"]) == {"^GSPC", "^IXIC"}
    assert set(judged["observed_on"].astype(str)) == {"2018-12-31"}
    assert set(accuracy["model_type"]) == {"TOY"}
    assert set(accuracy["ticker"]) == {"^GSPC", "^IXIC"}
