"""Cost as the work grows: ingest, training, daily jobs and API at 100, 400 and 1,600 tickers.

Each size gets a home of its own under ``--cache`` and a price file of that many tickers: the
shared ones first, then copies of them on the same NYSE sessions, each rescaled and perturbed
day by day (no two series are equal; every OHLC relation and adjustment ratio is kept). Then
each stage runs as a user runs it, through the CLI, in a process of its own, with its
defaults: ``ingest --file`` of the history, ``train --all`` on it, then the daily DAG's two
jobs on the last of :data:`DAILY_SESSIONS` sessions that came after the training (``predict
--all``, ``monitor run --all``: it judges the day before's forecasts and runs the drift
detectors since the training), and ``serve`` under ``wrk``. The sessions' prices and the
day before's predictions are stored first, outside the figures. A stage's seconds and peak
memory (its process and workers together, sampled every half second) are kept in
``DIR/<size>/<stage>.json``; a later run reads them instead of running the stage again, so a
run cut short resumes with the stage it stopped in. A stage cut short itself starts its size
again from the price file (``--fresh`` measures everything again).

    python benchmarks/scale.py [--sizes 100,400,1600] [--cache DIR] [--fresh]

Target (issue 26): each stage grows at most linearly with the tickers; peak memory at 1,600
tickers under 6 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from _common import SHARED_FILE, main_with_page
from serving import free_port, load
from volforecast.data.sources import PRICE_COLUMNS, load_file

BENCHMARKS = Path(__file__).resolve().parent
Figures = dict[str, float]
STAGES = ("ingest", "train", "predict", "monitor", "api")
COPY_DAILY_NOISE = 0.002
"""Standard deviation of a copy's daily log perturbation: small beside any stock's returns."""
DAILY_SESSIONS = 20
"""Sessions after the training's last close, stored before the daily jobs run on the last."""

