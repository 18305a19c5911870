"""Checking many stored images off the main process (see `Checker`): what keeps a warm site build's reused
cards from costing a read and a hash each in the generator's own process."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import HctiError
from ..files import settled, stamp
from ..options import ImageQuery
from .store import Store

log = logging.getLogger("hcti_build.checker")


class Checker:
    """Hashes stored master PNGs against the store in a helper process, while the caller does other work (a
    site generator reading its pages): `checked(id)` then gives the image's pixel size without reading it here.

    Checking a reused card in the build's own process (reading its PNG and hashing it, as every store read
    does) was the largest part of a warm site build's card work (docs/performance.md), because the images pass
    through the caches the generator's own work runs in. The helper (`python -I -S`, hashlib only) runs on
    another core; an image it did not confirm (no helper, a failed read, a hash that differs, a file changed
    since) is for the caller to check the usual way (`Asset.load`), which renders it again if damaged."""

    SCRIPT = (
        "import hashlib, struct, sys\n"
        "for line in sys.stdin:\n"
        "    sha, _, path = line.rstrip('\\n').partition(' ')\n"
        "    try:\n"
        "        with open(path, 'rb') as f:\n"
        "            data = f.read()\n"
        "    except OSError:\n"
        "        data = b''\n"
        "    ok = data[12:16] == b'IHDR' and hashlib.sha256(data).hexdigest() == sha\n"
        "    print('%d %d' % struct.unpack('>II', data[16:24]) if ok else '-')\n"
    )

    def __init__(self, ids: list[str], paths: list[Path], proc: subprocess.Popen[bytes] | None, out: Any) -> None:
        self.ids, self.proc, self.out = ids, proc, out
        self.paths = dict(zip(ids, paths, strict=True))
        # The files the helper reads. One written too recently is left to the caller's own check: its stamp could
        # be the same after another write in the same clock tick (see `files.settled`).
        self.stamps = {i: st for i, p in self.paths.items() if (st := stamp(p)) and settled(st[2])}
        self.results: dict[str, tuple[int, int]] | None = None

    @classmethod
    def start(cls, store: Store, ids: list[str]) -> Checker:
        paths = [store.stored_path(image_id, ImageQuery()) for image_id in ids]
        lines = []
        for image_id, path in zip(ids, paths, strict=True):
            try:
                lines.append(f"{store.digest(image_id)} {path}\n")
            except HctiError:
                lines.append("- -\n")
        checker = cls(ids, paths, None, None)
        try:
            with tempfile.TemporaryFile() as stdin:
                stdin.write("".join(lines).encode())
                stdin.seek(0)
                checker.out = tempfile.TemporaryFile()
                checker.proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", cls.SCRIPT], stdin=stdin, stdout=checker.out, stderr=subprocess.DEVNULL
                )
        except OSError as exc:
            log.debug("no helper to check stored images (%s): they are checked in this process", exc)
            checker.close()
        return checker

    def checked(self, image_id: str) -> tuple[int, int] | None:
        """The image's pixel size if the helper confirmed its bytes (and the file is the one it read), else None."""
        if self.results is None:
            self.results = self._collect()
        pixels = self.results.get(image_id)
        if pixels is None or image_id not in self.stamps or stamp(self.paths[image_id]) != self.stamps[image_id]:
            return None
        return pixels

    def _collect(self) -> dict[str, tuple[int, int]]:
        if self.proc is None or self.out is None:
            return {}
        try:
            if self.proc.wait(timeout=120) != 0:
                return {}
            self.out.seek(0)
            rows = self.out.read().decode().splitlines()
        except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
            return {}
        finally:
            self.close()
        if len(rows) != len(self.ids):
            return {}
        found = {}
        for image_id, row in zip(self.ids, rows, strict=True):
            w, _, h = row.partition(" ")
            if w.isdigit() and h.isdigit():
                found[image_id] = (int(w), int(h))
        return found

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.out is not None:
            self.out.close()
            self.out = None
