"""The content-addressed store: an SQLite index plus object files, with the API's id/url/list/delete/batch/usage.

An id is sha256 over the canonical creation parameters, the engine fingerprint and the bytes of every local
file the render read, formatted as a UUID version 8 (`hcti_build.ids`). The files a render reads are only
known after rendering, so the index (`hcti_build.index`) keeps a manifest per request (params + engine) naming
those files; a lookup re-hashes them and derives the id without a browser (the "depfile" scheme of ccache and
Bazel).
"""

from __future__ import annotations

import base64
import builtins
import concurrent.futures
import contextlib
import contextvars
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .browser import Engine, default_engine
from .chromium import INSTALL_HINT, chromium_version
from .errors import BadRequestError, BrowserNotFoundError, GoneError, NotFoundError, WriteError
from .files import atomic_write, sweep
from .ids import FileDigests, document_base, image_id_of, request_key, valid_id
from .index import connect, setup, writing
from .options import CreateOptions, ImageQuery, batch_options

RENDER_VERSION = "2"  # bumped when the same request renders differently (2: files served with their MIME type)


def default_store_path(near: Path | None = None) -> Path:
    """The store every surface uses unless told otherwise: $HCTI_STORE, else `.hcti` in ``near`` (default:
    the working folder)."""
    return Path(os.environ.get("HCTI_STORE") or (near or Path()) / ".hcti").resolve()


