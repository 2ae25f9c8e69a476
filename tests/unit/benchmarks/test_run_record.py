"""The redesign's yardstick: two dumps of `make run` compare equal only when every file is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import run_record


def _dump(folder: Path, metrics: str) -> Path:
    folder.mkdir()
    for name in run_record.FILES:
        (folder / name).write_text("a,b\n1,2\n")
    (folder / "model_metrics.csv").write_text(metrics)
    return folder


def test_a_changed_metric_makes_the_comparison_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _dump(tmp_path / "a", "ticker,qlike\n^GSPC,0.4601\n")
    same = _dump(tmp_path / "same", "ticker,qlike\n^GSPC,0.4601\n")
    other = _dump(tmp_path / "other", "ticker,qlike\n^GSPC,0.4602\n")
    assert run_record.compare(a, same) == 0
    assert run_record.compare(a, other) == 1
    assert "model_metrics.csv: DIFFERENT" in capsys.readouterr().out
