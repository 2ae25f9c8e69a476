"""MkDocs hook: the reference pages, generated from the code at build time.

A page asks for a generated part with a marker line, ``<!-- generated: NAME -->``, where NAME
is ``cli`` (the Typer command tree), ``settings`` (the pydantic-settings fields and their
docstrings), ``openapi`` (the prediction service's OpenAPI schema, built without starting a
server), ``tables`` (the database tables and their columns) or ``frames`` (the pandera
schemas of the frames that cross packages). The functions that write the markdown are plain,
so ``tests/unit/test_docs_reference.py`` checks that each page covers every command, setting,
route and column.
"""

from __future__ import annotations

import ast
import inspect
import re
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer.main
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CheckConstraint, UniqueConstraint

MARKER = re.compile(r"^<!-- generated: (\w+) -->$", re.MULTILINE)
ENV_PREFIX = "VOLFORECAST_"


def rst(text: str) -> str:
    """Docstrings write code as reStructuredText does (two backticks); markdown takes one."""
    return re.sub(r"``(.+?)``", r"`\1`", re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text))


def cell(text: object) -> str:
    """One table cell: a single line, pipes escaped."""
    return rst(" ".join(str(text).split())).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


# -- the command line ---------------------------------------------------------------------


def cli_commands() -> Iterator[tuple[str, Any]]:
    """Every command of ``volforecast``, groups first, with its full name."""
    from volforecast.cli import app  # noqa: PLC0415 - the hook loads before the package

    # Typer ships its own copy of click, so commands are told apart by what they have.
    def walk(name: str, command: Any) -> Iterator[tuple[str, Any]]:
        yield name, command
        if hasattr(command, "commands"):
            for sub in command.commands.values():
                if sub.name is not None and not sub.hidden:
                    yield from walk(f"{name} {sub.name}", sub)

    yield from walk("volforecast", typer.main.get_command(app))


def _options(command: Any) -> list[list[str]]:
    """Each parameter as ``--help`` shows it: its flags and type, then its help and default."""
    context = command.context_class(command)
    records = [param.get_help_record(context) for param in command.params]
    return [[f"`{flags}`", text] for flags, text in filter(None, records)]


def cli_markdown() -> str:
    """A section per command: what it does, its usage and its options."""
    parts = []
    for name, command in cli_commands():
        usage = " ".join(command.collect_usage_pieces(command.context_class(command)))
        text = rst(inspect.cleandoc(command.help or ""))
        parts.append(f"## `{name}`\n\n{text}\n\n```text\n{name} {usage}\n```")
        options = _options(command)
        if options:
            parts.append(table(["option", "meaning"], options))
    return "\n\n".join(parts)


# -- configuration ------------------------------------------------------------------------


def attribute_docstrings(cls: type) -> dict[str, str]:
    """The docstrings written under each field of a class (``x: int = 1`` then a string)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(body, ast.ClassDef)  # noqa: S101 - getsource of a class gives one
    docs: dict[str, str] = {}
    for field, after in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = inspect.cleandoc(after.value.value)
    return docs


BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def _type(info: FieldInfo) -> str:
    annotation = info.annotation
    name = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    name = re.sub(r"\b[a-z_]+\.", "", name or str(annotation))
    bounds = [
        f"{sign} {getattr(m, key)}"
        for m in info.metadata
        for key, sign in BOUNDS.items()
        if getattr(m, key, None) is not None
    ]
    return ", ".join([name, *bounds])


def _default(info: FieldInfo) -> str:
    value = info.default
    if value is None or value == "":
        return "unset"
    return f"`{value.get_secret_value() if hasattr(value, 'get_secret_value') else value}`"


def settings_rows(
    model: type[BaseModel] | None = None, prefix: str = ENV_PREFIX
) -> Iterator[tuple[str, FieldInfo, str, type[BaseModel]]]:
    """Each leaf setting: its environment variable, field, docstring and class."""
    from volforecast.settings import Settings  # noqa: PLC0415

    model = model or Settings
    docs = attribute_docstrings(model)
    for name, info in model.model_fields.items():
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            yield from settings_rows(nested, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}", info, docs.get(name, ""), model


def settings_markdown() -> str:
    """A table per settings class, in the order the classes nest."""
    groups: dict[type[BaseModel], list[list[str]]] = {}
    for variable, info, doc, model in settings_rows():
        groups.setdefault(model, []).append([f"`{variable}`", _type(info), _default(info), doc])
    parts = []
    for model, rows in groups.items():
        intro = rst(inspect.cleandoc(model.__doc__ or ""))
        parts.append(f"## {model.__name__}\n\n{intro}\n\n")
        parts.append(table(["variable", "type", "default", "meaning"], rows))
    return "\n\n".join(parts)


# -- the prediction service ---------------------------------------------------------------


def openapi_schema() -> dict[str, Any]:
    """The service's OpenAPI schema, built from ``create_app`` without serving anything."""
    from volforecast.api.app import create_app  # noqa: PLC0415
    from volforecast.settings import ApiSettings, Settings  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as home:
        # An API key shows where one is asked for; nothing is read from the environment.
        settings = Settings(home=Path(home), api=ApiSettings(api_key="documented"), _env_file=None)
        return create_app(settings).openapi()


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    out = [f"### `{method.upper()} {path}`", op.get("summary", ""), rst(op.get("description", ""))]
    params = [
        [f"`{p['name']}`", p["in"], "yes" if p.get("required") else "",
         _schema_type(p.get("schema", {})), p.get("description", "")]
        for p in op.get("parameters", [])
    ]  # fmt: skip
    if params:
        out.append(table(["parameter", "in", "required", "type", "meaning"], params))
    body = op.get("requestBody", {}).get("content", {})
    if body:
        kinds = ", ".join(f"{k}: {_schema_type(v.get('schema', {}))}" for k, v in body.items())
        out.append(f"Body: {kinds}")
    answers = [
        [f"`{code}`", answer.get("description", ""),
         ", ".join(_schema_type(c.get("schema", {})) for c in answer.get("content", {}).values())]
        for code, answer in op.get("responses", {}).items()
    ]  # fmt: skip
    out.append(table(["status", "meaning", "body"], answers))
    return "\n\n".join(part for part in out if part)


