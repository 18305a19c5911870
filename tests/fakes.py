"""A renderer that is not Chromium, for the store's logic (ids, the index, lists, deletes, remotes, maintenance):
it has the engine's shape (`hcti_build.renderer.Renderer`) and makes a small PNG whose colour and size come from
the request, reading the files the HTML names by the same file rules the browser's sandbox keeps. In-process, no
browser: each such test also has an end-to-end twin with real Chromium elsewhere in the suite."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from hcti_build import CreateOptions
from hcti_build.files import Tree
from hcti_build.renderer import Capture

_LINKS = re.compile(r"""(?:href|src)\s*=\s*["']([^"':]+)["']""")


class FakeRenderer:
    """Renders ``opts`` to a PNG: viewport-sized (else 10x10 times the scale), one colour from the HTML and the
    bytes of the files it names. Counts its renders."""

    pool_size = 2

    def __init__(self, version: str = "FakeChromium 1.0.0.0") -> None:
        self.name = version
        self.renders = 0
        self.closed = 0

    def version_key(self) -> str:
        return f"fake:{self.name}"

    def version(self) -> str:
        return self.name

    def render(self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()) -> Capture:
        self.renders += 1
        tree = Tree.of(root, private)
        files: dict[str, bytes] = {}
        missing: set[str] = set()
        for link in _LINKS.findall(opts.html or ""):
            found = tree.find(f"{base}/{link}".strip("/") if base else link)
            if found is None:
                continue
            name, path = found
            if path.is_file():
                files[name] = path.read_bytes()
            else:
                missing.add(name)
        digest = hashlib.sha256(((opts.html or opts.url or "") + "".join(sorted(files))).encode()).digest()
        for data in files.values():
            digest = hashlib.sha256(digest + data).digest()
        w, h = (opts.viewport_width, opts.viewport_height or 10) if opts.viewport_width else (10, 10)
        size = (max(1, round(w * opts.scale)), max(1, round(h * opts.scale)))
        out = io.BytesIO()
        Image.new("RGB", size, tuple(digest[:3])).save(out, "PNG")
        return Capture(out.getvalue(), size[0], size[1], files, frozenset(missing))

    def pdf(self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()) -> bytes:
        self.renders += 1
        return b"%PDF-1.4\n% fake\n%%EOF\n"

    def close(self) -> None:
        self.closed += 1
