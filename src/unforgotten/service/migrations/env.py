"""Alembic environment: the service passes its open connection in ``config.attributes``
(``store.migrate``); ``alembic revision --autogenerate`` needs the same, see docs/service.md."""

from alembic import context

from unforgotten.service.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
