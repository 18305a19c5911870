"""The store's object files on disk: where a master and its derived variants live, writing them atomically,
reading them back only when their bytes still have the hash the index records, and removing an image's files.

    objects/<id[:2]>/<id>.png               the master
    objects/<id[:2]>/<id>/<query key>.<fmt>  a variant derived from it (resized, cropped, another format)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .files import atomic_write, sweep
from .ids import is_id, valid_id


class Objects:
    """The object files of one store. Every path is made from an id checked to be one (`valid_id`: a 404
    otherwise), whoever gave it (a client, the index, a bucket): no id names a file outside ``folder``."""

    def __init__(self, folder: Path, tmp: Path) -> None:
        self.folder, self.tmp = folder, tmp

    def master(self, image_id: str) -> Path:
        valid_id(image_id)
        return self.folder / f"{image_id[:2]}/{image_id}.png"  # one join: a warm site build makes one per card

    def variant(self, image_id: str, key: str, fmt: str) -> Path:
        valid_id(image_id)
        return self.folder / f"{image_id[:2]}/{image_id}/{key}.{fmt}"

    def write(self, path: Path, data: bytes, *, replace: bool = True) -> bool:
        """``data`` at ``path``, never half-written; False if ``replace`` is off and the path exists."""
        return atomic_write(path, data, replace=replace, tmp_dir=self.tmp)

    @staticmethod
    def checked(path: Path, sha256: str | None) -> bytes | None:
        """The file's bytes if they hash to ``sha256``; None if missing, unreadable or damaged."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def files(self, image_id: str) -> list[tuple[Path, int]]:
        """An image's master and variants that are on disk, with their sizes (none for a name that is not an id)."""
        if not is_id(image_id):
            return []
        master = self.master(image_id)
        found = []
        for f in (master, *master.with_suffix("").glob("*")):
            try:
                found.append((f, f.stat().st_size))
            except OSError:
                pass
        return found

    def remove(self, image_id: str) -> int:
        """An image's master and variants deleted; the bytes freed (none for a name that is not an id)."""
        files = self.files(image_id)
        if not is_id(image_id):
            return 0
        for f, _ in files:
            f.unlink(missing_ok=True)
        folder = self.master(image_id).with_suffix("")
        if folder.is_dir():
            folder.rmdir()
        return sum(size for _, size in files)

    def sweep(self, min_age: float) -> int:
        return sweep(self.tmp, min_age=min_age)
