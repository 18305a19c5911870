"""What the store knows of an engine: its shape. A `Renderer` turns creation options into a master PNG (a
`Capture`) or a vector PDF, says which version of itself renders (part of every image's id), and how many
renders it runs at once. `hcti_build.engine.Engine` drives Chromium; a test may give the store a fake.

The store never imports an engine: the renderer it uses when given none is the registered default
(`default_renderer`), which the engine registers when `hcti_build` is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import BrowserNotFoundError
from .options import CreateOptions


@dataclass
class Capture:
    """A master render: PNG bytes, pixel size, the local files it read (path relative to root, bytes), and
    the root-relative paths it asked for that were not there (creating one of them changes the render)."""

    png: bytes
    width: int
    height: int
    files: dict[str, bytes] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()


class Renderer(Protocol):
    """What renders a store's images."""

    @property
    def pool_size(self) -> int:
        """Renders it runs at once (the store runs that many, or more when they wait on a remote)."""
        ...

    def version_key(self) -> str:
        """What names its version without asking it (a program's path, size and mtime): the store keeps
        `version()` by this key, so a new process does not ask again."""
        ...

    def version(self) -> str:
        """The version that renders ("Chromium 156.0.8078.114"): part of every image's id."""
        ...

    def render(
        self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()
    ) -> Capture:
        """The master PNG of ``opts``, reading files under ``root`` (never under ``private``), its document in
        the folder ``base`` of it."""
        ...

    def pdf(
        self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()
    ) -> bytes:
        """A vector PDF of the same document."""
        ...

    def close(self) -> None:
        """Let go of what it holds (a browser); it may be used again."""
        ...


_default: Callable[[], Renderer] | None = None


def register_default(factory: Callable[[], Renderer]) -> None:
    """Make ``factory`` what `default_renderer` calls (the engine's process-wide one)."""
    global _default
    _default = factory


def default_renderer() -> Renderer:
    if _default is None:
        raise BrowserNotFoundError("No renderer is registered: import hcti_build (its engine registers itself)")
    return _default()
