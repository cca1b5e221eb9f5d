"""Database fixtures shared by the label-store tests (imported by the other test_store*.py), and URL tests.

``store_url`` yields a fresh, empty database: a SQLite file under tmp_path, and, when
``PIXLABEL_TEST_PG_URL`` is set (see ``.ci/postgres.sh``), a new PostgreSQL schema dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pixlabel.errors import InputError
from pixlabel.store.engine import database_url

PG_ENV = "PIXLABEL_TEST_PG_URL"


def _pg_schema_url(base: str) -> Iterator[str]:
    schema = f"pixlabel_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "pixlabel.db")
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set; start a server with `eval \"$(sudo .ci/postgres.sh)\"`")
    yield from _pg_schema_url(base)


def test_plain_postgresql_url_uses_psycopg3() -> None:
    for raw in ("postgresql://u:pw@localhost:5432/db", "postgres://u:pw@localhost/db"):
        url = database_url(raw)
        assert url.drivername == "postgresql+psycopg"
        assert (url.username, url.password) == ("u", "pw")
    assert database_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_path_becomes_absolute_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = database_url("labels.db")
    assert url.drivername == "sqlite"
    assert url.database == str(tmp_path.resolve() / "labels.db")
    assert database_url(tmp_path / "x.db").database == str(tmp_path.resolve() / "x.db")


def test_bad_locations_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        database_url(tmp_path / "no" / "such" / "dir.db")
    with pytest.raises(InputError, match="unsupported database"):
        database_url("mysql://u:secret@h/db")
    with pytest.raises(InputError) as info:
        database_url("mysql://u:secret@h/db")
    assert "secret" not in str(info.value)  # passwords stay out of messages
