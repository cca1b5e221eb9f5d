"""Small SQL helpers that differ by backend: row locks, advisory locks, insert-if-absent, chunked IN lists.

>>> list(chunks([1, 2, 3], 2))
[[1, 2], [3]]
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import JSON, ColumnElement, Connection, Table, any_, bindparam, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, Session

from pixlabel.store.models import Base, ImageRow

T = TypeVar("T")
# Bound parameters per IN list: far below SQLite's (32766) and PostgreSQL's (65535) limits.
CHUNK = 1000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def in_chunks(session: Session, column: ColumnElement[Any] | QueryableAttribute[Any],
              values: Sequence[Any]) -> Iterator[ColumnElement[bool]]:
    """``column IN values`` as a few conditions, each small enough for one statement, in ``values`` order.

    PostgreSQL gets ``column = ANY(:array)``: one parameter, so psycopg does not re-parse a statement
    with thousands of placeholders for every chunk. SQLite has no arrays and gets ``IN`` lists.
    """
    expr = column.__clause_element__() if isinstance(column, QueryableAttribute) else column
    if not is_postgres(session):
        for chunk in chunks(values):
            yield expr.in_(chunk)
        return
    for chunk in chunks(values, 50_000):
        yield expr == any_(bindparam(None, chunk, type_=postgresql.ARRAY(expr.type)))


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def advisory_lock(session: Session, name: str) -> None:
    """Serialise transactions that use ``name`` (PostgreSQL; SQLite writers are serialised already)."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})


def lock_images(session: Session, image_ids: Sequence[int]) -> list[Any]:
    """Lock image rows until commit and return ``(id, path, height, width)`` rows, ascending by id.

    Locking in ascending id order means two writers never wait on each other in a cycle. ``FOR NO KEY
    UPDATE`` (not ``FOR UPDATE``) so other transactions can still insert rows that reference these images.
    On SQLite the whole database is already locked by ``BEGIN IMMEDIATE`` and no clause is emitted.
    """
    out: list[Any] = []
    for condition in in_chunks(session, ImageRow.id, sorted(image_ids)):
        stmt = (select(ImageRow.id, ImageRow.path, ImageRow.height, ImageRow.width)
                .where(condition).order_by(ImageRow.id).with_for_update(key_share=True))
        out.extend(session.execute(stmt).all())
    return out


def insert_missing(session: Session, model: type[Base], rows: list[dict[str, Any]], *, key: str) -> None:
    """Insert rows whose unique ``key`` is absent; concurrent inserters of one key both succeed."""
    if not rows:
        return
    dialect = postgresql if is_postgres(session) else sqlite
    stmt = dialect.insert(model).on_conflict_do_nothing(index_elements=[key])
    session.execute(stmt, rows)


def reserve_ids(session: Session, table_name: str, n: int) -> list[int]:
    """``n`` fresh primary keys for ``table_name`` (an integer ``id`` column), so a batch can be inserted
    with plain executemany and still be known by id (batched ordered RETURNING does not exist on SQLite).

    PostgreSQL draws them from the column's sequence. On SQLite the caller must hold the write lock
    (``BEGIN IMMEDIATE``, as every store write does): the ids follow the largest one ever used.
    """
    if n <= 0:
        return []
    if is_postgres(session):
        stmt = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
        return [int(v) for v in session.execute(stmt, {"table": table_name, "n": n}).scalars()]
    # AUTOINCREMENT tables remember their largest id ever in sqlite_sequence, even after deletes.
    used = session.execute(text(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = :table), 0), "
        f"coalesce((SELECT max(id) FROM {table_name}), 0))"), {"table": table_name}).scalar_one()
    return list(range(int(used) + 1, int(used) + n + 1))


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) fast on both backends.

    SQLite: a plain executemany. PostgreSQL: ``COPY … FROM STDIN`` through psycopg, because psycopg's
    executemany sends one statement per row and SQLAlchemy's multi-row VALUES form spends its time in
    psycopg's query parser; COPY is an order of magnitude faster for the 10⁵-row batches a labeler emits.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    # COPY bypasses SQLAlchemy's bind processing: JSON needs psycopg's wrapper (None stays SQL NULL, as the
    # models' JSON(none_as_null=True) would store it); aware datetimes and numbers adapt as they are.
    is_json = [isinstance(table.c[c].type, JSON) for c in columns]
    quote = conn.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    from psycopg.types.json import Json  # only PostgreSQL stores need psycopg loaded

    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("bulk_insert needs an open connection")
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([Json(row[c]) if j and row[c] is not None else row[c]
                            for c, j in zip(columns, is_json, strict=True)])
