"""Files on disk: which ones may be read or written at all (`Tree`, the one set of file rules), and writing
them so that no reader ever sees half of one: atomic writes, hard links, the sweep of temporary files a killed
writer left, and reading text inputs as UTF-8 with errors that say where.

Every module that writes a file (the store, builds, the plugin, the CLI) goes through here, and every module
that turns a name it was given into a path asks `Tree`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no sweep of stray temporary files
    fcntl = None  # type: ignore[assignment]

from .errors import BadRequestError, WriteError

# mtimes tick on a coarse clock: a same-size rewrite within one tick keeps a file's (size, mtime) stamp, so a
# stamp is trusted only once it is older than this (git's "racily clean" rule).
RACY_NS = 2_000_000_000


def settled(mtime_ns: int) -> bool:
    """True when a file last written at ``mtime_ns`` can be known by its stamp (see RACY_NS)."""
    return time.time_ns() - mtime_ns > RACY_NS


def stamp(path: Path) -> tuple[int, int, int] | None:
    """Which file is at ``path``, and whether it was written since: (inode, size, mtime_ns), or None. Not its
    ctime: a hard link to it changes that."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _temporary(folder: Path) -> tuple[int, Path]:
    """A new temporary file in ``folder``, open for writing. Made with mode 0666 so that the process's umask
    applies as it does to any file it creates (mkstemp's 0600 would make outputs private)."""
    while True:
        tmp = folder / f".tmp-{secrets.token_hex(8)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path: Path, data: bytes, *, replace: bool = True, durable: bool = True, tmp_dir: Path | None = None) -> bool:
    """Write via a temporary file, fsync and rename; with replace=False keep an existing file (returns False).

    ``durable=False`` skips the fsync, for outputs that can be derived again (a site, a build copy): readers
    still never see a partial file, but a power cut may lose the newest version. The temporary file is made in
    ``tmp_dir`` (same filesystem; default: beside ``path``) and locked while it lives, so a `sweep` can tell a
    crashed writer's from a live one's. An OSError (disk full, no permission) is a WriteError naming the path,
    and nothing partial is left.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temporary(tmp_dir or path.parent)
    except OSError as exc:
        raise WriteError.of(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            if fcntl:
                fcntl.flock(fh, fcntl.LOCK_EX)
            if replace:  # a file rewritten keeps its mode (a private page stayed private only until hcti og edited it)
                with contextlib.suppress(FileNotFoundError):
                    os.fchmod(fh.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
            if replace:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)  # atomic and never overwrites: two writers leave one copy
                return True
            except FileExistsError:
                return False
    except OSError as exc:
        raise WriteError.of(exc, path) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def sweep(folder: Path, *, min_age: float = 60, recursive: bool = False) -> int:
    """Delete the temporary files (`.tmp-*`) in ``folder`` (and its sub-folders, ``recursive``) of writers that
    died before their rename (a crash, a kill): those older than ``min_age`` seconds that no live writer holds
    locked (`atomic_write` locks its own). Returns the count."""
    swept = 0
    for here, _dirs, names in os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]:
        for name in names:
            path = os.path.join(here, name)
            try:
                if not name.startswith(".tmp-") or time.time() - os.lstat(path).st_mtime < min_age:
                    continue
                with open(path, "rb") as fh:
                    if fcntl:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a live writer's
                    os.unlink(path)
                    swept += 1
            except OSError:
                continue
    return swept


def link(source: Path, path: Path) -> bool | None:
    """Make ``path`` a hard link to ``source`` (atomically replacing what was there): True; False when it already
    is one; None when linking is not possible here (another filesystem, no hard links)."""
    for _ in range(2):
        try:
            os.link(source, path)  # the common case, a site that was cleaned: nothing there yet
            return True
        except FileExistsError:
            break
        except FileNotFoundError:  # no folder yet (or no source: then the link below fails too)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return None
        except OSError:
            return None
    try:
        if os.path.samefile(source, path):
            return False
    except OSError:
        pass
    tmp = path.with_name(f".tmp-link-{os.getpid()}-{threading.get_ident()}-{path.name}")
    try:
        os.link(source, tmp)
        os.replace(tmp, path)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None


def write_if_changed(path: Path, data: bytes, source: Path | None = None) -> bool:
    """Write a derived output unless the file already holds these bytes (so mtimes stay); True when written.
    No fsync: the store keeps the durable copy, and readers still never see a partial file.

    With ``source`` (a store file holding ``data``), the output is a hard link to it: no bytes are copied (a
    site's cards cost a link each). Where links are not possible (another filesystem) the bytes are written.
    A tool that edits the output in place edits the store's copy too; the store notices (its hash is checked
    on every read) and renders it again.
    """
    linked = link(source, path) if source is not None else None
    if linked is not None:
        return linked
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data, durable=False)
    return True


def read_utf8(path: Path, param: str) -> str:
    """A text input (``--html-file``, ``css_file=``): UTF-8, or a 400 naming the parameter, the file and where."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadRequestError(f"{param} {path} cannot be read: {exc.strerror or exc}", param=param) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadRequestError(
            f"{param} {path} is not UTF-8 text (byte {exc.start}, line {line}); save it as UTF-8", param=param
        ) from None


# -- the file rules ---------------------------------------------------------------------------------
MAX_NAME = 1024  # characters of a root-relative name: longer is not a file a project has


