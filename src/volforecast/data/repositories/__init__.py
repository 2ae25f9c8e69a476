"""Repositories: typed reads and idempotent writes of volforecast's tables, one module each.

* :mod:`.prices`: ``market.stock_prices``, merged through a staging table (``COPY`` on
  PostgreSQL) with counts of what each load wrote;
* :mod:`.market`: the market series ``market.market_variance`` and its refresh mark;
* :mod:`.metrics`: evaluation metrics, ``ml.model_metrics``;
* :mod:`.predictions`: forecast paths, ``ml.volatility_predictions``;
* :mod:`.monitoring`: accuracy, drift checks and the retraining queue.

Writes upsert on each table's natural key (:mod:`volforecast.data.upsert`), so a job run
again leaves one row per key. The promotion log is the registry's
(:mod:`volforecast.registry.promotion_log`).
"""
