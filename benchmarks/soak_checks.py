"""The soak's end checks, read from the stores themselves: PostgreSQL, MLflow, the API.

Each check returns its lines and whether it passed; ``soak.py`` prints them all.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

from volforecast.models.catalog import MODEL_NAMES
from volforecast.registry.names import CHALLENGER, CHAMPION, PRODUCTION, ticker_slug

HORIZON = 30
Result = tuple[bool, list[str]]


def production_at(conn: psycopg.Connection[Any], when: dt.datetime) -> dict[str, str]:
    """Registered model -> the version ``ml.model_promotions`` says served at ``when``."""
    rows = conn.execute(
        "SELECT DISTINCT ON (registered_model) registered_model, version FROM ml.model_promotions"
        " WHERE alias = %s AND created_at <= %s ORDER BY registered_model, seq DESC",
        (PRODUCTION, when),
    ).fetchall()
    return {name: version for name, version in rows if version is not None}


def expected_paths(serving: dict[str, str], tickers: list[str]) -> set[tuple[str, str, str]]:
    """(ticker, MODEL_TYPE, version) that a day's predictions must hold."""
    by_slug = {ticker_slug(t): t for t in tickers}
    # A registered name spells the family without its punctuation (har+lstm is har_lstm).
    types = {re.sub(r"[^a-z0-9]+", "_", name): name.upper() for name in MODEL_NAMES}
    wanted = set()
    for name, version in serving.items():
        family, _, slug = name.partition("_volatility_")
        owners = tickers if slug == "pooled" else [by_slug[slug]] if slug in by_slug else []
        model_type = types.get(family, family.upper())
        wanted |= {(ticker, model_type, version) for ticker in owners}
    return wanted


def check_paths(
    conn: psycopg.Connection[Any], days: dict[str, dict[str, Any]], tickers: list[str]
) -> Result:
    """Every day: a complete path per ticker and production model, from that version only."""
    lines, ok = [], True
    for day, record in sorted(days.items()):
        when = dt.datetime.fromisoformat(record["predicted_at"])
        wanted = expected_paths(production_at(conn, when), tickers)
        rows = conn.execute(
            "SELECT ticker, model_type, model_version, count(*), min(step), max(step),"
            " count(DISTINCT step) FROM ml.volatility_predictions WHERE origin_date = %s"
            " AND served_as = 'production' GROUP BY 1, 2, 3",
            (day,),
        ).fetchall()
        stored = {(t, m, v) for t, m, v, *_ in rows}
        broken = [f"{t} {m} v{v}: {n} rows" for t, m, v, n, lo, hi, distinct in rows
                  if (n, lo, hi, distinct) != (HORIZON, 1, HORIZON, HORIZON)]  # fmt: skip
        missing, extra = sorted(wanted - stored), sorted(stored - wanted)
        good = not (broken or missing or extra) and bool(wanted)
        ok &= good
        lines.append(f"{day}: {len(stored)} paths of {len(wanted)} expected"
                     + ("" if good else f"; missing {missing} extra {extra} "
                                        f"broken {broken}"))  # fmt: skip
    return ok, lines


