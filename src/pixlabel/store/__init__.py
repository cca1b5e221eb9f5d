"""The label store: SQLite by default, PostgreSQL by URL, schema migrated with alembic on open.

>>> from pixlabel.store import open_store  # open_store("ws/pixlabel.db") or open_store("postgresql://…")
"""

from pixlabel.store.results import HistoryEntry, PutResult, RunInfo, SyncResult
from pixlabel.store.store import LabelStore, open_store

__all__ = ["HistoryEntry", "LabelStore", "PutResult", "RunInfo", "SyncResult", "open_store"]
