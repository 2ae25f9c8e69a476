"""What the CLI's listings print: a table that fits the terminal, or one JSON document.

``volforecast tickers``, ``models list`` and ``models history`` build a :class:`Listing`
from the rows a job returned. On a terminal 80 columns wide the table still shows every
identifier whole (a model name cut to ``garch_volat…`` cannot be pasted into the next
command): identifiers never wrap, free text wraps at words, and the columns a row can do
without are left out, the least useful first, while the table would not fit. ``--json``
writes the rows themselves, every field and full timestamps, to stdout and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

FREE_TEXT_WIDTH = 30
"""Width a free-text column is counted at when deciding which columns fit; it wraps below."""
_BORDER = 3
"""Cells a column adds to its content in Rich's default box: a rule and a space each side."""


@dataclass(frozen=True)
class Column:
    """One column of a listing and how it gives way on a narrow terminal."""

    header: str
    justify: Literal["left", "right"] = "left"
    free_text: bool = False
    """Wraps at words; otherwise the column is an identifier or a number, shown whole."""
    drop: int | None = None
    """Left out when the table does not fit, lowest first; ``None``: always shown."""


@dataclass(frozen=True)
class Listing:
    """A titled table of plain-text cells, one tuple per row."""

    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[str, ...]]
    caption: str | None = None
    """A note under the table on what a column means."""

    def natural_width(self, shown: Sequence[int]) -> int:
        """Cells the table takes unwrapped with the columns ``shown``, free text capped."""
        total = 1
        for i in shown:
            column = self.columns[i]
            widest = max([cell_len(column.header), *(cell_len(row[i]) for row in self.rows)])
            total += (min(widest, FREE_TEXT_WIDTH) if column.free_text else widest) + _BORDER
        return total

    def shown(self, width: int) -> list[int]:
        """The columns kept on a terminal ``width`` cells wide."""
        shown = list(range(len(self.columns)))
        droppable = sorted((c.drop, i) for i, c in enumerate(self.columns) if c.drop is not None)
        for _, i in droppable:
            if self.natural_width(shown) <= width:
                break
            shown.remove(i)
        return shown

    def table(self, width: int) -> Table:
        """The Rich table, without its title, for a terminal ``width`` cells wide."""
        table = Table(caption=self.caption, caption_justify="left")
        shown = self.shown(width)
        for i in shown:
            column = self.columns[i]
            table.add_column(
                escape(column.header),
                justify=column.justify,
                no_wrap=not column.free_text,
                # A cut identifier shows as "…", never silently: the tests look for it.
                overflow="fold" if column.free_text else "ellipsis",
            )
        for row in self.rows:
            table.add_row(*(escape(row[i]) for i in shown))
        return table

    def print(self, console: Console) -> None:
        """Print the title, then the table at the console's width."""
        # Above the table, not as its title: a title wraps at the table's width, and a long
        # database URL would break after "Stored prices in".
        console.print(escape(self.title), highlight=False, overflow="fold")
        console.print(self.table(console.width))


