"""A training's fingerprint: what makes a retrain on the same prices a no-op."""

from __future__ import annotations

import pytest

from volforecast.models import catalog
from volforecast.models.catalog import ModelSpec, catalog_options
from volforecast.registry.fingerprint import fingerprint


def _prints(*names: str) -> dict[str, str]:
    return {name: fingerprint(name, catalog_options(name), "same prices") for name in names}


def test_a_model_the_catalog_builds_differently_trains_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _prints("har", "ensemble", "garch")
    assert before == _prints("har", "ensemble", "garch")
    # HAR as it was before the seasonal log-normal correction.
    monkeypatch.setitem(
        catalog.CATALOG,
        "har",
        ModelSpec(
            "har",
            "baseline",
            "volforecast.models.baselines:HarModel",
            {"seasonal": True, "market": True, "split": True},
        ),
    )
    after = _prints("har", "ensemble", "garch")
    assert after["har"] != before["har"]
    assert after["ensemble"] != before["ensemble"], "the ensemble has HAR in it"
    assert after["garch"] == before["garch"]
