"""Daily prices from the configured source: `ml_ingest_prices`.

Every weekday at 22:30 UTC, after the NYSE's close (21:00 UTC in winter, 20:00 in summer):
`volforecast ingest --configured` loads the day's prices from the configured source
(`VOLFORECAST_INGEST__SOURCE`): by default the CSV or Parquet files waiting in the drop
folder (`VOLFORECAST_INGEST__DROP_DIR`, `VOLFORECAST_HOME/incoming` by default), each moved to
`loaded/` or `failed/` once done, so a rerun loads only what arrived since and a bad file is
reported without stopping the others; or Yahoo Finance where it is installed and chosen.

The task updates the asset `volforecast://market/stock_prices`, with the run's date and the
last stored close in the event's extra: `ml_predict_volatility` is scheduled on that asset,
so it starts when prices have been loaded, and it judges their freshness for the same date.
A run in which every file failed (or the source gave nothing) fails without a retry, and
updates nothing; a day with no file at all succeeds, and the prediction DAG's freshness stop
then says which close is the last.
"""

from __future__ import annotations

import logging
from typing import Any

from _volforecast import STOCK_PRICES, dag_args, run
from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(
    dag_id="ml_ingest_prices",
    schedule="30 22 * * 1-5",
    **dag_args(__doc__, "ingestion", retries=2, delay=5, max_delay=30),
)
def ml_ingest_prices() -> None:
    """Load the day's prices from the configured source; update the stock_prices asset."""

    @task(outlets=[STOCK_PRICES])
    def load_prices() -> dict[str, Any]:
        """Load from the drop folder or Yahoo; report each file and the prices' freshness."""
        context = get_current_context()
        as_of = context["logical_date"].date().isoformat()
        # Exit code 1: every file failed and was moved to failed/; a retry would find none and
        # succeed, hiding the failure. Fix the files, drop them again and clear the task.
        report = run("ingest", "--configured", "--as-of", as_of, final=frozenset({1}))
        for file in report["files"]:
            log.info("%s %s: %s", file["status"], file["name"], file["message"])
        for failure in report["failures"]:
            log.warning("not loaded: %s", failure)
        freshness = report["freshness"]
        (log.info if freshness["fresh"] else log.warning)("%s", freshness["message"])
        # The consumer reads the run's date from the event: asset-triggered runs have none.
        context["outlet_events"][STOCK_PRICES].extra = {
            "as_of": as_of, "last_close": freshness["last_close"]
        }  # fmt: skip
        return {"as_of": as_of, "status": report["status"], "inserted": report["inserted"],
                "updated": report["updated"], "files": len(report["files"]),
                "last_close": freshness["last_close"], "fresh": freshness["fresh"]}  # fmt: skip

    load_prices()


ml_ingest_prices()
