"""``/docs`` and ``/redoc`` load nothing from another host, and the schema explains its fields.

The app is not started (no lifespan): the pages, their assets and the OpenAPI document need
neither the database nor the registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from volforecast.api.app import create_app

# What a page loads: <script src>, <link href>, Swagger UI's `url: '...'`, ReDoc's spec-url.
REFERENCE = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|\burl: ?["']([^"']+)["']""")
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """The app, not started: the documentation must not depend on the service's state."""
    return TestClient(create_app(make_settings(home=tmp_path / "var")))


def _references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


@pytest.mark.parametrize(
    ("page", "library", "marker"),
    [
        ("/docs", "swagger-ui-bundle.js", "SwaggerUIBundle"),
        ("/redoc", "redoc.standalone.js", "Redoc"),
    ],
)
def test_a_docs_page_loads_only_the_apps_own_assets(
    client: TestClient, page: str, library: str, marker: str
) -> None:
    # Given the page, when every URL it references is fetched from the app itself,
    answer = client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert not re.search(r"(?:https?:)?//", html), f"{page} names another host:\n{html}"
    references = _references(html)
    assert "/openapi.json" in references
    assert any(r.endswith(library) for r in references), references
    for url in references:
        assert url.startswith("/"), f"{page} loads {url!r}, not a path of the app"
        # then each answers 200 with what the page expects of it.
        fetched = client.get(url)
        assert fetched.status_code == 200, f"{url}: {fetched.status_code}"
        suffix = Path(url).suffix
        expected = ASSET_TYPES.get(suffix, "application/json")
        assert expected in fetched.headers["content-type"], (url, fetched.headers)
        if url.endswith(library):
            assert marker in fetched.text, f"{url} is not {library}"
        if suffix == ".css":
            assert ".swagger-ui" in fetched.text


def test_behind_a_proxy_the_pages_load_under_its_prefix(tmp_path: Path) -> None:
    app = create_app(make_settings(home=tmp_path / "var"))
    with_prefix = TestClient(app, root_path="/vol")
    for page in ("/docs", "/redoc"):
        references = _references(with_prefix.get(page).text)
        assert references, page
        assert all(r.startswith("/vol/") for r in references), references


def test_a_missing_asset_is_a_problem_404(client: TestClient) -> None:
    answer = client.get("/docs-assets/nope.js")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_root_links_both_docs_pages(client: TestClient) -> None:
    links = client.get("/").json()["links"]
    assert client.get(links["docs"]).status_code == 200
    assert client.get(links["redoc"]).status_code == 200


def _properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, component in schema["components"]["schemas"].items():
        for field, spec in component.get("properties", {}).items():
            yield f"{name}.{field}", spec


def test_every_schema_property_has_a_description(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    properties = dict(_properties(schema))
    assert len(properties) > 40, "the schema lost its components"
    missing = [name for name, spec in properties.items() if not spec.get("description")]
    assert not missing, f"no description: {missing}"


@pytest.mark.parametrize(
    ("field", "unit"),
    [
        ("PredictRequest.horizon", "trading days"),
        ("PredictResponse.horizon", "trading days"),
        ("PredictResponse.forecasts", "daily volatility in percent"),
        ("PredictResponse.forecast_dates", "nyse session"),
        ("PredictResponse.origin_date", "nyse session"),
        ("PredictResponse.timestamp", "utc"),
        ("PredictionRecord.predicted_volatility", "daily volatility in percent"),
        ("PredictionRecord.step", "trading days"),
        ("PredictionRecord.forecast_date", "nyse session"),
        ("PredictionRecord.prediction_timestamp", "utc"),
        ("ModelInfo.metrics", "percent"),
        ("ModelInfo.created_at", "utc"),
    ],
)
def test_quantities_say_their_unit(client: TestClient, field: str, unit: str) -> None:
    properties = dict(_properties(client.get("/openapi.json").json()))
    assert unit in properties[field]["description"].lower(), properties[field]
