"""The store's remote tier and maintenance as logic, in-process, on a renderer that is not a browser
(`fakes.FakeRenderer`) and a shared folder as the remote: runner B renders nothing that runner A made, a delete
reaches every copy, listings of the bucket are rationed, prune and verify. tests/test_remote_e2e.py drives the
same paths through real Chromium and an S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeRenderer

from hcti_build import CreateOptions, GoneError, Store
from hcti_build.store import maintenance
from hcti_build.store.remote import Remote


def runner(tmp_path: Path, name: str, renderer: FakeRenderer) -> Store:
    root = tmp_path / name
    (root / "css").mkdir(parents=True, exist_ok=True)
    (root / "css" / "a.css").write_text(".a{color:red}")
    return Store(root / ".hcti", root=root, engine=renderer, remote=(tmp_path / "bucket").as_uri())


PARAMS = {"html": '<link rel="stylesheet" href="css/a.css"><p class="a">x</p>'}


def test_runner_b_fetches_what_runner_a_made_and_renders_nothing(tmp_path: Path) -> None:
    a_renderer, b_renderer = FakeRenderer(), FakeRenderer()
    a, b = runner(tmp_path, "a", a_renderer), runner(tmp_path, "b", b_renderer)
    made = a.create(PARAMS)["id"]
    assert b.create(PARAMS)["id"] == made and b_renderer.renders == 0
    assert b.get(made) == a.get(made) and b.inputs(CreateOptions.from_mapping(PARAMS)) == ["css/a.css"]
    (tmp_path / "b" / "css" / "a.css").write_text(".a{color:blue}")  # B's input differs: another image, rendered
    assert b.create(PARAMS)["id"] != made and b_renderer.renders == 1


def test_a_delete_reaches_every_copy_and_a_listing_revives_nothing(tmp_path: Path) -> None:
    renderer = FakeRenderer()
    a, b = runner(tmp_path, "a", renderer), runner(tmp_path, "b", renderer)
    made = a.create(PARAMS)["id"]
    assert [i["id"] for i in b.list()["images"]] == [made]
    a.delete(made)
    assert not list((tmp_path / "bucket" / "images").glob(f"{made}*"))
    with pytest.raises(GoneError):
        a.get(made)
    c = runner(tmp_path, "c", renderer)
    assert c.list()["images"] == []


def test_listing_the_bucket_is_rationed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first page of a list (or a gallery) asked again and again lists the bucket once per SYNC_EVERY."""
    import hcti_build.store.store as store_module

    listed: list[str] = []
    entries = Remote.entries
    monkeypatch.setattr(Remote, "entries", lambda self, prefix: listed.append(prefix) or entries(self, prefix))
    renderer = FakeRenderer()
    a, b = runner(tmp_path, "a", renderer), runner(tmp_path, "b", renderer)
    a.create(PARAMS)
    for _ in range(5):
        assert len(b.list()["images"]) == 1
    assert listed == ["images"]
    monkeypatch.setattr(store_module, "SYNC_EVERY", 0)
    b.list()
    assert listed == ["images", "images"]


def test_prune_and_verify_on_both_tiers(tmp_path: Path) -> None:
    renderer = FakeRenderer()
    a = runner(tmp_path, "a", renderer)
    ids = [a.create({"html": f"<p>{i}</p>"})["id"] for i in range(3)]
    a.objects.master(ids[0]).write_bytes(b"damaged")
    checked = maintenance.verify(a)
    assert checked.checked == 3 and checked.counts["repaired"] == 1 and checked.counts["ok"] == 2
    assert a.remote is not None
    before = maintenance.stats(a)
    assert before.objects == 3 and maintenance.prune(a, older_than=0, unused_since=None) == (3, before.bytes)
    assert maintenance.stats(a).objects == 0
    assert maintenance.prune_remote(a.remote.remote, older_than=0)[0] == 3
    assert maintenance.remote_stats(a.remote.remote).objects == 0
