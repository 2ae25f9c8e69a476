"""``volforecast db``: create, migrate and inspect the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from volforecast.cli import engine, errors, out, settings

app: typer.Typer = typer.Typer(
    help="Create and migrate the database schema (Alembic).", no_args_is_help=True
)


@app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the tables up to REVISION (the newest by default)."""
    from volforecast.data import db  # noqa: PLC0415

    store = engine(settings())
    with errors():
        db.upgrade(store, revision)
        out.print(f"{db.describe(store)} is at revision {db.current_revision(store)}")


@app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate the tables down to REVISION; data in dropped tables is lost."""
    from volforecast.data import db  # noqa: PLC0415

    store = engine(settings())
    if not yes:
        typer.confirm(f"Downgrade {db.describe(store)} to {revision}?", abort=True)
    with errors():
        db.downgrade(store, revision)
        out.print(f"{db.describe(store)} is at revision {db.current_revision(store) or 'base'}")


@app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest this version ships."""
    from volforecast.data import db  # noqa: PLC0415

    store = engine(settings())
    with errors():
        current = db.current_revision(store)
    head = db.head_revision()
    state = "up to date" if current == head else "run `volforecast db upgrade`"
    out.print(f"{db.describe(store)}: revision {current or 'none'}, newest {head} ({state})")
