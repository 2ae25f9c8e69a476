"""Alembic environment: run by `volforecast db upgrade` with an open connection.

The connection comes from :func:`volforecast.data.db.create_db_engine`, so SQLite's schema
mapping applies to migrations as it does to queries.
"""

from alembic import context
from sqlalchemy import Connection, create_engine

from volforecast.data.db import VERSION_TABLE
from volforecast.data.tables import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_schemas=connection.dialect.name == "postgresql",
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:  # plain `alembic` command line, with sqlalchemy.url set in the config
    engine = create_engine(config.get_main_option("sqlalchemy.url", "sqlite:///var/volforecast.db"))
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