# Each request names a random stored ticker and horizon; the champion answers it.
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local tickers = {TICKERS}
request = function()
  local ticker = tickers[math.random(1, #tickers)]
  local body = '{"ticker": "' .. ticker .. '", "horizon": ' .. math.random(1, 30) .. '}'
  return wrk.format(nil, nil, nil, body)
end
"""


def split_sessions(
    prices: pd.DataFrame, daily: int = DAILY_SESSIONS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The history a training sees, and the last ``daily`` sessions that come after it."""
    sessions = np.sort(prices["date"].unique())
    after = prices["date"] > sessions[-daily - 1]
    return prices[~after], prices[after]


def prices_of(size: int, shared: pd.DataFrame) -> pd.DataFrame:
    """``size`` tickers: the shared ones, then rescaled and perturbed copies (``A.S1``, ...)."""
    names = sorted(shared["ticker"].unique())
    frames = [shared[shared["ticker"].isin(names[:size])]]
    by_ticker = dict(tuple(shared.groupby("ticker", sort=True)))
    rng = np.random.default_rng(size)
    for n in range(size - min(size, len(names))):
        source = by_ticker[names[n % len(names)]]
        copy = source.copy()
        copy["ticker"] = f"{names[n % len(names)]}.S{n // len(names) + 1}"
        steps = rng.normal(0.0, COPY_DAILY_NOISE, len(copy))
        factor = np.exp(rng.uniform(-1.0, 1.0) + np.cumsum(steps))
        copy[list(PRICE_COLUMNS)] = copy[list(PRICE_COLUMNS)].mul(factor, axis=0).round(4)
        frames.append(copy)
    return pd.concat(frames, ignore_index=True)


class TreeMemory:
    """The peak of the summed resident memory of a process and its descendants, sampled.

    A training's workers are processes of their own: the job's memory is their sum, which no
    single process's peak (``ru_maxrss``) shows.
    """

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.peak_gib = 0.0
        self._pid, self._every_s = pid, every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_gib

    def _sample(self) -> None:
        while not self._done.wait(self._every_s):
            self.peak_gib = max(self.peak_gib, _tree_rss_kib(self._pid) / 2**20)


def _tree_rss_kib(root: int) -> int:
    """Resident memory (KiB) of ``root`` and every process below it, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
        )
    tree, grown = {root}, True
    while grown:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grown = bool(below)
    return sum(rss.get(pid, 0) for pid in tree)


def measured(command: list[str], env: dict[str, str], folder: Path, stage: str) -> Figures:
    """Seconds and peak memory (GiB, the process and its workers together) of a CLI command."""
    began = time.perf_counter()
    with (folder / f"{stage}.log").open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=folder, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        memory = TreeMemory(process.pid)
        process.wait()
    peak_gib = memory.stop()
    seconds = time.perf_counter() - began
    if process.returncode not in {0, 3}:  # 3: some tickers failed, the others were done
        sys.exit(f"{stage} failed ({process.returncode}):\n"
                 f"{(folder / f'{stage}.log').read_text()[-3000:]}")  # fmt: skip
    return {"seconds": seconds, "peak_gib": peak_gib, "exit": process.returncode}


def api_figures(env: dict[str, str], folder: Path, tickers: list[str]) -> Figures:
    """The API with every model loaded: its first answer for each ticker, then a wrk round.

    Only the tickers it answers go into the round: one whose every model failed (too short a
    history) has nothing to serve, and its quick 404s would flatter the figures.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "volforecast", "serve", "--port", str(port)]
    with (folder / "serve.log").open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=folder, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait_until_up(f"{url}/health", process)
        began = time.perf_counter()
        served = [  # each ticker's first answer loads and caches its path
            t for t in tickers
            if requests.post(f"{url}/predict", json={"ticker": t, "horizon": 30},
                             timeout=60).status_code == 200
        ]  # fmt: skip
        first_s = time.perf_counter() - began
        if not served:
            sys.exit(f"the API answered none of the {len(tickers)} tickers: see {folder}/serve.log")
        script = folder / "post.lua"
        script.write_text(LUA.replace("{TICKERS}", "{" + ",".join(map(json.dumps, served)) + "}"))
        args = argparse.Namespace(connections=32, seconds=10)
        figures = load(f"{url}/predict", None, args, folder, lua=script)
        peak_gib = _tree_rss_kib(process.pid) / 2**20  # its models loaded, after the round
    finally:
        process.terminate()
        process.wait(timeout=60)
    if figures["non_2xx"]:
        sys.exit(f"the API refused {figures['non_2xx']:.0f} requests for tickers it serves")
    return {"first_requests_s": first_s, "served": len(served), **figures, "peak_gib": peak_gib}


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the API ended before it answered (exit {process.returncode})")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    sys.exit("the API did not answer within 300 s")


def run_size(size: int, shared: pd.DataFrame, cache: Path, fresh: bool) -> dict[str, Figures]:
    """Every stage at ``size`` tickers: measured now, or read from an earlier run.

    A stage cut short leaves its home part-done (models registered, rows stored), which would
    make a rerun of it look cheap: the size then starts again from its price file.
    """
    folder = cache / str(size)
    prices_file, daily_file = folder / "prices.parquet", folder / "daily.parquet"
    cut_short = [s for s in STAGES if (folder / f"{s}.started").exists()]
    if folder.exists() and (fresh or cut_short or not daily_file.exists()):
        if cut_short and not fresh:
            print(f"{size:>6} {cut_short[0]} was cut short: this size starts again")
        for path in folder.iterdir():
            if path.name not in {"prices.parquet", "daily.parquet"}:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if not daily_file.exists():  # also a cache from before the daily sessions were split off
        history, daily = split_sessions(prices_of(size, shared))
        _atomic(prices_file, history.to_parquet)
        _atomic(daily_file, daily.to_parquet)
    prices = pd.read_parquet(prices_file, columns=["ticker", "date"])
    sessions = np.sort(pd.read_parquet(daily_file, columns=["date"])["date"].unique())
    tickers = sorted(prices["ticker"].unique())
    day_before, as_of = (str(pd.Timestamp(d).date()) for d in sessions[-2:])
    # The benchmark's own home only: no developer's database, registry or API key, no .env.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOLFORECAST_", "MLFLOW_"))}
    env |= {"VOLFORECAST_HOME": str(folder / "home"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    cli = {
        "ingest": ["ingest", "--file", str(prices_file)],
        "train": ["train", "--all"],
        "predict": ["predict", "--all", "--as-of", as_of],
        "monitor": ["monitor", "run", "--all", "--as-of", as_of],
    }

    def run(stage: str) -> Figures:
        if stage == "api":
            return api_figures(env, folder, tickers)
        if stage == "predict":  # the sessions since the training, and the day before's forecasts
            for name, args in (
                ("daily-ingest", ["ingest", "--file", str(daily_file)]),
                ("day-before", ["predict", "--all", "--as-of", day_before]),
            ):
                measured([sys.executable, "-m", "volforecast", *args], env, folder, name)
        command = [sys.executable, "-m", "volforecast", *cli[stage]]
        return measured(command, env, folder, stage)

    figures: dict[str, Figures] = {}
    for stage in STAGES:
        kept = folder / f"{stage}.json"
        if kept.exists():
            figures[stage] = json.loads(kept.read_text())
            print(f"{size:>6} {stage:<8} read from {kept}")
            continue
        print(f"{size:>6} {stage:<8} running ...", flush=True)
        (folder / f"{stage}.started").touch()
        figures[stage] = {**run(stage), "rows": len(prices), "tickers": len(tickers)}
        _atomic(kept, lambda tmp, f=figures[stage]: tmp.write_text(json.dumps(f, indent=2)))
        (folder / f"{stage}.started").unlink()
    return figures


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary file: a kill leaves the old file or none."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def report(results: dict[int, dict[str, Figures]]) -> None:
    """Each stage's seconds and memory per size, and its growth against the ticker count."""
    sizes = sorted(results)
    print(f"\n{'stage':<10}" + "".join(f"{s:>14,} tickers" for s in sizes))
    for stage in ("ingest", "train", "predict", "monitor"):
        cells = [f"{results[s][stage]['seconds']:>12.1f} s {results[s][stage]['peak_gib']:5.2f} G"
                 for s in sizes]  # fmt: skip
        print(f"{stage:<10}" + "".join(cells))
    print(f"{'api p99':<10}" + "".join(f"{results[s]['api']['p99_ms']:>19.1f} ms" for s in sizes))
    print(f"{'api req/s':<10}" + "".join(f"{results[s]['api']['rps']:>22.0f}" for s in sizes))
    print(f"{'api first':<10}" + "".join(
        f"{results[s]['api']['first_requests_s']:>20.1f} s" for s in sizes))  # fmt: skip
    if len(sizes) < 2:
        return
    print("\ngrowth from the smallest size over the tickers' growth (at most 1: linear)")
    small, large = sizes[0], sizes[-1]
    ratio = large / small
    for stage in ("ingest", "train", "predict", "monitor"):
        grown = results[large][stage]["seconds"] / results[small][stage]["seconds"]
        print(f"  {stage:<10} x{grown:5.1f} for x{ratio:.0f} tickers: {grown / ratio:.2f}")
    peak = max(results[large][stage]["peak_gib"] for stage in STAGES)
    print(f"\npeak memory at {large:,} tickers: {peak:.2f} GiB (target under 6 GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,400,1600", help="ticker counts, comma-separated")
    parser.add_argument("--cache", type=Path, default=BENCHMARKS / ".cache" / "scale")
    parser.add_argument("--fresh", action="store_true", help="measure every stage again")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    shared = load_file(SHARED_FILE).frame
    results = {}
    for size in sorted(int(s) for s in args.sizes.split(",")):
        results[size] = run_size(size, shared, args.cache.resolve(), args.fresh)
    report(results)


if __name__ == "__main__":
    main_with_page(main, "Cost as the work grows")