class Store:
    """Local mirror of the hosted API's image store. Thread-safe; safe for several processes at once."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.path = Path(path).resolve() if path else default_store_path()
        self.root = Path(root or os.getcwd()).resolve()
        self.base_url = base_url.rstrip("/") if base_url else None
        self._engine = engine
        self._fingerprint: str | None = None
        self._digests = FileDigests(self.root)
        self._local = threading.local()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "objects").mkdir(exist_ok=True)
            (self.path / "tmp").mkdir(exist_ok=True)
        except OSError as exc:
            raise WriteError.of(exc, self.path) from exc
        self._tmp = self.path / "tmp"
        self._objects = self.path / "objects"
        with self._writing():
            self._setup()
        self.sweep()

    def sweep(self, min_age: float = 60) -> int:
        """Delete the temporary files of writers that died before their rename (see `sweep`): runs when a Store
        opens; returns the count."""
        return sweep(self._tmp, min_age=min_age)

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        return writing(self.path / "index.sqlite")

    def _setup(self) -> None:
        setup(self._db, self.close)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = default_engine()
        return self._engine

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path / "index.sqlite")
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- ids --------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Chromium's version + the render version, without a launch: read once per Store, and kept in the index
        by executable path, size and mtime so a new process does not run `--version` again."""
        if self._fingerprint is None:
            self._fingerprint = self._read_fingerprint()
        return self._fingerprint

    def _read_fingerprint(self) -> str:
        exe = self.engine.executable
        try:
            st = os.stat(exe)
        except OSError as exc:  # an Engine given a path that is not there
            raise BrowserNotFoundError(f"Chromium not found at {exe}: {INSTALL_HINT}") from exc
        key = f"chromium-version:{exe}:{st.st_size}:{st.st_mtime_ns}"
        row = self._db().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        version = str(row[0]) if row else chromium_version(exe)
        if not row:
            self._db().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, version))
        return f"{version}|hcti-render-{RENDER_VERSION}"  # not cached: a new hcti-build gets new ids

    def _request_key(self, opts: CreateOptions, base: str = "") -> str:
        return request_key(opts.canonical_json(), self.fingerprint(), base)

    def request_key(self, opts: CreateOptions, *, base: str = "") -> str:
        """The hash of a request (options, Chromium, base) before its files: what `lookup_key` takes."""
        return self._request_key(opts, document_base(base))

    def lookup(self, opts: CreateOptions, *, base: str = "") -> str | None:
        """The id this request would get if its inputs are unchanged and stored; no browser."""
        return self.lookup_key(self._request_key(opts, document_base(base)))

    def _manifest(self, key: str) -> tuple[list[str], list[str]] | None:
        """The root-relative files the request's last render read, and those it asked for that were missing."""
        row = self._db().execute("SELECT files FROM manifests WHERE request_key=?", (key,)).fetchone()
        if not row:
            return None
        found = json.loads(row[0])
        if isinstance(found, list):  # written before missing files were recorded
            return found, []
        return list(found["read"]), list(found["missing"])

    def lookup_key(self, key: str) -> str | None:
        """`lookup` by `request_key`: the files the request's last render read are checked (and those it missed
        are still missing), then the object."""
        manifest = self._manifest(key)
        if manifest is None:
            return None
        read, missing = manifest
        files = self._digests.current(read)
        if files is None or any((self.root / name).is_file() for name in missing):
            return None
        image_id = image_id_of(key, files)
        hit = self._db().execute("SELECT size FROM images WHERE id=? AND deleted_at IS NULL", (image_id,)).fetchone()
        try:
            return image_id if hit and self._object(image_id).stat().st_size == hit[0] else None
        except OSError:
            return None

    def inputs(self, options: CreateOptions, *, base: str = "") -> list[str]:
        """The local files (root-relative) the last render of this request read: stylesheets, fonts, images."""
        manifest = self._manifest(self._request_key(options, document_base(base)))
        return manifest[0] if manifest else []

    def _object(self, image_id: str) -> Path:
        return self._objects / f"{image_id[:2]}/{image_id}.png"  # one join: a warm site build makes one per card

    def url(self, image_id: str) -> str:
        if self.base_url:
            return f"{self.base_url}/v1/image/{image_id}"
        return self._object(image_id).as_uri()

    # -- the API ----------------------------------------------------------------------------------
    def create(self, options: CreateOptions | Mapping[str, Any], *, base: str = "") -> dict[str, str]:
        """POST /v1/image: ``{"id", "url"}``. A stored, unchanged request costs one hash and no browser.

        ``base`` is the folder (relative to the store's root) the HTML is treated as living in, so relative
        URLs in it resolve like they would next to the file that holds it.
        """
        image_id, _ = self.ensure(options, base=base)
        return {"id": image_id, "url": self.url(image_id)}

    def ensure(self, options: CreateOptions | Mapping[str, Any], *, base: str = "") -> tuple[str, bool]:
        """`create` for callers that count renders: the id, and True when it had to be rendered."""
        opts = options if isinstance(options, CreateOptions) else CreateOptions.from_mapping(options)
        base = document_base(base)
        key = self._request_key(opts, base)
        hit = self.lookup_key(key)
        return (hit, False) if hit else (self._render(opts, key, base), True)

    def _render(self, opts: CreateOptions, key: str, base: str) -> str:
        cap = self.engine.render(opts, self.root, base, private=(self.path,))
        files = {n: hashlib.sha256(d).hexdigest() for n, d in cap.files.items()}
        image_id = image_id_of(key, files)
        obj = self._object(image_id)
        if not atomic_write(obj, cap.png, replace=False, tmp_dir=self._tmp):
            existing = obj.read_bytes()
            if hashlib.sha256(existing).hexdigest() != self._indexed_sha(image_id):
                atomic_write(obj, cap.png, tmp_dir=self._tmp)  # the existing copy is stray or corrupt: replace it
            else:
                cap.png = existing
        sha = hashlib.sha256(cap.png).hexdigest()
        now = time.time()
        db = self._db()
        with self._writing(), db:
            db.execute("BEGIN IMMEDIATE")
            manifest = {"read": sorted(files), "missing": sorted(cap.missing)}
            db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?)", (key, json.dumps(manifest)))
            db.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT(id) DO UPDATE SET "
                "deleted_at=NULL, sha256=excluded.sha256, size=excluded.size, "
                "created_at=CASE WHEN images.deleted_at IS NULL THEN images.created_at ELSE excluded.created_at END",
                (image_id, now, opts.canonical_json(), self._portable_root(), sha, cap.width, cap.height, len(cap.png), base),
            )
            db.execute("INSERT INTO renders VALUES (?, ?)", (now, image_id))
        return image_id

    def _portable_root(self) -> str:
        """The root as the index records it: relative to the store's folder, so that a store moved or copied
        with its project still finds the files to render a damaged image again (see `_render_root`)."""
        try:
            return os.path.relpath(self.root, self.path)
        except ValueError:  # another drive (Windows): only an absolute path can name it
            return str(self.root)

    def _render_root(self, recorded: str) -> Path:
        """Where to render a stored image again: the root its row records (relative to the store's folder, or
        absolute in stores made before), else this store's root when that folder is gone (a moved store)."""
        root = (self.path / recorded).resolve()
        return root if root.is_dir() else self.root

    def _indexed_sha(self, image_id: str) -> str | None:
        row = self._db().execute("SELECT sha256 FROM images WHERE id=?", (image_id,)).fetchone()
        return row[0] if row else None

    def _row(self, image_id: str, columns: str = "params, root, sha256, base") -> tuple[Any, ...]:
        """``columns`` of a live image: 404 for an unknown id, 410 for a deleted one."""
        valid_id(image_id)
        row = self._db().execute(f"SELECT deleted_at, {columns} FROM images WHERE id=?", (image_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"Image not found: {image_id}")
        if row[0] is not None:
            raise GoneError(f"Image {image_id} was deleted")
        return tuple(row[1:])

    def digest(self, image_id: str) -> str:
        """The sha256 the master PNG's bytes must have (what `get` checks them against), without reading them."""
        return str(self._row(image_id, "sha256")[0])

    def master(self, image_id: str) -> bytes:
        """The master PNG, its hash checked; a corrupt or missing object is rendered again, never served."""
        return self._master(image_id)[0]

    def _master(self, image_id: str) -> tuple[bytes, str]:
        params, root, sha, base = self._row(image_id)
        obj = self._object(image_id)
        try:
            data = obj.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha:
                return data, sha
        except OSError:
            pass
        opts = CreateOptions.from_mapping(json.loads(params))
        cap = self.engine.render(opts, self._render_root(root), base, private=(self.path,))
        atomic_write(obj, cap.png, tmp_dir=self._tmp)
        sha = hashlib.sha256(cap.png).hexdigest()
        with self._writing(), self._db() as db:
            db.execute("UPDATE images SET sha256=?, size=? WHERE id=?", (sha, len(cap.png), image_id))
        return cap.png, sha

    def get(self, image_id: str, query: ImageQuery | Mapping[str, Any] | None = None, fmt: str | None = None) -> bytes:
        """GET /v1/image/:id[.ext]?query: the final bytes, derived variants cached beside the master."""
        return self.read(image_id, query, fmt)[0]

    def read(
        self, image_id: str, query: ImageQuery | Mapping[str, Any] | None = None, fmt: str | None = None
    ) -> tuple[bytes, str]:
        """`get`, with the bytes' sha256 (checked on this read): a strong HTTP ETag for free."""
        q = query if isinstance(query, ImageQuery) else ImageQuery.from_mapping(query or {}, fmt)
        if q.is_identity:
            return self._master(image_id)
        params, root, _, base = self._row(image_id)
        key = self._variant_key(q)
        path = self._variant(image_id, q)
        row = self._db().execute("SELECT sha256 FROM variants WHERE id=? AND key=?", (image_id, key)).fetchone()
        if row and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == row[0]:
                return data, row[0]
        if q.format == "pdf" and not q.has_crop and q.width is None and q.height is None:
            opts = CreateOptions.from_mapping(json.loads(params))
            data = self.engine.pdf(opts, self._render_root(root), base, private=(self.path,))
        else:
            # Pillow is imported on first use, not with the package: a site build whose cards are all PNG store
            # hits never needs it, and loading it costs (docs/performance.md).
            from . import imaging

            data = imaging.apply(self.master(image_id), q)
        atomic_write(path, data, tmp_dir=self._tmp)
        sha = hashlib.sha256(data).hexdigest()
        with self._writing(), self._db() as db:
            db.execute("INSERT OR REPLACE INTO variants VALUES (?, ?, ?)", (image_id, key, sha))
        return data, sha

    def info(self, image_id: str) -> dict[str, Any]:
        """What the index knows of a live image: id, created_at, pixel width and height, bytes, parameters."""
        created, width, height, size, params = self._row(image_id, "created_at, width, height, size, params")
        return {
            "id": image_id,
            "created_at": _iso(created),
            "width": width,
            "height": height,
            "size": size,
            "params": json.loads(params),
        }

    def file(self, image_id: str, query: ImageQuery | Mapping[str, Any] | None = None) -> Path:
        """Where `get(image_id, query)`'s bytes are kept in the store (checked, derived if missing). Read it,
        link it or copy it; do not write to it."""
        q = query if isinstance(query, ImageQuery) else ImageQuery.from_mapping(query or {})
        self.get(image_id, q)
        return self.stored_path(image_id, q)

    def stored_path(self, image_id: str, query: ImageQuery) -> Path:
        """Where `get(image_id, query)` keeps its bytes, without reading them: valid after that `get`."""
        return self._object(image_id) if query.is_identity else self._variant(image_id, query)

    @staticmethod
    def _variant_key(q: ImageQuery) -> str:
        return hashlib.sha256(q.cache_key().encode()).hexdigest()[:24]

    def _variant(self, image_id: str, q: ImageQuery) -> Path:
        return self._objects / f"{image_id[:2]}/{image_id}/{self._variant_key(q)}.{q.format}"

    def list(self, count: int = 50, page_token: str | None = None) -> dict[str, Any]:
        """GET /v1/images: newest first, at most 50 a page, keyset paging through ``page_token``."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise BadRequestError("count must be an integer between 1 and 50", param="count")
        where, args = "deleted_at IS NULL", []
        if page_token:
            try:
                tok = json.loads(base64.urlsafe_b64decode(page_token.encode()))
                where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
                args = [float(tok["t"]), float(tok["t"]), str(tok["id"])]
            except (ValueError, KeyError, TypeError):
                raise BadRequestError("page_token is not valid", param="page_token") from None
        rows = (
            self._db()
            .execute(
                f"SELECT id, created_at FROM images WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                (*args, count + 1),
            )
            .fetchall()
        )
        more = len(rows) > count
        rows = rows[:count]
        token = None
        if more:
            token = base64.urlsafe_b64encode(json.dumps({"t": rows[-1][1], "id": rows[-1][0]}).encode()).decode()
        images = [{"id": i, "url": self.url(i), "created_at": _iso(t)} for i, t in rows]
        return {"images": images, "next_page_token": token, "has_next_page": more}

    def delete(self, image_id: str) -> None:
        """DELETE /v1/image/:id: every copy removed; a later get is 410."""
        self._row(image_id)
        with self._writing(), self._db() as db:
            db.execute("UPDATE images SET deleted_at=? WHERE id=?", (time.time(), image_id))
            db.execute("DELETE FROM variants WHERE id=?", (image_id,))
        obj = self._object(image_id)
        obj.unlink(missing_ok=True)
        variant_dir = obj.with_suffix("")
        if variant_dir.is_dir():
            for f in variant_dir.iterdir():
                f.unlink(missing_ok=True)
            variant_dir.rmdir()

    def batch_delete(self, ids: Sequence[str]) -> None:
        for image_id in ids:
            self._row(image_id)  # validate all before deleting any
        for image_id in ids:
            self.delete(image_id)

    def batch(self, default_options: Mapping[str, Any] | None, variations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST /v1/image/batch: up to 25 variations merged over default_options, rendered concurrently."""
        return {"images": self.create_many(batch_options(default_options, variations))}

    def create_many(self, options: Sequence[CreateOptions]) -> builtins.list[dict[str, str]]:
        """`create` for each, concurrently on the engine's page pool; results in the same order."""
        if len(options) == 1:
            return [self.create(options[0])]
        workers = self.engine.pool_size
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hcti-batch") as pool:
            # Each render runs in the caller's context, so a CancelToken the caller holds reaches them all.
            futures = [pool.submit(contextvars.copy_context().run, self.create, o) for o in options]
            return [f.result() for f in futures]

    def usage(self) -> dict[str, Any]:
        """GET /v1/usage: renders rolled up by hour, day and month (UTC)."""
        db = self._db()
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
        return {"data": data, "per_billing_period": []}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
