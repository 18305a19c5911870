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
the first writer wins; what comes back is checked against its sha256 before anything uses it.

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
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from .config import config_value
from .errors import BadRequestError, RemoteError
from .ids import is_id, parse_manifest

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


@dataclass
class Meta:
    """What is kept beside a remote master: enough for a runner with an empty store to serve, list and derive."""

    id: str
    sha256: str
    size: int
    width: int
    height: int
    params: dict[str, Any]
    base: str
    engine: str
    created_at: float
    format: str = "png"

    @classmethod
    def parse(cls, data: bytes) -> Meta | None:
        try:
            raw = json.loads(data)
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        except (ValueError, TypeError, KeyError):
            return None

    def dumps(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


@dataclass
class Known:
    """A request as the remote knows it: the files its last render read and missed, and ``made``: the id,
    sha256, size, width and height of the image that render stored (empty if unknown)."""

    read: list[str]
    missing: list[str]
    made: dict[str, Any]

    def meta(self, image_id: str, params: dict[str, Any], base: str, engine: str) -> Meta | None:
        """The metadata of ``image_id`` if it is the image the record names (else None: read it)."""
        if self.made.get("id") != image_id:
            return None
        try:
            made = {k: self.made[k] for k in ("sha256", "size", "width", "height")}
            return Meta(image_id, **made, params=params, base=base, engine=engine, created_at=time.time())
        except (KeyError, TypeError):
            return None


def _said(read: list[str], missing: list[str], image_id: str | None) -> str:
    """What a request's record says, to compare with what a render found: its files, and its image."""
    return json.dumps([sorted(read), sorted(missing), image_id])


def _made(data: bytes) -> dict[str, Any]:
    try:
        made = json.loads(data).get("made") or {}
        return made if is_id(made.get("id")) and isinstance(made.get("sha256"), str) else {}
    except (ValueError, AttributeError):
        return {}


class Remote:
    """One object store, by URL: get, create-only put, list and delete, every obstore error translated here."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._store = _open(self.url)

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

    def get(self, name: str) -> bytes:
        import obstore

        with self._translated(f"reading {name}"):
            return bytes(obstore.get(self._store, name).bytes())

    def put(self, name: str, data: bytes, *, create: bool = True) -> None:
        import obstore

        with self._translated(f"writing {name}"):
            obstore.put(self._store, name, data, mode="create" if create else "overwrite")

    def delete(self, name: str) -> None:
        import obstore

        with contextlib.suppress(FileNotFoundError), self._translated(f"deleting {name}"):
            obstore.delete(self._store, name)

    def metas(self, exclude: Collection[str] = ()) -> list[Meta]:
        """The metadata of every image here but ``exclude``, read a few at a time."""
        names = [n for n, _, _ in self.entries("images") if n.endswith(".json")]
        ids = [i for i in (Path(n).stem for n in names) if is_id(i) and i not in exclude]
        with concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="hcti-remote") as pool:
            found = pool.map(lambda i: Meta.parse(self.get(f"images/{i}.json")), ids)
            return [m for m in found if m is not None]

    def entries(self, prefix: str) -> list[tuple[str, int, datetime]]:
        """(name, size, last modified) of every object under ``prefix``."""
        import obstore

        with self._translated(f"listing {prefix}"):
            return [(m["path"], m["size"], m["last_modified"]) for chunk in obstore.list(self._store, prefix) for m in chunk]


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
        self._seen: dict[str, str] = {}  # request key -> what the remote's record said (`_said`)

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

    def _count(self, **added: int) -> None:
        with self._lock:
            for name, n in added.items():
                setattr(self.report, name, getattr(self.report, name) + n)

    # -- reading ----------------------------------------------------------------------------------
    def request(self, key: str) -> Known | None:
        """What the remote knows of a request: the files its last render read and missed, and what that render
        made (so a runner whose files hash the same needs no metadata read); None on a miss."""

        def read() -> Known | None:
            try:
                data = self.remote.get(f"requests/{key}.json")
            except FileNotFoundError:
                return None
            manifest = parse_manifest(data)
            if manifest is None:
                return None
            made = _made(data)
            with self._lock:
                self._seen[key] = _said(*manifest, made.get("id"))
            return Known(*manifest, made)

        return self._guarded(read, None)

    def meta(self, image_id: str) -> Meta | None:
        def read() -> Meta | None:
            try:
                meta = Meta.parse(self.remote.get(f"images/{image_id}.json"))
            except FileNotFoundError:
                return None
            return meta if meta is not None and meta.id == image_id else None

        return self._guarded(read, None)

    def fetch(self, image_id: str, meta: Meta | None = None) -> tuple[bytes, Meta] | None:
        """A master and its metadata, its bytes checked against their sha256; a copy that fails the check is a
        miss, and is replaced when this store renders the image again."""
        meta = meta or self.meta(image_id)
        if meta is None:
            return None

        def read() -> bytes | None:
            try:
                return self.remote.get(f"images/{image_id}.png")
            except FileNotFoundError:
                return None

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
        stale = replace or (seen is not None and seen != _said(read, missing, meta.id))

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
        return self._guarded(lambda: self.remote.metas(exclude), [])
