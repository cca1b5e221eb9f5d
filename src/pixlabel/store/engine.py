"""Database URLs, per-connection settings and schema migrations for the label store.

SQLite (the default) gets WAL, foreign keys and a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the lock instead of failing half-way. PostgreSQL goes
through psycopg 3. Opening a store migrates it to the newest schema with alembic.

>>> database_url("postgresql://u:pw@db/pixlabel").drivername
'postgresql+psycopg'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from pixlabel.errors import InputError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 120.0
# Execution option: how a SQLite transaction begins, IMMEDIATE (writes, the default) or DEFERRED (reads).
SQLITE_BEGIN = "pixlabel_sqlite_begin"
# Any constant works: it only has to be the same for every process migrating the same database.
_PG_MIGRATION_LOCK = 0x706978_6C6162
_PG_DRIVERLESS = ("postgres", "postgresql")


def database_url(url_or_path: str | Path) -> URL:
    """A SQLAlchemy URL from a database URL or a filesystem path (a path means SQLite at its absolute path).

    ``postgresql://`` (and ``postgres://``) are rewritten to the psycopg 3 driver, which pixlabel installs.
    """
    if isinstance(url_or_path, Path) or "://" not in url_or_path:
        path = Path(url_or_path).expanduser().resolve()
        if not path.parent.is_dir():
            raise InputError(f"{path}: cannot create the label store here, "
                             f"directory {path.parent} does not exist")
        return URL.create("sqlite", database=str(path))
    try:
        url = make_url(url_or_path)
    except ArgumentError as exc:
        raise InputError(f"{url_or_path!r} is not a database URL: {exc}") from exc
    if url.drivername in _PG_DRIVERLESS:
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(
            f"unsupported database {url.render_as_string(hide_password=True)!r}; "
            "expected a file path, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"
        )
    return url


def create_store_engine(url: URL) -> Engine:
    """An engine with pixlabel's connection settings for ``url``'s backend."""
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    kwargs: dict[str, Any] = {}
    if url.database in (None, "", ":memory:"):
        kwargs["poolclass"] = StaticPool  # every connection must see the same in-memory database
    # check_same_thread off: the pool hands a connection to one thread at a time, LabelStore is shared.
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: pysqlite would otherwise BEGIN DEFERRED on its own, and a deferred
    # transaction that later writes fails with "database is locked" without waiting for the busy timeout.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    _set_wal(cursor)  # readers never block the writer and vice versa
    cursor.execute("PRAGMA synchronous = NORMAL")  # durable across application crashes in WAL mode
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _set_wal(cursor: Any, *, attempts: int = 100) -> None:
    """Switch to WAL. On a brand-new file another opener may hold the write lock while it migrates, and the
    journal-mode switch can fail with "database is locked" at once instead of waiting for the busy timeout
    (seen once in CI as a flaky concurrent-first-open test), so retry for up to ~10 s."""
    import sqlite3
    import time

    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    if mode not in ("IMMEDIATE", "DEFERRED"):
        raise ValueError(f"{SQLITE_BEGIN} must be IMMEDIATE or DEFERRED, got {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def current_revision(connection: Connection) -> str | None:
    """The schema revision stamped in the database, ``None`` for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate_to_head(engine: Engine) -> str:
    """Upgrade the database to the newest schema this pixlabel knows; returns that revision.

    Concurrent openers are serialised (SQLite's write lock, a PostgreSQL advisory lock), so the first one
    migrates and the others find the schema current. A database stamped with a revision this version does
    not know (written by a newer pixlabel) is refused rather than guessed at.
    """
    cfg = alembic_config()
    scripts = ScriptDirectory.from_config(cfg)
    head = scripts.get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    known = {script.revision for script in scripts.walk_revisions()}
    with engine.connect() as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        current = current_revision(connection)
        if current is not None and current not in known:
            raise InputError(
                f"{engine.url.render_as_string(hide_password=True)}: the label store has schema revision "
                f"{current!r}, which this pixlabel does not know (newest known: {head!r}); it was written by "
                "a newer pixlabel: upgrade pixlabel or use another database"
            )
        if current != head:
            cfg.attributes["connection"] = connection  # env.py runs inside this transaction
            command.upgrade(cfg, "head")
    return head
