"""The CLI's listings: which columns a narrow terminal keeps, and the JSON they print."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from rich.cells import cell_len
from rich.console import Console

from volforecast import listings
from volforecast.data.repositories.prices import TickerSummary
from volforecast.registry.overview import ModelSummary
from volforecast.registry.promotion_log import PromotionEvent

NAME = "gjr_garch_skewt_volatility_brkb_xnys_class"
MODELS = [
    ModelSummary(NAME, "GJR-GARCH-SKEWT", "BRKB.XNYS-CLASS", "12", "11", "12", 0.31264),
    ModelSummary("lstm_volatility_pooled", "LSTM", "40 tickers", "3", "2", None, None),
]
EVENT = PromotionEvent(
    registered_model=NAME,
    seq=7,
    alias="production",
    action="promote",
    version="12",
    previous_version="11",
    reason="QLIKE 0.3126 beats production's 0.3301 by 5.3 %, Diebold-Mariano p = 0.012 [sic]",
    metrics={"qlike": 0.31264, "dm_p_value": float("nan")},
    actor="airflow@scheduler-7d9f8c6b5-x2x9z",
    created_at=dt.datetime(2026, 12, 6, 15, 7, 43, 858444, tzinfo=dt.UTC),
    candidate="12",
)


def _printed(listing: listings.Listing, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    listing.print(console)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _headers(output: str) -> list[str]:
    line = output.splitlines()[2]  # title, rule, headers
    return [cell.strip() for cell in line.strip("┃").split("┃")]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_models_fit_the_terminal_and_keep_every_name_whole(width: int) -> None:
    listing, _ = listings.models(MODELS, "http://mlflow.example:5000")
    output = _printed(listing, width)
    assert max(cell_len(line) for line in output.splitlines()) <= width, output
    assert "…" not in output, output
    assert NAME in output
    assert "0.3126" in output


def test_a_narrow_terminal_leaves_out_the_type_first_then_serves_then_wins() -> None:
    listing, _ = listings.models(MODELS, "sqlite:///mlflow.db")
    assert _headers(_printed(listing, 160)) == [
        "name", "type", "serves", "latest", "prod", "chall", "QLIKE", "wins"
    ]  # fmt: skip
    narrower = ["name", "serves", "latest", "prod", "chall", "QLIKE", "wins"]
    assert _headers(_printed(listing, 110)) == narrower
    narrower.remove("serves")
    assert _headers(_printed(listing, 100)) == narrower
    assert _headers(_printed(listing, 80)) == [h for h in narrower if h != "wins"]


def test_models_count_the_tickers_each_production_version_is_champion_of() -> None:
    champions = {"AAPL": "lstm", "MSFT": "lstm", "IBM": "garch"}
    _, payload = listings.models(MODELS, "sqlite:///mlflow.db", champions)
    won = {m["name"]: m["champion_of"] for m in payload["models"]}
    assert won["lstm_volatility_pooled"] == ["AAPL", "MSFT"]
    assert won[NAME] == []
    _, payload = listings.models(MODELS, "x", {"BRKB.XNYS-CLASS": "gjr-garch-skewt"})
    assert payload["models"][0]["champion_of"] == ["BRKB.XNYS-CLASS"]


def test_what_cannot_fit_is_cut_visibly() -> None:
    # Narrower than the name itself: Rich must cut, and the cut must show.
    listing, _ = listings.models(MODELS, "sqlite:///mlflow.db")
    assert "…" in _printed(listing, 40)


def test_the_promotion_log_wraps_the_reason_and_keeps_identifiers() -> None:
    listing, _ = listings.promotion_log(NAME, [EVENT], None, None)
    narrow = _printed(listing, 80)
    assert max(cell_len(line) for line in narrow.splitlines()) <= 80, narrow
    assert "…" not in narrow
    assert "2026-12-06 15:07" in narrow
    assert "[sic]" in narrow, "free text is printed as it is, not read as Rich markup"
    assert "Diebold-Mariano" in narrow
    assert "by" not in _headers(narrow)
    wide = _printed(listing, 200)
    assert _headers(wide) == ["#", "when (UTC)", "alias", "action", "from", "to", "by", "why"]
    assert EVENT.actor in wide


def test_tickers_print_their_coverage() -> None:
    rows = [TickerSummary("^GSPC", 5031, dt.date(1999, 1, 4), dt.date(2018, 12, 31))]
    listing, payload = listings.tickers(rows, "sqlite:///" + "x" * 120 + "/volforecast.db")
    output = _printed(listing, 80)
    assert max(cell_len(line) for line in output.splitlines()) <= 80
    assert "5,031" in output
    assert payload["tickers"] == rows


def test_json_is_one_strict_document(capsys: pytest.CaptureFixture[str]) -> None:
    _, payload = listings.promotion_log(NAME, [EVENT], dt.datetime(2100, 1, 1), "12")
    listings.print_json(payload)
    printed = capsys.readouterr().out
    document = json.loads(printed, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    event = document["events"][0]
    assert event["created_at"] == "2026-12-06T15:07:43.858444+00:00"
    assert event["metrics"] == {"qlike": 0.31264, "dm_p_value": None}
    assert event["reason"] == EVENT.reason
    assert document["served_at"] == {"at": "2100-01-01T00:00:00", "version": "12"}


@pytest.mark.parametrize("width", [80, 120])
def test_training_runs_fit_the_terminal_and_keep_every_version_whole(width: int) -> None:
    from volforecast.jobs.train import Outcome  # noqa: PLC0415  (imports torch)

    outcomes = [
        Outcome("^GSPC", "garch", True, "first version: nothing in production yet",
                registered_model="garch_volatility_gspc", version="1", promoted=True,
                converged=True, qlike=0.4775),
        Outcome("^IXIC", "lstm", True, "QLIKE 0.8093 does not beat production's 0.8010",
                registered_model="lstm_volatility_pooled", version="12", converged=True,
                qlike=0.8093),
        Outcome("BRK.B", "garch", False, "too short a history: 150 days, 400 needed"),
    ]  # fmt: skip
    output = _printed(listings.training_runs(outcomes), width)
    assert max(cell_len(line) for line in output.splitlines()) <= width, output
    assert "garch_volatility_gspc v1" in output
    assert "lstm_volatility_pooled v12" in output
    assert "…" not in output, "a version name was cut"
    assert "production: first version" in output
    headers = _headers(output)
    assert ("model" in headers) == (width > 80), headers
