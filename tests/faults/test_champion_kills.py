"""Training killed on its way into, and in the middle of, the champions' decision."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import Engine

from tests.faults.conftest import Cli
from tests.faults.test_training_kills import _store
from volforecast.cli import ExitCode
from volforecast.registry.champion_book import ChampionBook, log_name
from volforecast.registry.promotion_log import PromotionLog

pytestmark = pytest.mark.slow

TRAIN = ("train", "--tickers", "AAA,BBB", "--models", "garch,har", "--no-plots")


@pytest.mark.parametrize("boundary", ["train.before_champions", "champion.after_record"])
def test_champions_cut_short_are_decided_by_the_next_run_once(
    cli: Cli, engine: Engine, boundary: str
) -> None:
    _store(engine, "AAA", "BBB")
    killed = cli(*TRAIN, VOLFORECAST_FAULT_AT=boundary)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # Before the decision nothing is stored; killed after the first record, only AAA is.
    cut_short = set(ChampionBook(engine).all())
    assert cut_short == (set() if boundary == "train.before_champions" else {"AAA"})

    done = cli(*TRAIN)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "unchanged since v1" in done.stdout, "the models were kept, only champions decided"
    champions = ChampionBook(engine).all()
    assert set(champions) == {"AAA", "BBB"}
    for ticker, stored in champions.items():
        changes = PromotionLog(engine).events(log_name(ticker))
        assert [e.version for e in changes] == [stored.model.upper()], f"{ticker}: {changes}"
