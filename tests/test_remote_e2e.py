"""The remote tier against a real S3-compatible server: moto's standalone `moto_server`, started here on
127.0.0.1 (MinIO's server is not on the package registries this suite installs from).

Two CI runners are two checkouts at different paths with empty local stores: runner A builds and uploads,
runner B builds the same and renders nothing (browser launches counted by a wrapper around the real Chromium).
Then the faults: the server stopped mid-build, a corrupted remote object, two runners uploading at once,
read-only pull requests, an unreachable remote with and without HCTI_REMOTE_REQUIRED; servers sharing a bucket;
and `hcti store stats|prune|verify`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import obstore
import pytest
from conftest import CountingChromium, Served
from obstore.store import S3Store
from test_build_e2e import make_tree
from test_mkdocs_e2e import make_site
from test_moved_checkout_e2e import files

from hcti_build import Engine, RemoteTier, Store

MOTO = str(Path(sys.executable).with_name("moto_server"))
BUCKET = "hcti-ci"
REMOTE = f"s3://{BUCKET}/cache"
HCTI = [sys.executable, "-m", "hcti_build.cli"]


@dataclass
class S3:
    proc: subprocess.Popen[str]
    endpoint: str
    log: Path
    env: dict[str, str]

    def store(self) -> S3Store:
        return S3Store(BUCKET, prefix="cache", config={"endpoint": self.endpoint, "region": "us-east-1",
                       "access_key_id": "test", "secret_access_key": "test"}, client_options={"allow_http": True})

    def names(self, prefix: str = "") -> list[str]:
        return sorted(m["path"] for chunk in obstore.list(self.store(), prefix or None) for m in chunk)

    def read(self, name: str) -> bytes:
        return bytes(obstore.get(self.store(), name).bytes())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    port = _free_port()
    log = tmp_path / "moto.log"
    with log.open("w") as out:
        proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT, text=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.put(f"{endpoint}/{BUCKET}", timeout=2).raise_for_status()  # CreateBucket
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
    env = {
        "HCTI_REMOTE": REMOTE, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    }  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("HCTI_REMOTE_READONLY", "HCTI_REMOTE_REQUIRED", "HCTI_STORE"):
        monkeypatch.delenv(k, raising=False)
    server = S3(proc, endpoint, log, env)
    yield server
    if proc.poll() is None:
        server.stop()


def run(cmd: list[str], cwd: Path, chromium: CountingChromium, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HCTI_CHROMIUM": str(chromium.path), "NO_MKDOCS_2_WARNING": "1", **env}
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=240, env=environ)
    assert (r.returncode == 0) == ok, r.stderr
    return r


def _outputs(folder: Path) -> dict[str, bytes]:
    return files(folder, skip=r"^sitemap\.xml")  # the sitemap holds the day of the build


def test_runner_b_renders_nothing_and_launches_no_browser(tmp_path: Path, s3: S3, counting_chromium: CountingChromium) -> None:
    build = [*HCTI, "build", ".", "--out", "_out"]
    make_tree(a := tmp_path / "runner-a" / "work")
    first = run(build, a, counting_chromium)
    assert re.search(r"(\d+) directives, (\d+) rendered, 0 reused \(0 from s3://hcti-ci/cache\)", first.stderr), first.stderr
    site_a = make_site(tmp_path / "runner-a" / "site")
    run([sys.executable, "-m", "mkdocs", "build", "--strict"], site_a, counting_chromium)
    uploaded = s3.names("images")
    assert len([n for n in uploaded if n.endswith(".png")]) >= 8 and counting_chromium.launches() == 2

    make_tree(b := tmp_path / "elsewhere" / "runner-b" / "work")
    seen = len(s3.log.read_text())
    again = run(build, b, counting_chromium)
    gets = re.findall(r'"GET /hcti-ci/cache/(\S+) HTTP', s3.log.read_text()[seen:])
    images = [g for g in gets if g.startswith("images/")]
    assert images and all(g.endswith(".png") for g in images), gets  # each request's record has what the check needs
    m = re.search(r"(\d+) directives, 0 rendered, (\d+) reused \((\d+) from s3://hcti-ci/cache\)", again.stderr)
    assert m and int(m[3]) >= 6, again.stderr
    site_b = make_site(tmp_path / "elsewhere" / "runner-b" / "site")
    built = run([sys.executable, "-m", "mkdocs", "build", "--strict"], site_b, counting_chromium)
    assert "2 cards (0 rendered, 2 reused), 2 directive images (4 from s3://hcti-ci/cache); Chromium launched 0" in built.stderr
    assert counting_chromium.launches() == 2  # none on runner B
    assert files(b / "_out") == files(a / "_out")
    assert _outputs(site_b / "site") == _outputs(site_a / "site")
    assert s3.names("images") == uploaded  # B uploaded nothing: it rendered nothing


def _many(root: Path, n: int, start: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    body = "".join(
        f'```hcti alt="box {i}" device_scale=1\n<div style="width:{20 + i}px;height:10px;background:rgb({i},0,0)"></div>\n```\n\n'
        for i in range(start, start + n)
    )
    (root / "index.md").write_text(body)


def test_the_server_stopped_mid_build_costs_one_warning(tmp_path: Path, s3: S3, counting_chromium: CountingChromium) -> None:
    build = [*HCTI, "build", ".", "--out", "_out"]
    _many(a := tmp_path / "a", 12)
    run(build, a, counting_chromium)
    _many(b := tmp_path / "b", 24)  # the 12 A made, and 12 more
    environ = {**os.environ, "HCTI_CHROMIUM": str(counting_chromium.path)}
    seen = len(s3.log.read_text())
    proc = subprocess.Popen(build, cwd=b, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while "GET /hcti-ci/cache/images/" not in s3.log.read_text()[seen:]:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    s3.stop()  # B has started fetching images from the remote
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if "s3://hcti-ci/cache" in line and "local store only" in line]
    assert len(warnings) == 1, err
    assert re.search(r"24 directives, \d+ rendered", err), err
    images = re.findall(r"assets/hcti/[0-9a-f-]{36}\.png", (b / "_out" / "index.md").read_text())
    assert len(set(images)) == 24 and all((b / "_out" / name).stat().st_size > 0 for name in images)


def test_a_corrupted_remote_object_is_rendered_again_and_replaced(tmp_path: Path, s3: S3, engine: Engine) -> None:
    html = {"html": '<div style="width:40px;height:30px;background:rgb(0,0,255)"></div>', "device_scale": 1}
    a = Store(tmp_path / "a", root=tmp_path, engine=engine)
    image_id, _ = a.ensure(html)
    good = s3.read(f"images/{image_id}.png")
    obstore.put(s3.store(), f"images/{image_id}.png", good[:100] + b"\0" * (len(good) - 100))  # same size, bad bytes

    warned: list[str] = []
    b = Store(tmp_path / "b", root=tmp_path, engine=engine, remote=RemoteTier(REMOTE, warn=warned.append))
    again, rendered = b.ensure(html)
    assert (again, rendered) == (image_id, True)
    assert b.remote is not None and b.remote.report.corrupt == 1 and b.remote.report.fetched == 0
    assert warned == [f"remote {REMOTE}: {image_id} does not match its sha256; rendering it again"]
    replaced = s3.read(f"images/{image_id}.png")
    meta = json.loads(s3.read(f"images/{image_id}.json"))
    assert hashlib.sha256(replaced).hexdigest() == meta["sha256"] and replaced == b.get(image_id)

    c = Store(tmp_path / "c", root=tmp_path, engine=engine)
    assert c.ensure(html) == (image_id, False)  # the replaced copy is good


def test_two_runners_uploading_the_same_ids_at_once(tmp_path: Path, s3: S3, engine: Engine) -> None:
    requests = [{"html": f'<div style="width:{10 + i}px;height:10px;background:#0a0"></div>'} for i in range(6)]
    stores = [Store(tmp_path / name, root=tmp_path, engine=engine) for name in ("a", "b")]
    start = threading.Barrier(2)
    results: dict[int, list[tuple[str, bool]]] = {}

    def runner(n: int) -> None:
        start.wait()
        results[n] = [stores[n].ensure(r) for r in requests]

    threads = [threading.Thread(target=runner, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [i for i, _ in results[0]] == [i for i, _ in results[1]]
    pngs = [n for n in s3.names("images") if n.endswith(".png")]
    assert len(pngs) == 6  # one copy an id
    for image_id, _ in results[0]:
        data = s3.read(f"images/{image_id}.png")
        assert hashlib.sha256(data).hexdigest() == json.loads(s3.read(f"images/{image_id}.json"))["sha256"]
    remotes = [s.remote for s in stores]
    assert all(r is not None and r.report.failure is None for r in remotes)


def test_read_only_mode_reads_and_writes_nothing(tmp_path: Path, s3: S3, counting_chromium: CountingChromium) -> None:
    build = [*HCTI, "build", ".", "--out", "_out"]
    _many(a := tmp_path / "a", 3)
    run(build, a, counting_chromium)
    before = s3.names()
    _many(b := tmp_path / "b", 5)  # 3 known, 2 new
    out = run(build, b, counting_chromium, HCTI_REMOTE_READONLY="1")
    assert "5 directives, 2 rendered, 3 reused (3 from s3://hcti-ci/cache)" in out.stderr, out.stderr
    assert s3.names() == before


def test_an_unreachable_remote_warns_once_unless_required(tmp_path: Path, counting_chromium: CountingChromium) -> None:
    build = [*HCTI, "build", ".", "--out", "_out"]
    _many(tmp_path, 3)
    env = {"HCTI_REMOTE": REMOTE, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}", "AWS_ALLOW_HTTP": "true",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}  # fmt: skip
    t0 = time.monotonic()
    out = run(build, tmp_path, counting_chromium, **env)
    assert time.monotonic() - t0 < 60
    warnings = [line for line in out.stderr.splitlines() if "local store only" in line]
    assert len(warnings) == 1 and "s3://hcti-ci/cache" in warnings[0], out.stderr
    assert "3 directives, 3 rendered, 0 reused (0 from s3://hcti-ci/cache)" in out.stderr

    shutil.rmtree(tmp_path / ".hcti")
    failed = run(build, tmp_path, counting_chromium, ok=False, HCTI_REMOTE_REQUIRED="1", **env)
    assert "s3://hcti-ci/cache" in failed.stderr and "HCTI_REMOTE_REQUIRED" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr


def test_servers_sharing_a_bucket(s3: S3, serve: object, tmp_path: Path, engine: Engine) -> None:
    one: Served = serve()  # type: ignore[operator]
    made = one.client.post("/v1/image", json={"html": "<p style='margin:0;width:64px;height:32px;background:red'></p>"})
    assert made.status_code == 200
    image_id = made.json()["id"]

    other = Store(tmp_path / "other-store", root=tmp_path / "empty", engine=engine)  # a second server's empty store
    listed = other.list()
    assert [i["id"] for i in listed["images"]] == [image_id]
    assert other.get(image_id, {"width": 32}) is not None
    assert other.get(image_id) == one.client.get(f"/v1/image/{image_id}").content

    gone = one.client.delete(f"/v1/image/{image_id}")
    assert gone.status_code == 202
    assert not [n for n in s3.names("images") if image_id in n]  # every copy: the remote's too
    third = Store(tmp_path / "third-store", root=tmp_path / "empty", engine=engine)
    assert third.list()["images"] == []
    assert httpx.get(f"{one.base}/v1/image/{image_id}").status_code == 410


def test_store_maintenance_commands(tmp_path: Path, s3: S3, engine: Engine) -> None:
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)
    ids = [store.ensure({"html": f"<div style='width:{10 + i}px;height:10px;background:#00f'></div>"})[0] for i in range(3)]
    env = {**os.environ, "HCTI_STORE": str(tmp_path / "store")}

    def hcti(*args: str, code: int = 0) -> str:
        r = subprocess.run([*HCTI, "store", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == code, r.stderr
        return r.stdout + r.stderr

    local, remote = json.loads(hcti("stats", "--remote", "--json"))
    assert local["objects"] == remote["objects"] == 3 and remote["where"] == REMOTE
    (version,) = local["by_chromium"]
    assert re.fullmatch(r"\D+ \d+\.\d+\.\d+\.\d+", version) and local["by_chromium"][version]["objects"] == 3

    master = store.objects.master(ids[0])
    master.write_bytes(b"broken")
    obstore.put(s3.store(), f"images/{ids[1]}.png", b"broken too")
    out = hcti("verify", "--remote")
    assert "3 checked (2 ok, 1 repaired)" in out and f"{ids[0]}: damaged or missing; repaired" in out, out
    assert f"{REMOTE}: 3 checked (2 ok, 1 replaced)" in out
    assert f"{ids[1]}: damaged or missing on the remote; replaced from the local store" in out, out
    assert hashlib.sha256(master.read_bytes()).hexdigest() == store.digest(ids[0])
    assert s3.read(f"images/{ids[1]}.png") == store.get(ids[1])

    assert "would remove 3 images" in hcti("prune", "--older-than", "0m", "--dry-run")
    assert "removed 0 images" in hcti("prune", "--unused-since", "1d")
    bad = hcti("prune", "--older-than", "soon", code=2)
    assert "older_than must be a number of minutes, hours, days or weeks" in bad
    out = hcti("prune", "--older-than", "0m", "--remote")
    assert f"{tmp_path / 'store'}: removed 3 images" in out and f"{REMOTE}: removed 3 images" in out, out
    assert s3.names() == [] and not list((tmp_path / "store" / "objects").rglob("*.png"))


def test_a_shared_folder_remote(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCTI_REMOTE", (tmp_path / "shared").as_uri())
    (tmp_path / "s.css").write_text("div{width:20px;height:20px;background:#f0f}")
    html = {"html": '<link rel="stylesheet" href="s.css"><div></div>'}
    a = Store(tmp_path / "a", root=tmp_path, engine=engine)
    image_id, rendered = a.ensure(html)
    assert rendered and (tmp_path / "shared" / "images" / f"{image_id}.png").is_file()
    b = Store(tmp_path / "b", root=tmp_path, engine=engine)
    assert b.ensure(html) == (image_id, False) and b.get(image_id) == a.get(image_id)
    (tmp_path / "s.css").write_text("div{width:20px;height:20px;background:#0ff}")  # another input: another id
    assert b.ensure(html)[1] is True


def test_sphinx_runners_share_cards_and_directive_images(tmp_path: Path, s3: S3, counting_chromium: CountingChromium) -> None:
    from test_sphinx_e2e import SPHINX, project

    def runner(name: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        root = tmp_path / name
        root.mkdir()
        src = project(root)
        (src / "guide.rst").write_text("Guide\n=====\n\n.. hcti::\n   :device_scale: 1\n\n   <div style='width:30px;height:20px;background:red'></div>\n")
        env = {**os.environ, "HCTI_CHROMIUM": str(counting_chromium.path)}
        done = subprocess.run([*SPHINX, "-W", "-b", "html", "src", "out"], cwd=root, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return root, done

    a, first = runner("runner-a")
    assert counting_chromium.launches() == 1
    b, second = runner("runner-b")
    assert counting_chromium.launches() == 1  # none on runner B: 2 cards and the directive's image came from S3
    assert f"hcti: 0 images from {REMOTE}, 3 uploaded" in first.stdout
    assert f"hcti: 3 images from {REMOTE}, 0 uploaded" in second.stdout
    assert _outputs(b / "out" / "_images") == _outputs(a / "out" / "_images")
