"""`make soak`: a month of operation under Airflow's scheduler, with faults, then checks.

    python benchmarks/soak.py [--start 2008-09-15] [--end 2008-10-15] [--tickers 20]
        [--faults postgres:3,scheduler:6,mlflow:10,train:12] [--dir var/soak] [--stop]

PostgreSQL (a cluster in the soak folder), ``volforecast mlflow``, Airflow's scheduler, DAG
processor and API server (LocalExecutor, metadata on that PostgreSQL) and ``volforecast
serve`` run as processes on this machine. GARCH models are trained on the prices before
``--start``; then, for each trading day, that day's rows are dropped into the drop folder,
``ml_ingest_prices`` is triggered for that date through Airflow's REST API, the scheduler runs
``ml_predict_volatility`` from the asset event, and the soak waits for any training that run
triggered. A fault ``KIND:N`` strikes on the N-th trading day (1-based): ``postgres`` (restart
while a prediction task runs), ``scheduler`` (SIGKILL during a running task, then start it),
``mlflow`` (restart while a prediction task runs), ``train`` (SIGKILL a running ``volforecast
train`` of a training task, on the first training at or after day N).

The state (ports, days done, faults struck) is in ``DIR/state.json``: run it again after an
interruption and it goes on from the first day not done; to start over, ``--stop`` and remove
the folder. ``--stop`` stops every service a soak left running (``--keep-running``). The end
checks print and set the exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import soak_checks
import soak_report
from _common import SHARED_FILE, draw_tickers
from soak_services import PROJECT_BIN, REPO, Ports, Stack

DATA = Path(os.environ.get("VOLFORECAST_SHARED_DATA", SHARED_FILE))
INGEST, PREDICT, TRAIN = "ml_ingest_prices", "ml_predict_volatility", "ml_train_volatility_models"
FAULTS = ("postgres", "scheduler", "mlflow", "train")
DAY_TIMEOUT_S = 1800.0
PARTIAL = frozenset({0, 3})
"""Exit codes of a job that stored what it could (3: some rows or tickers rejected)."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Soak:
    """The soak's state, its stack, and the daily loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.folder = Path(args.dir).resolve()
        self.state_file = self.folder / "state.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state: dict[str, Any] = (
            json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        )
        if not self.state:
            self.state = {
                "seed": secrets.randbelow(200), "secret": secrets.token_hex(16),
                "password": secrets.token_hex(8), "days": {}, "faults_done": {},
            }  # fmt: skip
        s = self.state
        self.stack = Stack(self.folder, Ports.draw(s["seed"]), s["secret"], s["password"])
        self.airflow_url = f"http://127.0.0.1:{self.stack.ports.airflow}"
        self.token = ""
        self.faults: dict[str, int] = {}

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, default=str))
        tmp.replace(self.state_file)

    # --- Airflow's REST API -------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
            request = urllib.request.Request(  # noqa: S310  (the soak's own http URL)
                f"{self.airflow_url}{path}", data, headers, method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                    return answer.status, json.load(answer)
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0:
                    self.login()
                    continue
                return exc.code, exc.read().decode(errors="replace")
        raise AssertionError

    def login(self) -> None:
        """A JWT from /auth/token (Airflow's simple auth manager, the soak's user)."""
        body = json.dumps({"username": "soak", "password": self.state["password"]}).encode()
        request = urllib.request.Request(f"{self.airflow_url}/auth/token", body,  # noqa: S310
                                         {"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            self.token = json.load(answer)["access_token"]

    def trigger_ingest(self, day: str) -> str:
        run_id = f"soak_ingest_{day}"
        status, answer = self._request(
            "POST", f"/api/v2/dags/{INGEST}/dagRuns",
            {"dag_run_id": run_id, "logical_date": f"{day}T22:30:00Z", "conf": {}},
        )  # fmt: skip
        if status not in {200, 409}:  # 409: triggered before an interruption
            msg = f"triggering {INGEST} for {day}: HTTP {status} {answer}"
            raise RuntimeError(msg)
        return run_id

    # --- Airflow's metadata, read directly for what the API lacks (asset event extras) ---
    def airflow_db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.stack.postgres.dsn("airflow"), autocommit=True)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        for _ in range(60):  # PostgreSQL may be restarting (a fault)
            try:
                with self.airflow_db() as conn:
                    return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
            except psycopg.OperationalError:
                time.sleep(2)
        msg = "the Airflow metadata database does not answer"
        raise RuntimeError(msg)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self._query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
                           (dag_id, run_id))  # fmt: skip
        return rows[0][0] if rows else None

    def predict_run(self, day: str) -> tuple[str, str] | None:
        """The prediction run the asset event of ``day``'s ingestion started."""
        rows = self._query(
            "SELECT dr.run_id, dr.state FROM dag_run dr JOIN dagrun_asset_event dae ON"
            " dae.dag_run_id = dr.id JOIN asset_event ae ON ae.id = dae.event_id WHERE"
            " dr.dag_id = %s AND ae.extra::text::jsonb ->> 'as_of' = %s ORDER BY dr.id DESC",
            (PREDICT, day),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def running_tasks(self, dag_id: str) -> list[tuple[str, str]]:
        return [(r, t) for r, t in self._query(
            "SELECT run_id, task_id FROM task_instance WHERE dag_id = %s AND state = 'running'",
            (dag_id,))]  # fmt: skip

    def trainings_since(self, since: str) -> list[tuple[str, str]]:
        return [(r, s) for r, s in self._query(
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND queued_at >= %s"
            " ORDER BY id", (TRAIN, since))]  # fmt: skip

    def settle(self, days: list[str]) -> None:
        """Wait for the runs the schedules start on their own, and note them as not ours.

        With `catchup=False`, a scheduler meeting a DAG for the first time runs its latest
        past interval: the weekly training and the latest weekday's ingestion (of today's
        date, whose prediction run stops on stale prices, as it should).
        """
        scheduled = (INGEST, TRAIN)

        def quiet() -> bool:
            due = self._query(
                "SELECT count(*) FROM dag WHERE dag_id = ANY(%s) AND NOT is_paused AND"
                " next_dagrun_create_after > now()", (list(scheduled),))  # fmt: skip
            busy = self._query(
                "SELECT (SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running'))"
                " + (SELECT count(*) FROM asset_dag_run_queue)"
            )
            return bool(due[0][0] == len(scheduled) and busy[0][0] == 0)

        calm = 0
        deadline = time.monotonic() + DAY_TIMEOUT_S
        while calm < 3 and time.monotonic() < deadline:
            calm = calm + 1 if quiet() else 0
            time.sleep(3)
        ours = {f"soak_ingest_{d}" for d in days}
        runs = self._query(
            "SELECT dr.run_id, ae.extra::text::jsonb ->> 'as_of' FROM dag_run dr LEFT JOIN"
            " dagrun_asset_event dae ON dae.dag_run_id = dr.id LEFT JOIN asset_event ae ON"
            " ae.id = dae.event_id WHERE dr.run_type IN ('scheduled', 'asset_triggered')"
        )
        startup = sorted({run for run, as_of in runs
                          if run not in ours and (as_of is None or as_of not in days)})  # fmt: skip
        new = sorted(set(startup) - set(self.state.get("startup_runs", [])))
        if new:
            say(f"the schedules' own runs (not the soak's): {', '.join(new)}")
        self.state["startup_runs"] = startup
        self.save()

    # --- faults ---------------------------------------------------------------------------
    def fault_due(self, kind: str, index: int) -> bool:
        day = self.faults.get(kind)
        if day is None or kind in self.state["faults_done"]:
            return False
        return index >= day if kind == "train" else index == day

    def strike(self, kind: str, day: str) -> None:
        if kind != "train":
            say(f"FAULT {kind}")
        if kind == "postgres":
            self.stack.postgres.restart()
        elif kind == "mlflow":
            self.stack.mlflow.stop()
            self.stack.mlflow.start()
        elif kind == "scheduler":
            pid = self.stack.scheduler.kill9()
            say(f"scheduler {pid} SIGKILLed; starting a new one")
            time.sleep(3)
            self.stack.scheduler.start()
        elif kind == "train":
            pid = self._training_process()
            if pid is None:
                return
            os.kill(pid, signal.SIGKILL)
            say(f"FAULT train: volforecast train {pid} SIGKILLed")
        self.state["faults_done"][kind] = {"day": day, "at": now()}
        self.state["days"].setdefault(day, {}).setdefault("faults", []).append(kind)
        self.save()

    def _training_process(self) -> int | None:
        """A ``volforecast train`` process started by one of this soak's training tasks."""
        home = f"VOLFORECAST_HOME={self.folder / 'home'}".encode()
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            # The script runs under its interpreter: python .../volforecast train --tickers ...
            script = str(PROJECT_BIN / "volforecast").encode()
            at = argv.index(script) if script in argv[:2] else -1
            if at >= 0 and argv[at + 1 : at + 3] == [b"train", b"--tickers"] and home in environ:
                return int(proc.name)
        return None

    # --- the daily loop -------------------------------------------------------------------
    def wait(self, what: str, done: Any, index: int, day: str) -> Any:
        """Poll ``done()`` until it returns something; strike faults due meanwhile."""
        deadline = time.monotonic() + DAY_TIMEOUT_S
        while time.monotonic() < deadline:
            result = done()
            if result:
                return result
            self.maybe_strike(index, day)
            time.sleep(2)
        msg = f"{day}: timed out waiting for {what}"
        raise RuntimeError(msg)

    def maybe_strike(self, index: int, day: str) -> None:
        if self.fault_due("scheduler", index) and self.running_tasks(PREDICT):
            self.strike("scheduler", day)
        if self.fault_due("postgres", index) and self.running_tasks(PREDICT):
            self.strike("postgres", day)
        if self.fault_due("mlflow", index) and self.running_tasks(PREDICT):
            self.strike("mlflow", day)
        if self.fault_due("train", index) and any(
            t.startswith("train_per_ticker") for _, t in self.running_tasks(TRAIN)
        ):
            time.sleep(2)  # let it get into its fit
            self.strike("train", day)

    def run_day(self, index: int, day: str, rows: pd.DataFrame) -> None:
        record = self.state["days"].setdefault(day, {})
        record.setdefault("started_at", now())
        drop = self.folder / "incoming" / f"prices-{day}.csv"
        if not record.get("dropped"):
            part = drop.with_name(drop.name + ".part")  # not picked up until renamed
            rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d")).to_csv(part, index=False)
            part.rename(drop)
            record["dropped"] = True
            self.save()
        run_id = self.trigger_ingest(day)

        def ingested() -> str | None:
            state = self.run_state(INGEST, run_id)
            if state == "failed":
                msg = f"{day}: {INGEST} run {run_id} failed; see {self.folder}/airflow/logs"
                raise RuntimeError(msg)
            return state if state == "success" else None

        self.wait(f"{INGEST} {run_id}", ingested, index, day)

        def predicted() -> tuple[str, str] | None:
            found = self.predict_run(day)
            if found and found[1] == "failed":
                msg = f"{day}: {PREDICT} run {found[0]} failed"
                raise RuntimeError(msg)
            return found if found and found[1] == "success" else None

        predict_id, _ = self.wait(f"{PREDICT} for {day}", predicted, index, day)
        ended = self._query(
            "SELECT end_date FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id ="
            " 'generate_and_store_predictions'", (PREDICT, predict_id))  # fmt: skip
        record["predict_run"] = predict_id
        record["predicted_at"] = ended[0][0].isoformat()

        def trained() -> list[list[tuple[str, str]]] | None:
            runs = self.trainings_since(record["started_at"])
            if any(state == "failed" for _, state in runs):
                msg = f"{day}: a training run failed: {runs}"
                raise RuntimeError(msg)
            return [runs] if all(state == "success" for _, state in runs) else None

        runs = self.wait("training", trained, index, day)
        record["trainings"] = [run for run, _ in runs[0]]
        record["finished_at"] = now()
        record["done"] = True
        self.save()

    # --- bootstrap ------------------------------------------------------------------------
    def bootstrap(self, prices: pd.DataFrame, tickers: list[str], start: str) -> None:
        """Load the history before ``start`` and train GARCH on it, once."""
        if self.state.get("bootstrapped"):
            return
        history = prices[(prices["ticker"].isin(tickers)) & (prices["date"] < start)]
        path = self.folder / "history.parquet"
        history.to_parquet(path, index=False)
        say(f"loading {len(history)} rows before {start}; training GARCH on {len(tickers)} tickers")
        vf = str(PROJECT_BIN / "volforecast")
        self.stack.run_command([vf, "ingest", "--file", str(path)], "bootstrap", PARTIAL)
        self.stack.run_command([vf, "train", "--tickers", ",".join(tickers), "--models",
                                "garch", "--no-plots"], "bootstrap", PARTIAL)  # fmt: skip
        self.state["bootstrapped"] = now()
        self.save()


def parse_faults(text: str) -> dict[str, int]:
    faults = {}
    for item in filter(None, text.split(",")):
        kind, _, day = item.partition(":")
        if kind not in FAULTS or not day.isdigit():
            msg = f"--faults: {item!r} is not KIND:DAY with KIND one of {', '.join(FAULTS)}"
            raise SystemExit(msg)
        faults[kind] = int(day)
    return faults


def choose(prices: pd.DataFrame, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    period = prices[(prices["date"] >= args.start) & (prices["date"] <= args.end)]
    days = sorted(period["date"].dt.strftime("%Y-%m-%d").unique())
    if args.tickers.isdigit():
        complete = period.groupby("ticker")["date"].nunique()
        full = prices[prices["ticker"].isin(complete[complete == len(days)].index)]
        tickers = draw_tickers(full, int(args.tickers), seed=21, history_before="2003-01-01")
    else:
        tickers = sorted(args.tickers.split(","))
    return days, tickers


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(REPO / "var" / "soak"))
    parser.add_argument("--start", default="2008-09-15")
    parser.add_argument("--end", default="2008-10-15")
    parser.add_argument("--tickers", default="20", help="a count, or comma-separated tickers")
    parser.add_argument("--faults", default="postgres:3,scheduler:6,mlflow:10,train:12")
    parser.add_argument("--stop", action="store_true", help="stop the services and exit")
    parser.add_argument("--keep-running", action="store_true")
    parser.add_argument("--markdown", type=Path, help="write the results page here at the end")
    args = parser.parse_args()
    soak = Soak(args)
    if args.stop:
        soak.stack.stop()
        say("stopped")
        return 0
    settings = {k: getattr(args, k) for k in ("start", "end", "tickers", "faults")}
    if soak.state.setdefault("settings", settings) != settings:
        msg = f"{soak.folder} holds a soak of {soak.state['settings']}; use another --dir"
        raise SystemExit(msg)
    soak.faults = parse_faults(args.faults)
    prices = pd.read_parquet(DATA, columns=["ticker", "date", "open", "high", "low", "close",
                                            "adjusted_close", "volume"])  # fmt: skip
    days, tickers = choose(prices, args)
    say(f"{len(days)} trading days {days[0]}..{days[-1]}, {len(tickers)} tickers, "
        f"faults {soak.faults}, folder {soak.folder}")  # fmt: skip
    started = time.monotonic()
    try:
        soak.stack.prepare()
        soak.stack.start(airflow=False)
        soak.bootstrap(prices, tickers, days[0])
        soak.stack.start()
        say(f"services up: {soak.stack.health()}")
        soak.login()
        soak.settle(days)
        for index, day in enumerate(days, start=1):
            if soak.state["days"].get(day, {}).get("done"):
                continue
            t0 = time.monotonic()
            rows = prices[(prices["ticker"].isin(tickers)) & (prices["date"] == day)]
            soak.run_day(index, day, rows)
            record = soak.state["days"][day]
            say(
                f"day {index}/{len(days)} {day} done in {time.monotonic() - t0:.0f} s; "
                f"trainings {len(record['trainings'])}; faults {record.get('faults', [])}"
            )
        code, page = report(soak, days, tickers, time.monotonic() - started)
        if args.markdown is not None:
            soak_report.write(args.markdown, page)
            say(f"results page written to {args.markdown}")
        return code
    finally:
        if not args.keep_running:
            soak.stack.stop()
            say("services stopped")


def report(soak: Soak, days: list[str], tickers: list[str], elapsed_s: float) -> tuple[int, str]:
    """Print every check and the timeline; the exit code and the results page."""
    done = {d: soak.state["days"][d] for d in days}
    vf_dsn = soak.stack.postgres.dsn("volforecast")
    results = []
    with psycopg.connect(vf_dsn) as conn, soak.airflow_db() as airflow:
        checks = {
            "complete paths from the production version, nothing else":
                soak_checks.check_paths(conn, done, tickers),
            "no task failed without a successful retry": soak_checks.check_tasks(
                airflow, soak.state.get("startup_runs", [])),
            "every alias move explained by ml.model_promotions": soak_checks.check_aliases(
                conn, f"http://127.0.0.1:{soak.stack.ports.mlflow}"),
            "every champion explained by ml.model_promotions": soak_checks.check_champions(conn),
            "no retraining request pending without a reason": soak_checks.check_requests(conn),
            "the API's answer for the last day equals the stored rows": soak_checks.check_api(
                conn, f"http://127.0.0.1:{soak.stack.ports.api}", days[-1], tickers),
            "every fault asked for struck": soak_checks.check_faults(
                soak.faults, soak.state["faults_done"]),
        }  # fmt: skip
        for title, (ok, lines) in checks.items():
            print(f"\n{'PASS' if ok else 'FAIL'}: {title}")
            for line in lines:
                print(f"  {line}")
            results.append(ok)
        print("\ntimeline:")
        days_seen = soak_checks.timeline(conn, done)
        for day in days_seen:
            print(f"  {day.line()}")
    print(f"\nfaults: {soak.state['faults_done']}")
    print(f"{len(days)} days, {len(tickers)} tickers, {elapsed_s / 60:.1f} min this session; "
          f"{'all checks passed' if all(results) else 'CHECKS FAILED'}")  # fmt: skip
    page = soak_report.markdown(soak.state["settings"], tickers, checks, days_seen,
                                soak.state["faults_done"])  # fmt: skip
    return (0 if all(results) else 1), page


if __name__ == "__main__":
    sys.exit(main())
