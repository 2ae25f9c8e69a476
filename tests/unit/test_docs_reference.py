"""The documentation's generated reference pages cover every command, setting, route and column.

``docs/hooks.py`` writes them when the site is built; a command or setting added later must
appear there without anyone editing a page. Each check enumerates the code on its own, not
through the hook's own walk, so that a walk that skipped something would be caught.
"""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest
import typer.main
from pydantic import BaseModel

from tests.conftest import REPO
from volforecast.cli import app
from volforecast.core import schemas
from volforecast.data.tables import Base
from volforecast.settings import Settings


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def typer_commands(typer_app: typer.Typer, prefix: str = "volforecast") -> list[str]:
    """Every command's full name, from Typer's own registry rather than the click tree."""
    names = []
    for info in typer_app.registered_commands:
        assert info.callback is not None
        names.append(f"{prefix} {info.name or info.callback.__name__.replace('_', '-')}")
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        names.append(f"{prefix} {group.name}")
        names += typer_commands(group.typer_instance, f"{prefix} {group.name}")
    return names


def variables(model: type[BaseModel], prefix: str = "VOLFORECAST_") -> list[str]:
    names = []
    for field, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            names += variables(info.annotation, f"{prefix}{field.upper()}__")
        else:
            names.append(f"{prefix}{field.upper()}")
    return names


def test_the_cli_page_has_every_command_and_option(hooks: ModuleType) -> None:
    page = hooks.cli_markdown()
    names = typer_commands(app)
    assert "volforecast models promote" in names
    for name in names:
        assert f"## `{name}`" in page, f"{name} has no section"
        command = typer.main.get_command(app)
        for word in name.split()[1:]:
            command = command.commands[word]
        section = page.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            for flag in param.opts if param.param_type_name == "option" else []:
                assert f"`{flag}" in section, f"{name} {flag} is missing"


def test_the_configuration_page_has_every_setting(hooks: ModuleType) -> None:
    page = hooks.settings_markdown()
    names = variables(Settings)
    assert "VOLFORECAST_API__API_KEY" in names
    for name in names:
        assert f"| `{name}` |" in page, f"{name} is missing"


def test_a_documented_field_shows_its_docstring(hooks: ModuleType) -> None:
    row = next(line for line in hooks.settings_markdown().splitlines()
               if line.startswith("| `VOLFORECAST_MONITORING__QUIET_DAYS` |"))  # fmt: skip
    assert "`20`" in row
    assert "raises no new alert" in row


def test_the_api_page_has_every_route_and_schema(hooks: ModuleType) -> None:
    schema = hooks.openapi_schema()
    page = hooks.openapi_markdown(schema)
    assert "/predict" in schema["paths"]
    for path, methods in schema["paths"].items():
        for method in methods:
            assert f"### `{method.upper()} {path}`" in page, f"{method} {path} is missing"
    for name in schema["components"]["schemas"]:
        assert f"### {name}\n" in page, f"schema {name} is missing"


def test_the_data_contract_has_every_table_and_column(hooks: ModuleType) -> None:
    page = hooks.tables_markdown()
    for table in Base.metadata.sorted_tables:
        section = page.split(f"## `{table.fullname}`", 1)
        assert len(section) == 2, f"{table.fullname} is missing"
        body = section[1].split("\n## ", 1)[0]
        for column in table.columns:
            assert f"| `{column.name}` |" in body, f"{table.fullname}.{column.name} is missing"


def test_the_data_contract_has_every_frame_schema_and_column(hooks: ModuleType) -> None:
    page = hooks.frames_markdown()
    for model in (schemas.LossesSchema, schemas.PredictionsSchema, schemas.BacktestSchema):
        section = page.split(f"### `{model.__name__}`", 1)
        assert len(section) == 2, f"{model.__name__} is missing"
        body = section[1].split("\n### ", 1)[0]
        for column in model.to_schema().columns:
            assert f"| `{column}` |" in body, f"{model.__name__}.{column} is missing"


def test_every_marker_in_the_pages_has_a_generator(hooks: ModuleType) -> None:
    marker = re.compile(r"^<!-- generated: (\w+) -->$", re.MULTILINE)
    pages = (REPO / "docs").rglob("*.md")
    markers = {name for page in pages for name in marker.findall(page.read_text())}
    assert markers == set(hooks.GENERATORS)
    assert "<!-- generated:" not in hooks.on_page_markdown("a\n<!-- generated: tables -->\nb")
