"""Schema migrations: they build exactly the ORM schema, are idempotent, refuse unknown newer revisions."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from pixlabel.errors import InputError
from pixlabel.records import Label
from pixlabel.store import open_store
from pixlabel.store.engine import (
    MIGRATIONS_DIR,
    alembic_config,
    create_store_engine,
    current_revision,
    database_url,
    migrate_to_head,
)
from pixlabel.store.models import Base
from test_store_db import store_url  # noqa: F401  (fixture)

TABLES = {"images", "classes", "labels", "runs", "history", "alembic_version"}


def engine_for(url: str) -> Engine:
    return create_store_engine(database_url(url))


def head() -> str:
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def test_migrations_ship_with_the_package() -> None:
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert (MIGRATIONS_DIR / name).is_file(), name


def test_opening_creates_the_schema_the_models_describe(store_url: str) -> None:  # noqa: F811
    open_store(store_url).close()
    engine = engine_for(store_url)
    with engine.connect() as conn:
        assert current_revision(conn) == head()
        assert set(inspect(conn).get_table_names()) == TABLES
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_migrating_again_changes_nothing(store_url: str) -> None:  # noqa: F811
    with open_store(store_url) as store:
        store.sync_images([("a.png", "h")])
        store.ensure_classes(["cat"])
        store.set_human_label("a.png", "cat", actor="ana")
    engine = engine_for(store_url)
    assert migrate_to_head(engine) == head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
    with open_store(store_url) as store:
        assert [(x.image, x.label) for x in store.labels()] == [("a.png", "cat")]


def test_downgrade_to_base_and_upgrade_again(store_url: str) -> None:  # noqa: F811
    open_store(store_url).close()
    engine = engine_for(store_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        assert current_revision(conn) is None
    engine.dispose()
    with open_store(store_url) as store:  # upgrades again from nothing
        store.sync_images([("a.png", "h")])
        assert store.sync_images([("a.png", "h")]).unchanged == 1


def test_database_from_a_newer_pixlabel_is_refused(store_url: str) -> None:  # noqa: F811
    open_store(store_url).close()
    engine = engine_for(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    engine.dispose()
    with pytest.raises(InputError, match="'f00dcafe'.*newer pixlabel"):
        open_store(store_url)


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:  # noqa: F811
    barrier, failures = threading.Barrier(6), []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            with open_store(store_url) as store:
                store.sync_images([(f"img{i}.png", f"h{i}")])
        except Exception as exc:  # collected and asserted on below: a thread's exception is otherwise lost
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with open_store(store_url) as store:  # each scan was complete for its worker: all six images known
        store.ensure_classes(["x"])
        store.put_labels([Label(f"img{i}.png", "x") for i in range(6)])
        assert len(store.labels()) == 6


def test_the_revision_template_renders_a_valid_migration(tmp_path: Path) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = alembic_config()
    cfg.set_main_option("script_location", str(scripts))
    old_head = head()
    rev_id = f"{int(old_head) + 1:04d}"  # the next revision after whatever the package ships
    command.revision(cfg, message="add a column", rev_id=rev_id)
    [new] = (scripts / "versions").glob(f"{rev_id}_*.py")
    source = new.read_text()
    compile(source, str(new), "exec")
    assert (f'down_revision: str | None = "{old_head}"' in source
            or f"down_revision: str | None = '{old_head}'" in source)
    assert ScriptDirectory.from_config(cfg).get_current_head() == rev_id
