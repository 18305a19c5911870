"""Store maintenance, which a cache that grows with every Chromium upgrade needs: `hcti store stats`, `prune`
and `verify`, on the local store and (``remote=True``) on its remote.

Pruning is eviction, not the API's DELETE: a pruned image's row goes with its files, so a build renders it
again (or fetches it from the remote) and a GET answers 404 instead of 410. On the remote, errors are errors
(`RemoteError`): maintenance is asked for, so a remote that cannot be reached must not pass for an empty one.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequestError, HctiError
from .bucket import Malformed
from .ids import is_id
from .remote import Remote
from .store import Store

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str, param: str) -> float:
    """``30d``, ``12h``, ``90m`` or ``2w`` in seconds; anything else a 400 naming the option."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        raise BadRequestError(f"{param} must be a number of minutes, hours, days or weeks, like 30d, 12h, 90m or 2w", param=param)
    return int(text[:-1]) * _UNITS[text[-1]]


def _engine_name(fingerprint: str | None) -> str:
    """The browser and version out of an engine fingerprint (``<--version's output>|hcti-render-N``):
    "Chromium 156.0.8078.114", without the full browser's "built on Debian ..."."""
    version = (fingerprint or "").split("|")[0]
    found = re.match(r".*?\d+(?:\.\d+){3}", version)
    return found[0] if found else version or "unknown"


@dataclass
class Stats:
    where: str
    objects: int = 0
    bytes: int = 0
    oldest: float | None = None
    by_engine: dict[str, list[int]] = field(default_factory=dict)  # Chromium version -> [objects, bytes]

    def add(self, engine: str | None, size: int, created: float) -> None:
        self.objects += 1
        self.bytes += size
        self.oldest = created if self.oldest is None else min(self.oldest, created)
        counts = self.by_engine.setdefault(_engine_name(engine), [0, 0])
        counts[0] += 1
        counts[1] += size

    def to_json(self) -> dict[str, Any]:
        by = {k: {"objects": v[0], "bytes": v[1]} for k, v in sorted(self.by_engine.items())}
        oldest = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.oldest)) if self.oldest else None
        return {"where": self.where, "objects": self.objects, "bytes": self.bytes, "oldest": oldest, "by_chromium": by}


def stats(store: Store) -> Stats:
    """The local store's live masters (their variants' bytes counted with them), by Chromium version."""
    out = Stats(str(store.path))
    rows = store.db().execute("SELECT id, engine, size, created_at FROM images WHERE deleted_at IS NULL").fetchall()
    for image_id, engine, size, created in rows:
        out.add(engine, sum(n for _, n in store.objects.files(image_id)) or size or 0, created)
    return out


def remote_stats(remote: Remote) -> Stats:
    """The remote's masters, by Chromium version (read from each one's metadata)."""
    out = Stats(remote.url)
    for meta in remote.metas():
        out.add(meta.engine, meta.size, meta.created_at)
    return out


def prune(store: Store, *, older_than: float | None, unused_since: float | None, dry_run: bool = False) -> tuple[int, int]:
    """Local images made more than ``older_than`` seconds ago, or last read more than ``unused_since`` seconds
    ago, removed with their files: (images, bytes)."""
    now = time.time()
    clauses, args = [], []
    if older_than is not None:
        clauses.append("created_at < ?")
        args.append(now - older_than)
    if unused_since is not None:
        clauses.append("COALESCE(read_at, created_at) < ?")
        args.append(now - unused_since)
    if not clauses:
        raise BadRequestError("prune needs --older-than or --unused-since", param="older_than")
    db = store.db()
    ids = [r[0] for r in db.execute(f"SELECT id FROM images WHERE deleted_at IS NULL AND ({' OR '.join(clauses)})", args)]
    freed = 0
    for image_id in ids:
        if dry_run:
            freed += sum(size for _, size in store.objects.files(image_id))
            continue
        with store.writing(), db:
            db.execute("DELETE FROM images WHERE id=?", (image_id,))
            db.execute("DELETE FROM variants WHERE id=?", (image_id,))
        freed += store.objects.remove(image_id)
    return len(ids), freed


