"""The store's index, an SQLite database: its schema, connections (WAL, one per thread), and SQLite's errors
translated once (`writing`): a full disk or a read-only store is a WriteError, never a crash.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import WriteError

# SQLite's primary result codes that mean the index cannot be written: WriteError, not a crash.
_CANNOT_WRITE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN})
_LOCKED = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
SCHEMA = """
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, created_at REAL NOT NULL, params TEXT NOT NULL,
  root TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER, height INTEGER, size INTEGER, deleted_at REAL,
  base TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS images_created ON images(created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS manifests (request_key TEXT PRIMARY KEY, files TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (id TEXT, key TEXT, sha256 TEXT NOT NULL, PRIMARY KEY (id, key));
CREATE TABLE IF NOT EXISTS renders (at REAL NOT NULL, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of an error (its extended code carries more in the high bits)."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """An index write: a full disk or a read-only store is a WriteError (the transaction is rolled back)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if _code(exc) in _CANNOT_WRITE:
            raise WriteError.of(exc, path, full=_code(exc) == sqlite3.SQLITE_FULL) from exc
        raise


def setup(db: Callable[[], sqlite3.Connection], close: Callable[[], None]) -> None:
    """WAL mode and the schema. Two processes opening a new store at once race on the journal-mode switch,
    which SQLite's busy timeout does not cover, so a locked database is retried here."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = db()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(images)")}
            if "base" not in columns:  # stores made before documents could live in a sub-folder
                conn.execute("ALTER TABLE images ADD COLUMN base TEXT NOT NULL DEFAULT ''")
            return
        except sqlite3.OperationalError as exc:
            if _code(exc) not in _LOCKED or time.monotonic() > deadline:
                raise
            close()
            time.sleep(0.05)
