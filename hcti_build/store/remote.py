"""The store's remote tier: a copy of its masters on object storage that CI runners and servers share.

A remote is named by a URL: ``s3://bucket/prefix`` (AWS S3 and S3-compatible services: MinIO, R2, Ceph),
``gs://bucket/prefix``, ``az://container/prefix`` or ``file:///shared/folder``, from HCTI_REMOTE, else a
plugin option, else ``remote`` in ``[tool.hcti]`` / ``hcti.toml``. Credentials and endpoints come from each
service's own environment variables, read by obstore (the Rust object_store bindings). Under the prefix:

    requests/<request key>.json   the files the request's last render read: a runner hashes them itself to
                                  find the id, so an id is trusted only if its inputs match here
    images/<id>.png               a master; never changed once written
    images/<id>.json              beside it: sha256, size, width, height, format, canonical params, base, engine

Objects are written create-only (put-if-absent), so runners uploading at once never overwrite each other and
the first writer wins. Everything read back is untrusted input (`hcti_build.bucket`): records and metadata are
checked field by field, sizes before and while bytes are read, masters against their sha256, and a malformed
object is a miss (one warning for the first), never an error.

`Remote` owns obstore: its errors are translated once (`_translated`) into a RemoteError with a short reason.
`RemoteTier` owns the policy: the first failure turns the remote off for the rest of the store's life, with
one warning naming it and the reason (or an error under HCTI_REMOTE_REQUIRED=1), so an unreachable, slow,
denied or full remote never breaks a build; HCTI_REMOTE_READONLY=1 reads without writing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from ..config import config_value
from ..errors import BadRequestError, RemoteError
from .bucket import MAX_RECORD_BYTES, Known, Malformed, Meta, max_master_bytes, max_meta_bytes, said
from .ids import is_id

log = logging.getLogger("hcti_build.remote")
T = TypeVar("T")
SCHEMES = ("s3", "gs", "az", "file")
# Bounded so a slow or unreachable remote costs seconds, once: the tier is off after its first failure.
CLIENT_OPTIONS = {"timeout": "20s", "connect_timeout": "3s"}
RETRIES = {"max_retries": 2, "retry_timeout": timedelta(seconds=10)}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def configured_remote(option: str | None = None, start: Path | None = None) -> str | None:
    """The remote to use: HCTI_REMOTE, else ``option`` (a plugin's), else ``remote`` in the configuration;
    HCTI_REMOTE set to an empty string turns a configured remote off."""
    if "HCTI_REMOTE" in os.environ:
        return os.environ["HCTI_REMOTE"].strip() or None
    if option:
        return option
    found = config_value("remote", start)
    return found[0] if found else None


def remote_tier(
    url: str | None,
    start: Path | None = None,
    warn: Callable[[str], object] | None = None,
    *,
    option: str | None = None,
) -> RemoteTier | None:
    """The tier for ``url`` ("" for none), or when None for the configured remote (`configured_remote`, with a
    host's ``option``)."""
    chosen = configured_remote(option, start) if url is None else url
    return RemoteTier(chosen, warn=warn) if chosen else None


class Remote:
    """One object store, by URL: get, create-only put, list and delete, every obstore error translated here."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._store = _open(self.url)
        # A shared folder is a bucket anyone with write access may fill: objects are its own files only, never a
        # symlink (or a folder that is one) to somewhere else (`_own`).
        parts = urlsplit(self.url)
        self._folder = Path(unquote(parts.path)).resolve() if parts.scheme == "file" else None

    def _own(self, name: str) -> bool:
        """Whether ``name`` is an object of this remote: always in a bucket; in a shared folder, a file reached
        without following a symlink."""
        if self._folder is None:
            return True
        path = self._folder / name
        return os.path.realpath(path) == str(path)

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """obstore's errors, once: a missing object is FileNotFoundError, an existing one on a create-only put
        is FileExistsError, anything else a RemoteError naming the remote and the reason."""
        import obstore.exceptions as ox

        try:
            yield
        except (FileNotFoundError, ox.NotFoundError) as exc:
            raise FileNotFoundError(what) from exc
        except (ox.AlreadyExistsError, ox.PreconditionError) as exc:
            raise FileExistsError(what) from exc
        except (ox.PermissionDeniedError, ox.UnauthenticatedError) as exc:
            raise RemoteError(f"remote {self.url}: access denied ({what}); check its credentials") from exc
        except (ox.BaseError, OSError) as exc:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise RemoteError(f"remote {self.url}: {what} failed: {reason}") from exc

    def get(self, name: str, limit: int) -> bytes:
        """An object's bytes; Malformed when it is over ``limit`` bytes, which is checked before and while they are
        read (a size the listing or the store's headers say can be a lie)."""
        import obstore

        if not self._own(name):
            raise Malformed(f"{name} is a symlink, not a file of the shared folder")
        with self._translated(f"reading {name}"):
            result = obstore.get(self._store, name)
            if int(result.meta["size"]) > limit:
                raise Malformed(f"{name} is over {limit} bytes")
            data = bytearray()
            for chunk in result.stream(min_chunk_size=1 << 20):
                data += chunk
                if len(data) > limit:
                    raise Malformed(f"{name} is over {limit} bytes")
            return bytes(data)

    def put(self, name: str, data: bytes, *, create: bool = True) -> None:
        import obstore

        if not self._own(name):
            raise RemoteError(f"remote {self.url}: {name} leads out of the shared folder (a symlink); not written")
        with self._translated(f"writing {name}"):
            obstore.put(self._store, name, data, mode="create" if create else "overwrite")

    def delete(self, name: str) -> None:
        import obstore

        if not self._own(name):
            return  # what a symlink leads to is not the remote's to delete
        with contextlib.suppress(FileNotFoundError), self._translated(f"deleting {name}"):
            obstore.delete(self._store, name)

    def meta(self, image_id: str) -> Meta | None:
        """An image's metadata, checked (`Meta.parse`): None when there is none; Malformed when it is not ours."""
        try:
            return Meta.parse(self.get(f"images/{image_id}.json", max_meta_bytes()), image_id)
        except FileNotFoundError:
            return None

    def metas(self, exclude: Collection[str] = (), malformed: Callable[[str, str], object] = lambda *_: None) -> list[Meta]:
        """The metadata of every image here but ``exclude``, read a few at a time. An object deleted between the
        listing and its read is left out; one that is not ours is left out and told to ``malformed``."""
        names = [n for n, _, _ in self.entries("images") if n.endswith(".json")]
        ids = [i for i in (Path(n).stem for n in names) if is_id(i) and i not in exclude]

        def read(image_id: str) -> Meta | None:
            try:
                return self.meta(image_id)
            except Malformed as exc:
                malformed(f"images/{image_id}.json", str(exc))
                return None

        with concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="hcti-remote") as pool:
            return [m for m in pool.map(read, ids) if m is not None]

    def entries(self, prefix: str) -> list[tuple[str, int, datetime]]:
        """(name, size, last modified) of every object under ``prefix``."""
        import obstore

        with self._translated(f"listing {prefix}"):
            found = [(m["path"], m["size"], m["last_modified"]) for chunk in obstore.list(self._store, prefix) for m in chunk]
        return [entry for entry in found if self._own(entry[0])]


def _open(url: str) -> Any:
    """The obstore store for ``url``, with bounded timeouts and retries; a URL it cannot take is a 400 naming
    the parameter."""
    try:
        from obstore.store import LocalStore, from_url
    except ImportError:
        raise RemoteError(f"remote {url} needs obstore: pip install 'hcti-build[remote]'") from None
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or (parts.scheme != "file" and not parts.netloc):
        raise BadRequestError(
            f"remote must be a URL like s3://bucket/prefix, gs://bucket, az://container or file:///folder, not {url!r}",
            param="remote",
        )
    if parts.scheme == "file":
        return LocalStore(Path(unquote(parts.path)), mkdir=True)
    options: dict[str, Any] = dict(CLIENT_OPTIONS)
    if _flag("AWS_ALLOW_HTTP"):  # an S3-compatible endpoint over plain http (MinIO, moto in tests)
        options["allow_http"] = True
    try:
        return from_url(url, client_options=options, retry_config=RETRIES)  # type: ignore[call-overload]
    except Exception as exc:  # noqa: BLE001  obstore's configuration errors have no common base to name
        raise BadRequestError(f"remote {url}: {exc}", param="remote") from None


@dataclass
class TierReport:
    """What the remote did for a store: images fetched and uploaded, corrupt copies found, and
    why it was turned off (the one warning), if it was."""

    name: str
    fetched: int = 0
    uploaded: int = 0
    corrupt: int = 0
    malformed: int = 0  # objects that are not what this project writes (left alone, read as misses)
    failure: str | None = None
    readonly: bool = False


class RemoteTier:
    """A store's remote, with the policy: first failure warns once and turns it off (or raises when required)."""

    def __init__(
        self,
        url: str,
        *,
        required: bool | None = None,
        readonly: bool | None = None,
        warn: Callable[[str], object] | None = None,
    ) -> None:
        """``warn`` is the host's warning channel (MkDocs' or Sphinx's logger); default this module's logger.
        ``required`` and ``readonly`` default to HCTI_REMOTE_REQUIRED and HCTI_REMOTE_READONLY."""
        self.remote = Remote(url)
        self.warn = warn or log.warning
        self.required = _flag("HCTI_REMOTE_REQUIRED") if required is None else required
        self.report = TierReport(url, readonly=_flag("HCTI_REMOTE_READONLY") if readonly is None else readonly)
        self._lock = threading.Lock()
        self._corrupt: set[str] = set()
        self._seen: dict[str, str] = {}  # request key -> what the remote's record said (`Known.said`)

    @property
    def name(self) -> str:
        return self.remote.url

    @property
    def on(self) -> bool:
        return self.report.failure is None

    def since(self, mark: int) -> str:
        """`` (N from <remote>)``: images fetched since ``mark`` (an earlier ``report.fetched``), for summaries."""
        return f" ({self.report.fetched - mark} from {self.name})"

    def _guarded(self, fn: Callable[[], T], default: T) -> T:
        """``fn`` unless the remote is off; its first failure turns it off with one warning (or raises)."""
        if not self.on:
            return default
        try:
            return fn()
        except RemoteError as exc:
            if self.required:
                raise RemoteError(f"{exc.message} (HCTI_REMOTE_REQUIRED is set)") from exc
            with self._lock:
                first = self.report.failure is None
                self.report.failure = exc.message
            if first:
                self.warn(f"{exc.message}; going on with the local store only")
            return default

    def _malformed(self, name: str, why: str) -> None:
        """An object that is not ours: a miss, counted; the first one is said once (the tier stays on: the rest of
        the bucket may be fine)."""
        with self._lock:
            first = self.report.malformed == 0
            self.report.malformed += 1
        log.info("remote %s: %s is not an object of hcti-build's (%s); ignored", self.name, name, why)
        if first:
            self.warn(f"remote {self.name}: {name} is not an object of hcti-build's ({why}); ignoring it and any like it")

    def _read(self, name: str, parse: Callable[[], T]) -> T | None:
        """``parse()`` of an object, None when it is missing or malformed (said by `_malformed`)."""
        try:
            return parse()
        except FileNotFoundError:
            return None
        except Malformed as exc:
            self._malformed(name, str(exc))
            return None

    def _count(self, **added: int) -> None:
        with self._lock:
            for name, n in added.items():
                setattr(self.report, name, getattr(self.report, name) + n)

    # -- reading ----------------------------------------------------------------------------------
    def request(self, key: str) -> Known | None:
        """What the remote knows of a request: the files its last render read and missed, and what that render
        made (so a runner whose files hash the same needs no metadata read); None on a miss."""
        name = f"requests/{key}.json"

        def read() -> Known | None:
            known = self._read(name, lambda: Known.parse(self.remote.get(name, MAX_RECORD_BYTES)))
            if known is not None:
                with self._lock:
                    self._seen[key] = known.said()
            return known

        return self._guarded(read, None)

    def meta(self, image_id: str) -> Meta | None:
        name = f"images/{image_id}.json"
        return self._guarded(lambda: self._read(name, lambda: self.remote.meta(image_id)), None)

    def fetch(self, image_id: str, meta: Meta | None = None) -> tuple[bytes, Meta] | None:
        """A master and its metadata, its size checked before and while it is read and its bytes against their
        sha256; a copy that fails the check is a miss, and is replaced when this store renders the image again."""
        meta = meta or self.meta(image_id)
        if meta is None:
            return None
        name, limit = f"images/{image_id}.png", min(meta.size, max_master_bytes())

        def read() -> bytes | None:
            try:
                return self.remote.get(name, limit)
            except FileNotFoundError:
                return None
            except Malformed:  # longer than its metadata says: a corrupt copy
                return b""

        data = self._guarded(read, None)
        if data is None:
            return None
        if len(data) != meta.size or hashlib.sha256(data).hexdigest() != meta.sha256:
            self.warn(f"remote {self.name}: {image_id} does not match its sha256; rendering it again")
            with self._lock:
                self._corrupt.add(image_id)
            self._count(corrupt=1)
            return None
        self._count(fetched=1)
        return data, meta

    # -- writing ----------------------------------------------------------------------------------
    def publish(self, key: str, read: list[str], missing: list[str], data: bytes, meta: Meta) -> None:
        """A fresh render uploaded: the master, then its metadata, then the request's record (so a reader that
        finds the record finds the rest), each create-only unless the remote's copy was found bad, or its
        record names other files or another image (inputs changed since)."""
        if self.report.readonly:
            return
        with self._lock:
            replace = meta.id in self._corrupt
            seen = self._seen.get(key)
        stale = replace or (seen is not None and seen != said(read, missing, meta.id))

        def write() -> None:
            sent = self._put(f"images/{meta.id}.png", data, replace)
            self._put(f"images/{meta.id}.json", meta.dumps(), replace)
            # What this render made, only if its bytes are the ones stored: another runner's may differ.
            made = {k: getattr(meta, k) for k in ("id", "sha256", "size", "width", "height")} if sent else {}
            record = {"read": sorted(read), "missing": sorted(missing), "made": made}
            self._put(f"requests/{key}.json", json.dumps(record, sort_keys=True).encode(), stale)
            self._count(uploaded=int(sent))

        self._guarded(write, None)
        with self._lock:
            self._corrupt.discard(meta.id)

    def _put(self, name: str, data: bytes, replace: bool) -> bool:
        """True if written; an object another runner wrote first is left as it is (the first writer wins)."""
        try:
            self.remote.put(name, data, create=not replace)
            return True
        except FileExistsError:
            return False

    def delete(self, image_id: str) -> None:
        """The remote's copy of an image gone (the API's DELETE means every copy)."""
        if self.report.readonly:
            return

        def remove() -> None:
            self.remote.delete(f"images/{image_id}.png")
            self.remote.delete(f"images/{image_id}.json")

        self._guarded(remove, None)

    def metas(self, exclude: Collection[str]) -> list[Meta]:
        """The metadata of every image the remote has but ``exclude``."""
        return self._guarded(lambda: self.remote.metas(exclude, self._malformed), [])
