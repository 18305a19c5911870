"""The remote tier's pure parts: URLs, records from a shared bucket, ages; no browser, no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hcti_build import BadRequestError, Store
from hcti_build.store.bucket import Known, Malformed, Meta
from hcti_build.store.ids import manifest_text, parse_manifest
from hcti_build.store.maintenance import parse_age
from hcti_build.store.remote import RemoteTier, configured_remote


def test_manifests_round_trip_and_refuse_paths_outside_the_root() -> None:
    assert parse_manifest(manifest_text(["b.css", "a.css"], ["gone.png"])) == (["a.css", "b.css"], ["gone.png"])
    assert parse_manifest('["old.css"]') == (["old.css"], [])  # stores made before missing files were kept
    for bad in ("../secret.css", "/etc/passwd", "css/../../x", "c:\\\\x"):
        assert parse_manifest(json.dumps({"read": [bad], "missing": []})) is None, bad
        assert parse_manifest(json.dumps({"read": [], "missing": [bad]})) is None, bad
    assert parse_manifest("{not json") is None and parse_manifest('{"read": 1}') is None


ID = "abcdef01-0000-8000-8000-00000000000a"
OTHER = "1" * 8 + "-0000-8000-8000-" + "0" * 12
GOOD = {"id": ID, "sha256": "ab" * 32, "size": 10, "width": 2, "height": 3, "params": {"html": "x"}, "base": "",
        "engine": "Chromium 1", "created_at": 1.0, "format": "png"}  # fmt: skip


def test_metadata_from_a_bucket_round_trips() -> None:
    meta = Meta(ID, "ab" * 32, 10, 2, 3, {"html": "x"}, "", "Chromium 1", 1.0)
    assert Meta.parse(meta.dumps(), ID) == meta
    assert Meta.parse(json.dumps(GOOD).encode(), ID) == meta


@pytest.mark.parametrize(
    "change",
    [
        {"id": "../../victim/precious"}, {"id": OTHER}, {"id": ID.upper()}, {"sha256": "x"}, {"sha256": None},
        {"size": -1}, {"size": 10**400}, {"size": True}, {"size": "10"}, {"width": 0}, {"height": 100_000},
        {"width": 16384, "height": 16384}, {"created_at": None}, {"created_at": "2024"}, {"created_at": 10**400},
        {"created_at": float("nan")}, {"created_at": 4e12}, {"params": {"html": "x", "evil": 1}}, {"params": []},
        {"params": {"ms_delay": 10**400, "html": "x"}}, {"base": "../up"}, {"base": ".git"}, {"base": "a\x00b"},
        {"engine": None}, {"engine": "x" * 1000}, {"format": "jpg"}, {"params": None},
    ],
)  # fmt: skip
def test_metadata_from_a_bucket_is_checked_field_by_field(change: dict[str, object]) -> None:
    with pytest.raises(Malformed):
        Meta.parse(json.dumps({**GOOD, **change}).encode(), ID)


@pytest.mark.parametrize("data", [b"[]", b"\xff", b"{", b"[" * 50_000 + b"]" * 50_000, b'{"id": "x"}', b"null"])
def test_metadata_that_is_not_json_or_not_an_object_is_malformed(data: bytes) -> None:
    with pytest.raises(Malformed):
        Meta.parse(data, ID)


def test_request_records_from_a_bucket_are_checked() -> None:
    made = {k: GOOD[k] for k in ("id", "sha256", "size", "width", "height")}
    known = Known.parse(json.dumps({"read": ["a.css"], "missing": ["b.png"], "made": made}).encode())
    assert (known.read, known.missing, known.made and known.made.id) == (["a.css"], ["b.png"], ID)
    assert Known.parse(json.dumps({"read": [], "missing": [], "made": {**made, "id": "../x"}}).encode()).made is None
    for bad in ("logo\u0000.png", ".env", "../src/keep.txt", "/etc/passwd", "a//b", "css/.hidden/x.css", 3, None):
        with pytest.raises(Malformed):
            Known.parse(json.dumps({"read": [bad], "missing": []}).encode())
        with pytest.raises(Malformed):
            Known.parse(json.dumps({"read": [], "missing": [bad]}).encode())


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 1209600), ("0m", 0)])
def test_ages(text: str, seconds: int) -> None:
    assert parse_age(text, "older_than") == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1.5d", "30 days", "soon"])
def test_bad_ages_name_the_option(text: str) -> None:
    with pytest.raises(BadRequestError) as err:
        parse_age(text, "unused_since")
    assert err.value.param == "unused_since" and "like 30d" in err.value.message


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://", "bucket/prefix", "http://example.org/x"])
def test_a_remote_url_that_is_not_one_is_a_400_naming_it(url: str, tmp_path: Path) -> None:
    with pytest.raises(BadRequestError) as err:
        RemoteTier(url)
    assert err.value.param == "remote" and "s3://bucket/prefix" in err.value.message
    with pytest.raises(BadRequestError):
        Store(tmp_path / "s", root=tmp_path, remote=url)


def test_where_the_remote_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCTI_REMOTE", raising=False)
    (tmp_path / "hcti.toml").write_text('remote = "s3://from-config/x"\n')
    assert configured_remote(None, tmp_path) == "s3://from-config/x"
    assert configured_remote("s3://from-plugin/x", tmp_path) == "s3://from-plugin/x"
    monkeypatch.setenv("HCTI_REMOTE", "file:///from-env")
    assert configured_remote("s3://from-plugin/x", tmp_path) == "file:///from-env"
    monkeypatch.setenv("HCTI_REMOTE", "")  # set but empty: turned off
    assert configured_remote("s3://from-plugin/x", tmp_path) is None
    assert Store(tmp_path / "s", root=tmp_path).remote is None


def test_the_cli_says_a_bad_remote_as_json(tmp_path: Path) -> None:
    env = {"HCTI_REMOTE": "ftp://nowhere/x", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "hcti_build.cli", "ls"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    body = json.loads(r.stderr)
    assert body["statusCode"] == 400 and body["validation_errors"][0]["field"] == "remote"
