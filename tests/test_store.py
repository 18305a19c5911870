"""The store's own logic: ids, lists and their pages, deletes and tombstones, batches, usage, inputs seen
changing; on a renderer that is not a browser."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hcti_build import BadRequestError, GoneError, NotFoundError, Store


@pytest.fixture
def store(fake_store: Store) -> Store:
    """The store's logic needs no browser (`fakes.FakeRenderer`); tests/test_server_e2e.py and the hostile suite
    drive the same paths through real Chromium."""
    return fake_store


def test_ids_are_uuid8_and_stable(store: Store) -> None:
    a = store.create({"html": "<p>a</p>"})
    b = store.create({"html": "<p>a</p>"})
    assert a == b
    u = uuid.UUID(a["id"])
    assert u.version == 8 and u.variant == uuid.RFC_4122
    assert store.create({"html": "<p>b</p>"})["id"] != a["id"]


def test_list_paging_newest_first(store: Store) -> None:
    ids = [store.create({"html": f"<p>{i}</p>", "device_scale": 0.5})["id"] for i in range(5)]
    page1 = store.list(count=2)
    assert [i["id"] for i in page1["images"]] == ids[::-1][:2] and page1["has_next_page"]
    page2 = store.list(count=2, page_token=page1["next_page_token"])
    page3 = store.list(count=2, page_token=page2["next_page_token"])
    seen = [i["id"] for p in (page1, page2, page3) for i in p["images"]]
    assert seen == ids[::-1] and not page3["has_next_page"]
    with pytest.raises(BadRequestError):
        store.list(count=51)


def test_delete_then_get_is_410(store: Store) -> None:
    image_id = store.create({"html": "<p>x</p>"})["id"]
    store.get(image_id, fmt="jpg")
    store.delete(image_id)
    with pytest.raises(GoneError) as err:
        store.get(image_id)
    assert err.value.status_code == 410
    assert not list((store.path / "objects").rglob(f"{image_id}*.*"))
    with pytest.raises(NotFoundError):
        store.get("00000000-0000-8000-8000-000000000000")
    with pytest.raises(NotFoundError):
        store.get("../../etc/passwd")


def test_batch_and_usage(store: Store) -> None:
    out = store.batch(
        {"css": "p{margin:0}", "device_scale": 1},
        [{"html": "<p>1</p>"}, {"html": "<p>2</p>"}, {"html": "<p>3</p>", "device_scale": 2}],
    )
    assert len(out["images"]) == 3 and len({i["id"] for i in out["images"]}) == 3
    with pytest.raises(BadRequestError):
        store.batch({}, [{"html": "x"}] * 26)
    data = store.usage()["data"]
    assert sum(data["hour"].values()) == 3 and set(data) == {"hour", "day", "month"}
    store.batch_delete([i["id"] for i in out["images"]])
    assert store.list()["images"] == []


def test_a_same_size_rewrite_right_after_a_hit_is_seen(store: Store, tmp_path: Path) -> None:
    """The stat cache must not hide an edit that keeps the size and lands within one mtime tick."""
    import os
    import time

    tick = time.time_ns()  # both versions get this one mtime, as two writes within one clock tick do
    css = tmp_path / "a.css"
    css.write_text("p{color:#f00}")
    os.utime(css, ns=(tick, tick))
    params = {"html": "<link rel=stylesheet href='a.css'><p>x</p>"}
    first = store.create(params)["id"]
    assert store.create(params)["id"] == first  # a hit: a.css was stat-ed and hashed
    css.write_text("p{color:#00f}")  # same size, same inode
    os.utime(css, ns=(tick, tick))
    assert store.create(params)["id"] != first


def test_a_tombstone_wins_over_a_copy_that_is_not_asked_for(tmp_path: Path) -> None:
    """A row written from another store's copy (a listing of the remote) never revives a deleted image; a request
    for it does (the same request renders the same id again)."""
    import sqlite3

    from hcti_build.store.index import SCHEMA, record_image

    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    row = {"id": "x", "created_at": 1.0, "params": "{}", "root": ".", "sha256": "a", "width": 1, "height": 1, "size": 1,
           "base": "", "engine": "e"}  # fmt: skip
    record_image(db, row)
    db.execute("UPDATE images SET deleted_at=2 WHERE id='x'")
    record_image(db, {**row, "sha256": "b"}, revive=False)
    assert db.execute("SELECT deleted_at, sha256 FROM images").fetchone() == (2.0, "a")
    record_image(db, {**row, "sha256": "b"})
    assert db.execute("SELECT deleted_at, sha256 FROM images").fetchone() == (None, "b")


def test_the_render_helper_closes_the_store_it_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hcti_build.render()` opened a `Store()` it never closed (its index stayed open for the process's life)."""
    from fakes import FakeRenderer

    import hcti_build
    from hcti_build import renderer

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HCTI_STORE", raising=False)
    monkeypatch.setattr(renderer, "_default", FakeRenderer)
    closed: list[Store] = []
    close = Store.close
    monkeypatch.setattr(Store, "close", lambda self: closed.append(self) or close(self))
    assert hcti_build.render(html="<p>x</p>")[:4] == b"\x89PNG"
    assert len(closed) == 1 and closed[0].path == (tmp_path / ".hcti").resolve()
