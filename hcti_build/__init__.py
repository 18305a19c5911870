"""hcti-build: the HTML/CSS to Image API at build time, offline, through real headless Chromium."""

from __future__ import annotations

from typing import Any

from .assets import Asset, rewrite_markdown
from .browser import CancelToken, Engine, cancellable
from .build import Builder, BuildReport
from .checker import Checker
from .chromium import find_chromium
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
from .head import card_tags, meta_html
from .options import IMAGE_FORMATS, CreateOptions, ImageQuery
from .remote import RemoteTier, remote_tier
from .store import Store
from .templates import BUILTIN_TEMPLATES, Templates, card_options, card_site, file_data_uri

__all__ = [
    "Tree",
    "BUILTIN_TEMPLATES",
    "Asset",
    "BadRequestError",
    "BrowserNotFoundError",
    "BuildReport",
    "Builder",
    "CancelToken",
    "Checker",
    "CreateOptions",
    "DirectiveError",
    "Engine",
    "GoneError",
    "IMAGE_FORMATS",
    "HctiError",
    "ImageQuery",
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
    "card_options",
    "card_site",
    "card_tags",
    "file_data_uri",
    "find_chromium",
    "meta_html",
    "remote_tier",
    "render",
    "rewrite_markdown",
    "write_if_changed",
]


def render(store: Store | None = None, *, query: ImageQuery | dict[str, Any] | None = None, **params: Any) -> bytes:
    """Render ``html``/``css``/``url`` with the API's parameters into the store and return the final bytes."""
    st = store or Store()
    image_id = st.create(params)["id"]
    return st.get(image_id, query)


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hcti_build`: the `%%hcti` cell magic."""
    from .jupyter import load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """`%unload_ext hcti_build`: close the browser and remove the magic."""
    from .jupyter import unload

    unload(ip)
