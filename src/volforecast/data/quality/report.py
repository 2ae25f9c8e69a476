"""What the gate found: findings per ticker, the report and the gate's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

CheckName = Literal[
    "bad_ticker",
    "missing_value",
    "not_a_number",
    "non_finite_value",
    "bad_date",
    "date_out_of_range",
    "not_a_session",
    "non_positive_price",
    "high_below_low",
    "open_outside_range",
    "close_outside_range",
    "duplicate_date",
    "stale_price",
    "price_spike",
    "gap",
    "implausible_return",
    "unreflected_split",
    "source_unavailable",
]
TickerStatus = Literal["ok", "partial", "rejected"]

MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Finding:
    """One check that failed for one ticker."""

    check: CheckName
    rows: int
    """Rows rejected because of it."""
    detail: str
    examples: tuple[str, ...] = ()


@dataclass
class TickerQuality:
    """What the gate did with one ticker."""

    ticker: str
    received: int
    accepted: int = 0
    first_date: str | None = None
    last_date: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Rows rejected."""
        return self.received - self.accepted

    @property
    def status(self) -> TickerStatus:
        """``ok`` when nothing was rejected, ``rejected`` when nothing was accepted."""
        if self.accepted == 0:
            return "rejected"
        return "ok" if not self.findings else "partial"


@dataclass
class QualityReport:
    """Per-ticker outcome of one gate run."""

    tickers: dict[str, TickerQuality] = field(default_factory=dict)

    @property
    def rows_received(self) -> int:
        """Rows the gate saw."""
        return sum(t.received for t in self.tickers.values())

    @property
    def rows_accepted(self) -> int:
        """Rows the gate let through."""
        return sum(t.accepted for t in self.tickers.values())

    def with_status(self, status: TickerStatus) -> list[str]:
        """Tickers with the given status, sorted."""
        return sorted(t for t, q in self.tickers.items() if q.status == status)

    @property
    def clean(self) -> bool:
        """True when no check failed."""
        return all(not q.findings for q in self.tickers.values())

    def add_unavailable(self, ticker: str, reason: str) -> None:
        """Record a ticker the source could not deliver."""
        entry = self.tickers.setdefault(ticker, TickerQuality(ticker=ticker, received=0))
        entry.findings.append(Finding("source_unavailable", 0, reason))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for ``--report-json`` and for Airflow."""
        return {
            "rows_received": self.rows_received,
            "rows_accepted": self.rows_accepted,
            "tickers": {
                ticker: {
                    "status": q.status,
                    "received": q.received,
                    "accepted": q.accepted,
                    "first_date": q.first_date,
                    "last_date": q.last_date,
                    "findings": [{**asdict(f), "examples": list(f.examples)} for f in q.findings],
                }
                for ticker, q in sorted(self.tickers.items())
            },
        }


@dataclass(frozen=True)
class GateResult:
    """The accepted rows, the rejected rows with their reasons, and the report."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    """Rejected rows in the raw layout plus a ``check`` column naming why."""
    report: QualityReport


def fmt_day(value: Any) -> str:
    """A date as an example shows it."""
    return "no date" if pd.isna(value) else pd.Timestamp(value).date().isoformat()
