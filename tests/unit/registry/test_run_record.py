"""What a training run logs: a few coefficients as MLflow parameters, all of them as JSON."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.factories import clean_prices
from volforecast.core.features import DailyData
from volforecast.models.catalog import build_model
from volforecast.registry.publish import MAX_PARAM_COLUMNS, run_record


def _record(model_name: str) -> tuple[dict[str, float], dict[str, object], dict[str, object]]:
    data = DailyData.from_prices(clean_prices("AAA", days=600), "AAA")
    model = build_model(model_name).fit(data)
    record = run_record(
        model, data, len(data), {"qlike_h1_range": 0.5}, make_settings(),
        input_hash="0" * 64, fingerprint="f",
    )  # fmt: skip
    return model.params, record.params, record.documents


@pytest.mark.parametrize("model_name", ["garch", "har"])
def test_every_coefficient_is_in_fitted_params_json(model_name: str) -> None:
    fitted, _params, documents = _record(model_name)

    assert documents["fitted_params.json"] == pytest.approx(fitted)


def test_a_model_with_few_coefficients_gets_a_parameter_column_for_each() -> None:
    fitted, params, _documents = _record("garch")

    assert len(fitted) <= MAX_PARAM_COLUMNS
    assert {f"param.{k}" for k in fitted} <= set(params)


def test_a_model_with_hundreds_of_coefficients_logs_only_its_options_as_parameters() -> None:
    fitted, params, _documents = _record("har")

    assert len(fitted) > MAX_PARAM_COLUMNS
    assert not [k for k in params if k.startswith("param.")]
    assert params["model.horizon"] == build_model("har").options["horizon"]
