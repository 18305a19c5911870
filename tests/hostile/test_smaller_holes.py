"""The smaller holes of the second hardening pass: stray temporary files in a build's output, names and bodies
the server answered in the wrong words, and the one form of a signed URL's token."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import CREDS, Served, reap

from hcti_build.api.signing import signed_url


def test_a_build_sweeps_the_temporary_files_a_killed_build_left_in_its_output(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "page.md").write_text("```hcti\n<p style='margin:0'>x</p>\n```\n")
    build = [sys.executable, "-m", "hcti_build.cli", "build", "src", "--out", "out", "--store", "store"]
    assert subprocess.run(build, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    assets = tmp_path / "out" / "assets" / "hcti"
    stale, fresh, held = assets / ".tmp-dead", assets / ".tmp-new", assets / ".tmp-held"
    for path in (stale, fresh, held):
        path.write_bytes(b"")
        path.chmod(0o600)
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    os.utime(held, (an_hour_ago, an_hour_ago))
    with open(held, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # a live writer's, however old
        done = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and fresh.exists() and held.exists()
    assert "0 rendered" in done.stderr


def test_names_and_bodies_in_the_apis_words(serve: Callable[..., Served]) -> None:
    s = serve()
    for name in ("%2e%2e", "..", "x."):
        r = s.anon.get(f"/v1/image/{name}")
        assert r.status_code == 404 and r.json()["error"] == "Not Found", (name, r.text)
    long_id = s.anon.get("/v1/image/" + "a" * 10_000)
    assert long_id.status_code == 404 and len(long_id.json()["message"]) < 120  # the id is not echoed in full
    cut = b'--xx\r\nContent-Disposition: form-data; name="html"\r\n\r\n<p>x'  # no closing boundary
    for body, kind in ((cut, "multipart/form-data; boundary=xx"), (b"garbage", "multipart/form-data")):
        r = s.client.post("/v1/image", content=body, headers={"content-type": kind})
        assert r.status_code == 400
        assert r.json()["message"].startswith("The body could not be parsed as multipart/form-data"), r.text
    whole = cut + b"\r\n--xx--\r\n"
    assert (
        s.client.post("/v1/image", content=whole, headers={"content-type": "multipart/form-data; boundary=xx"}).status_code == 200
    )


def test_a_signed_url_has_one_token(serve: Callable[..., Served]) -> None:
    s = serve()
    url = signed_url(s.base, CREDS, [("html", "<p style='margin:0'>x</p>")])
    token = url.split("?")[0].split("/")[7]
    assert token == token.lower() and s.anon.get(url).status_code == 200
    upper = s.anon.get(url.replace(f"/{token}?", f"/{token.upper()}?"))
    assert upper.status_code == 401 and upper.json()["message"] == "Invalid token"
    assert s.anon.get(url).status_code == 200  # and the URL does not expire: it can be fetched again


def test_hcti_serve_answers_a_request_it_cannot_parse_in_json(tmp_path: Path) -> None:
    env = {**os.environ, "HCTI_USER_ID": "u", "HCTI_API_KEY": "k"}
    cmd = [sys.executable, "-m", "hcti_build.cli", "serve", "--port", "0", "--store", str(tmp_path / "store")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env, start_new_session=True)
    try:
        assert proc.stderr is not None
        found = re.search(r"hcti serve: http://127\.0\.0\.1:(\d+)", proc.stderr.readline())
        assert found
        with socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=30) as conn:
            conn.sendall(b"GET /v1/image/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
        assert json.loads(body)["message"].startswith("The request could not be read as HTTP")
    finally:
        reap(proc)
