"""hcti-build: the HTML/CSS to Image API at build time, offline, through real headless Chromium."""

from __future__ import annotations

from typing import Any

from .engine.browser import CancelToken, Engine, cancellable
from .engine.chromium import find_chromium
from .errors import (
    BadRequestError,
    BrowserNotFoundError,
    DirectiveError,
    GoneError,
    HctiError,
    NotFoundError,
    RemoteError,
    RenderCancelledError,
    RenderError,
    RenderTimeoutError,
    UnsupportedFormatError,
    WriteError,
)
from .files import Tree, write_if_changed
from .options import IMAGE_FORMATS, CreateOptions, ImageQuery
from .pipeline.assets import Asset, rewrite_markdown
from .pipeline.brand import Brand, css_color, installed_font
from .pipeline.build import Builder, BuildReport
from .pipeline.cards import (
    CardMemo,
    CardSpec,
    CardTemplate,
    LinkedCard,
    card_jobs,
    card_pool,
    card_settings,
    code_versions,
    link_card,
    load_card,
    memo_header,
    start_card,
)
from .pipeline.head import card_tags, meta_html
from .pipeline.templates import BUILTIN_TEMPLATES, Templates, card_options, card_site, file_data_uri
from .store.checker import Checker
from .store.remote import RemoteTier, remote_tier
from .store.store import Store

__all__ = [
    "Tree",
    "BUILTIN_TEMPLATES",
    "Asset",
    "BadRequestError",
    "Brand",
    "BrowserNotFoundError",
    "BuildReport",
    "Builder",
    "CancelToken",
    "CardMemo",
    "CardSpec",
    "CardTemplate",
    "Checker",
    "CreateOptions",
    "DirectiveError",
    "Engine",
    "GoneError",
    "IMAGE_FORMATS",
    "HctiError",
    "ImageQuery",
    "LinkedCard",
    "NotFoundError",
    "RemoteError",
    "RemoteTier",
    "RenderCancelledError",
    "RenderError",
    "RenderTimeoutError",
    "Store",
    "Templates",
    "UnsupportedFormatError",
    "WriteError",
    "cancellable",
    "card_jobs",
    "card_options",
    "card_pool",
    "card_settings",
    "card_site",
    "card_tags",
    "code_versions",
    "css_color",
    "file_data_uri",
    "find_chromium",
    "installed_font",
    "link_card",
    "load_card",
    "load_ipython_extension",
    "memo_header",
    "meta_html",
    "remote_tier",
    "render",
    "rewrite_markdown",
    "start_card",
    "unload_ipython_extension",
    "write_if_changed",
]


def render(store: Store | None = None, *, query: ImageQuery | dict[str, Any] | None = None, **params: Any) -> bytes:
    """Render ``html``/``css``/``url`` with the API's parameters into the store (default: a `Store()` of the working
    folder, opened and closed here) and return the final bytes."""
    st = store or Store()
    try:
        return st.get(st.create(params)["id"], query)
    finally:
        if store is None:
            st.close()


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hcti_build`: the `%%hcti` cell magic."""
    from .integrations.jupyter import load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """`%unload_ext hcti_build`: close the browser and remove the magic."""
    from .integrations.jupyter import unload

    unload(ip)
