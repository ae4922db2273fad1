"""Alembic's environment: the connection and the metadata come from matcher.store.schema (no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from matcher.store.db import import_table_modules

import_table_modules()
connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
