"""hcti directives in MkDocs pages: each page's ```hcti fences and `![](hcti:...)` links rendered and replaced
by `<img>` tags, their images kept until the site is written."""

from __future__ import annotations

import os
from pathlib import Path

from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from hcti_build import Asset, Store, Templates, rewrite_markdown, write_if_changed

ASSETS_DIR = "assets/hcti"


class PageImages:
    """The directive images of one build, by their path in the site."""

    def __init__(self, store: Store, root: Path, docs: Path) -> None:
        self.store, self.root, self.docs = store, root, docs
        self.templates = Templates(root)
        self.assets: dict[str, bytes] = {}

    def rewrite(self, page: Page, markdown: str) -> str:
        """The page's Markdown with every directive replaced (errors name the page's file and line)."""
        source_path = Path(page.file.abs_src_path or self.docs / page.file.src_uri)

        def reference(asset: Asset) -> str:
            self.assets[f"{ASSETS_DIR}/{asset.name}"] = asset.data
            return get_relative_url(f"{ASSETS_DIR}/{asset.name}", page.url or ".")

        new, _ = rewrite_markdown(
            markdown,
            path=os.path.relpath(source_path),
            source=source_path.relative_to(self.root).as_posix(),
            store=self.store,
            templates=self.templates,
            reference=reference,
            first_line=_body_first_line(page, markdown),
        )
        return new

    def write(self, site_dir: Path) -> None:
        for rel, data in sorted(self.assets.items()):
            write_if_changed(site_dir / rel, data)


def _body_first_line(page: Page, markdown: str) -> int:
    """Line of the page source where `markdown` starts (MkDocs strips the front matter first)."""
    try:
        source = Path(page.file.abs_src_path or "").read_text(encoding="utf-8-sig")
    except OSError:
        return 1
    idx = source.find(markdown[:200]) if markdown.strip() else -1
    return source.count("\n", 0, idx) + 1 if idx > 0 else 1
