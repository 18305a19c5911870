"""A built site as `hcti og` reads it: its pages (`site_pages`), a page's URL below the site's, what its head
says about its card (opted out, template values, its title without the site's name), the pages the last run
left with their card (`PageMemo`), and `check_site`, the `hcti og --check` of a site's card tags.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadRequestError, HctiError
from ..files import Tree, atomic_write, settled, stamp
from .head import Head, read_head

_SEPARATORS = (" - ", " — ", " – ", " | ", " · ")


def check_site(site: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[str]:
    """`hcti og --check`: each page that should have a card and has not one og:image (absolute, pointing at a
    file of the site) and one twitter:image, as `page: problem`."""
    site = site.resolve()
    problems = []
    for rel in site_pages(site, include, exclude):
        head = read_head((site / rel).read_bytes().decode("utf-8", "surrogateescape"))
        if not head.document or opted_out(head):
            continue
        for key in ("og:image", "twitter:image"):
            found = [m.content for m in head.metas if m.key == key]
            if len(found) != 1:
                problems.append(f"{rel}: {len(found)} {key} tags, not 1")
            elif not urlsplit(found[0]).scheme.startswith("http"):
                problems.append(f"{rel}: {key} {found[0]} is not an absolute URL")
            elif file_for(site, found[0]) is None:
                problems.append(f"{rel}: {key} {found[0]} is not a file of the site")
    return problems


def site_pages(site: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Iterator[str]:
    """The HTML files of a site that may get a card: not 404 pages, not hidden or in hidden folders, not a
    symlink (to a file elsewhere, which a card would read and its tags would replace), as --include and
    --exclude say."""
    tree = Tree.of(site)
    for folder, dirs, files in os.walk(site):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            rel = (Path(folder) / name).relative_to(site).as_posix()
            if not name.endswith((".html", ".htm")):
                continue
            if name == "404.html" or f"/{rel}".endswith("/404/index.html"):
                continue  # a 404 page, as most generators name it or as a dirhtml build does
            found = tree.find(rel)
            if found is None or found[0] != rel:
                continue
            if include and not any(fnmatch.fnmatch(rel, g) for g in include):
                continue
            if not any(fnmatch.fnmatch(rel, g) for g in exclude):
                yield rel


def opted_out(head: Head) -> bool:
    """A redirect stub, or a page whose `hcti:card` says false."""
    return head.refresh or (head.get("hcti:card") or "").strip().lower() in ("false", "0", "no", "off")


def file_for(site: Path, url: str) -> Path | None:
    """The file of the site a URL names: the longest tail of its path that is a file under the site folder."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    for i in range(len(parts)):
        path = site.joinpath(*parts[i:])
        if path.is_file() and path.resolve().is_relative_to(site):
            return path
    return None


def url_path(rel: str) -> str:
    """A page's URL below the site's: `index.html` is its folder (`a/`), other files keep their names."""
    if rel == "index.html":
        return ""
    return rel[: -len("index.html")] if rel.endswith("/index.html") else rel


def site_url_of(value: str, param: str = "site_url") -> str:
    """A site's public URL as og:image needs it: absolute http(s) with a host, no query, fragment or white space;
    returned ending in `/`. Anything else is a 400 naming ``param`` (it made relative or broken og:image URLs)."""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in value)
    ):
        raise BadRequestError(
            f"{param} must be the site's absolute http(s) URL, such as https://example.org/docs/ (no query or "
            f"fragment): got {value[:200]!r}",
            param=param,
        )
    return value.rstrip("/") + "/"


def site_base(canonical: str, rel: str) -> str | None:
    """The site folder's absolute URL, from the canonical URL of its page ``rel``; None unless it is http(s).

    The canonical URL names the page's file (`d/sub/index.html`, Sphinx with html_baseurl), its folder
    (`d/sub/`), or its file without the extension (`d/about` for `about.html`): the page's folder is found
    from it, then as many folders up as ``rel`` lies below the site."""
    parts = urlsplit(canonical)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path, name = parts.path or "/", rel.rsplit("/", 1)[-1]
    if name == "index.html" and not path.endswith("/"):
        path = path[: -len(name)] if path.endswith("/" + name) else path + "/"
    folder = path.rsplit("/", 1)[0]
    for _ in range(rel.count("/")):
        folder = folder.rsplit("/", 1)[0]
    return f"{parts.scheme}://{parts.netloc}{folder}/"


