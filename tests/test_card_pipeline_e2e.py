"""One card pipeline (#31): the MkDocs plugin, the Sphinx extension and `hcti og` make their cards the same way.
Each drift the issue names is shown gone: a card's size comes from the same options in every host (Sphinx
hard-coded 1200x630), every host's card pool is sized by one rule (the store's concurrency: MkDocs fetched a
remote's hits 2 at a time), and one list of code versions invalidates every host's memo (each listed its own)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import load, meta_tags
from mkdocs.commands.build import build as mkdocs_build
from mkdocs.config import load_config
from sphinx.cmd.build import build_main
from test_og_e2e import og
from test_sphinx_e2e import SITE as SPHINX_SITE
from test_sphinx_e2e import project as sphinx_project
from test_sphinx_e2e import sphinx

from hcti_build import CardSpec, CardTemplate, Engine, Store, card_jobs, code_versions
from hcti_build.integrations.og import OgSettings, SiteCards
from hcti_build.pipeline import cards as pipeline

SITE_URL = "https://example.org/docs/"
# The pools each host made its cards on, before and after #31 (MkDocs' was always "hcti-cards").
CARD_POOLS = ("hcti-cards", "hcti-sphinx", "hcti-og")


def mkdocs_site(root: Path, extra: str = "") -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "index.md").write_text("# Home\n\nText.\n")
    (root / "mkdocs.yml").write_text(f"site_name: Cards\nsite_url: {SITE_URL}\nplugins:\n  - hcti{extra}\n")
    return root


def og_site(root: Path) -> Path:
    site = root / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><title>Home - Site</title></head><body>x</body></html>'
    )
    return site


def build_mkdocs(root: Path) -> None:
    """`mkdocs build` in this process (so that what the test patched is what the plugin sees)."""
    config = load_config(str(root / "mkdocs.yml"))
    config.plugins.on_startup(command="build", dirty=False)
    try:
        mkdocs_build(config)
    finally:
        config.plugins.on_shutdown()


def build_sphinx(root: Path) -> None:
    if not (root / "src").exists():
        root.mkdir(parents=True, exist_ok=True)
        sphinx_project(root)
    assert build_main(["-q", "-b", "html", str(root / "src"), str(root / "out")]) == 0


def run_og(root: Path) -> None:
    engine = Engine(isolate=False)
    try:
        cards = SiteCards(OgSettings(og_site(root) if not (root / "site").exists() else root / "site", site_url=SITE_URL),
                          root / ".hcti", engine)  # fmt: skip
        try:
            assert not cards.run().errors
        finally:
            cards.close()
    finally:
        engine.close()


# -- (a) the size ---------------------------------------------------------------------------------------------
def test_every_host_takes_the_cards_size_and_scale_from_its_options(tmp_path: Path) -> None:
    """800x400 CSS pixels at 1.5: a 1200x600 card in every host (Sphinx made 1200x630 whatever it was told)."""
    (tmp_path / "sx").mkdir()
    sphinx_project(tmp_path / "sx", "hcti_cards_width = 800\nhcti_cards_height = 400\nhcti_cards_device_scale = 1.5\n")
    assert (done := sphinx(tmp_path / "sx", "-W", "-b", "html")).returncode == 0, done.stderr
    mkdocs_site(tmp_path / "mk", ":\n      cards_width: 800\n      cards_height: 400\n      device_scale: 1.5")
    build_mkdocs(tmp_path / "mk")
    og_site(tmp_path / "og")
    size = ("--width", "800", "--height", "400", "--device-scale", "1.5")
    assert (done := og(tmp_path / "og", "site", "--site-url", SITE_URL, *size)).returncode == 0, done.stderr
    built = {tmp_path / "sx" / "out" / "guide.html": SPHINX_SITE, tmp_path / "mk" / "site" / "index.html": SITE_URL,
             tmp_path / "og" / "site" / "index.html": SITE_URL}  # fmt: skip
    for page, url in built.items():
        tags = meta_tags(page)
        (image,) = tags["og:image"]
        assert (tags["og:image:width"], tags["og:image:height"]) == (["1200"], ["600"]), page
        assert load(page.parent / image[len(url) :]).size == (1200, 600), page


def test_a_pages_own_viewport_wins_and_the_template_sees_the_size_it_renders_at() -> None:
    spec = CardSpec(CardTemplate.builtin(), 800, 400, 1.5)
    page = {"viewport_width": "600", "css": "p{color:red}"}  # `hcti og`'s hcti:viewport_width and hcti:css
    values = spec.values({"title": "T"}, {}, {}, params=page)
    assert (values["width"], values["height"]) == (600, 400)
    opts = spec.options("<p>x</p>", page)
    assert (opts.viewport_width, opts.viewport_height, opts.device_scale, opts.css) == (600, 400, 1.5, "p{color:red}")


def test_a_sphinx_card_size_out_of_range_is_one_warning_and_no_cards(tmp_path: Path) -> None:
    sphinx_project(tmp_path, "hcti_cards_width = 9000\n")
    done = sphinx(tmp_path, "-b", "html")
    assert done.returncode == 0 and done.stderr.count("viewport_width") == 1, done.stderr
    assert "og:image" not in (tmp_path / "out" / "guide.html").read_text()


# -- (b) the pool ---------------------------------------------------------------------------------------------
def test_the_pipeline_sizes_a_card_pool_by_the_stores_concurrency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(isolate=False)  # never launched: only its page count is read
    monkeypatch.delenv("HCTI_REMOTE", raising=False)
    local = Store(tmp_path / "a", engine=engine)
    shared = Store(tmp_path / "b", engine=engine, remote=(tmp_path / "shared").as_uri())
    try:
        assert (card_jobs(local), card_jobs(shared), card_jobs(shared, 3)) == (2, 16, 3)
    finally:
        local.close()
        shared.close()


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("host", ["mkdocs", "sphinx", "og"])
def test_every_host_makes_its_cards_on_a_pool_of_the_stores_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, remote: bool
) -> None:
    """2 at a time on the engine's two pages; 16 with a remote, whose hits wait on the network (MkDocs fetched
    them 2 at a time)."""
    if remote:
        monkeypatch.setenv("HCTI_REMOTE", (tmp_path / "shared").as_uri())
    else:
        monkeypatch.delenv("HCTI_REMOTE", raising=False)
    pools = _spy_on_pools(monkeypatch)
    {"mkdocs": lambda root: build_mkdocs(mkdocs_site(root)), "sphinx": build_sphinx, "og": run_og}[host](tmp_path / host)
    assert [workers for prefix, workers in pools if prefix in CARD_POOLS] == [16 if remote else 2]


def _spy_on_pools(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None]]:
    made: list[tuple[str, int | None]] = []
    init: Callable[..., None] = concurrent.futures.ThreadPoolExecutor.__init__

    def spy(self: Any, max_workers: int | None = None, thread_name_prefix: str = "", *args: Any, **kwargs: Any) -> None:
        made.append((thread_name_prefix, max_workers))
        init(self, max_workers, thread_name_prefix, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "__init__", spy)
    return made


# -- (c) the memo ---------------------------------------------------------------------------------------------
def test_one_list_of_code_versions_invalidates_every_hosts_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module added to the pipeline's code (`CARD_CODE`) is in the MkDocs memo's header and in `hcti og`'s; a
    new version of it starts both anew. (Sphinx keeps no memo of its own: its environment says what changed.)"""
    code = tmp_path / "card_code.py"
    code.write_text("")
    module = types.ModuleType("card_code")
    module.__file__ = str(code)
    monkeypatch.setitem(sys.modules, "card_code", module)
    monkeypatch.setattr(pipeline, "CARD_CODE", (*pipeline.CARD_CODE, "card_code"))
    monkeypatch.delenv("HCTI_REMOTE", raising=False)
    mk, og_root = mkdocs_site(tmp_path / "mk"), tmp_path / "og"
    memos = {
        "hcti_build.integrations.mkdocs.cards": lambda: mk / ".cache" / "hcti" / "cards-memo.json",
        "hcti_build.integrations.og": lambda: next((og_root / ".hcti" / "og-memo").glob("*.json")),
    }
    for version in (1_000_000_000, 2_000_000_000):
        os.utime(code, ns=(version, version))
        build_mkdocs(mk)
        run_og(og_root)
        for host, memo in memos.items():
            header = json.loads(memo().read_text())["header"]
            assert header["code"] == code_versions(host), host  # one function makes every host's code versions
            assert header["code"][len(pipeline.CARD_CODE) - 1] == version, host
