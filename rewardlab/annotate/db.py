"""Opening the annotation database: URL handling, SQLite safety settings, and schema migrations.

`--db` takes a SQLAlchemy URL (`sqlite:///labels.db`, `postgresql://user@host/db`) or a plain file
path (read as SQLite). SQLite runs in WAL mode with `synchronous=FULL`, a 10 s busy timeout and
foreign keys on, and write transactions start with `BEGIN IMMEDIATE`, so two annotators submitting
at once queue for the write lock instead of failing; a process killed mid-transaction leaves the
last committed state. `postgresql://` URLs use the psycopg 3 driver (the `annotate` extra).

The schema is created and upgraded by Alembic migrations (`migrations/versions/`), run on open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE = {"rewardlab_write": True}
"""Execution options that mark a connection as a writer (SQLite: BEGIN IMMEDIATE)."""


def normalize_url(db: str) -> str:
    """A SQLAlchemy URL for `db`: URLs pass through (postgresql:// gets psycopg 3), paths become SQLite."""
    if "://" not in db:
        return "sqlite:///" + str(Path(db).expanduser().resolve())
    url = make_url(db)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def create_db_engine(db: str) -> Engine:
    """An engine for `db` (see `normalize_url`) with the SQLite settings above applied per connection."""
    url = make_url(normalize_url(db))
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        raise ValueError(
            f"--db {db}: an in-memory SQLite database would vanish with the process; give a file path"
        )
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins (the SQLAlchemy
        # pysqlite "serializable isolation" recipe), so BEGIN IMMEDIATE below takes effect.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writer = conn.get_execution_options().get("rewardlab_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic logs every step at INFO; `upgrade` logs one line instead."""
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        alembic_log.setLevel(level)


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration (a no-op when already current)."""
    with _quiet_alembic():
        from alembic import command  # its plugins announce themselves at import
        from alembic.script import ScriptDirectory

        cfg = _alembic_config()
        head = ScriptDirectory.from_config(cfg).get_current_head()
        before = current_revision(engine)
        if before == head:
            return
        with engine.connect().execution_options(**WRITE) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    log.info("annotation database schema %s -> %s", before or "(empty)", head)


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
