"""`volforecast train --queued` at its edges: a usage mistake, and a queue with nothing in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.servers import clean_env
from volforecast.cli import ExitCode, app
from volforecast.settings import get_settings


def _invoke(monkeypatch: pytest.MonkeyPatch, args: list[str], **settings: str) -> Any:
    for key, value in clean_env(**settings).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("models", ["lstm", "har+lstm", "lstm,har+lstm"])
def test_queued_with_only_the_pooled_lstm_is_a_usage_error_before_the_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, models: str
) -> None:
    # The database cannot open (its folder is a file): the mistake is told all the same. A
    # combination that pins the pooled LSTM cannot be retrained on a few tickers either.
    folder = tmp_path / "not-a-folder"
    folder.write_text("")
    result = _invoke(monkeypatch, ["train", "--queued", "--models", models], home=str(tmp_path),
                     database_url=f"sqlite:///{folder / 'volforecast.db'}")  # fmt: skip
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "the pooled LSTM retrains with --all" in " ".join(result.output.split())


def test_an_empty_queue_writes_a_complete_report_of_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = _invoke(monkeypatch, ["train", "--queued", "--models", "garch", "--report-json",
                                   str(report)], home=str(tmp_path))  # fmt: skip
    assert result.exit_code == ExitCode.OK, result.output
    assert "no ticker is queued for retraining" in result.output
    payload = json.loads(report.read_text())
    assert (payload["complete"], payload["outcomes"]) == (True, [])
