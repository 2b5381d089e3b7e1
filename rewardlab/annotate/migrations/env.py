"""Alembic environment: runs migrations on the connection `rewardlab.annotate.db.upgrade` passes in."""

from alembic import context

from rewardlab.annotate.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
)
with context.begin_transaction():
    context.run_migrations()