def check_tasks(airflow: psycopg.Connection[Any], startup: list[str]) -> Result:
    """No task ended failed; every failed try was followed by a successful one.

    ``startup`` are the runs the schedules made on their own when the scheduler first
    started (the latest past interval: `catchup=False`), for today's date, not the soak's.
    """
    outside = airflow.execute(
        "SELECT dag_id, run_id, state FROM dag_run WHERE run_id = ANY(%s) ORDER BY id",
        (startup,),
    ).fetchall()
    final = airflow.execute(
        "SELECT dag_id, run_id, task_id, map_index, state FROM task_instance"
        " WHERE state IN ('failed', 'upstream_failed') AND NOT run_id = ANY(%s)"
        " ORDER BY dag_id, run_id",
        (startup,),
    ).fetchall()
    retried = airflow.execute(
        "SELECT h.dag_id, h.run_id, h.task_id, h.map_index, h.try_number, h.state, ti.state"
        " FROM task_instance_history h JOIN task_instance ti USING (dag_id, run_id, task_id,"
        " map_index) ORDER BY h.start_date"
    ).fetchall()
    runs = airflow.execute(
        "SELECT dag_id, state, count(*) FROM dag_run GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    lines = [f"runs: {', '.join(f'{d} {s} {n}' for d, s, n in runs)}"]
    lines += [f"not the soak's (the schedules' own at startup): {d} {r} {s}"
              for d, r, s in outside]  # fmt: skip
    lines += [f"FAILED: {d} {r} {t}[{m}] {s}" for d, r, t, m, s in final]
    lines += [f"retried: {d} {r} {t}[{m}] try {n} {s} -> now {now}"
              for d, r, t, m, n, s, now in retried]  # fmt: skip
    ok = not final and all(now == "success" for *_, now in retried)
    return ok, lines


def replay(rows: list[tuple[Any, ...]]) -> tuple[dict[tuple[str, str], str | None], list[str]]:
    """Where the log says each alias points, and the moves whose previous version disagrees.

    ``rows`` are (registered model, seq, alias, action, version, previous version) in seq
    order. One move is implied, not logged: promoting the challenger to production removes
    the challenger alias (``Promoter._move``), so its next move starts from none.
    """
    state: dict[tuple[str, str], str | None] = {}
    broken = []
    for name, seq, alias, action, version, previous in rows:
        if state.get((name, alias)) != previous:
            broken.append(f"{name} seq {seq} {alias} {action}: previous {previous}, "
                          f"the log had {state.get((name, alias))}")  # fmt: skip
        state[(name, alias)] = version
        if alias == PRODUCTION and state.get((name, CHALLENGER)) == version:
            state[(name, CHALLENGER)] = None
    return state, broken


def check_aliases(conn: psycopg.Connection[Any], tracking_uri: str) -> Result:
    """Every alias in the registry is where the replayed ``ml.model_promotions`` put it."""
    from mlflow import MlflowClient  # noqa: PLC0415  (slow import)

    rows = conn.execute(
        "SELECT registered_model, seq, alias, action, version, previous_version"
        " FROM ml.model_promotions WHERE alias <> %s ORDER BY registered_model, seq",
        (CHAMPION,),  # a champion is volforecast's own, not an MLflow alias
    ).fetchall()
    logged, broken = replay(rows)
    registry: dict[tuple[str, str], str | None] = {}
    for model in MlflowClient(tracking_uri).search_registered_models(max_results=1000):
        for alias, version in (model.aliases or {}).items():
            registry[(model.name, alias)] = str(version)
    lines = [f"BROKEN CHAIN: {line}" for line in broken]
    for key in sorted(set(logged) | set(registry)):
        if logged.get(key) != registry.get(key):
            lines.append(f"UNEXPLAINED: {key[0]}@{key[1]} is {registry.get(key)} in the "
                         f"registry, {logged.get(key)} by the log")  # fmt: skip
    ok = not lines
    if ok:
        lines.append(f"{len(registry)} aliases in the registry, {len(rows)} logged moves, "
                     "every one explained")  # fmt: skip
    return ok, lines


def check_champions(conn: psycopg.Connection[Any]) -> Result:
    """Every ticker's champion in ``ml.model_champions`` is where its logged changes put it."""
    rows = conn.execute(
        "SELECT registered_model, seq, alias, action, version, previous_version"
        " FROM ml.model_promotions WHERE alias = %s ORDER BY registered_model, seq",
        (CHAMPION,),
    ).fetchall()
    stored = conn.execute("SELECT ticker, model_type FROM ml.model_champions").fetchall()
    return champions_explained(rows, dict(stored))


def champions_explained(rows: list[tuple[Any, ...]], stored: dict[str, str]) -> Result:
    """Whether replaying the champion changes ``rows`` gives the ``stored`` champion by ticker."""
    logged, broken = replay(rows)
    table = {(f"{CHAMPION}/{ticker}", CHAMPION): model for ticker, model in stored.items()}
    lines = [f"BROKEN CHAIN: {line}" for line in broken]
    lines += [
        f"UNEXPLAINED: {key[0]} is {table.get(key)} in the table, {logged.get(key)} by the log"
        for key in sorted(set(logged) | set(table))
        if logged.get(key) != table.get(key)
    ]
    ok = not lines and bool(table)
    if ok:
        lines.append(f"{len(table)} champions, {len(rows)} logged changes, every one explained")
    elif not table:
        lines.append("no champion was decided")
    return ok, lines


def check_requests(conn: psycopg.Connection[Any]) -> Result:
    """No retraining request left pending without a reason."""
    rows = conn.execute(
        "SELECT ticker, requested_on, status, reason FROM ml.retrain_requests ORDER BY 2, 1"
    ).fetchall()
    pending = [r for r in rows if r[2] != "done"]
    lines = [f"{len(rows)} requests, {len(rows) - len(pending)} done"]
    lines += [f"pending: {t} {d}: {reason}" for t, d, _, reason in pending]
    return all(reason.strip() for *_, reason in pending), lines


def check_api(conn: psycopg.Connection[Any], api_url: str, day: str, tickers: list[str]) -> Result:
    """The API's stored paths for the last day equal the rows the prediction job stored."""
    lines, ok = [], True
    for ticker in tickers:
        rows = conn.execute(
            "SELECT model_type, step, forecast_date, predicted_volatility, model_version"
            " FROM ml.volatility_predictions WHERE ticker = %s AND origin_date = %s",
            (ticker, day),
        ).fetchall()
        stored = {(m, s, f.isoformat(), round(v, 9), str(ver)) for m, s, f, v, ver in rows}
        url = f"{api_url}/predictions/{ticker}?start={day}&limit=1000"
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310
            items = json.load(answer)["items"]
        served = {(i["model_type"], i["step"], i["forecast_date"],
                   round(i["predicted_volatility"], 9), str(i["model_version"]))
                  for i in items if i["origin_date"] == day}  # fmt: skip
        if served != stored or not stored:
            ok = False
            lines.append(f"{ticker}: API {len(served)} rows, stored {len(stored)}, differ")
    lines.append(f"{len(tickers)} tickers: the API's rows for {day} equal the stored ones"
                 if ok else "")  # fmt: skip
    return ok, [line for line in lines if line]


@dataclass(frozen=True)
class Day:
    """One soak day's events, as the timeline shows them."""

    day: str
    minutes: float
    alerts: dict[str, list[str]]
    """Ticker -> the detectors that alerted."""
    retrain_requests: int
    trainings: int
    promotions: list[str]
    """``<slug>->v<version>`` for each production move by promotion."""
    faults: list[str]

    def line(self) -> str:
        fired = ", ".join(f"{t}:{'+'.join(d)}" for t, d in sorted(self.alerts.items()))
        return (
            f"{self.day} ({self.minutes:4.1f} min): alerts {self.alert_count} [{fired}];"
            f" retrain requests {self.retrain_requests}; training runs {self.trainings};"
            f" promotions {len(self.promotions)} {' '.join(self.promotions)}"
            + (f"; FAULT {', '.join(self.faults)}" if self.faults else "")
        )

    @property
    def alert_count(self) -> int:
        return sum(len(d) for d in self.alerts.values())


def check_faults(asked: dict[str, int], struck: dict[str, dict[str, str]]) -> Result:
    """Every fault of ``--faults`` struck (a fault whose moment never came proves nothing)."""
    lines = []
    for kind, day in sorted(asked.items()):
        when = f"struck on {struck[kind]['day']}" if kind in struck else "NEVER STRUCK"
        lines.append(f"{kind}: asked for day {day}, {when}")
    return all(kind in struck for kind in asked), lines or ["no faults asked for"]


def timeline(conn: psycopg.Connection[Any], days: dict[str, dict[str, Any]]) -> list[Day]:
    """Per day: its drift alerts, and the requests, trainings and promotions while it ran."""
    out = []
    for day, record in sorted(days.items()):
        start, end = record["started_at"], record["finished_at"]
        # By the day observed: each monitor run rewrites the alerts of its whole lookback.
        alerts = conn.execute(
            "SELECT ticker, model_type || ' ' || detector FROM ml.drift_checks"
            " WHERE alert AND observed_on = %s ORDER BY 1, 2",
            (day,),
        ).fetchall()
        requests = conn.execute(
            "SELECT count(*) FROM ml.retrain_requests WHERE created_at BETWEEN %s AND %s",
            (start, end),
        ).fetchone()
        moves = conn.execute(
            "SELECT registered_model, action, version FROM ml.model_promotions"
            " WHERE alias = %s AND created_at BETWEEN %s AND %s ORDER BY seq",
            (PRODUCTION, start, end),
        ).fetchall()
        by_ticker: dict[str, list[str]] = defaultdict(list)
        for ticker, detector in alerts:
            by_ticker[ticker].append(detector)
        seconds = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).seconds
        out.append(Day(
            day=day, minutes=seconds / 60, alerts=dict(by_ticker),
            retrain_requests=int(requests[0]) if requests else 0,
            trainings=len(record["trainings"]),
            promotions=[f"{n.split('_volatility_')[1]}->v{v}"
                        for n, a, v in moves if a == "promote"],
            faults=list(record.get("faults", [])),
        ))  # fmt: skip
    return out
