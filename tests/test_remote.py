"""The remote tier's pure parts: URLs, records from a shared bucket, ages; no browser, no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hcti_build import BadRequestError, Store
from hcti_build.ids import manifest_text, parse_manifest
from hcti_build.maintenance import parse_age
from hcti_build.remote import Meta, RemoteTier, configured_remote


def test_manifests_round_trip_and_refuse_paths_outside_the_root() -> None:
    assert parse_manifest(manifest_text(["b.css", "a.css"], ["gone.png"])) == (["a.css", "b.css"], ["gone.png"])
    assert parse_manifest('["old.css"]') == (["old.css"], [])  # stores made before missing files were kept
    for bad in ("../secret.css", "/etc/passwd", "css/../../x", "c:\\\\x"):
        assert parse_manifest(json.dumps({"read": [bad], "missing": []})) is None, bad
        assert parse_manifest(json.dumps({"read": [], "missing": [bad]})) is None, bad
    assert parse_manifest("{not json") is None and parse_manifest('{"read": 1}') is None


def test_metadata_from_a_bucket_is_checked() -> None:
    meta = Meta("0" * 8 + "-0000-8000-8000-" + "0" * 12, "ab" * 32, 10, 2, 3, {"html": "x"}, "", "Chromium 1", 1.0)
    assert Meta.parse(meta.dumps()) == meta
    assert Meta.parse(b"[]") is None and Meta.parse(b'{"id": "x"}') is None and Meta.parse(b"\xff") is None


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
