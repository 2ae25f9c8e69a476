"""Repositories: typed reads and idempotent writes of volforecast's tables, one module each.

* :mod:`.prices`: ``market.stock_prices``, merged through a staging table (``COPY`` on PG);
* :mod:`.market`: the market series ``market.market_variance`` and its refresh mark;
* :mod:`.metrics`: ``ml.model_metrics``; :mod:`.predictions`: ``ml.volatility_predictions``;
* :mod:`.monitoring`: forecast accuracy, drift checks and the retraining queue.

Writes upsert on each table's key (:mod:`volforecast.data.upsert`), so a job run again
leaves one row per key. The promotion log is :mod:`volforecast.registry.promotion_log`.
"""
