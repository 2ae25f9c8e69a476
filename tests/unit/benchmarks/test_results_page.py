"""A benchmark's ``--markdown PATH``: what it prints, as a page of the docs, written whole."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from _common import main_with_page, markdown_table


def fake_benchmark() -> None:
    """Prints a line and fails when asked to, as a benchmark run that breaks would."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()
    print("12 tickers in 3.5 s")
    if args.fail:
        raise RuntimeError("the database went away")


def test_the_page_holds_the_output_the_command_and_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "results" / "fake.md"
    monkeypatch.setattr(sys, "argv", ["benchmarks/fake.py", "--markdown", str(page)])
    main_with_page(fake_benchmark, "A fake benchmark")
    assert "12 tickers in 3.5 s" in capsys.readouterr().out, "the terminal still gets it all"
    text = page.read_text()
    assert text.startswith("# A fake benchmark\n")
    assert f"`python benchmarks/fake.py --markdown {page}`" in text
    assert " cores, " in text
    assert "commit " in text
    assert "```text\n12 tickers in 3.5 s\n```" in text


def test_a_run_that_fails_leaves_the_old_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "fake.md"
    page.write_text("the last good run\n")
    monkeypatch.setattr(sys, "argv", ["fake.py", "--fail", "--markdown", str(page)])
    with pytest.raises(RuntimeError, match="went away"):
        main_with_page(fake_benchmark, "A fake benchmark")
    assert page.read_text() == "the last good run\n"


def test_a_frame_becomes_a_markdown_table() -> None:
    frame = pd.DataFrame({"range 1 d": [1.0, 0.8341], "note": ["base", "a|b"]},
                         index=pd.Index(["garch", "har"], name="model"))  # fmt: skip
    assert markdown_table(frame).splitlines() == [
        "| model | range 1 d | note |",
        "| --- | --- | --- |",
        "| garch | 1.000 | base |",
        "| har | 0.834 | a\\|b |",
    ]
