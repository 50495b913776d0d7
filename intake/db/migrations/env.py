"""Alembic environment: the connection comes from intake.db.engine, never from an ini file."""
from alembic import context

from intake.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite",
                  user_module_prefix="intake.models.")
with context.begin_transaction():
    context.run_migrations()
