"""A fresh, throwaway database per run on a PostgreSQL server the caller names (--postgres URL)."""
from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.measure import BenchFailure


def shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


class FreshDatabases:
    """CREATE DATABASE / DROP DATABASE through the server the URL points at."""

    def __init__(self, url: str):
        self.url = make_url(url)
        if self.url.get_backend_name() != "postgresql":
            raise BenchFailure(f"--postgres expects a postgresql:// URL, got {shown(url)}")
        try:
            self.engine = create_engine(self.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:
            raise BenchFailure(f"cannot use PostgreSQL at {shown(url)}: {type(exc).__name__}: {exc}") from None
        self.created: list[str] = []

    def create(self, label: str) -> str:
        name = f"portal_bench_{os.getpid()}_{len(self.created)}_{label}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            try:
                self.drop(self.url.set(database=name).render_as_string(hide_password=False))
            except Exception:
                pass
        self.engine.dispose()