def _plain(value: Any) -> Any:
    """``value`` with dataclasses as dicts, dates in ISO 8601 and non-finite floats as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(payload: dict[str, Any]) -> None:
    """Write ``payload`` to stdout as one JSON document, without Rich's markup or wrapping."""
    sys.stdout.write(json.dumps(_plain(payload), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def tickers(rows: Sequence[Any], database: str) -> tuple[Listing, dict[str, Any]]:
    """``volforecast tickers``: stored rows and date range of each ticker."""
    listing = Listing(
        f"Stored prices in {database}",
        (Column("ticker"), Column("rows", "right"), Column("first date"), Column("last date")),
        [(r.ticker, f"{r.rows:,}", str(r.first_date), str(r.last_date)) for r in rows],
    )
    return listing, {"database": database, "tickers": list(rows)}


def models(
    rows: Sequence[Any], tracking_uri: str, champions: Mapping[str, str] | None = None
) -> tuple[Listing, dict[str, Any]]:
    """``volforecast models list``: registered models, their aliases, the tickers they win."""
    columns = (
        Column("name"),
        Column("type", drop=0),  # the name starts with it
        Column("serves", free_text=True, drop=1),
        Column("latest", "right"),
        Column("prod", "right"),
        Column("chall", "right"),
        Column("QLIKE", "right"),
        Column("wins", "right", drop=2),
    )
    won = {r.name: _champion_of(r, champions or {}) for r in rows}
    listing = Listing(
        f"Registered models in {tracking_uri}",
        columns,
        [
            (r.name, r.model_type, r.serves, r.latest or "-", r.production or "-",
             r.challenger or "-", _number(r.production_qlike), str(len(won[r.name]) or "-"))
            for r in rows
        ],
        "QLIKE: the production version's 1-day loss on its test window; lower is better. "
        "wins: the tickers it is the champion of, answering requests that name no model.",
    )  # fmt: skip
    payload = [dataclasses.asdict(r) | {"champion_of": won[r.name]} for r in rows]
    return listing, {"tracking_uri": tracking_uri, "models": payload}


def _champion_of(row: Any, champions: Mapping[str, str]) -> list[str]:
    """The tickers whose champion is ``row``'s family (its production version serves them)."""
    if row.production is None:
        return []
    family = row.model_type.lower()
    pooled = row.serves.endswith(" tickers")
    return sorted(t for t, c in champions.items() if c == family and (pooled or t == row.serves))


def training_runs(outcomes: Sequence[Any]) -> Listing:
    """``volforecast train``: each model trained, the version registered and what was decided."""
    columns = (
        Column("ticker"),
        Column("model", drop=0),  # the version's name starts with it
        Column("version"),
        Column("QLIKE 1 d", "right"),
        Column("converged", drop=1),
        Column("outcome", free_text=True),
    )
    rows: list[tuple[str, ...]] = [
        (o.ticker, o.model.upper(), f"{o.registered_model} v{o.version}" if o.version else "-",
         _number(o.qlike), "yes" if o.converged else "no",
         ("production: " if o.promoted else "") + o.message)
        for o in outcomes
    ]  # fmt: skip
    return Listing("Training runs", columns, rows)


def champions(report: Any) -> tuple[Listing, dict[str, Any]]:
    """``volforecast models champion`` and ``train``: each ticker's champion and why."""
    columns = (Column("ticker"), Column("champion"), Column("why", free_text=True))
    rows: list[tuple[str, ...]] = [
        (c.ticker, (c.champion or "-").upper() + (" (new)" if c.changed else ""), c.reason)
        for c in report.choices
    ]
    rows += [(ticker, "-", f"undecided: {why}") for ticker, why in report.undecided.items()]
    wins = ", ".join(f"{name.upper()} {count}" for name, count in sorted(report.wins.items()))
    note = f"Champions: {wins or 'none'}. A request that names no model gets its ticker's champion."
    return Listing("Champions", columns, rows, note), report.to_dict()


def promotion_log(
    name: str, events: Sequence[Any], at: dt.datetime | None, served: str | None
) -> tuple[Listing, dict[str, Any]]:
    """``volforecast models history``: the promotion log of one registered model."""
    columns = (
        Column("#", "right", drop=1),
        Column("when (UTC)"),
        Column("alias"),
        Column("action"),
        Column("from", "right"),
        Column("to", "right"),
        Column("by", free_text=True, drop=0),
        Column("why", free_text=True),
    )
    listing = Listing(
        f"Promotion log of {name}",
        columns,
        [
            (str(e.seq), e.created_at.strftime("%Y-%m-%d %H:%M"), e.alias, e.action,
             e.previous_version or "-", e.version or "-", e.actor, e.reason)
            for e in events
        ],
    )  # fmt: skip
    payload: dict[str, Any] = {"registered_model": name, "events": list(events)}
    if at is not None:
        payload["served_at"] = {"at": at, "version": served}
    return listing, payload


def live_record(record: Any) -> tuple[Listing, dict[str, Any]]:
    """``volforecast models compare``: a live A/B day by day, and where it stands."""
    columns = (
        Column("forecast origin"),
        Column("ticker", drop=0),
        Column("QLIKE production", "right"),
        Column("QLIKE challenger", "right"),
    )
    rows: list[tuple[str, ...]] = [
        (str(day.origin_date.date()), str(day.ticker), _number(day.qlike_production),
         _number(day.qlike_challenger))
        for day in record.days.itertuples()
    ]  # fmt: skip
    summary = record.summary()
    status = str(summary["status"])
    if status in {"waiting", "not beating production"}:
        status = f"{status}, {record.live_days}/{record.min_days} live days"
    rows.append(("mean", f"{record.live_days} days", _number(summary["qlike_production"]),
                 _number(summary["qlike_challenger"])))  # fmt: skip
    pvalue = summary["dm_pvalue"]
    note = (
        f"{status}. One-sided Diebold-Mariano p (challenger better) = "
        f"{'-' if pvalue is None else f'{pvalue:.3g}'}. {record.why}"
    )
    title = (
        f"Live A/B of {record.registered_model}: challenger v{record.challenger} against "
        f"production v{record.production or '-'}, live since {record.since}"
    )
    days = [
        {"ticker": d.ticker, "origin_date": d.origin_date.date(),
         "qlike_production": d.qlike_production, "qlike_challenger": d.qlike_challenger}
        for d in record.days.itertuples()
    ]  # fmt: skip
    return Listing(title, columns, rows, note), summary | {"days": days}