def openapi_markdown(schema: dict[str, Any] | None = None) -> str:
    """The routes, then the schemas, each property with its type and description."""
    schema = schema or openapi_schema()
    parts = ["## Routes"]
    for path, methods in schema["paths"].items():
        parts += [_operation(path, method, op) for method, op in methods.items()]
    parts.append("## Schemas")
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        required = set(component.get("required", []))
        rows = [
            [f"`{prop}`", _schema_type(spec), "yes" if prop in required else "",
             spec.get("description", "")]
            for prop, spec in component.get("properties", {}).items()
        ]  # fmt: skip
        parts.append(f"### {name}\n\n{rst(component.get('description', ''))}")
        if rows:
            parts.append(table(["field", "type", "required", "meaning"], rows))
    return "\n\n".join(parts)


# -- the data contract --------------------------------------------------------------------


def tables_markdown() -> str:
    """Every table: what it holds, its columns and its unique keys."""
    from volforecast.data.tables import Base  # noqa: PLC0415

    classes = {mapper.local_table.name: mapper.class_ for mapper in Base.registry.mappers}
    parts = []
    for tbl in Base.metadata.sorted_tables:
        doc = rst(inspect.cleandoc(classes[tbl.name].__doc__ or "")) if tbl.name in classes else ""
        rows = [
            [f"`{c.name}`", str(c.type.compile(dialect=postgresql.dialect())).lower(),
             "key" if c.primary_key else ("null" if c.nullable else ""), c.comment or ""]
            for c in tbl.columns
        ]  # fmt: skip
        parts.append(f"## `{tbl.fullname}`\n\n{doc}")
        parts.append(table(["column", "type", "key / null", "meaning"], rows))
        rules = [
            f"unique ({', '.join(c.name for c in k.columns)})"
            for k in tbl.constraints
            if isinstance(k, UniqueConstraint)
        ]
        rules += [f"check `{k.sqltext}`" for k in tbl.constraints if isinstance(k, CheckConstraint)]
        if rules:
            parts.append("Constraints: " + "; ".join(rules) + ".")
    return "\n\n".join(parts)


def frames_markdown() -> str:
    """The pandera schemas of the frames that cross packages: columns, types, checks."""
    from volforecast.core import schemas  # noqa: PLC0415

    types = {"string[pyarrow]": "text", "datetime64[ns]": "datetime", "None": "any"}
    parts = []
    for model in (schemas.LossesSchema, schemas.PredictionsSchema, schemas.BacktestSchema):
        schema = model.to_schema()
        rows = [
            [f"`{name}`", types.get(str(c.dtype), str(c.dtype)), "null" if c.nullable else "",
             ", ".join(f"`{k.error or k.name}`" for k in c.checks), c.description or ""]
            for name, c in schema.columns.items()
        ]  # fmt: skip
        doc = rst(inspect.cleandoc(model.__doc__ or ""))
        parts += [f"### `{model.__name__}`\n\n{doc}",
                  table(["column", "type", "null", "checks", "meaning"], rows)]  # fmt: skip
        rules = [f"`{k.name}`" for k in schema.checks] + ["no other column"] * bool(schema.strict)
        if rules:
            parts.append("Checks of the whole frame: " + ", ".join(rules) + ".")
    return "\n\n".join(parts)


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_markdown,
    "settings": settings_markdown,
    "openapi": openapi_markdown,
    "tables": tables_markdown,
    "frames": frames_markdown,
}


def on_page_markdown(markdown: str, **_: object) -> str:
    """Replace each marker line with what its generator writes."""
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)