def prune_remote(remote: Remote, *, older_than: float, dry_run: bool = False) -> tuple[int, int]:
    """The remote's images (and request manifests) written more than ``older_than`` seconds ago: (images,
    bytes). Object stores keep no read times, so the remote is pruned by age only."""
    cutoff = time.time() - older_than
    listed = [*remote.entries("images"), *remote.entries("requests")]
    old = [(name, size) for name, size, modified in listed if modified.timestamp() < cutoff]
    if not dry_run:
        for name, _ in old:
            remote.delete(name)
    return sum(1 for n, _ in old if n.endswith(".png")), sum(size for n, size in old if n.endswith(".png"))


@dataclass
class Verified:
    where: str
    checked: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "checked": self.checked, **self.counts, "problems": self.problems}


def verify(store: Store) -> Verified:
    """Every live master re-hashed against the index; a damaged or missing one repaired (fetched from the remote
    or rendered again); a damaged variant dropped (derived again when next asked for)."""
    out = Verified(str(store.path))
    db = store.db()
    for image_id, sha in db.execute("SELECT id, sha256 FROM images WHERE deleted_at IS NULL").fetchall():
        out.checked += 1
        if not is_id(image_id):  # a row no store writes (an index edited, or filled from a bucket by an old version)
            with store.writing(), db:
                db.execute("DELETE FROM images WHERE id=?", (image_id,))
            out.counts["failed"] += 1
            out.problems.append(f"{str(image_id)[:60]!r}: not an id; its row removed")
            continue
        if store.objects.checked(store.objects.master(image_id), sha) is not None:
            out.counts["ok"] += 1
            continue
        try:
            store.master(image_id)
            out.counts["repaired"] += 1
            out.problems.append(f"{image_id}: damaged or missing; repaired")
        except HctiError as exc:
            out.counts["failed"] += 1
            out.problems.append(f"{image_id}: damaged or missing; not repaired: {exc.message}")
    for image_id, key, sha in db.execute("SELECT id, key, sha256 FROM variants").fetchall():
        found = [p for p in store.objects.master(image_id).with_suffix("").glob(f"{key}.*")]
        if not found or store.objects.checked(found[0], sha) is None:
            with store.writing(), db:
                db.execute("DELETE FROM variants WHERE id=? AND key=?", (image_id, key))
            for p in found:
                p.unlink(missing_ok=True)
            out.counts["variants_dropped"] += 1
    return out


def verify_remote(remote: Remote, store: Store) -> Verified:
    """Every remote master downloaded and re-hashed against its metadata; a damaged one replaced with this
    store's good copy, or removed (the next runner that needs it renders and uploads it)."""
    out = Verified(remote.url)
    for meta in remote.metas():
        out.checked += 1
        data = _get(remote, f"images/{meta.id}.png", meta.size)
        if data is not None and hashlib.sha256(data).hexdigest() == meta.sha256:
            out.counts["ok"] += 1
            continue
        local = store.objects.checked(store.objects.master(meta.id), meta.sha256)
        if local is not None:
            remote.put(f"images/{meta.id}.png", local, create=False)
            out.counts["replaced"] += 1
            out.problems.append(f"{meta.id}: damaged or missing on the remote; replaced from the local store")
        else:
            remote.delete(f"images/{meta.id}.png")
            remote.delete(f"images/{meta.id}.json")
            out.counts["removed"] += 1
            out.problems.append(f"{meta.id}: damaged or missing on the remote; removed (rendered again when needed)")
    return out


def _get(remote: Remote, name: str, size: int) -> bytes | None:
    """An object of ``size`` bytes as its metadata says; None when it is gone or longer."""
    try:
        return remote.get(name, size)
    except (FileNotFoundError, Malformed):
        return None
