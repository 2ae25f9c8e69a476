"""Serving speed: ``POST /predict`` against ``mlflow models serve`` for the same GARCH model.

Trains GARCH(1,1) for ``^GSPC`` from the bundled sample into a temporary home, then loads
each server in turn with ``wrk`` (Debian package ``wrk``) at the same connections and
duration: first ``volforecast serve`` (``POST /predict``), then ``mlflow models serve`` on the
registered production version (``POST /invocations``). Prints requests per second and the
latency percentiles of both, and how many predictions volforecast stored.

    python benchmarks/serving.py [--connections 32] [--seconds 15] [--workers 1]

Target (issue 5): at least twice MLflow's requests per second and at most a third of its
p99 latency, with predictions persisted.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from sqlalchemy import func, select

from _common import main_with_page
from volforecast.data.db import create_db_engine, ensure_schema
from volforecast.data.repositories.predictions import PREDICTIONS
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
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
    url: str, body: dict[str, object], args: argparse.Namespace, folder: Path
) -> dict[str, float]:
    script = folder / "post.lua"
    script.write_text(LUA.replace("{body}", json.dumps(body)))
    # A warm-up, so that neither server is measured loading its model.
    for horizon in range(1, 31):
        warm = json.loads(json.dumps(body).replace('"HORIZON"', str(horizon)))
        requests.post(url, json=warm, timeout=30).raise_for_status()
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency",
         "-s", str(script), url],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=1, help="processes, for both servers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    folder = Path(tempfile.mkdtemp(prefix="volforecast-serving-"))
    home = folder / "var"
    settings = Settings(home=home)
    engine = create_db_engine(settings)
    ensure_schema(engine)
    sample = load_sample().frame
    PriceRepository(engine).upsert(sample, ingested_at=dt.datetime.now(dt.UTC))
    report = train(engine, settings, TrainConfig(models=("garch",), plots=False), ["^GSPC"])
    if not report.complete:
        sys.exit(f"training failed: {report.outcomes}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFORECAST_")}
    env |= {
        "VOLFORECAST_HOME": str(home),
        "VOLFORECAST_LOG_LEVEL": "WARNING",
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        # mlflow models serve runs `uvicorn` from PATH: this environment's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    print(
        f"wrk: {args.connections} connections, {args.seconds} s, 2 threads; "
        f"{args.workers} server process(es) each; GARCH(1,1) of ^GSPC, horizons 1-30"
    )

    ours_port, mlflow_port = free_port(), free_port()
    ours_url = f"http://127.0.0.1:{ours_port}"
    with server([sys.executable, "-m", "volforecast", "serve", "--port", str(ours_port),
                 "--workers", str(args.workers)], env, f"{ours_url}/health",
                folder / "volforecast.log"):  # fmt: skip
        ours = load(f"{ours_url}/predict",
                    {"ticker": "^GSPC", "model_type": "GARCH", "horizon": "HORIZON"},
                    args, folder)  # fmt: skip
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(PREDICTIONS)).scalar_one()

    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    with server([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                 "models:/garch_volatility_gspc@production", "--env-manager", "local",
                 "-p", str(mlflow_port), "-w", str(args.workers)], env, f"{mlflow_url}/ping",
                folder / "mlflow.log"):  # fmt: skip
        theirs = load(f"{mlflow_url}/invocations",
                      {"dataframe_split": {"columns": ["horizon"], "data": [["HORIZON"]]}},
                      args, folder)  # fmt: skip

    print(f"\n{'server':<34}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, figures in (("volforecast POST /predict", ours),
                          ("mlflow models serve /invocations", theirs)):  # fmt: skip
        print(
            f"{name:<34}{figures['rps']:>9.0f}{figures['p50_ms']:>9.1f}"
            f"{figures['p90_ms']:>9.1f}{figures['p99_ms']:>9.1f}{figures['non_2xx']:>9.0f}"
        )
    print(
        f"\nthroughput ratio {ours['rps'] / theirs['rps']:.2f} (target >= 2); "
        f"p99 ratio {ours['p99_ms'] / theirs['p99_ms']:.2f} (target <= 0.33)"
    )
    print(
        f"predictions stored by volforecast: {stored} rows for {ours['requests']:.0f} requests "
        "(one 30-day path from one close, each step stored once)"
    )
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main_with_page(main, "Serving throughput")
