"""Model types by any spelling (the prediction writer is tested in test_writer.py)."""

from __future__ import annotations

import pytest

from volforecast.errors import UnknownModelTypeError
from volforecast.jobs.predict import model_key


@pytest.mark.parametrize(("given", "key"), [("GARCH", "garch"), (" lstm ", "lstm"),
                                            ("GJR-GARCH-T", "gjr-garch-t")])  # fmt: skip
def test_model_types_are_case_insensitive(given: str, key: str) -> None:
    assert model_key(given) == key


def test_an_unknown_model_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelTypeError, match="choose from garch"):
        model_key("prophet")
