"""The plugin's options in mkdocs.yml (`plugins: [hcti: {...}]`), each with its default and a doc line, and the
site_url mkdocs.yml sets, which a card shows whether the site is built or served."""

from __future__ import annotations

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import ConfigurationError
from mkdocs.utils.yaml import get_yaml_loader, yaml_load

from hcti_build import IMAGE_FORMATS


class HctiConfig(base.Config):
    enabled = c.Type(bool, default=True)
    """Turn the whole plugin off (e.g. `enabled: !ENV [HCTI_ENABLED, true]`)."""
    cards = c.Type(bool, default=True)
    """Generate a social card for every page and add og:/twitter: meta tags."""
    cards_template = c.Optional(c.File(exists=True))
    """A Jinja2 HTML file of the site's (relative to mkdocs.yml) rendered as the card; default: the built-in one."""
    cards_dir = c.Type(str, default="assets/images/social")
    """Where cards go, relative to site_dir."""
    cards_format = c.Choice(IMAGE_FORMATS, default="png")
    """Card image format."""
    cards_width = c.Type(int, default=1200)
    """Card width in CSS pixels."""
    cards_height = c.Type(int, default=630)
    """Card height in CSS pixels."""
    device_scale = c.Type((int, float), default=1)
    """Pixel ratio of cards (1: a 1200x630 image; 2: 2400x1260)."""
    cards_include = c.ListOfItems(c.Type(str), default=[])
    """Globs of page sources (e.g. `blog/*.md`) that get a card; empty: every page."""
    cards_exclude = c.ListOfItems(c.Type(str), default=[])
    """Globs of page sources that get no card."""
    cards_options = c.Type(dict, default={})
    """Values the template reads as `options.*` (built-in: logo, background, background_end, accent, color,
    font_family); a page's front matter `hcti: {card: {...}}` overrides them, `hcti: {card: false}` opts out."""
    directives = c.Type(bool, default=True)
    """Render hcti directives (```hcti fences, ![](hcti:...) links) in pages."""
    cache_dir = c.Type(str, default=".cache/hcti")
    """The image store, relative to mkdocs.yml."""
    remote = c.Optional(c.Type(str))
    """A store shared on object storage (s3://bucket/prefix, gs://, az://, file:///folder); HCTI_REMOTE wins."""
    concurrency = c.Optional(c.Type(int))
    """Cards rendered at once: pages in the browser's pool (default 2, at most 16)."""


def configured_site_url(config: MkDocsConfig) -> str | None:
    """The site_url of mkdocs.yml, as MkDocs validates it. `mkdocs serve` (ProperDocs' too, `--clean` included)
    replaces it with the dev server's address before any plugin sees the config (a plugin's only earlier hook,
    `on_startup`, gets no config), so a site_url that is that address is read again from the file, the host's
    own way (INHERIT, !ENV). A card that showed the dev address would differ from the built one: rendered again
    on every `serve`, and a different card."""
    url = config.site_url
    host, port = config.dev_addr
    if not url or not url.startswith(f"http://{host}:{port}/") or not config.config_file_path:
        return url
    try:
        with open(config.config_file_path, "rb") as fd:
            raw = yaml_load(fd, get_yaml_loader(config=config)).get("site_url")
        return c.Optional(c.URL(is_dir=True)).validate(raw) or None
    except (OSError, ConfigurationError, base.ValidationError, AttributeError):
        return url  # the file cannot say (stdin, gone, changed meanwhile): the URL MkDocs has