def template_values(head: Head) -> dict[str, Any]:
    """`html:tv:NAME` metadata as template variables; a value that is JSON is read as JSON."""
    values: dict[str, Any] = {}
    for m in head.metas:
        if m.key.startswith("html:tv:") and len(m.key) > len("html:tv:"):
            try:
                values[m.key[len("html:tv:") :]] = json.loads(m.content)
            except ValueError:
                values[m.key[len("html:tv:") :]] = m.content
    return values


def common_suffix(titles: list[str]) -> str | None:
    """The site's name where its generator puts it after every page's title ("Page - Site"): the last part
    shared by at least half of the titles that have one."""
    counts: dict[str, int] = {}
    for title in titles:
        for sep in _SEPARATORS:
            if sep in title:
                suffix = title.rsplit(sep, 1)[1].strip()
                counts[suffix] = counts.get(suffix, 0) + 1
                break
    if not counts:
        return None
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] * 2 >= len([t for t in titles if t]) else None


def strip_suffix(title: str, site_name: str | None) -> str:
    if site_name:
        for sep in _SEPARATORS:
            if title.endswith(sep + site_name):
                return title[: -len(sep + site_name)].strip()
    return title


class PageMemo:
    """The pages the last run left with their card: a page whose file is the one it saw (same inode, size and
    mtime; and, when the mtime is too recent to tell (`files.settled`), the same bytes), whose card is still the
    file it left (same inode, size and mtime: a card overwritten in the site is made again) and whose other files
    (the icon on its card) are as they were needs no reading. It holds only for the same header (settings,
    template, Chromium, code)."""

    VERSION = 6

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path, self.header = path, header
        self.pages: dict[str, dict[str, Any]] = {}
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("header") == header:
                self.pages = dict(saved["pages"])
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            pass  # no memo yet, or another's: every page is read
        self.saved = dict(self.pages)
        self.titles: list[str] = []  # of the pages found unchanged (what the site's name is read from)

    def unchanged(self, site: Path, rel: str) -> bool:
        entry, now = self.pages.get(rel), _stamp(site / rel)
        try:  # a file left on disk: any entry not of this shape is a page to read again
            if not entry or not now or entry["stamp"] != now or entry["card_stamp"] != _stamp(site / entry["card"]):
                return False
            if any(_stamp(site / dep) != seen for dep, seen in entry["deps"]):  # its icon changed: a new card
                return False
            if settled(now[2]) or _file_digest(site / rel) == entry["digest"]:
                self.titles.append(str(entry["title"]))
                return True
        except (TypeError, KeyError, ValueError, AttributeError):
            pass
        return False

    def record(self, site: Path, rel: str, card: str, title: str, data: bytes, deps: Sequence[str] = ()) -> None:
        """``rel`` as this run left it: its stamp, the digest of its bytes ``data``, its card, title and the card's
        stamp, and the stamps of the site's files ``deps`` its card read."""
        now = _stamp(site / rel)
        if now:
            deps_now = [[dep, _stamp(site / dep)] for dep in deps]
            self.pages[rel] = {"stamp": now, "digest": digest(data), "card": card, "title": title,
                               "card_stamp": _stamp(site / card), "deps": deps_now}  # fmt: skip

    def forget(self, rel: str) -> None:
        self.pages.pop(rel, None)

    def save(self) -> None:
        if self.pages == self.saved:
            return
        data = json.dumps({"header": self.header, "pages": self.pages}, sort_keys=True).encode()
        try:
            atomic_write(self.path, data, durable=False)
        except HctiError:
            pass  # a memo that cannot be written costs the next run its reading, nothing else


def _stamp(path: Path) -> list[int] | None:
    """`files.stamp` as JSON keeps it (a list)."""
    now = stamp(path)
    return list(now) if now else None


def _file_digest(path: Path) -> str | None:
    try:
        return digest(path.read_bytes())
    except OSError:
        return None


def digest(data: str | bytes) -> str:
    """A short sha256 of ``data``: what a memo keeps of a page, a memo's file name."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:32]
