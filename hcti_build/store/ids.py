"""What identifies an image, and nothing else: the request key (canonical creation parameters, the Chromium
fingerprint, the document's folder), the digests of the local files its render read (by root-relative name),
and the id made of both, a UUID version 8. Nothing here depends on an absolute path, a user, a clock or the
machine: a project copied elsewhere keeps its ids.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import stat
import uuid
from collections.abc import Iterable, Mapping, Sequence

from ..errors import BadRequestError, NotFoundError
from ..files import Tree, plain_name, settled

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # a UUID as str(UUID) writes it


def request_key(canonical: str, fingerprint: str, base: str = "") -> str:
    """The hash of a request before its files. Never the root itself: a project copied to another folder or
    machine is the same project (the files a render reads are keyed by their root-relative names and bytes).
    "v2": the keys of stores made before that named the root; their rows are misses now, rendered once more."""
    raw = f"v2\n{canonical}\n{fingerprint}"
    if base:  # relative URLs resolve from there: a different base may read different files
        raw += f"\n{base}"
    return hashlib.sha256(raw.encode()).hexdigest()


def image_id_of(key: str, files: Mapping[str, str]) -> str:
    """The id of a request's render: its key and the sha256 of each file it read, by name."""
    h = hashlib.sha256(key.encode())
    for name in sorted(files):
        h.update(f"\n{name}\0{files[name]}".encode())
    return _uuid8(h.digest())


def _uuid8(digest: bytes) -> str:
    b = bytearray(digest[:16])
    b[6] = (b[6] & 0x0F) | 0x80  # version 8
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(b)))


def is_id(value: object) -> bool:
    """Whether ``value`` is an id as stores write them."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def valid_id(image_id: str) -> str:
    """``image_id`` if it is an id as this store writes them, else a 404 (a long one is not echoed in full)."""
    if not is_id(image_id):
        shown = image_id[:60] + "..." if isinstance(image_id, str) and len(image_id) > 60 else image_id
        raise NotFoundError(f"Image not found: {shown!r}")
    return image_id


def document_base(base: str) -> str:
    """A document folder relative to the root, normalised; one that climbs out of the root is refused."""
    norm = posixpath.normpath(base.replace("\\", "/").strip("/")) if base.strip("/") else ""
    if norm in ("", "."):
        return ""
    if norm.startswith("../") or norm == ".." or posixpath.isabs(norm):
        raise BadRequestError(f"base must be a folder inside the root, got {base!r}", param="base")
    return norm


class FileDigests:
    """sha256 of files under a root, cached by (path, size, mtime_ns, inode): a store hit stats its inputs
    instead of reading them again (git's index does the same). Names come from the index or a remote, so each
    is held to the file rules (`Tree`) before it is read: a name they refuse is a miss, never a read."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._cache: dict[tuple[str, int, int, int], str] = {}

    def current(self, names: Sequence[str]) -> dict[str, str] | None:
        """Each file's digest by name, or None when one is gone or not allowed (the render that read it must run
        again)."""
        out = {}
        for name in names:
            found = self.tree.find(name)
            if found is None or found[0] != name:  # a render records names as the rules resolve them
                return None
            path = found[1]
            try:
                st = path.stat()
                if not stat.S_ISREG(st.st_mode):  # a FIFO or a device where a file was: reading it could hang
                    return None
                stamp = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
                digest = self._cache.get(stamp)
                if digest is None:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    if settled(st.st_mtime_ns):  # a stamp younger than the clock's tick may hide a rewrite
                        self._cache[stamp] = digest
            except OSError:
                return None
            out[name] = digest
        return out

    def any_exists(self, names: Sequence[str]) -> bool:
        """Whether a file a render asked for and missed is there now (its image is then stale)."""
        return any(self.tree.file(name) is not None for name in names)


def manifest_text(read: Iterable[str], missing: Iterable[str]) -> str:
    """A request's manifest (the root-relative files its render read, and those it asked for that were
    missing) as the index and a remote keep it: the same text in both, so a stale remote copy is seen."""
    return json.dumps({"read": sorted(read), "missing": sorted(missing)})


def parse_manifest(text: str | bytes) -> tuple[list[str], list[str]] | None:
    """`manifest_text` read back; None if damaged or if a name breaks the file rules (`plain_name`: outside the
    root, hidden, a NUL); a store's index is a file on disk, as untrusted as anything else there."""
    try:
        found = json.loads(text)
        read, missing = (found, []) if isinstance(found, list) else (found["read"], found["missing"])
        if not isinstance(read, list) or not isinstance(missing, list):
            return None
        names = [plain_name(n) for n in read], [plain_name(n) for n in missing]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if any(n is None for n in (*names[0], *names[1])):
        return None
    return [str(n) for n in names[0]], [str(n) for n in names[1]]
