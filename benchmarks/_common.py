"""What the benchmarks share: the shared data file, a seeded choice of tickers, the results
page each writes with ``--markdown PATH`` and the README section ``accuracy.py`` rewrites."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED_FILE = REPO.parent / "shared/data/sp500_daily_1999_2018.parquet"
# The pooled LSTM is trained with LstmConfig's defaults, as `volforecast train` and
# `volforecast backtest` train it; a benchmark that varies a setting says which and why.


def draw_tickers(prices: pd.DataFrame, count: int, seed: int, history_before: str) -> list[str]:
    """``count`` tickers drawn with ``seed`` among those with prices before ``history_before``.

    The history rule keeps tickers that every model can be fitted on at the first origin.
    """
    first = prices.groupby("ticker")["date"].min()
    eligible = sorted(first[first < pd.Timestamp(history_before)].index)
    if count >= len(eligible):
        return eligible
    return sorted(np.random.default_rng(seed).choice(eligible, count, replace=False).tolist())


def add_markdown_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="also write what is printed as a page of the docs (docs/results/NAME.md), whole",
    )


def machine() -> str:
    """The CPU, cores, memory and GPU the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [line for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    found = f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        found += f", {torch.cuda.get_device_name()}"
    return f"{found}, Python {platform.python_version()}"


def revision() -> str:
    """The commit measured, marked when the work tree had changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "src")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (" (changed)" if changed else "")


def command(argv: list[str]) -> str:
    """The command line of a benchmark's run, as its page and the README quote it."""
    return shlex.join(["python", f"benchmarks/{Path(argv[0]).name}", *argv[1:]])


def split_at_markers(path: Path, name: str) -> tuple[str, str]:
    """The text of ``path`` up to ``<!-- NAME:start -->`` and from ``<!-- NAME:end -->`` on.

    Raises ``ValueError`` when the two markers are not both there, in that order. The text is
    read as bytes, so that line endings come back as they were.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, found_start, rest = path.read_bytes().decode().partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found_start and found_end):
        msg = (
            f"{path} has no {start} ... {end} pair: put the two markers, each on a line of its "
            "own, where the table goes"
        )
        raise ValueError(msg)
    return head + start, end + tail


def replace_section(path: Path, name: str, body: str) -> None:
    """Write ``body`` between the ``NAME`` markers of ``path``; the rest is kept byte for byte."""
    head, tail = split_at_markers(path, name)
    path.write_bytes(f"{head}\n\n{body.strip()}\n\n{tail}".encode())


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A frame as a markdown table, its index as the first columns."""
    flat = frame.reset_index()
    header = [" ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in flat]

    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in flat.itertuples(False)]
    return "\n".join(lines)


class ResultsPage(io.TextIOBase):
    """Standard output, also kept as a markdown page: text as text blocks, tables as tables."""

    def __init__(self, title: str, out: io.TextIOBase) -> None:
        self.title, self.out = title, out
        self.parts: list[str] = []
        self.text = ""
        self.recording = True

    def write(self, text: str) -> int:
        self.out.write(text)
        if self.recording:
            self.text += text
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def _end_text(self) -> None:
        if self.text.strip("\n"):
            self.parts.append(f"```text\n{self.text.strip(chr(10))}\n```")
        self.text = ""

    def table(self, caption: str, frame: pd.DataFrame, shown: pd.DataFrame | None = None) -> None:
        """Print ``frame`` as the script always has; the page gets ``shown`` (or it) as a table."""
        self._end_text()
        self.recording = False
        print(f"\n{caption}\n{frame.to_string()}")
        self.recording = True
        self.parts.append(f"{caption}:\n\n{markdown_table(frame if shown is None else shown)}")

    def markdown(self, argv: list[str]) -> str:
        self._end_text()
        written = (
            f"Written by `{command(argv)}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
            f"commit {revision()}, on {machine()}. Run the command again to measure again: it "
            "rewrites this page whole; never edit it by hand."
        )
        return "\n\n".join([f"# {self.title}", written, *self.parts]) + "\n"


@contextlib.contextmanager
def results_page(title: str, path: Path | None) -> Iterator[ResultsPage]:
    """Print as usual; with a ``path``, the page is written there once the script succeeds."""
    argv = list(sys.argv)
    page = ResultsPage(title, sys.stdout)  # type: ignore[arg-type]
    with contextlib.redirect_stdout(page):
        yield page
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page.markdown(argv))
        print(f"wrote {path}")


def main_with_page(main: Callable[[], None], title: str) -> None:
    """Run a benchmark's ``main``; ``--markdown PATH`` also writes what it prints as a page.

    The option is taken off the command line before ``main`` parses the rest.
    """
    parser = argparse.ArgumentParser(add_help=False)
    add_markdown_argument(parser)
    known, rest = parser.parse_known_args()
    with results_page(title, known.markdown):
        sys.argv[1:] = rest
        try:
            main()
        except SystemExit:
            if {"-h", "--help"} & set(rest):
                print("\nand:\n  --markdown PATH  also write what is printed as a page of the docs")
            raise


def save_npz(file: Path, **arrays: np.ndarray) -> None:
    """``numpy.savez`` whole or not at all: a run killed while writing leaves the old file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f".{file.stem}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(file)
