"""What the commands print: progress bars, the tables of their reports, the JSON they write."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from volforecast.cli import err, out
from volforecast.registry.descriptions import listed


def progress() -> Progress:
    """A progress bar on stderr, kept on screen when done."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


class Counting(TypedDict):
    """The callbacks of a job that counts its units of work."""

    progress: Callable[[str], None]
    on_start: Callable[[int], None]


def counting(bar: Progress, description: str) -> Counting:
    """A task of ``bar`` that a job's ``on_start`` sizes and its ``progress`` advances."""
    task = bar.add_task(description, total=None)
    return {
        "progress": lambda label: bar.update(task, advance=1, description=label),
        "on_start": lambda total: bar.update(task, total=total),
    }


def epoch_bar(bar: Progress) -> Callable[[Any], None]:
    """Progress of each pooled LSTM training, epoch by epoch, as a task of its own."""
    tasks: list[TaskID] = []

    def on_epoch(report: Any) -> None:  # an EpochReport (torch is imported only when asked)
        label = (
            f"LSTM epoch {report.epoch}: validation QLIKE {report.validation_loss:.4f} "
            f"(best at {report.best_epoch})"
        )
        total = report.epoch if report.last else report.max_epochs
        if not tasks:
            tasks.append(bar.add_task(label, total=total))
        elif report.epoch == 1:  # the next training (a backtest's refit)
            bar.reset(tasks[0], total=total)
        bar.update(tasks[0], completed=report.epoch, total=total, description=label)

    return on_epoch


def write_json(path: Path | None, payload: Mapping[str, Any]) -> None:
    """Write a report's JSON form to ``path``, when one was given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        out.print(f"report written to {path}")


def show_listing(listing: Any, payload: dict[str, Any], *, as_json: bool, empty: str) -> None:
    """A listing of ``volforecast.listings`` as JSON, as the hint ``empty`` if bare, or a table."""
    from volforecast import listings  # noqa: PLC0415

    if as_json:
        listings.print_json(payload)
    elif not listing.rows:
        out.print(empty)
    else:
        listing.print(out)


def print_quality(report: Any, *, show_all: bool) -> None:
    """The gate's findings per ticker (every ticker with ``show_all``) and its totals."""
    table = Table(title="Data quality per ticker", show_lines=False, title_justify="left")
    numbers = {"rows in", "accepted", "rejected"}
    for column in ("ticker", "status", "rows in", "accepted", "rejected", "findings"):
        table.add_column(column, justify="right" if column in numbers else "left")
    style = {"ok": "green", "partial": "yellow", "rejected": "red"}
    shown = 0
    for ticker, q in sorted(report.tickers.items()):
        if q.status == "ok" and not show_all:
            continue
        shown += 1
        lines = []
        for f in q.findings:
            lines.append(f"[bold]{f.check}[/] ×{f.rows}: {escape(f.detail)}")
            lines.extend(f"   e.g. {escape(example)}" for example in f.examples)
        table.add_row(
            escape(ticker) or "(empty)",
            f"[{style[q.status]}]{q.status}[/]",
            f"{q.received:,}",
            f"{q.accepted:,}",
            f"{q.rejected:,}",
            "\n".join(lines) or "-",
        )
    if shown:
        out.print(table)
    ok = len(report.with_status("ok"))
    out.print(
        f"{len(report.tickers)} tickers: [green]{ok} ok[/], "
        f"[yellow]{len(report.with_status('partial'))} partial[/], "
        f"[red]{len(report.with_status('rejected'))} rejected[/]; "
        f"{report.rows_accepted:,} of {report.rows_received:,} rows accepted"
    )


def print_qlike(table: Any, baseline: str) -> None:
    """A backtest's median QLIKE relative to the baseline, per proxy, model and horizon."""
    title = f"Median QLIKE relative to {baseline.upper()} (lower is better)"
    view = Table("proxy", "model", title=title, title_justify="left")
    for h in table.columns:
        view.add_column(f"{h} d", justify="right")
    for (proxy_name, model_name), row in zip(table.index, table.to_numpy(), strict=True):
        view.add_row(str(proxy_name), str(model_name).upper(), *(f"{v:.3f}" for v in row))
    out.print(view)


def print_forecasts(summary: Mapping[str, Mapping[str, float]]) -> None:
    """The stored forecasts per model: paths and the 1-day volatility's mean, min and max."""
    table = Table("model", "paths", "mean 1-day vol %", "min", "max", title="Stored forecasts")
    for model, figures in sorted(summary.items()):
        table.add_row(model, f"{figures['count']:.0f}", f"{figures['mean_vol_pct']:.2f}",
                      f"{figures['min_vol_pct']:.2f}", f"{figures['max_vol_pct']:.2f}")  # fmt: skip
    out.print(table)


def print_alerts(alerts: Sequence[Any], *, title: str) -> None:
    """Drift alerts, one row each, or "no alerts"."""
    if not alerts:
        out.print("no alerts")
        return
    table = Table("day", "ticker", "model", "detector", "statistic", "threshold", title=title,
                  title_justify="left")  # fmt: skip
    for a in alerts:
        table.add_row(str(a.observed_on), a.ticker, a.model_type, a.detector,
                      f"{a.statistic:.3g}", f"{a.threshold:.3g}")  # fmt: skip
    out.print(table)


def print_weekly(per_day: Any) -> None:
    """Alerts per day summed into weeks starting on Monday, with a bar each."""
    import pandas as pd  # noqa: PLC0415

    index = pd.to_datetime(pd.Index(per_day.index))
    weekly = per_day.groupby((index - pd.to_timedelta(index.day_of_week, unit="D")).date).sum()
    table = Table("week of", "alerts", "", title="Alerts per week", title_justify="left")
    top = max(weekly.max(), 1)
    for week, count in weekly.items():
        table.add_row(str(week), str(count), "#" * max(1, round(30 * count / top)))
    out.print(table)


def kept_message(stop: KeyboardInterrupt) -> str:
    """What an interrupted training registered (a TrainingInterrupted knows) and what it lost."""
    kept = getattr(stop, "kept", [])
    versions = sorted(
        {f"{o.registered_model} v{o.version}" + (" (production)" if o.promoted else "")
         for o in kept}
    )  # fmt: skip
    if versions:
        said = f"kept the {len(versions)} versions this run registered: {listed(versions, 10)}"
    else:
        said = "this run registered no version"
    cut_short = getattr(stop, "cut_short", None)
    if cut_short:
        said += f"; {cut_short}, was stopped and not registered"
    return said + "; versions registered before this run are untouched"
