"""Models by name: what ``--models garch,har,…`` and the stored ``model_type`` refer to.

A name is the lower-case ``model_type``: ``garch`` is GARCH(1,1) with normal errors (the
specification's default), ``gjr-garch-t`` a GJR-GARCH with Student-t errors, and so on.
Names joined by ``+`` (``har+lstm``) are an equal-weight combination of those models'
forecasts (:func:`volforecast.models.ensemble.equal_weight`), which the backtest builds from
its members' paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from volforecast.errors import ConfigurationError
from volforecast.models.base import VolatilityModel
from volforecast.models.baselines import EwmaModel, HarModel, HistoricalModel
from volforecast.models.garch import GarchModel

_FACTORIES: dict[str, Callable[[], VolatilityModel]] = {
    "garch": lambda: GarchModel("GARCH", "normal"),
    "garch-t": lambda: GarchModel("GARCH", "t"),
    "garch-skewt": lambda: GarchModel("GARCH", "skewt"),
    "gjr-garch": lambda: GarchModel("GJR", "normal"),
    "gjr-garch-t": lambda: GarchModel("GJR", "t"),
    "gjr-garch-skewt": lambda: GarchModel("GJR", "skewt"),
    "egarch": lambda: GarchModel("EGARCH", "normal"),
    "egarch-t": lambda: GarchModel("EGARCH", "t"),
    "ewma": EwmaModel,
    "historical": HistoricalModel,
    "har": lambda: HarModel(
        seasonal=True, market=True, split=True, seasonal_variance=True, half_life_days=1000.0
    ),
}


def _ensemble() -> VolatilityModel:
    from volforecast.models.ensemble import EnsembleModel  # noqa: PLC0415  (it builds from here)

    return EnsembleModel()


def _lstm() -> VolatilityModel:
    from volforecast.models.lstm import LstmModel  # noqa: PLC0415  (imports torch: ~1 s)

    return LstmModel()


_FACTORIES |= {"ensemble": _ensemble, "lstm": _lstm}
MODEL_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def build_model(name: str) -> VolatilityModel:
    """A fresh, unfitted model of the given name (case-insensitive)."""
    key = name.strip().lower()
    factory = _FACTORIES.get(key)
    if factory is None:
        msg = f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}"
        raise ConfigurationError(msg)
    return factory()


def catalog_options(name: str) -> dict[str, Any]:
    """The options ``name`` is built with now, those of an ensemble's members included.

    Training fingerprints them, so that a model whose terms or defaults changed is trained
    again on prices that did not.
    """
    options = build_model(name).options
    members = options.get("members", ())
    if not members:
        return options
    return options | {"member_options": {m: catalog_options(m) for m in members}}


def combination_members(name: str) -> tuple[str, ...]:
    """The models an equal-weight combination ``a+b[+c…]`` averages; ``()`` for a plain name.

    Raises ``ConfigurationError`` for an unknown member, a repeated one or a lone ``+``.
    """
    if "+" not in name:
        return ()
    members = tuple(part.strip().lower() for part in name.split("+"))
    if len(set(members)) != len(members) or len(members) < 2 or "" in members:
        msg = f"a combination names two or more different models, got {name!r}"
        raise ConfigurationError(msg)
    for member in members:
        build_model(member)
    return members
