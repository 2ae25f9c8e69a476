"""The listings (``tickers``, ``models list``, ``models history``) as a user runs them.

Each runs as the real console script in a terminal of ``COLUMNS`` cells, on a home with the
longest names volforecast makes: a 15-character ticker and its GJR-GARCH-skew-t model.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from tests.conftest import make_settings
from tests.integration.servers import clean_env
from volforecast.data import db
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.train import TrainConfig, train

pytestmark = pytest.mark.slow

LONG_TICKER = "BRKB.XNYS-CLASS"
"""As long as a stored ticker may be without a caret: 15 characters."""
LONG_NAME = "gjr_garch_skewt_volatility_brkb_xnys_class"
ACTOR = "airflow@scheduler-7d9f8c6b5-x2x9z"
SCRIPT = Path(sys.executable).parent / "volforecast"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """^GSPC's GARCH and the long ticker's GJR-GARCH-skew-t in production."""
    home = tmp_path_factory.mktemp("listings") / "var"
    settings = make_settings(home=home)
    frame = load_sample().frame
    frame = frame[frame["ticker"] == "^GSPC"].tail(1500)
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    prices = PriceRepository(engine)
    now = dt.datetime.now(dt.UTC)
    prices.upsert(frame, ingested_at=now)
    prices.upsert(frame.assign(ticker=LONG_TICKER), ingested_at=now)
    for models, ticker in [(("garch",), "^GSPC"), (("gjr-garch-skewt",), LONG_TICKER)]:
        report = train(engine, settings, TrainConfig(models=models, plots=False, actor=ACTOR),
                       [ticker])  # fmt: skip
        assert report.complete, report.outcomes
    engine.dispose()
    return home


def _run(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = clean_env(home=str(home)) | {"COLUMNS": str(columns)}
    done = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


LISTINGS = [
    ("tickers",),
    ("models", "list"),
    ("models", "history", LONG_NAME),
]


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_a_listing_fits_80_columns_and_cuts_no_name(home: Path, args: tuple[str, ...]) -> None:
    output = _run(home, *args).stdout
    lines = output.splitlines()
    assert len(lines) > 4, output
    wide = [line for line in lines if cell_len(line) > 80]
    assert not wide, "wider than 80:\n" + "\n".join(wide)
    assert "…" not in output, f"something was cut:\n{output}"
    shown = LONG_NAME if args[0] == "models" else LONG_TICKER
    assert shown in output, f"{shown} is not whole:\n{output}"


def test_a_wide_terminal_shows_the_columns_a_narrow_one_leaves_out(home: Path) -> None:
    assert "type" not in _run(home, "models", "list").stdout.splitlines()[2]
    wide = _run(home, "models", "list", columns=160).stdout
    assert "GJR-GARCH-SKEWT" in wide
    history = _run(home, "models", "history", LONG_NAME, columns=160).stdout
    assert ACTOR in history
    assert ACTOR not in _run(home, "models", "history", LONG_NAME).stdout


def _json(home: Path, *args: str) -> Any:
    # Narrow on purpose: JSON must not be wrapped at the terminal's width.
    done = _run(home, *args, "--json", columns=40)
    return json.loads(done.stdout)


def test_tickers_json_is_the_stored_coverage(home: Path) -> None:
    listing = _json(home, "tickers")
    assert listing["database"].endswith("volforecast.db")
    by_ticker = {row["ticker"]: row for row in listing["tickers"]}
    assert set(by_ticker) == {"^GSPC", LONG_TICKER}
    assert by_ticker[LONG_TICKER]["rows"] == 1500
    assert by_ticker["^GSPC"]["last_date"] == "2018-12-31"


def test_models_list_json_names_every_model_and_alias(home: Path) -> None:
    models = {m["name"]: m for m in _json(home, "models", "list")["models"]}
    assert set(models) == {"garch_volatility_gspc", LONG_NAME}
    assert models[LONG_NAME]["production"] == "1"
    assert models[LONG_NAME]["serves"] == LONG_TICKER
    assert isinstance(models[LONG_NAME]["production_qlike"], float)


def test_models_history_json_holds_every_event(home: Path) -> None:
    log = _json(home, "models", "history", LONG_NAME, "--at", "2100-01-01")
    assert log["registered_model"] == LONG_NAME
    assert [(e["seq"], e["alias"], e["action"]) for e in log["events"]] == [
        (1, "challenger", "register"),
        (2, "production", "promote"),
    ]
    assert {e["actor"] for e in log["events"]} == {ACTOR}
    assert dt.datetime.fromisoformat(log["events"][0]["created_at"]).tzinfo is not None
    assert log["served_at"] == {"at": "2100-01-01T00:00:00", "version": "1"}


def test_an_empty_home_lists_nothing_as_json(tmp_path: Path) -> None:
    assert _json(tmp_path / "var", "tickers")["tickers"] == []
