"""``accuracy.py --readme PATH``: the headline table, written between the README's markers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import accuracy
from _common import replace_section

HEAD = "# A project\r\n\nIt forecasts – with a dash.\n\n## How accurate it is\n\n"
TAIL = "\n\nThe other pages.\n\n## License\n\nMIT"


def test_the_table_replaces_what_lies_between_the_markers_and_nothing_else(
    tmp_path: Path,
) -> None:
    readme = tmp_path / "README.md"
    readme.write_bytes(
        f"{HEAD}<!-- accuracy:start -->\nwritten by the script\n<!-- accuracy:end -->{TAIL}"
        .encode()
    )  # fmt: skip
    for table in ("| model | 1 d |\n| --- | --- |\n| har | 0.834 |", "| model |\n| --- |"):
        replace_section(readme, "accuracy", table)
        assert readme.read_bytes() == (
            f"{HEAD}<!-- accuracy:start -->\n\n{table}\n\n<!-- accuracy:end -->{TAIL}".encode()
        ), "the table between the markers, the rest byte for byte, and a second run the same"


@pytest.mark.parametrize(
    "between",
    ["no markers at all", "<!-- accuracy:end --> before <!-- accuracy:start -->",
     "<!-- accuracy:start --> alone", "<!-- soak:start --> <!-- soak:end -->"],
    ids=["none", "in the wrong order", "one", "another name's"],
)  # fmt: skip
def test_a_readme_without_the_markers_is_refused_and_kept(tmp_path: Path, between: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_bytes((HEAD + between + TAIL).encode())
    with pytest.raises(ValueError, match=r"README\.md has no <!-- accuracy:start --> \.\.\. "):
        replace_section(readme, "accuracy", "| model |\n| --- |")
    assert readme.read_bytes() == (HEAD + between + TAIL).encode()


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        (
            ["--period", "validation", "--markdown", "page.md", "--readme", "README.md"],
            "only the test period",
        ),
        (["--readme", "README.md"], "--readme needs --markdown"),
        (
            ["--markdown", "page.md", "--readme", "no-markers.md"],
            "no-markers.md has no <!-- accuracy:start",
        ),
    ],
    ids=["validation period", "without the page", "without markers"],
)
def test_a_readme_the_run_could_not_write_is_refused_before_the_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    refusal: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("README.md").write_text(HEAD + "<!-- accuracy:start --><!-- accuracy:end -->" + TAIL)
    Path("no-markers.md").write_text(HEAD + TAIL)
    # A missing price file: were the run to start, it would fail on that, not on --readme.
    monkeypatch.setattr(sys, "argv", ["accuracy.py", "--file", "missing.parquet", *options])
    with pytest.raises(SystemExit) as stopped:
        accuracy.main()
    assert stopped.value.code == 2
    assert refusal in capsys.readouterr().err
    assert not Path("page.md").exists()


def ratios_of(rows: dict[str, list[float]]) -> pd.DataFrame:
    """A relative QLIKE table as ``relative_qlike`` gives it; the squared proxy all ones."""
    models = list(rows)
    index = pd.MultiIndex.from_product([["range", "squared"], models], names=["proxy", "model"])
    values = np.vstack([np.array(list(rows.values())), np.ones((len(models), 3))])
    return pd.DataFrame(values, index=index, columns=pd.Index([1, 5, 22], name="horizon"))


def test_the_headline_holds_garch_the_best_single_model_the_lstm_and_the_best_combination() -> None:
    ratios = ratios_of({
        "garch": [1.0, 1.0, 1.0],
        "ewma": [1.1, 1.2, 1.5],
        "har": [0.70, 1.00, 1.00],  # best at 1 day, not on the mean over the horizons
        "ensemble": [0.85, 0.83, 0.90],
        "lstm": [0.87, 0.85, 0.88],
        "har+lstm": [0.83, 0.80, 0.80],
        "har+lstm learned": [0.82, 0.81, 0.85],
    })  # fmt: skip
    table = accuracy.headline(ratios)
    assert list(table["model"]) == ["garch", "ensemble", "lstm", "har+lstm"]
    assert list(table.index) == [
        "GARCH(1,1), the yardstick", "best single model", "LSTM", "best combination"
    ]  # fmt: skip
    assert table.loc["best combination", ["1 d", "5 d", "22 d"]].tolist() == [0.83, 0.80, 0.80]


def test_a_run_without_the_lstm_or_a_combination_shows_what_it_has() -> None:
    table = accuracy.headline(ratios_of({"garch": [1.0] * 3, "har": [0.83, 0.82, 0.86]}))
    assert list(table["model"]) == ["garch", "har"]


def test_an_lstm_that_is_the_best_single_model_has_one_row() -> None:
    table = accuracy.headline(
        ratios_of({"garch": [1.0] * 3, "har": [0.9] * 3, "lstm": [0.8] * 3, "har+lstm": [0.85] * 3})
    )
    assert list(table["model"]) == ["garch", "lstm", "har+lstm"]
    assert list(table.index) == [
        "GARCH(1,1), the yardstick",
        "best single model",
        "best combination",
    ]


def test_the_served_row_is_its_own_and_never_the_best_single_model() -> None:
    ratios = ratios_of({"garch": [1.0] * 3, "har": [0.9] * 3, "served": [0.8] * 3})
    table = accuracy.headline(ratios)
    assert list(table["model"]) == ["garch", "har", "served"]
    assert table.index[-1] == "served by default (each ticker's champion)"
