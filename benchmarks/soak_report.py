"""The soak's results page: what ran, each check, and the timeline, as Markdown.

``soak.py --markdown PATH`` writes it once every day is done; ``make soak`` writes
``docs/results/soak.md``. The page is rewritten whole by each run, never edited by hand.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

from soak_checks import Day, Result


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "–"


def markdown(
    settings: dict[str, Any],
    tickers: list[str],
    checks: dict[str, Result],
    days: list[Day],
    faults_done: dict[str, dict[str, str]],
) -> str:
    """The results page of one finished soak."""
    passed = all(ok for ok, _ in checks.values())
    minutes = sum(d.minutes for d in days)
    struck = ", ".join(
        f"{kind} on {when['day']}"
        for kind, when in sorted(faults_done.items(), key=lambda kw: kw[1]["day"])
    )
    span = f"{len(days)}, {days[0].day} to {days[-1].day}" if days else "none"
    lines = [
        "# Soak: operation under Airflow's scheduler, with faults",
        "",
        f"Written by `benchmarks/soak.py` on {dt.date.today().isoformat()}, on "
        f"{os.cpu_count()} CPU cores ({platform.machine()}, Python {platform.python_version()}). "
        "Rerun with `make soak`; see `python benchmarks/soak.py --help`.",
        "",
        f"- **Trading days:** {span}",
        f"- **Tickers:** {len(tickers)}: {', '.join(tickers)}",
        f"- **Faults:** {struck or 'none struck'}",
        f"- **Time:** {minutes:.1f} min over the days (ingest, predict and any training), "
        f"{minutes / max(len(days), 1):.1f} min a day",
        f"- **Settings:** `{settings}`",
        f"- **Result:** {'every check passed' if passed else 'CHECKS FAILED'}",
        "",
        "## Checks",
        "",
    ]
    for title, (ok, details) in checks.items():
        lines.append(f"### {'PASS' if ok else 'FAIL'}: {title}")
        lines.append("")
        shown = details if len(details) <= 12 else [*details[:5], "…", *details[-5:]]
        lines += [f"    {line}" for line in shown]
        lines.append("")
    lines += [
        "## Timeline",
        "",
        "| day | min | drift alerts | retrain requests | training runs | promotions | fault |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for d in days:
        fired = ", ".join(f"{t}: {'+'.join(x)}" for t, x in sorted(d.alerts.items()))
        lines.append(
            f"| {d.day} | {d.minutes:.1f} | {_cell(fired)} | {d.retrain_requests} "
            f"| {d.trainings} | {_cell(' '.join(d.promotions))} | {_cell(', '.join(d.faults))} |"
        )
    return "\n".join(lines) + "\n"


def write(path: Path, page: str) -> None:
    """Write ``page`` to ``path`` whole (through a temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page)
    tmp.replace(path)
