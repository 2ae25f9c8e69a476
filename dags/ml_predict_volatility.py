"""Daily forecasts from every production model: `ml_predict_volatility`.

Runs when `ml_ingest_prices` has loaded prices (it waits on the asset
`volforecast://market/stock_prices`), for the date of that load; a run with a logical date
(a manual or backfill run) is for its logical date. First the freshness stop: when the last
stored close is older than that date's NYSE session, the task fails, not retried, with a
sentence naming the last close (`volforecast predict` exit code 5); forecasts made from old
prices would look like today's. Then forecast the next 30 trading days with every production
model for every ticker it serves, from the close of that session, and store the paths in
`ml.volatility_predictions` (an upsert keyed by ticker, model, origin, step and version: a
rerun or a backfill of the same date writes the same rows and adds none); then log the
statistics. A backfill produces the forecasts that would have been made on those days, with
today's production parameters (`volforecast predict --from DATE --to DATE` does many days
in one process).

A challenger waiting for live evidence (`VOLFORECAST_PROMOTION__MIN_LIVE_DAYS` above 0)
forecasts beside production, stored under its own version. `volforecast models live` then
judges both versions' stored forecasts on the same days and, once it has that many live
days, promotes the challenger if it beat production by the training rule and rejects it
otherwise (logged like every move; a rerun of the date decides nothing twice).

Then monitor: `volforecast monitor run` judges the stored forecasts against realized
volatility and runs the drift detectors on every production model. Tickers it queues for
retraining (a drift alert, or an RMSE above the threshold) start a run of
`ml_train_volatility_models` for them alone, per-ticker models only: the pooled LSTM, which
serves every ticker, waits for the weekly run.
"""

from __future__ import annotations

import logging
from typing import Any

from _volforecast import STOCK_PRICES, dag_args, run, run_date
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(
    dag_id="ml_predict_volatility",
    schedule=[STOCK_PRICES],
    **dag_args(__doc__, "predictions", retries=3, delay=1, max_delay=10),
    params={"horizon": Param(30, type="integer", minimum=1, maximum=30)},
    # The retraining trigger passes the queued tickers on as a list, not as its text.
    render_template_as_native_obj=True,
)
def ml_predict_volatility() -> None:
    """Generate and store every production model's forecasts, then log their statistics."""

    @task
    def generate_and_store_predictions() -> dict[str, Any]:
        """Stop on stale prices; else forecast from the run date's close and upsert."""
        context = get_current_context()
        as_of = run_date(context)
        horizon = str(context["params"]["horizon"])
        report = run("predict", "--all", "--horizon", horizon, "--as-of", as_of)
        return {"as_of": as_of, **report}

    @task
    def log_prediction_statistics(report: dict[str, Any]) -> dict[str, Any]:
        """Log paths and rows stored, failures, and each model's mean 1-day volatility."""
        log.info("as of %s: %d paths, %d rows, %d risk rows", report["as_of"], report["paths"],
                 report["rows"], report.get("risk_rows", 0))  # fmt: skip
        for model, figures in sorted(report["summary"].items()):
            log.info("%s: %.0f tickers, mean 1-day volatility %.2f %% (%.2f-%.2f)", model,
                     figures["count"], figures["mean_vol_pct"], figures["min_vol_pct"],
                     figures["max_vol_pct"])  # fmt: skip
        for failure in report["failures"]:
            log.warning("failed: %s %s: %s", failure["ticker"], failure["model_type"],
                        failure["message"])  # fmt: skip
        return {"as_of": report["as_of"], "paths": report["paths"],
                "failed": len(report["failures"])}  # fmt: skip

    @task
    def monitor_models(predictions: dict[str, Any]) -> dict[str, Any]:
        """Accuracy against realized volatility, drift detectors, and the retraining queue."""
        report = run("monitor", "run", "--all", "--as-of", predictions["as_of"])
        latest = sorted(report["alerts"], key=lambda a: a["observed_on"])[-20:]
        for alert in latest:
            log.warning("alert: %s %s %s on %s: %.3g (fires from %.3g)", alert["ticker"],
                        alert["model_type"], alert["detector"], alert["observed_on"],
                        alert["statistic"], alert["threshold"])  # fmt: skip
        log.info("%d models checked, %d checks firing, queued for retraining: %s",
                 report["checked"], len(report["fired_today"]),
                 ", ".join(report["queued"]) or "none")  # fmt: skip
        # A summary for XCom: every alert since training would be large with many tickers.
        return {"as_of": predictions["as_of"], "checked": report["checked"],
                "alerts": len(report["alerts"]), "firing": len(report["fired_today"]),
                "queued": report["queued"], "failures": len(report["failures"])}  # fmt: skip

    @task
    def promote_live_challengers(predictions: dict[str, Any]) -> dict[str, Any]:
        """Promote or reject each waiting challenger whose live days are up."""
        report = run("models", "live", "--as-of", predictions["as_of"])
        for outcome in report["outcomes"]:
            log.info("%s v%s: %s", outcome["registered_model"], outcome["version"],
                     outcome["record"]["reason"])  # fmt: skip
        return {"as_of": predictions["as_of"], "waiting": report["waiting"],
                "promoted": report["promoted"], "rejected": report["rejected"]}  # fmt: skip

    @task.short_circuit
    def tickers_to_retrain(report: dict[str, Any]) -> list[str]:
        """The tickers queued by this run; with none, the trigger is skipped."""
        return list(report["queued"])

    predictions = generate_and_store_predictions()
    log_prediction_statistics(predictions)
    promote_live_challengers(predictions)
    retrain = tickers_to_retrain(monitor_models(predictions))
    retrain >> TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="ml_train_volatility_models",
        conf={"tickers": "{{ ti.xcom_pull(task_ids='tickers_to_retrain') }}", "lstm": False},
    )


ml_predict_volatility()
