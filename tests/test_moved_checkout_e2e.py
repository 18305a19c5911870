"""A project copied to another folder, with its store, is the same project: nothing renders again.

Each test builds at path A, copies the whole tree (sources, store, outputs) to path B, builds again there and
checks what a CI runner restoring a cache into a new workspace would: no render, no browser launched (counted
by a wrapper around the real Chromium), and the same bytes out, under the same asset names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import CountingChromium, load
from PIL import Image
from test_build_e2e import make_tree
from test_mkdocs_e2e import make_site

from hcti_build import CreateOptions, Engine, Store

JUPYTER = str(Path(sys.executable).with_name("jupyter"))


def files(folder: Path, skip: str = r"^$") -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not re.search(skip, p.name)
    }


def move(a: Path, b: Path) -> Path:
    shutil.copytree(a, b, symlinks=True)
    return b


def run(cmd: list[str], cwd: Path, chromium: CountingChromium, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HCTI_CHROMIUM": str(chromium.path), "NO_MKDOCS_2_WARNING": "1", **env}
    environ.pop("HCTI_STORE", None)
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=240, env=environ)
    assert r.returncode == 0, r.stderr
    return r


def test_hcti_build_in_a_moved_checkout(tmp_path: Path, counting_chromium: CountingChromium) -> None:
    a = tmp_path / "proj-a"
    make_tree(a)
    build = [sys.executable, "-m", "hcti_build.cli", "build", ".", "--out", "_out"]
    first = run(build, a, counting_chromium)
    assert re.search(r"\d+ directives, [1-9]\d* rendered, 0 reused", first.stderr), first.stderr
    assert counting_chromium.launches() == 1

    b = move(a, tmp_path / "elsewhere" / "proj-b")
    again = run(build, b, counting_chromium)
    assert re.search(r"directives, 0 rendered, \d+ reused, 0 files written", again.stderr), again.stderr
    assert counting_chromium.launches() == 1  # none in B
    assert files(b / "_out") == files(a / "_out")


def test_mkdocs_build_in_a_moved_checkout(tmp_path: Path, counting_chromium: CountingChromium) -> None:
    a = make_site(tmp_path / "site-a")
    first = run([sys.executable, "-m", "mkdocs", "build", "--strict"], a, counting_chromium)
    assert "2 cards (2 rendered, 0 reused), 2 directive images; Chromium launched 1 time(s)" in first.stderr
    assert counting_chromium.launches() == 1

    b = move(a, tmp_path / "moved" / "site-b")
    again = run([sys.executable, "-m", "mkdocs", "build", "--strict"], b, counting_chromium)
    assert "2 cards (0 rendered, 2 reused), 2 directive images; Chromium launched 0 time(s)" in again.stderr
    assert counting_chromium.launches() == 1
    built = files(b / "site", skip=r"^sitemap\.xml")  # the sitemap holds the day of the build
    assert built == files(a / "site", skip=r"^sitemap\.xml")
    assert sum(name.startswith("assets/images/social/") for name in built) == 2


def test_nbconvert_in_a_moved_checkout(tmp_path: Path, counting_chromium: CountingChromium) -> None:
    a = tmp_path / "nb-a"
    (a / "css").mkdir(parents=True)
    (a / "css" / "box.css").write_text(".box{width:40px;height:20px;background:rgb(0,128,0)}")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('%%hcti --device-scale 1\n<link rel="stylesheet" href="css/box.css"><div class="box"></div>'),
        nbformat.v4.new_markdown_cell(
            '```hcti alt="Blue" format=jpg\n<div style="width:10px;height:10px;background:blue"></div>\n```\n'
        ),
    ]
    nbformat.write(nb, a / "nb.ipynb")
    convert = [JUPYTER, "nbconvert", "--to", "hcti-markdown", "nb.ipynb"]
    run(convert, a, counting_chromium)
    assert counting_chromium.launches() == 1
    md = (a / "nb.md").read_text()
    assert len(re.findall(r"nb_files/hcti-[0-9a-f-]{36}\.(?:png|jpg)", md)) == 2, md

    b = move(a, tmp_path / "other" / "nb-b")
    run(convert, b, counting_chromium)
    assert counting_chromium.launches() == 1
    assert (b / "nb.md").read_text() == md
    assert files(b / "nb_files") == files(a / "nb_files")
    renders = json.loads(
        subprocess.run(
            [sys.executable, "-m", "hcti_build.cli", "usage", "--json", "--store", str(b / ".hcti")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert sum(renders["data"]["day"].values()) == 2  # the two made in A, none since


def test_a_moved_store_repairs_a_damaged_image_from_its_new_place(tmp_path: Path, engine: Engine) -> None:
    a = tmp_path / "a"
    (a / "css").mkdir(parents=True)
    (a / "css" / "box.css").write_text(".box{width:20px;height:20px;background:rgb(0,0,255)}")
    params = {"html": '<link rel="stylesheet" href="css/box.css"><div class="box"></div>', "device_scale": 1}
    store = Store(a / ".hcti", root=a, engine=engine)
    image_id = store.create(params)["id"]
    store.close()
    b = move(a, tmp_path / "b")
    shutil.rmtree(a)  # the old place is gone
    moved = Store(b / ".hcti", root=b, engine=engine)
    try:
        assert moved.lookup(CreateOptions.from_mapping(params)) == image_id
        (obj,) = (b / ".hcti" / "objects").rglob(f"{image_id}.png")
        obj.write_bytes(b"\x89PNG damaged")
        assert load(moved.get(image_id)).convert("RGB").getpixel((10, 10)) == (0, 0, 255)  # rendered again, in B
    finally:
        moved.close()


def test_a_file_the_render_missed_renders_again_once_it_exists(store: Store, tmp_path: Path) -> None:
    html = "<div style='width:20px;height:20px;background:url(late.png) #fff'></div>"
    params = CreateOptions.from_mapping({"html": html, "device_scale": 1})
    first = store.create(params)["id"]
    assert load(store.get(first)).convert("RGB").getpixel((10, 10)) == (255, 255, 255)
    assert store.lookup(params) == first
    Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / "late.png")
    assert store.lookup(params) is None  # the file it asked for is there now
    second = store.create(params)["id"]
    assert second != first and load(store.get(second)).convert("RGB").getpixel((10, 10)) == (255, 0, 0)
    assert store.inputs(params) == ["late.png"]


def test_manifests_of_older_stores_are_read(store: Store, tmp_path: Path) -> None:
    """Stores made before missing files were recorded list only the files read: still a hit, never a crash."""
    (tmp_path / "a.css").write_text("div{width:8px;height:8px;background:#0f0}")
    params = CreateOptions.from_mapping({"html": '<link rel="stylesheet" href="a.css"><div></div>'})
    image_id = store.create(params)["id"]
    db = sqlite3.connect(store.path / "index.sqlite")
    with db:
        db.execute("UPDATE manifests SET files = ?", (json.dumps(["a.css"]),))
    db.close()
    assert store.lookup(params) == image_id and store.inputs(params) == ["a.css"]
