"""Models by name: what ``--models garch,har,…`` and the stored ``model_type`` refer to.

Each model is one :class:`ModelSpec` in :data:`CATALOG`, the only place that says what the
name means: the class and options it is built with, whether it is pooled (one fitted network
serves every ticker, registered once) or per-ticker (one independent fit per ticker), and so
its registered name. ``garch`` is GARCH(1,1) with normal errors (the specification's
default), ``gjr-garch-t`` a GJR-GARCH with Student-t errors, and so on. Names joined by ``+``
(``har+lstm``) are an equal-weight combination of those models' forecasts
(:func:`volforecast.models.ensemble.equal_weight`), which the backtest builds from its
members' paths; a combination the catalog names (``har+lstm``) is also a registered model,
built by training from its members' registered versions
(:class:`~volforecast.models.combination.CombinationModel`). Adding a model is one module
and one entry here (see the docs' "How to add a model").
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from volforecast.errors import ConfigurationError
from volforecast.models.base import VolatilityModel

Family = Literal["garch", "baseline", "ensemble", "lstm"]


@dataclass(frozen=True)
class ModelSpec:
    """What one catalog name builds."""

    name: str
    """The lower-case name users type and the registry is named by."""
    family: str
    """What kind of model it is (its page in the docs' Models section)."""
    model_class: str
    """``module:Class`` of the :class:`VolatilityModel`; imported only when built, so that
    listing the catalog never imports torch."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the class."""
    pooled: bool = False
    """One fit on every ticker (its class implements ``fit_panel``), registered as
    ``<name>_volatility_pooled``; otherwise one registered model per ticker."""
    candidate: bool = False
    """Trained by default and in the running for each ticker's champion, the family that
    serves a request naming no model (:mod:`volforecast.registry.champion`)."""

    @cached_property
    def model_kind(self) -> type[VolatilityModel]:
        """The class, imported on first use."""
        module, _, attribute = self.model_class.partition(":")
        kind = getattr(importlib.import_module(module), attribute)
        if not (isinstance(kind, type) and issubclass(kind, VolatilityModel)):
            msg = f"{self.name}: {self.model_class} is not a VolatilityModel"
            raise ConfigurationError(msg)
        return kind

    def build(self, **settings: Any) -> VolatilityModel:
        """A fresh, unfitted model; ``settings`` override the catalog's options."""
        return self.model_kind(**{**self.options, **settings})


def _spec(name: str, family: Family, model_class: str, **options: Any) -> ModelSpec:
    pooled, candidate = bool(options.pop("pooled", False)), bool(options.pop("candidate", False))
    return ModelSpec(name, family, model_class, MappingProxyType(options), pooled, candidate)


_GARCH = "volforecast.models.garch:GarchModel"
_BASE = "volforecast.models.baselines:"
_LSTM = "volforecast.models.lstm.model:LstmModel"
_COMBINATION = "volforecast.models.combination:CombinationModel"
_HAR = {"seasonal": True, "market": True, "split": True, "seasonal_variance": True}
CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec("garch", "garch", _GARCH, vol="GARCH", dist="normal", candidate=True),
        _spec("garch-t", "garch", _GARCH, vol="GARCH", dist="t"),
        _spec("garch-skewt", "garch", _GARCH, vol="GARCH", dist="skewt"),
        _spec("gjr-garch", "garch", _GARCH, vol="GJR", dist="normal"),
        _spec("gjr-garch-t", "garch", _GARCH, vol="GJR", dist="t", candidate=True),
        _spec("gjr-garch-skewt", "garch", _GARCH, vol="GJR", dist="skewt"),
        _spec("egarch", "garch", _GARCH, vol="EGARCH", dist="normal"),
        _spec("egarch-t", "garch", _GARCH, vol="EGARCH", dist="t"),
        _spec("ewma", "baseline", _BASE + "EwmaModel"),
        _spec("historical", "baseline", _BASE + "HistoricalModel"),
        _spec("har", "baseline", _BASE + "HarModel", **_HAR, half_life_days=1000.0, candidate=True),
        _spec("ensemble", "ensemble", "volforecast.models.ensemble:EnsembleModel"),
        _spec("lstm", "lstm", _LSTM, pooled=True, candidate=True),
        _spec("har+lstm", "ensemble", _COMBINATION, members=("har", "lstm"), candidate=True),
        # Weights chosen on the validation period (docs/results/combination-search.md): the
        # smallest worst shortfall from issue 24's targets among the blends tried.
        _spec(
            "har+lstm+gjr-garch-t",
            "ensemble",
            _COMBINATION,
            members=("har", "lstm", "gjr-garch-t"),
            weights=(0.6, 0.1, 0.3),
            candidate=True,
        ),
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(CATALOG)
DEFAULT_MODEL = "garch"
"""The specification's model: what answers a ticker that has no champion yet."""
CANDIDATES: tuple[str, ...] = tuple(name for name, spec in CATALOG.items() if spec.candidate)
"""The families trained by default and judged for each ticker's champion, in catalog order."""


def spec_of(name: str) -> ModelSpec:
    """The catalog entry of ``name`` (case-insensitive); ``ConfigurationError`` if unknown."""
    spec = CATALOG.get(name.strip().lower())
    if spec is None:
        msg = f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}"
        raise ConfigurationError(msg)
    return spec


def build_model(name: str) -> VolatilityModel:
    """A fresh, unfitted model of the given name (case-insensitive)."""
    return spec_of(name).build()


def is_pooled(name: str) -> bool:
    """Whether ``name`` (a catalog name, any case) is one fit for every ticker."""
    spec = CATALOG.get(name.strip().lower())
    return spec is not None and spec.pooled


def model_class_of_kind(kind: str) -> type[VolatilityModel]:
    """The class a saved model's ``kind`` names; ``ValueError`` for a kind no entry builds.

    The catalog's modules are imported in order until one defines it (the LSTM's, which
    imports torch, comes last).
    """
    for spec in CATALOG.values():
        if spec.model_kind.kind == kind:
            return spec.model_kind
    msg = f"unknown model kind {kind!r}: no catalog entry builds it"
    raise ValueError(msg)


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


def registered_members(name: str) -> tuple[str, ...]:
    """The members of a catalog combination trained from registered members; ``()`` otherwise."""
    spec = CATALOG.get(name.strip().lower())
    if spec is None or spec.model_class != _COMBINATION:
        return ()
    return tuple(spec.options["members"])


def member_weights(name: str) -> tuple[float, ...] | None:
    """The fixed weights of a catalog combination's members, in their order; None: equal.

    An ``a+b`` that is not a catalog entry averages its members equally.
    """
    spec = CATALOG.get(name.strip().lower())
    if spec is None or spec.model_class != _COMBINATION or "weights" not in spec.options:
        return None
    return tuple(float(w) for w in spec.options["weights"])


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
        spec_of(member)
    return members
