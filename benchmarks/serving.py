"""Serving speed: volforecast against a bare FastAPI app and ``mlflow models serve``.

Trains GARCH(1,1) for ``^GSPC`` (the bundled sample) and, when ``../shared`` is there, for
every shared ticker, into a temporary home. Then loads each server in turn with ``wrk``
(Debian package ``wrk``) at the same connections and duration, one server at a time:

1. the bare app (``benchmarks/bare_app.py``: FastAPI answering ``/predict`` from a constant,
   the same pydantic models and uvicorn flags, no middleware), two rounds;
2. ``volforecast serve``: two rounds of ``POST /predict`` from its start, then ``GET
   /predictions/^GSPC`` (the default page), then ``POST /predict/batch`` with every ticker's
   30-day GARCH path, the first request (the paths computed) and then once they are cached;
3. ``mlflow models serve`` on the registered production version (``POST /invocations``).

Each ``/predict`` round asks for a random horizon, 1 to 30, after a warm-up of one request
per horizon. Prints requests per second and latency percentiles, the ratios to the bare app
and to MLflow, and how many predictions volforecast stored.

    python benchmarks/serving.py [--connections 32] [--seconds 15] [--tickers N]

Targets. Issue 5: at least twice MLflow's requests per second and at most a third of its p99.
Issue 26: ``/predict`` at least 70 % of the bare app's requests per second from the first
round on, with p99 at most 1.5 times its p99; ``GET /predictions/{ticker}`` at least 40 % of
the bare app's ``/predict``; the whole batch under 50 ms p50 once its paths are cached.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import requests

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from sqlalchemy import func, select

from _common import SHARED_FILE, main_with_page
from volforecast.data.db import create_db_engine, ensure_schema
from volforecast.data.repositories.predictions import PREDICTIONS
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_file, load_sample
from volforecast.jobs.train import TrainConfig, train
from volforecast.settings import Settings

# Each request asks for a random horizon, 1 to 30 trading days.
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.gsub('{body}', '"?HORIZON"?', tostring(math.random(1, 30)))
  return wrk.format(nil, nil, nil, body)
end
"""
BENCHMARKS = Path(__file__).resolve().parent
UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if requests.get(ready_url, timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"{command[:4]} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)


def seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        msg = f"not a wrk duration: {text!r}"
        raise ValueError(msg)
    return float(match.group(1)) * UNITS_S[match.group(2)]


def load(
    url: str, body: Mapping[str, object] | None, args: argparse.Namespace, folder: Path,
    lua: Path | None = None,
) -> dict[str, float]:  # fmt: skip
    """One ``wrk`` round: POST ``body`` with a random horizon, or GET ``url`` when None.

    ``lua``, a wrk script of the caller's, makes the requests instead (no warm-up is sent).
    """
    script: list[str] = [] if lua is None else ["-s", str(lua)]
    if body is not None and lua is None:
        (folder / "post.lua").write_text(LUA.replace("{body}", json.dumps(body)))
        script = ["-s", str(folder / "post.lua")]
        # A warm-up of one request per horizon: the first round is the first after it.
        for horizon in range(1, 31):
            warm = json.loads(json.dumps(body).replace('"HORIZON"', str(horizon)))
            requests.post(url, json=warm, timeout=30).raise_for_status()
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency",
         *script, url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        figures[f"p{pct}_ms"] = seconds(found.group(1)) * 1000 if found else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    figures["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return figures


def prepare(home: Path, tickers: int) -> list[str]:
    """The sample and ``tickers`` shared tickers (0: all) stored, GARCH trained for each."""
    settings = Settings(home=home)
    engine = create_db_engine(settings)
    ensure_schema(engine)
    frames = [load_sample().frame]
    if SHARED_FILE.exists():
        shared = load_file(SHARED_FILE).frame
        names = sorted(shared["ticker"].unique())[: tickers or None]
        frames.append(shared[shared["ticker"].isin(names)])
    prices = pd.concat(frames, ignore_index=True)
    PriceRepository(engine).upsert(prices, ingested_at=dt.datetime.now(dt.UTC))
    started = time.perf_counter()
    report = train(engine, settings, TrainConfig(models=("garch",), plots=False, workers=2))
    engine.dispose()
    names = sorted(prices["ticker"].unique())
    print(f"GARCH(1,1) trained for {len(names)} tickers in {time.perf_counter() - started:.0f} s "
          f"(not timed below); {len(report.failed)} failed")  # fmt: skip
    return names


def time_batch(
    url: str, tickers: list[str], repeats: int
) -> tuple[float, list[float], list[dict[str, object]]]:
    """The first batch of every ticker's 30-day path (ms), then ``repeats`` more, and answers.

    The body is encoded once and the answer decoded after the clock stops: the figure is the
    server's and the wire's, not the client's JSON.
    """
    items = [{"ticker": ticker, "model_type": "GARCH", "horizon": 30} for ticker in tickers]
    body = json.dumps({"items": items}).encode()
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    times_ms = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        answer = session.post(url, data=body, headers=headers, timeout=600)
        times_ms.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times_ms[0], times_ms[1:], answer.json()["items"]


def row(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name:<40}{figures['rps']:>9.0f}{figures['p50_ms']:>9.1f}"
        f"{figures['p90_ms']:>9.1f}{figures['p99_ms']:>9.1f}{figures['non_2xx']:>9.0f}"
    )


Figures = dict[str, float]


def report(bare: list[Figures], ours: list[Figures], page: Figures, theirs: Figures) -> None:
    """The wrk rounds as a table, and each ratio beside its target."""
    print(f"\n{'server':<40}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for number, figures in enumerate(bare, 1):
        print(row(f"bare FastAPI POST /predict, round {number}", figures))
    for number, figures in enumerate(ours, 1):
        print(row(f"volforecast POST /predict, round {number}", figures))
    print(row("volforecast GET /predictions/^GSPC", page))
    print(row("mlflow models serve /invocations", theirs))
    rps = max(f["rps"] for f in bare)
    p99 = min(f["p99_ms"] for f in bare)
    print(f"\nagainst the bare app's best round ({rps:.0f} req/s, p99 {p99:.1f} ms):")
    for number, figures in enumerate(ours, 1):
        print(
            f"  POST /predict round {number}: throughput {figures['rps'] / rps:.0%} (target "
            f">= 70 %), p99 {figures['p99_ms'] / p99:.2f}x (target <= 1.5)"
        )
    print(f"  GET /predictions/^GSPC: throughput {page['rps'] / rps:.0%} (target >= 40 %)")
    best = max(ours, key=lambda f: f["rps"])
    print(
        f"against mlflow models serve: throughput {best['rps'] / theirs['rps']:.1f}x "
        f"(target >= 2), p99 {best['p99_ms'] / theirs['p99_ms']:.2f}x (target <= 0.33)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=1, help="processes, for every server")
    parser.add_argument("--tickers", type=int, default=0,
                        help="shared tickers trained and batched (0: all; the sample alone "
                        "without ../shared)")  # fmt: skip
    parser.add_argument("--batch-repeats", type=int, default=50,
                        help="cached batches timed after the first")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    folder = Path(tempfile.mkdtemp(prefix="volforecast-serving-"))
    home = folder / "var"
    tickers = prepare(home, args.tickers)
    settings = Settings(home=home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFORECAST_")}
    env |= {
        "VOLFORECAST_HOME": str(home),
        "VOLFORECAST_LOG_LEVEL": "WARNING",
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        # mlflow models serve runs `uvicorn` from PATH: this environment's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCHMARKS), env.get("PYTHONPATH")])),
    }
    print(
        f"wrk: {args.connections} connections, {args.seconds} s, 2 threads; "
        f"{args.workers} server process(es) each; GARCH(1,1) of ^GSPC, horizons 1-30"
    )
    predict_body = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": "HORIZON"}
    uvicorn_flags = ["--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server([sys.executable, "-m", "uvicorn", "bare_app:create_app", "--factory",
                 "--port", str(port), *uvicorn_flags], env, f"{url}/health",
                folder / "bare.log"):  # fmt: skip
        bare = [load(f"{url}/predict", predict_body, args, folder) for _ in range(2)]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server([sys.executable, "-m", "volforecast", "serve", "--port", str(port),
                 "--workers", str(args.workers)], env, f"{url}/health",
                folder / "volforecast.log"):  # fmt: skip
        ours = [load(f"{url}/predict", predict_body, args, folder) for _ in range(2)]
        page = load(f"{url}/predictions/%5EGSPC", None, args, folder)
        cold_ms, warm_ms, items = time_batch(f"{url}/predict/batch", tickers,
                                                args.batch_repeats)  # fmt: skip
    engine = create_db_engine(settings)
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(PREDICTIONS)).scalar_one()
    engine.dispose()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                 "models:/garch_volatility_gspc@production", "--env-manager", "local",
                 "-p", str(port), "-w", str(args.workers)], env, f"{url}/ping",
                folder / "mlflow.log"):  # fmt: skip
        theirs = load(f"{url}/invocations",
                      {"dataframe_split": {"columns": ["horizon"], "data": [["HORIZON"]]}},
                      args, folder)  # fmt: skip

    report(bare, ours, page, theirs)
    problems = [item for item in items if "status" in item]
    print(
        f"\nPOST /predict/batch, {len(tickers)} tickers' 30-day GARCH paths in one request "
        f"({len(items) - len(problems)} answered): first request {cold_ms:.0f} ms (paths "
        f"computed); cached, over {len(warm_ms)} requests: p50 "
        f"{np.percentile(warm_ms, 50):.1f} ms, p90 {np.percentile(warm_ms, 90):.1f} ms "
        "(target p50 < 50 ms)"
    )
    for item in problems[:5]:
        print(f"  not answered: {item['ticker']}: {item['status']} {item['detail']}")
    print(
        f"predictions stored by volforecast: {stored} rows for "
        f"{sum(f['requests'] for f in ours):.0f} requests and the batches "
        "(a 30-day path from one close, each step stored once)"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main_with_page(main, "Serving throughput")