def plain_name(name: object) -> str | None:
    """``name`` if it is a plain root-relative file name: text, "/"-separated, no NUL or backslash, no empty,
    "." or ".." part, no hidden part (one starting with "."), no leading "/" or drive; else None. Names from a
    page, a template, an index or a bucket are all held to it before any is joined to a folder."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or "\x00" in name or "\\" in name:
        return None
    if len(name) > 1 and name[1] == ":" and name[0].isalpha():  # a drive (Windows): absolute
        return None
    parts = name.split("/")
    return None if any(not part or part.startswith(".") for part in parts) else name


@dataclass(frozen=True)
class Tree:
    """The file rules, one set for every reader and writer (the browser, Jinja2's loader and includes, a
    request's manifest, a record from a bucket, a build's outputs): a file is named relative to ``root``, its
    name is plain (`plain_name`), it is inside ``root`` once every symlink is resolved, no part of that path
    is hidden (`.git`, `.env`, `.hcti`), and it is under none of ``private`` (a store, wherever it lives)."""

    root: Path
    private: tuple[Path, ...] = ()

    @classmethod
    def of(cls, root: Path | str, private: Iterable[Path | str] = ()) -> Tree:
        return cls(Path(root).resolve(), tuple(Path(p).resolve() for p in private))

    def name(self, target: Path) -> str | None:
        """A resolved path's root-relative name, if the rules let it be read; else None."""
        if not target.is_relative_to(self.root) or any(target.is_relative_to(p) for p in self.private):
            return None
        return plain_name(target.relative_to(self.root).as_posix())

    def find(self, name: object) -> tuple[str, Path] | None:
        """What a root-relative ``name`` names under the rules: its name once symlinks are resolved, and that
        path (which need not exist yet); None when the name or where it leads breaks a rule."""
        plain = plain_name(name)
        if plain is None:
            return None
        try:
            target = (self.root / plain).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop
            return None
        found = self.name(target)
        return None if found is None else (found, target)

    def file(self, name: object) -> Path | None:
        """The existing regular file ``name`` names under the rules, or None."""
        found = self.find(name)
        return found[1] if found is not None and found[1].is_file() else None

    def writable(self, target: Path, param: str) -> None:
        """Before anything is written: ``target`` can be, or a 400 naming ``param`` (a file where one of its folders
        would go, a folder where it would go) or a WriteError (a folder that cannot be written)."""
        if target.is_dir():
            raise BadRequestError(f"cannot write {target}: a folder is there ({param})", param=param)
        for folder in target.parents:
            if not folder.exists():
                continue
            if not folder.is_dir():
                raise BadRequestError(f"cannot write {target}: {folder} is a file, not a folder ({param})", param=param)
            if not os.access(folder, os.W_OK):
                raise WriteError(f"Cannot write {target}: {folder} is not writable")
            return

    def output(self, name: str, param: str) -> Path:
        """Where an output named ``name`` goes: a path the rules allow (no "..", no hidden part, no folder on the way
        that is a symlink out of the root); else a 400 naming ``param``."""
        found = self.find(name)
        if found is None:
            raise BadRequestError(
                f"{param} must name a place inside {self.root} (no '..', no hidden part, no symlink out of it), got {name!r}",
                param=param,
            )
        return found[1]


class Outputs:
    """The files a tool wrote into ``folder``, listed in a manifest there with the sha256 of each, so that a later
    run removes only what it wrote itself: a name the file rules refuse, a file changed since it was written and
    anything a manifest from elsewhere lists are left alone. A manifest is a file on disk: untrusted. (Digests,
    not times: two runners building the same sources write the same folder, manifest included.)"""

    VERSION = 2

    def __init__(self, folder: Path, manifest: str) -> None:
        self.tree = Tree.of(folder)
        self.path = self.tree.root / manifest
        self._digests: dict[tuple[str, int, int, int], str] = {}  # by stamp: a file unchanged is hashed once

    def digest(self, name: str) -> str | None:
        """The sha256 of the output ``name`` as it is now, if the rules allow it and it is there."""
        path = self.tree.file(name)
        found = stamp(path) if path is not None else None
        if path is None or found is None:
            return None
        key = (name, *found)
        if key not in self._digests:
            try:
                self._digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return None
        return self._digests[key]

    def _previous(self) -> dict[str, str]:
        try:
            found = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(found, dict) or found.get("version") != self.VERSION or not isinstance(found.get("files"), dict):
            return {}  # a list of names (a manifest made before digests were kept) removes nothing
        return found["files"]

    def stale(self, current: Iterable[str]) -> list[tuple[str, Path]]:
        """What the last run wrote that ``current`` does not have, as long as it still holds what that run wrote."""
        keep = set(current)
        out = []
        for name, written in sorted(self._previous().items()):
            path = self.tree.file(name) if name not in keep else None
            if path is not None and isinstance(written, str) and self.digest(name) == written:
                out.append((name, path))
        return out

    def save(self, current: Iterable[str]) -> None:
        files = {name: digest for name in sorted(current) if (digest := self.digest(name))}
        data = (json.dumps({"version": self.VERSION, "files": files}, indent=0, sort_keys=True) + "\n").encode()
        try:
            if self.path.read_bytes() == data:
                return
        except OSError:
            pass
        atomic_write(self.path, data)


def copy_file(source: Path, path: Path) -> None:
    """``source``'s bytes and times at ``path``, never half-written; an OSError (a full disk, a special file) is a
    WriteError naming the path."""
    import shutil

    tmp = path.with_name(f".tmp-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, tmp)
        os.replace(tmp, path)
    except (OSError, shutil.Error) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteError.of(exc, path) from None
