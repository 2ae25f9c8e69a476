"""Weekly training of every volatility model: `ml_train_volatility_models`.

Every Monday at 02:00 UTC: check the stored prices, fit the per-ticker candidate families
(GARCH(1,1) and HAR) for every ticker (mapped over chunks of tickers, one task per chunk),
train the pooled LSTM on every ticker, build each ticker's HAR+LSTM combination from the
versions just trained (chunks again), decide each ticker's champion among them, then compare
the families. Each training task is `volforecast train`: it evaluates every model
on its test window, logs the run to MLflow, registers the version, stores its metrics in
`ml.model_metrics` and promotes it only if it beats production. So a chunk that fails loses
nothing the others did, and a rerun of the same week trains nothing whose prices did not
change.

Params: `tickers` (default: every stored ticker that passes the quality gate),
`chunk_size` (tickers per per-ticker task), `lstm_epochs` (most epochs of the pooled LSTM; by
default `volforecast train`'s, like every other LSTM setting),
`lstm` (false skips the pooled LSTM, and so the combinations that pin it: the daily DAG's
retraining of the tickers the monitor queued does so). Training a ticker answers its
pending request in `ml.retrain_requests`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from _volforecast import chunks, dag_args, run, summarize
from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

log = logging.getLogger(__name__)

# Where the pooled LSTM runs: with the CeleryExecutor, a worker started with `-q gpu` on a
# GPU machine takes VOLFORECAST_LSTM_QUEUE=gpu; a pool of one slot keeps two LSTM trainings
# from sharing the GPU.
LSTM_QUEUE = os.environ.get("VOLFORECAST_LSTM_QUEUE", "default")
LSTM_POOL = os.environ.get("VOLFORECAST_LSTM_POOL", "default_pool")
# Chunks at once, each in one process (--workers 1): the chunks are the parallel work here, so
# two suit one 2-core machine; raise it with the Airflow workers' cores.
PER_TICKER = "garch,gjr-garch-t,har"  # the per-ticker candidate families (models.catalog)
COMBINATIONS = "har+lstm,har+lstm+gjr-garch-t"  # built from their members' versions
CHUNKS_AT_ONCE = int(os.environ.get("VOLFORECAST_CHUNKS_AT_ONCE", "2"))


def _lstm_executor_config() -> dict[str, Any]:
    """With the KubernetesExecutor, the LSTM's pod asks for a GPU (VOLFORECAST_LSTM_K8S_GPU=1)."""
    if os.environ.get("VOLFORECAST_LSTM_K8S_GPU") != "1":
        return {}
    from kubernetes.client import models as k8s  # noqa: PLC0415  (only on Kubernetes)

    gpu = k8s.V1ResourceRequirements(limits={"nvidia.com/gpu": "1"})
    container = k8s.V1Container(name="base", resources=gpu)
    return {"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[container]))}


def _tickers_to_train() -> list[str]:
    """The run's tickers, or every one with accepted prices; the asked-for ones kept anyway."""
    report = run("quality")
    accepted = sorted(t for t, q in report["tickers"].items() if q["accepted"] > 0)
    wanted = get_current_context()["params"]["tickers"]
    if not wanted:
        return accepted
    missing = sorted(set(wanted) - set(accepted))
    if missing:
        log.warning("asked for but without accepted prices: %s", ", ".join(missing))
    return list(wanted)


@dag(
    dag_id="ml_train_volatility_models",
    schedule="0 2 * * 1",
    **dag_args(__doc__, "training", retries=2, delay=2, max_delay=20),
    params={
        "tickers": Param(None, type=["null", "array"], description="Tickers; all by default."),
        "chunk_size": Param(50, type="integer", minimum=1, description="Tickers per task."),
        "lstm_epochs": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Most LSTM epochs; `volforecast train`'s default when empty.",
        ),
        "lstm": Param(True, type="boolean", description="Train the pooled LSTM too."),
    },
)
def ml_train_volatility_models() -> None:
    """Check data quality, train per ticker in chunks, train the pooled LSTM, pick champions."""

    @task
    def check_data_quality() -> list[str]:
        """Run the quality gate over stored prices; return the tickers to train."""
        return _tickers_to_train()

    @task
    def chunk_tickers(tickers: list[str]) -> list[list[str]]:
        """Split the tickers into chunks, the unit of parallel work."""
        return chunks(tickers, get_current_context()["params"]["chunk_size"])

    @task(max_active_tis_per_dag=CHUNKS_AT_ONCE)
    def train_per_ticker(chunk: list[str]) -> list[dict[str, Any]]:
        """Fit, evaluate, log, register and consider for promotion one chunk's models."""
        report = run("train", "--tickers", ",".join(chunk), "--models", PER_TICKER,
                     "--workers", "1", "--no-plots", "--no-champions")  # fmt: skip
        return report["outcomes"]

    @task(
        trigger_rule=TriggerRule.ALL_DONE,
        queue=LSTM_QUEUE,
        pool=LSTM_POOL,
        executor_config=_lstm_executor_config(),
    )
    def train_lstm(tickers: list[str]) -> list[dict[str, Any]]:
        """Train the pooled LSTM on every ticker at once (one network serves them all)."""
        params = get_current_context()["params"]
        if not params["lstm"]:
            log.info("the pooled LSTM is not retrained in this run (lstm=false)")
            return []
        # The CLI's defaults (LstmConfig's) are the DAG's: only an asked-for limit is passed.
        epochs = params["lstm_epochs"]
        limit = [] if epochs is None else ["--lstm-epochs", str(epochs)]
        report = run("train", "--tickers", ",".join(tickers), "--models", "lstm",
                     "--no-champions", *limit)  # fmt: skip
        return report["outcomes"]

    @task(trigger_rule=TriggerRule.ALL_DONE, max_active_tis_per_dag=CHUNKS_AT_ONCE)
    def train_combinations(chunk: list[str]) -> list[dict[str, Any]]:
        """Build, register and judge one chunk's combinations from its members' new versions."""
        if not get_current_context()["params"]["lstm"]:
            log.info("no combination either: the LSTM it pins was not retrained (lstm=false)")
            return []
        report = run("train", "--tickers", ",".join(chunk), "--models", COMBINATIONS,
                     "--workers", "1", "--no-plots", "--no-champions")  # fmt: skip
        return report["outcomes"]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def choose_champions(tickers: list[str]) -> dict[str, Any]:
        """Decide each ticker's champion among the candidate families' production versions."""
        report = run("models", "champion", "--tickers", ",".join(tickers))
        log.info("champions: %s", report.get("wins"))
        return report

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def compare_models(
        per_ticker: list[list[dict[str, Any]]],
        lstm: list[dict[str, Any]] | None,
        combined: list[list[dict[str, Any]]],
        champions: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Per family: trained, promoted, failed, median test QLIKE, champion of how many."""
        outcomes = [o for chunk in per_ticker or [] for o in chunk] + list(lstm or [])
        outcomes += [o for chunk in combined or [] for o in chunk]
        summary = summarize(outcomes) | {"champions": (champions or {}).get("wins", {})}
        log.info("comparison: %s", summary)
        return summary

    tickers = check_data_quality()
    chunked = chunk_tickers(tickers)
    per_ticker = train_per_ticker.expand(chunk=chunked)
    lstm = train_lstm(tickers)
    per_ticker >> lstm  # the specification's order: GARCH first, then the LSTM, even on failure
    combined = train_combinations.expand(chunk=chunked)
    lstm >> combined  # a combination pins the members trained before it
    champions = choose_champions(tickers)
    combined >> champions
    compare_models(per_ticker, lstm, combined, champions)


ml_train_volatility_models()
