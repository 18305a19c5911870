"""The content-addressed store: an SQLite index plus object files, with the API's id/url/list/delete/batch/usage.

An id is sha256 over the canonical creation parameters, the renderer's fingerprint and the bytes of every local
file the render read, as a UUID version 8 (`ids`). Those files are known only after rendering, so the index keeps a
manifest per request naming them; a lookup re-hashes them and derives the id without a browser (the "depfile"
scheme of ccache and Bazel). It renders through a `hcti_build.renderer.Renderer`, never a concrete engine.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import contextvars
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import BadRequestError, GoneError, NotFoundError, WriteError
from ..files import Tree
from ..options import CreateOptions, ImageQuery, batch_options, canonical
from ..renderer import Renderer, default_renderer
from .bucket import Meta
from .ids import FileDigests, document_base, image_id_of, manifest_text, parse_manifest, request_key, valid_id
from .index import connect, page_of, record_image, setup, usage_of, writing
from .objects import Objects, portable_root, render_root
from .remote import RemoteTier, remote_tier

RENDER_VERSION = "2"  # bumped when the same request renders differently (2: files served with their MIME type)
SYNC_EVERY = 30  # seconds between two listings of the remote's images
READ_AT_STEP = 3600  # an image's last read time is kept to the hour: a warm build does not write the index per hit


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
        engine: Renderer | None = None,
        remote: str | RemoteTier | None = None,
    ) -> None:
        """``remote``: a URL or tier shared with other stores (`hcti_build.remote`); default HCTI_REMOTE, else the
        configuration's ``remote``; "" for none."""
        self.path = Path(path).resolve() if path else default_store_path()
        self.root = Path(root or os.getcwd()).resolve()
        self._engine = engine
        self.remote = remote if isinstance(remote, RemoteTier) else remote_tier(remote, self.root)
        self._fingerprint: str | None = None
        self._synced = -math.inf  # when the remote's images were last listed (`_sync_remote`)
        # The file rules of every name the index or the remote gives (the store's own files are never inputs).
        self.tree = Tree.of(self.root, (self.path,))
        self._digests = FileDigests(self.tree)
        self._local = threading.local()
        self.objects = Objects.open(self.path)
        self.readonly = self.objects.readonly  # a CI cache mounted read-only: it still serves what it holds
        if not self.readonly:
            with self.writing():
                self._setup()
            self.sweep()

    def sweep(self, min_age: float = 60) -> int:
        """Delete the temporary files of writers that died before their rename (see `sweep`): runs when a Store
        opens; returns the count."""
        return self.objects.sweep(min_age)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        return writing(self.path / "index.sqlite")

    def _setup(self) -> None:
        setup(self.db, self.close)

    @property
    def engine(self) -> Renderer:
        """What renders this store's images (`hcti_build.renderer.Renderer`): the one given, else the default
        (the process-wide Chromium engine)."""
        if self._engine is None:
            self._engine = default_renderer()
        return self._engine

    def db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path / "index.sqlite", readonly=self.readonly)
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- ids --------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """The renderer's version + the render version, without a launch: read once per Store, and kept in the
        index by the renderer's `version_key` (Chromium's path, size and mtime) so a new process does not run
        `--version` again."""
        if self._fingerprint is None:
            self._fingerprint = self._read_fingerprint()
        return self._fingerprint

    def _read_fingerprint(self) -> str:
        key = self.engine.version_key()
        row = self.db().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        version = str(row[0]) if row else self.engine.version()
        if not row:
            with contextlib.suppress(WriteError), self.writing():  # a cache: a read-only store runs --version again
                self.db().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, version))
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
        row = self.db().execute("SELECT files FROM manifests WHERE request_key=?", (key,)).fetchone()
        return parse_manifest(row[0]) if row else None

    def lookup_key(self, key: str) -> str | None:
        """`lookup` by `request_key`: the files the request's last render read are checked (and those it missed
        are still missing), then the object."""
        manifest = self._manifest(key)
        if manifest is None:
            return None
        read, missing = manifest
        files = self._digests.current(read)
        if files is None or self._digests.any_exists(missing):
            return None
        image_id = image_id_of(key, files)
        hit = self.db().execute("SELECT size, read_at FROM images WHERE id=? AND deleted_at IS NULL", (image_id,)).fetchone()
        try:
            if not hit or self.objects.master(image_id).stat().st_size != hit[0]:
                return None
        except OSError:
            return None
        self._touch(image_id, hit[1])
        return image_id

    def _touch(self, image_id: str, read_at: float | None) -> None:
        """The image's last read time, for `hcti store prune --unused-since`; best effort (a read-only store
        still answers lookups)."""
        now = time.time()
        if read_at is None or now - read_at > READ_AT_STEP:
            with contextlib.suppress(WriteError), self.writing(), self.db() as db:
                db.execute("UPDATE images SET read_at=? WHERE id=?", (now, image_id))

    def inputs(self, options: CreateOptions, *, base: str = "") -> list[str]:
        """The local files (root-relative) the last render of this request read: stylesheets, fonts, images."""
        manifest = self._manifest(self._request_key(options, document_base(base)))
        return manifest[0] if manifest else []

    def url(self, image_id: str) -> str:
        """Where the image is on this machine: its master's file URL (`hcti serve` answers with its own)."""
        return self.objects.master(image_id).as_uri()

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
        hit = self.lookup_key(key) or self._from_remote(key, opts, base)
        return (hit, False) if hit else (self._render(opts, key, base), True)

    @property
    def concurrency(self) -> int:
        """Threads worth running `ensure` on: the engine's pages, more with a remote (its reads wait on the
        network, not on a page)."""
        return self.engine.pool_size if self.remote is None else max(16, self.engine.pool_size)

    # -- the remote tier --------------------------------------------------------------------------
    def remote_mark(self) -> int:
        """Images fetched from the remote so far: give it back to `remote_note` after a run."""
        return self.remote.report.fetched if self.remote else 0

    def remote_note(self, mark: int) -> str:
        """`` (N from <remote>)`` for a summary line, or "" without a remote."""
        return self.remote.since(mark) if self.remote else ""

    def _from_remote(self, key: str, opts: CreateOptions, base: str) -> str | None:
        """A local miss asked of the remote: the files its record names hashed here (so inputs that differ
        give another id), then the image fetched, checked and kept as if rendered here. When the record's
        image is this id, the record has what the check needs, and the metadata is not read."""
        known = self.remote.request(key) if self.remote else None
        if known is None:
            return None
        files = self._digests.current(known.read)
        if files is None or self._digests.any_exists(known.missing):
            return None
        image_id = image_id_of(key, files)
        meta = known.meta(image_id, opts.to_dict(), base, self.fingerprint())
        manifest = (key, manifest_text(known.read, known.missing))
        return image_id if self._adopt(image_id, meta, manifest) else None

    def _adopt(self, image_id: str, meta: Meta | None = None, manifest: tuple[str, str] | None = None) -> bool:
        """The remote's copy of an image (checked against its sha256) written to this store, with its row (and
        the manifest of the request that asked for it)."""
        got = self.remote.fetch(image_id, meta) if self.remote and not self.readonly else None
        if got is None:
            return False
        data, meta = got
        self.objects.write(self.objects.master(image_id), data)
        self._record(meta, manifest, revive=manifest is not None)
        return True

    def _record(
        self, meta: Meta, manifest: tuple[str, str] | None = None, *, rendered: bool = False, revive: bool = True
    ) -> None:
        """An image's row, with the manifest of the request that made it and a render counted for usage: one
        commit. ``revive``: a deleted image made live again (a request for it); else its tombstone wins (a copy
        that another store of the remote still lists)."""
        row = {**meta.__dict__, "params": canonical(meta.params), "root": portable_root(self.root, self.path)}
        with self.writing(), self.db() as db:
            db.execute("BEGIN IMMEDIATE")
            if manifest:
                db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?)", manifest)
            record_image(db, row, revive=revive)
            if rendered:
                db.execute("INSERT INTO renders VALUES (?, ?)", (meta.created_at, meta.id))

    def _sync_remote(self) -> None:
        """Rows for the images the remote has and this store never saw (their bytes are fetched when read), so
        a server on an empty store lists what its fleet made; at most once every SYNC_EVERY seconds (listing a
        bucket costs its size, and a gallery asks for its first page on every visit)."""
        if self.remote is None or self.readonly or time.monotonic() - self._synced < SYNC_EVERY:
            return
        self._synced = time.monotonic()
        for meta in self.remote.metas(exclude={row[0] for row in self.db().execute("SELECT id FROM images")}):
            self._record(meta, revive=False)

    def _render(self, opts: CreateOptions, key: str, base: str) -> str:
        self.objects.writable()
        cap = self.engine.render(opts, self.root, base, private=(self.path,))
        files = {n: hashlib.sha256(d).hexdigest() for n, d in cap.files.items()}
        image_id = image_id_of(key, files)
        obj = self.objects.master(image_id)
        if not self.objects.write(obj, cap.png, replace=False):
            existing = self.objects.checked(obj, self._indexed_sha(image_id))
            if existing is None:
                self.objects.write(obj, cap.png)  # the existing copy is stray or corrupt: replace it
            else:
                cap.png = existing
        meta = Meta(
            image_id, hashlib.sha256(cap.png).hexdigest(), len(cap.png), cap.width, cap.height,
            opts.to_dict(), base, self.fingerprint(), time.time(),
        )  # fmt: skip
        self._record(meta, (key, manifest_text(files, cap.missing)), rendered=True)
        if self.remote is not None:
            self.remote.publish(key, sorted(files), sorted(cap.missing), cap.png, meta)
        return image_id

    def _indexed_sha(self, image_id: str) -> str | None:
        row = self.db().execute("SELECT sha256 FROM images WHERE id=?", (image_id,)).fetchone()
        return row[0] if row else None

    def _row(self, image_id: str, columns: str = "params, root, sha256, base") -> tuple[Any, ...]:
        """``columns`` of a live image: 404 for an unknown id, 410 for a deleted one."""
        valid_id(image_id)
        query = f"SELECT deleted_at, {columns} FROM images WHERE id=?"
        row = self.db().execute(query, (image_id,)).fetchone()
        if row is None and self._adopt(image_id):  # made by another store sharing the remote
            row = self.db().execute(query, (image_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"Image not found: {image_id}")
        if row[0] is not None:
            raise GoneError(f"Image {image_id} was deleted")
        return tuple(row[1:])

    def digest(self, image_id: str) -> str:
        """The sha256 the master PNG's bytes must have (what `get` checks them against), without reading them."""
        return str(self._row(image_id, "sha256")[0])

    def known_digest(self, image_id: str, query: ImageQuery) -> str | None:
        """The sha256 `read(image_id, query)` would answer with, as the index records it, without reading a byte
        (a conditional GET's answer); 404 and 410 as `read`, None for a variant not derived yet."""
        if query.is_identity:
            return self.digest(image_id)
        self._row(image_id, "sha256")
        row = self.db().execute("SELECT sha256 FROM variants WHERE id=? AND key=?", (image_id, self._variant_key(query)))
        return next((str(r[0]) for r in row), None)

    def master(self, image_id: str) -> bytes:
        """The master PNG, its hash checked; a corrupt or missing object is rendered again, never served."""
        return self._master(image_id)[0]

    def _master(self, image_id: str) -> tuple[bytes, str]:
        params, root, sha, base, read_at = self._row(image_id, "params, root, sha256, base, read_at")
        obj = self.objects.master(image_id)
        data = self.objects.checked(obj, sha)
        if data is not None:
            self._touch(image_id, read_at)
            return data, sha
        if self._adopt(image_id):  # a runner that listed the image before reading it, or a damaged local copy
            return self._master(image_id)
        self.objects.writable()
        opts = CreateOptions.from_mapping(json.loads(params))
        cap = self.engine.render(opts, render_root(self.path, root, self.root), base, private=(self.path,))
        self.objects.write(obj, cap.png)
        sha = hashlib.sha256(cap.png).hexdigest()
        with self.writing(), self.db() as db:
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
        row = self.db().execute("SELECT sha256 FROM variants WHERE id=? AND key=?", (image_id, key)).fetchone()
        data = self.objects.checked(path, row[0]) if row else None
        if data is not None:
            return data, row[0]
        if q.format == "pdf" and not q.has_crop and q.width is None and q.height is None:
            opts = CreateOptions.from_mapping(json.loads(params))
            data = self.engine.pdf(opts, render_root(self.path, root, self.root), base, private=(self.path,))
        else:
            # Pillow is imported on first use, not with the package: a site build whose cards are all PNG store
            # hits never needs it, and loading it costs (docs/performance.md).
            from . import imaging

            data = imaging.apply(self.master(image_id), q)
        sha = hashlib.sha256(data).hexdigest()
        if self.readonly:  # derived, served, not kept
            return data, sha
        self.objects.write(path, data)
        with self.writing(), self.db() as db:
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
        return self.objects.master(image_id) if query.is_identity else self._variant(image_id, query)

    @staticmethod
    def _variant_key(q: ImageQuery) -> str:
        pdf = "pdf2" if q.format == "pdf" else ""  # a snippet's PDF became one page of its box (#30): not the old ones
        return hashlib.sha256((q.cache_key() + pdf).encode()).hexdigest()[:24]

    def _variant(self, image_id: str, q: ImageQuery) -> Path:
        return self.objects.variant(image_id, self._variant_key(q), q.format)

    def list(self, count: int = 50, page_token: str | None = None) -> dict[str, Any]:
        """GET /v1/images: newest first, at most 50 a page, keyset paging through ``page_token``."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise BadRequestError("count must be an integer between 1 and 50", param="count")
        if not page_token:
            self._sync_remote()
        rows, token = page_of(self.db(), count, page_token)
        more = token is not None
        images = [{"id": i, "url": self.url(i), "created_at": _iso(t)} for i, t in rows]
        return {"images": images, "next_page_token": token, "has_next_page": more}

    def delete(self, image_id: str) -> None:
        """DELETE /v1/image/:id: every copy removed; a later get is 410."""
        self._row(image_id)
        self.objects.writable()
        with self.writing(), self.db() as db:
            db.execute("UPDATE images SET deleted_at=? WHERE id=?", (time.time(), image_id))
            db.execute("DELETE FROM variants WHERE id=?", (image_id,))
        if self.remote is not None:
            self.remote.delete(image_id)
        self.objects.remove(image_id)

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
        with concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="hcti-batch") as pool:
            # Each render runs in the caller's context, so a CancelToken the caller holds reaches them all.
            futures = [pool.submit(contextvars.copy_context().run, self.create, o) for o in options]
            return [f.result() for f in futures]

    def usage(self) -> dict[str, Any]:
        """GET /v1/usage: renders rolled up by hour, day and month (UTC)."""
        return {"data": usage_of(self.db()), "per_billing_period": []}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
