"""The file rules (`files.Tree`, `files.plain_name`) and the readers of what a bucket holds (`bucket.Meta`,
`bucket.Known`, `ids.parse_manifest`), as properties: any input gives a value or the project's own refusal, and a
name the rules accept never leads outside the root, into a hidden file or into the store."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcti_build.files import Tree, plain_name
from hcti_build.store.bucket import Known, Malformed, Meta
from hcti_build.store.ids import parse_manifest

PARTS = st.sampled_from(["a", "b.css", "..", ".", "", ".env", ".git", "x\x00y", "c:", "C:", "%2e", "\\", "link", "store"])
NAMES = st.one_of(st.text(max_size=40), st.lists(PARTS, min_size=1, max_size=5).map("/".join))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ("id", "sha256", "size", "width", "height", "params", "base", "engine", "created_at", "format", "read", "missing", "made")


@given(NAMES)
def test_a_plain_name_has_no_way_out(name: str) -> None:
    plain = plain_name(name)
    if plain is not None:
        parts = plain.split("/")
        assert "\x00" not in plain and "\\" not in plain and not plain.startswith("/")
        assert all(p and not p.startswith(".") for p in parts)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(NAMES)
def test_what_a_tree_finds_is_inside_its_root_and_not_in_the_store(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    if not root.exists():
        (root / "store").mkdir(parents=True)
        (root / "a").mkdir()
        (root / "a" / "b.css").write_text("x")
        (root / "link").symlink_to(tmp_path)  # out of the root
        (root / ".env").write_text("secret")
    tree = Tree.of(root, [root / "store"])
    found = tree.find(name)
    if found is not None:
        found_name, path = found
        assert path.is_relative_to(tree.root) and not path.is_relative_to(tree.root / "store")
        assert not any(p.startswith(".") for p in path.relative_to(tree.root).parts)
        assert found_name == path.relative_to(tree.root).as_posix()


@settings(max_examples=400)
@given(st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode())))
def test_any_bytes_are_metadata_or_malformed(data: bytes) -> None:
    try:
        meta = Meta.parse(data, "abcdef01-0000-8000-8000-00000000000a")
    except Malformed:
        return
    assert meta.id == "abcdef01-0000-8000-8000-00000000000a"


@settings(max_examples=400)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=len(FIELDS)))
def test_any_object_is_a_record_or_malformed(raw: dict[str, object]) -> None:
    data = json.dumps(raw).encode()
    for parse in (lambda: Meta.parse(data, "abcdef01-0000-8000-8000-00000000000a"), lambda: Known.parse(data)):
        try:
            parsed = parse()
        except Malformed:
            continue
        if isinstance(parsed, Known):
            assert all(plain_name(n) == n for n in (*parsed.read, *parsed.missing))
    manifest = parse_manifest(data)
    assert manifest is None or all(plain_name(n) == n for n in (*manifest[0], *manifest[1]))
