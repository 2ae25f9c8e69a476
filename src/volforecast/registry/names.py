"""How volforecast names things in MLflow: experiments, registered models, aliases.

Registered models follow the specification: ``garch_volatility_aapl`` is the GARCH of AAPL.
The pooled LSTM is one network for every ticker, so it is one registered model,
``lstm_volatility_pooled``, whose versions serve every ticker they were trained on (a tag
lists them). Tickers are lower-cased and characters outside ``[a-z0-9]`` become ``_``
(``^GSPC`` is ``gspc``, ``BRK.B`` is ``brk_b``); the exact ticker is kept in a tag. The
logged model of a run is named the same way without ``volatility``: ``garch_aapl``,
``lstm_pooled``.
"""

from __future__ import annotations

import functools
import re
from typing import Final, Literal

Alias = Literal["production", "challenger"]
"""The registry aliases volforecast moves (MLflow's aliases of a registered model)."""
PRODUCTION: Final = "production"
CHALLENGER: Final = "challenger"
CHAMPION: Final = "champion"
"""Not an MLflow alias: the promotion log's name for a ticker's champion family changing."""
LoggedAlias = Literal["production", "challenger", "champion"]
"""What an entry of the promotion log moved."""

POOLED: Final = "pooled"

HEADLINE_METRIC: Final = "qlike_h1_range"
"""The figure shown per run in reports and ``volforecast models list`` (tag ``metric.…``)."""

EXPERIMENT_PREFIX: Final = "volforecast-"

# Tags volforecast writes on registered models and versions.
TAG_TICKER: Final = "volforecast.ticker"
TAG_TICKERS: Final = "volforecast.tickers"
TAG_MODEL_TYPE: Final = "volforecast.model_type"
TAG_CONVERGED: Final = "volforecast.converged"
TAG_DATA_HASH: Final = "volforecast.data_hash"
TAG_DATA_END: Final = "volforecast.data_end"
TAG_FINGERPRINT: Final = "volforecast.fingerprint"
"""Model, options, version and input-price hash: equal fingerprints mean an equal training."""
TAG_JOB: Final = "volforecast.job"
"""The token of the training job that logged a run or registered a version (its lease)."""
TAG_DECISION: Final = "volforecast.decision"
"""Where a version stands: ``pending`` from its registration until the promotion decision,
then ``promoted``, ``not_promoted``, ``live`` (it won and waits for live evidence, see
``PromotionSettings.min_live_days``) or ``abandoned`` (its run was killed before deciding)."""
TAG_LIVE_SINCE: Final = "volforecast.live_since"
"""The last close a waiting challenger was trained on: its live days are the forecast origins
from that close on (ISO date)."""
PENDING: Final = "pending"
LIVE: Final = "live"
PROMOTED: Final = "promoted"
NOT_PROMOTED: Final = "not_promoted"
ABANDONED: Final = "abandoned"


def ticker_slug(ticker: str) -> str:
    """``^GSPC`` -> ``gspc``: a ticker as it appears in registered model names."""
    slug = re.sub(r"[^a-z0-9]+", "_", ticker.strip().lower()).strip("_")
    if not slug:
        msg = f"ticker {ticker!r} has no letters or digits to name a model by"
        raise ValueError(msg)
    return slug


@functools.lru_cache(maxsize=65_536)  # asked on every request the service answers
def registered_model_name(model_type: str, ticker: str | None) -> str:
    """``garch_volatility_aapl``; ``lstm_volatility_pooled`` for a pooled family."""
    from volforecast.models.catalog import is_pooled  # noqa: PLC0415  (the catalog says)

    family = re.sub(r"[^a-z0-9]+", "_", model_type.strip().lower()).strip("_")
    if is_pooled(model_type) or ticker is None:
        return f"{family}_volatility_{POOLED}"
    return f"{family}_volatility_{ticker_slug(ticker)}"


def logged_model_name(model_type: str, ticker: str | None) -> str:
    """``garch_aapl``, ``brk_b`` for ``BRK.B``; ``lstm_pooled`` for a pooled family.

    What MLflow shows for the logged model of a run (MLflow 3 names logged models).
    """
    return registered_model_name(model_type, ticker).replace("_volatility_", "_", 1)


def experiment_name(model_type: str) -> str:
    """One experiment per model family: ``volforecast-garch``."""
    return EXPERIMENT_PREFIX + model_type.strip().lower()
