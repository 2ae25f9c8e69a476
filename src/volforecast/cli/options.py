"""Options more than one command takes, and the checks of what they were given."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from volforecast.cli import ExitCode, fail
from volforecast.models.lstm.config import LstmConfig

TickersOption = Annotated[str | None, typer.Option(help="Comma-separated tickers (or --all).")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document to stdout instead of a table.")
]

_LSTM = LstmConfig()  # the one set of defaults: the help states them, the jobs apply them
LstmEpochsOption = Annotated[
    int | None,
    typer.Option(min=1, help=f"LSTM: most epochs from scratch (default {_LSTM.max_epochs})."),
]
LstmBatchOption = Annotated[
    int | None, typer.Option(min=1, help=f"LSTM: windows per batch (default {_LSTM.batch_size}).")
]
LstmStrideOption = Annotated[
    int | None,
    typer.Option(
        min=1, help=f"LSTM: use every n-th training and validation window (default {_LSTM.stride})."
    ),
]
LstmPatienceOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="LSTM: stop after this many epochs without a better validation loss "
        f"(default {_LSTM.patience}).",
    ),
]


def day(*names: str, help: str) -> Any:
    """An option read as a day, YYYY-MM-DD."""
    return typer.Option(*names, formats=["%Y-%m-%d"], help=help)


def lstm_settings(**given: int | None) -> dict[str, int]:
    """The LstmConfig fields given on the command line; the others keep their defaults."""
    return {key: value for key, value in given.items() if value is not None}


def model_names(models: str) -> tuple[str, ...]:
    """The names of ``--models a,b``, lower case."""
    return tuple(m.strip().lower() for m in models.split(",") if m.strip())


def chosen_tickers(tickers: str | None, all_tickers: bool) -> list[str] | None:
    """The tickers of `--tickers A,B`, or None for `--all`; exactly one must be given."""
    if (tickers is None) == (not all_tickers):
        fail("give --tickers A,B,... or --all", ExitCode.USAGE)
    return split_tickers(tickers)


def split_tickers(value: str | None) -> list[str] | None:
    """The tickers of a comma-separated list, upper case; None for None."""
    if value is None:
        return None
    tickers = [t.strip().upper() for t in value.split(",") if t.strip()]
    if not tickers:
        msg = "give at least one ticker"
        raise typer.BadParameter(msg)
    return tickers
