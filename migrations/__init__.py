"""Alembic revisions: the only place the archive's schema changes."""
