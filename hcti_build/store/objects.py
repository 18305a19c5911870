"""The store's object files on disk: where a master and its derived variants live, writing them atomically,
reading them back only when their bytes still have the hash the index records, and removing an image's files.

    objects/<id[:2]>/<id>.png               the master
    objects/<id[:2]>/<id>/<query key>.<fmt>  a variant derived from it (resized, cropped, another format)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import WriteError
from ..files import atomic_write, sweep
from .ids import is_id, valid_id


class Objects:
    """The object files of one store. Every path is made from an id checked to be one (`valid_id`: a 404
    otherwise), whoever gave it (a client, the index, a bucket): no id names a file outside ``folder``."""

    def __init__(self, folder: Path, tmp: Path, *, readonly: bool = False) -> None:
        self.folder, self.tmp, self.readonly = folder, tmp, readonly

    @classmethod
    def open(cls, store: Path) -> Objects:
        """The object files of the store folder ``store``, its folders made if need be; ``readonly`` when it cannot
        be written (a CI cache mounted read-only), which still serves what it holds."""
        try:
            for folder in (store, store / "objects", store / "tmp"):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError.of(exc, store) from exc
        return cls(store / "objects", store / "tmp", readonly=not os.access(store, os.W_OK))

    def writable(self) -> None:
        """Before a write: a read-only store says so, in words, instead of failing half-way."""
        if self.readonly:
            raise WriteError(
                f"The store {self.folder.parent} is read-only: it serves the images it holds, but cannot keep a new "
                "one or delete one (use a writable store: --store or HCTI_STORE)"
            )

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


def portable_root(root: Path, store: Path) -> str:
    """A project's root as a store's index records it: relative to the store's folder, so that a store moved or
    copied with its project still finds the files to render a damaged image again (see `render_root`)."""
    try:
        return os.path.relpath(root, store)
    except ValueError:  # another drive (Windows): only an absolute path can name it
        return str(root)


def render_root(store: Path, recorded: str, fallback: Path) -> Path:
    """Where to render a stored image again: the root its row records (relative to the store's folder, or absolute
    in stores made before), else ``fallback`` (the store's own root) when that folder is gone (a moved store)."""
    root = (store / recorded).resolve()
    return root if root.is_dir() else fallback
