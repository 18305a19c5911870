"""The store's index, an SQLite database: its schema, connections (WAL, one per thread), and SQLite's errors
translated once (`writing`): a full disk or a read-only store is a WriteError, never a crash.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import BadRequestError, WriteError
from ..params import number_of, read_json

# SQLite's primary result codes that mean the index cannot be written: WriteError, not a crash.
_CANNOT_WRITE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN})
_LOCKED = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
SCHEMA = """
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, created_at REAL NOT NULL, params TEXT NOT NULL,
  root TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER, height INTEGER, size INTEGER, deleted_at REAL,
  base TEXT NOT NULL DEFAULT '', engine TEXT, read_at REAL);
CREATE INDEX IF NOT EXISTS images_created ON images(created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS manifests (request_key TEXT PRIMARY KEY, files TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (id TEXT, key TEXT, sha256 TEXT NOT NULL, PRIMARY KEY (id, key));
CREATE TABLE IF NOT EXISTS renders (at REAL NOT NULL, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# Columns added after the first release: (name, declaration), added to older stores when they open.
_ADDED_COLUMNS = (("base", "TEXT NOT NULL DEFAULT ''"), ("engine", "TEXT"), ("read_at", "REAL"))


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the index; ``readonly`` for a store that cannot be written (a CI cache mounted read-only):
    read-only mode, else, when SQLite cannot even make its shared-memory file there, as an immutable file."""
    if not readonly:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        return db
    uri = path.resolve().as_uri()
    for flags in ("mode=ro", "mode=ro&immutable=1"):
        db = sqlite3.connect(f"{uri}?{flags}", uri=True, timeout=30, isolation_level=None)
        try:
            db.execute("SELECT 1 FROM images LIMIT 1")
            return db
        except sqlite3.OperationalError:
            db.close()
    raise WriteError(f"The store's index {path} cannot be read (a read-only store with no index, or not a store)")


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
            for name, decl in _ADDED_COLUMNS:  # stores made before these columns existed
                if name not in columns:
                    conn.execute(f"ALTER TABLE images ADD COLUMN {name} {decl}")
            return
        except sqlite3.OperationalError as exc:
            if _code(exc) not in _LOCKED or time.monotonic() > deadline:
                raise
            close()
            time.sleep(0.05)


def record_image(db: sqlite3.Connection, row: dict[str, Any], *, revive: bool = True) -> None:
    """An image's row written (inside the caller's transaction): a new one, or a live one's bytes updated. A
    deleted one is made live again (keeping its first creation time while it was live) only with ``revive``
    (a request for it); otherwise its tombstone wins."""
    update = "sha256=excluded.sha256, size=excluded.size, engine=excluded.engine"
    if revive:
        update += (
            ", deleted_at=NULL, "
            "created_at=CASE WHEN images.deleted_at IS NULL THEN images.created_at ELSE excluded.created_at END"
        )
    else:
        update += " WHERE images.deleted_at IS NULL"
    db.execute(
        "INSERT INTO images (id, created_at, params, root, sha256, width, height, size, deleted_at, base, engine) "
        "VALUES (:id, :created_at, :params, :root, :sha256, :width, :height, :size, NULL, :base, :engine) "
        f"ON CONFLICT(id) DO UPDATE SET {update}",
        row,
    )


def page_of(db: sqlite3.Connection, count: int, page_token: str | None) -> tuple[list[tuple[str, float]], str | None]:
    """(id, created_at) of live images, newest first, ``count`` of them after ``page_token`` (keyset paging:
    the token names the last one of the page before); and the next page's token, if more follow."""
    where, args = "deleted_at IS NULL", []
    if page_token:
        at, last = _place(page_token)
        args = [at, at, last]
        where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
    rows = db.execute(
        f"SELECT id, created_at FROM images WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?", (*args, count + 1)
    ).fetchall()
    page = [(str(i), float(t)) for i, t in rows[:count]]
    if len(rows) <= count:
        return page, None
    return page, base64.urlsafe_b64encode(json.dumps({"t": page[-1][1], "id": page[-1][0]}).encode()).decode()


def _place(page_token: str) -> tuple[float, str]:
    """The (created_at, id) a page token names; anything that is not one of ours is a 400, whatever it holds."""
    token = None
    try:
        if isinstance(page_token, str):
            token = read_json(base64.urlsafe_b64decode(page_token.encode("ascii")), "page_token", "page_token")
    except (ValueError, BadRequestError):  # not ASCII, not base64 (binascii.Error is a ValueError), not JSON
        pass
    at = number_of(token.get("t")) if isinstance(token, dict) else None
    if at is None or not isinstance(token, dict) or not isinstance(token.get("id"), str):
        raise BadRequestError("page_token is not valid", param="page_token")
    return at, token["id"]


def usage_of(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Renders rolled up by hour, day and month (UTC), newest buckets kept."""
    data = {}
    for name, fmt, limit in (
        ("hour", "%Y-%m-%dT%H:00:00Z", 72),
        ("day", "%Y-%m-%dT00:00:00Z", 60),
        ("month", "%Y-%m-01T00:00:00Z", 24),
    ):
        rows = db.execute(
            f"SELECT strftime('{fmt}', at, 'unixepoch') AS b, COUNT(*) FROM renders GROUP BY b ORDER BY b DESC LIMIT ?",
            (limit,),
        ).fetchall()
        data[name] = dict(sorted(rows))
    return data
