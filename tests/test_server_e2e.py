"""`hcti serve` over real HTTP on 127.0.0.1: every endpoint, body encoding and error of the seeds, the auth
rules, signed URLs, the render queue, client disconnects, and the gallery in a real browser."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import CREDS, Served, alive, browser_pids, load, reap
from hostile.canary import probe_page, readable
from PIL import Image

from hcti_build import Engine
from hcti_build.api.signing import sign, signed_url

SEED_422 = "Sorry, we do not currently support that format. Valid image types are: jpg, webp or png"
# 100x50 CSS px, left half red and right half blue: 200x100 at the HTML default device_scale of 2.
HALVES = '<div style="display:flex;width:100px;height:50px"><i style="flex:1;background:#f00"></i><i style="flex:1;background:#00f"></i></div>'


def error_of(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status and isinstance(body["validation_errors"], list)
    return body


def test_create_with_every_body_encoding_then_get_every_format(serve: Callable[..., Served]) -> None:
    s = serve()
    by_json = s.client.post("/v1/image", json={"html": HALVES})
    assert by_json.status_code == 200
    created = by_json.json()
    assert set(created) == {"url", "id"} and created["url"] == f"{s.base}/v1/image/{created['id']}"
    # The same request as a form and as multipart with the HTML as an uploaded file: the same image.
    assert s.client.post("/v1/image", data={"html": HALVES}).json() == created
    files = {"html": ("card.html", HALVES.encode(), "text/html")}
    assert s.client.post("/v1/image", files=files, data={"device_scale": "2"}).json() == created

    r = s.anon.get(f"/v1/image/{created['id']}")  # image URLs are shareable: no credentials
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'  # strong: the bytes' hash
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-disposition"].startswith("inline")
    png = load(r.content)
    assert png.size == (200, 100) and png.getpixel((50, 50))[:3] == (255, 0, 0) and png.getpixel((150, 50))[:3] == (0, 0, 255)
    assert s.anon.get(created["url"], headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert s.anon.head(created["url"]).headers["etag"] == r.headers["etag"]

    jpg = s.anon.get(f"/v1/image/{created['id']}.jpg", params={"width": 100, "dl": 1})
    assert jpg.content[:3] == b"\xff\xd8\xff" and load(jpg.content).size == (100, 50)
    assert jpg.headers["content-disposition"] == f'attachment; filename="{created["id"]}.jpg"'
    webp = s.anon.get(f"/v1/image/{created['id']}.webp")
    assert webp.headers["content-type"] == "image/webp" and webp.content[:4] == b"RIFF" and webp.content[8:12] == b"WEBP"
    pdf = s.anon.get(f"/v1/image/{created['id']}.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
    dpi = load(s.anon.get(f"/v1/image/{created['id']}.png", params={"dpi": 300}).content)
    assert round(dpi.info["dpi"][0]) == 300
    # The seed's "left third" crop, on the halves: only red is left.
    crop = load(s.anon.get(f"/v1/image/{created['id']}", params={"x_1": "0", "crop_width": "33%"}).content)
    assert crop.size == (66, 100) and crop.getpixel((60, 50))[:3] == (255, 0, 0)
    right = load(s.anon.get(f"/v1/image/{created['id']}?x_1=-33%25&crop_width=33%25").content)
    assert right.getpixel((5, 50))[:3] == (0, 0, 255)


def test_errors_are_the_apis(serve: Callable[..., Served]) -> None:
    s = serve()
    body = error_of(s.client.post("/v1/image", json={"css": "p{}"}), 400)
    assert body == {
        "error": "Bad Request",
        "statusCode": 400,
        "message": "HTML is Required",
        "validation_errors": [{"field": "html", "message": "HTML is Required"}],
    }
    assert error_of(s.client.post("/v1/image", data={}), 400)["message"] == "HTML is Required"
    body = error_of(s.client.post("/v1/image", json={"html": "<p>x</p>", "device_scale": 9, "ms_delay": "soon"}), 400)
    assert [e["field"] for e in body["validation_errors"]] == ["ms_delay", "device_scale"]  # type: ignore[index,union-attr]
    assert "device_scale must be a number between 0.1 and 3" in str(body["message"])
    bad_json = s.client.post("/v1/image", content=b'{"html": ', headers={"content-type": "application/json"})
    assert "not valid JSON" in str(error_of(bad_json, 400)["message"])
    assert error_of(s.client.post("/v1/image", json=["<p>x</p>"]), 400)["message"] == "The body must be a JSON object"

    image_id = s.client.post("/v1/image", json={"html": "<p>x</p>"}).json()["id"]
    assert error_of(s.anon.get(f"/v1/image/{image_id}.gif"), 422)["message"] == SEED_422
    assert "width" in str(error_of(s.anon.get(f"/v1/image/{image_id}", params={"width": 0}), 400)["message"])
    assert error_of(s.anon.get("/v1/image/00000000-0000-8000-8000-000000000000"), 404)["error"] == "Not Found"
    assert error_of(s.anon.get("/v1/image/..%2F..%2Fetc%2Fpasswd"), 404)["error"] == "Not Found"
    assert s.client.delete(f"/v1/image/{image_id}").status_code == 202
    assert error_of(s.anon.get(f"/v1/image/{image_id}"), 410)["error"] == "Gone"
    assert error_of(s.anon.get(f"/v1/image/{image_id}.jpg?width=10"), 410)["error"] == "Gone"
    assert error_of(s.client.delete(f"/v1/image/{image_id}"), 410)["error"] == "Gone"
    assert error_of(s.anon.get("/v2/nothing"), 404)["message"] == "No route for GET /v2/nothing"
    assert error_of(s.client.put("/v1/image"), 405)["error"] == "Method Not Allowed"
    huge = s.client.post("/v1/image", content=b"x" * (17 * 1024 * 1024), headers={"content-type": "application/json"})
    assert error_of(huge, 413)["message"] == "The request body is larger than 16 MB"


def test_auth_rules_and_no_credentials_in_the_log(serve: Callable[..., Served], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    s = serve()
    image_id = s.client.post("/v1/image", json={"html": "<p>auth</p>"}).json()["id"]
    wrong = httpx.Client(base_url=s.base, auth=(CREDS.user_id, "not-the-key"))
    for method, path in [
        ("POST", "/v1/image"),
        ("POST", "/v1/image/batch"),
        ("DELETE", "/v1/image/batch"),
        ("DELETE", f"/v1/image/{image_id}"),
        ("GET", "/v1/images"),
        ("GET", "/v1/usage"),
        ("GET", "/v1/ping"),
        ("GET", "/"),
    ]:
        for client, message in ((s.anon, "Authentication required"), (wrong, "Invalid user id or API key")):
            r = client.request(method, path, json={"html": "<p>x</p>"})
            body = error_of(r, 401)
            assert body["error"] == "Unauthorized" and str(body["message"]).startswith(message)
            assert r.headers["www-authenticate"].startswith('Basic realm="hcti-build"')
    wrong.close()
    assert s.anon.get(f"/v1/image/{image_id}").status_code == 200  # image URLs need no credentials
    assert s.client.get(f"/v1/image/{image_id}").status_code == 200
    assert s.client.get("/v1/ping").json() == {"status": "ok"}
    header = base64.b64encode(f"{CREDS.user_id}:{CREDS.api_key}".encode()).decode()
    logged = caplog.text
    assert "POST /v1/image" in logged  # the access log ran
    assert CREDS.api_key not in logged and header not in logged


def test_batch_create_and_delete(serve: Callable[..., Served]) -> None:
    s = serve()
    r = s.client.post(
        "/v1/image/batch",
        json={
            "default_options": {"css": "div{width:60px;height:30px;background:#0a0}", "device_scale": 2},
            "variations": [{"html": "<div>1</div>"}, {"html": "<div>2</div>"}, {"html": "<div>3</div>", "device_scale": 1}],
        },
    )
    assert r.status_code == 200
    images = r.json()["images"]
    assert [set(i) for i in images] == [{"url", "id"}] * 3 and len({i["id"] for i in images}) == 3
    sizes = [load(s.anon.get(i["url"]).content).size for i in images]
    assert sizes == [(120, 60), (120, 60), (60, 30)]  # the third overrides device_scale

    too_many = s.client.post("/v1/image/batch", json={"variations": [{"html": f"<p>{i}</p>"} for i in range(26)]})
    assert error_of(too_many, 400)["validation_errors"] == [
        {"field": "variations", "message": "variations must be a list of 1 to 25 images"}
    ]
    bad = s.client.post("/v1/image/batch", json={"variations": [{"html": "<p>ok</p>"}, {"html": "<p>x</p>", "device_scale": 0}]})
    assert [e["field"] for e in error_of(bad, 400)["validation_errors"]] == ["variations[1].device_scale"]  # type: ignore[union-attr]

    unknown = "00000000-0000-8000-8000-000000000000"
    assert error_of(s.client.request("DELETE", "/v1/image/batch", json={"ids": [images[0]["id"], unknown]}), 404)
    assert s.anon.get(images[0]["url"]).status_code == 200  # all validated before any is deleted
    assert (
        error_of(s.client.request("DELETE", "/v1/image/batch", json={"ids": "x"}), 400)["validation_errors"][0]["field"] == "ids"
    )  # type: ignore[index]
    done = s.client.request("DELETE", "/v1/image/batch", json={"ids": [i["id"] for i in images[:2]]})
    assert done.status_code == 202
    assert [s.anon.get(i["url"]).status_code for i in images] == [410, 410, 200]


def test_list_paging_usage_and_ping(serve: Callable[..., Served]) -> None:
    s = serve()
    ids = [s.client.post("/v1/image", json={"html": f"<p>list {i}</p>"}).json()["id"] for i in range(3)]
    first = s.client.get("/v1/images", params={"count": 2}).json()
    assert [i["id"] for i in first["images"]] == ids[::-1][:2] and first["has_next_page"] is True
    assert all(set(i) == {"id", "url", "created_at"} and i["url"].startswith(s.base) for i in first["images"])
    rest = s.client.get("/v1/images", params={"count": 2, "page_token": first["next_page_token"]}).json()
    assert [i["id"] for i in rest["images"]] == [ids[0]] and rest["has_next_page"] is False and rest["next_page_token"] is None
    for bad in ("0", "51", "ten"):
        assert error_of(s.client.get("/v1/images", params={"count": bad}), 400)["validation_errors"][0]["field"] == "count"  # type: ignore[index]
    assert error_of(s.client.get("/v1/images", params={"page_token": "garbage"}), 400)
    usage = s.client.get("/v1/usage").json()
    assert set(usage["data"]) == {"hour", "day", "month"} and sum(usage["data"]["hour"].values()) == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z", next(iter(usage["data"]["hour"])))
    assert s.client.get("/v1/ping").status_code == 200


def test_signed_create_and_render_urls(serve: Callable[..., Served], tmp_path: Path) -> None:
    # The hosted API's documented example: this query and key give this token.
    assert sign("html=%3Cdiv%3EHello%3C%2Fdiv%3E", "your-api-key-here") == (
        "ac5553c5a9031e09f4580101080045e7e4cbd1734aa1b53a94f1006c3496ca21"
    )
    s = serve()
    url = signed_url(s.base, CREDS, [("html", HALVES), ("width", "50")])
    r = s.anon.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and load(r.content).size == (50, 25)
    assert s.anon.get(r.headers["x-image-id"] and f"/v1/image/{r.headers['x-image-id']}").status_code == 200
    jpg = s.anon.get(signed_url(s.base, CREDS, [("html", HALVES)], "jpg"))
    assert jpg.content[:3] == b"\xff\xd8\xff"

    tampered = url.replace("%23f00", "%23ff0")
    assert tampered != url
    for bad in (tampered, url.replace("/user-1/", "/user-2/"), url.replace(url.split("/")[7], "0" * 64)):
        r = s.anon.get(bad)
        assert error_of(r, 401) == {
            "error": "Unauthorized",
            "statusCode": 401,
            "message": "Invalid token",
            "validation_errors": [],
        }
        assert "www-authenticate" not in r.headers
    bad_param = signed_url(s.base, CREDS, [("html", "<p>x</p>"), ("device_scale", "7")])
    assert "device_scale" in str(error_of(s.anon.get(bad_param), 400)["message"])
    assert error_of(s.anon.get(signed_url(s.base, CREDS, [("css", "p{}")])), 400)["message"] == "HTML is Required"

    # `hcti sign` prints a URL the server accepts.
    env = {**os.environ, "HCTI_USER_ID": CREDS.user_id, "HCTI_API_KEY": CREDS.api_key}
    cmd = [sys.executable, "-m", "hcti_build.cli", "sign", "--base-url", s.base, "--format", "webp", f"html={HALVES}&width=40"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    webp = s.anon.get(out.stdout.strip())
    assert webp.status_code == 200 and webp.content[8:12] == b"WEBP" and load(webp.content).size == (40, 20)
    env.pop("HCTI_API_KEY")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "HCTI_API_KEY" in out.stderr and "Traceback" not in out.stderr
    # The same credentials from the project's config instead of the environment.
    env.pop("HCTI_USER_ID")
    (tmp_path / "hcti.toml").write_text(f'user_id = "{CREDS.user_id}"\napi_key = "{CREDS.api_key}"\n')
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert s.anon.get(out.stdout.strip()).content[8:12] == b"WEBP"


def slow(i: int, ms: int = 1500) -> dict[str, object]:
    return {"html": f"<p>slow {i} {time.time_ns()}</p>", "ms_delay": ms}


def test_a_full_queue_answers_429_and_frees_up(serve: Callable[..., Served], engine: Engine) -> None:
    s = serve(queue=1)  # 2 pages + 1 waiting
    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda i: s.client.post("/v1/image", json=slow(i)), range(5)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 429, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["message"].startswith("Too many renders in progress: 3 running or queued, limit 3")
    assert s.client.post("/v1/image", json={"html": "<p>after</p>"}).status_code == 200  # admitted again
    # A stored image is never queued: a hit needs no page.
    assert s.client.post("/v1/image", json={"html": "<p>after</p>"}).status_code == 200


def test_a_client_that_hangs_up_cancels_its_render_and_leaks_no_page(serve: Callable[..., Served], engine: Engine) -> None:
    s = serve()
    host, port = s.base.removeprefix("http://").split(":")
    socks = []
    for i in range(engine.pool_size):  # occupy every page with a 6 s render
        body = json.dumps(slow(i, 6000)).encode()
        sock = socket.create_connection((host, int(port)))
        auth = base64.b64encode(f"{CREDS.user_id}:{CREDS.api_key}".encode()).decode()
        sock.sendall(
            b"POST /v1/image HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Basic {auth}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        socks.append(sock)
    time.sleep(0.7)  # both renders are running now
    for sock in socks:
        sock.close()
    t0 = time.monotonic()
    r = s.client.post("/v1/image", json={"html": "<p>right after</p>"})
    assert r.status_code == 200
    assert time.monotonic() - t0 < 3.0  # the pages were freed at once, not after the 6 s delays
    deadline = time.monotonic() + 5
    while engine.pool.free.qsize() != engine.pool_size:  # every page back in the pool
        assert time.monotonic() < deadline
        time.sleep(0.05)
    listed = s.client.get("/v1/images").json()["images"]
    assert [i["id"] for i in listed] == [r.json()["id"]]  # nothing of the cancelled renders was stored
    assert sum(s.client.get("/v1/usage").json()["data"]["hour"].values()) == 1


def test_gallery_in_a_real_browser(serve: Callable[..., Served], engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    import hcti_build.api.server as server

    monkeypatch.setattr(server, "GALLERY_PAGE", 2)
    s = serve()
    ids = [
        s.client.post(
            "/v1/image", json={"html": f'<div style="width:300px;height:150px;background:hsl({i * 120},70%,50%)"></div>'}
        ).json()["id"]
        for i in range(3)
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=engine.executable)
        context = browser.new_context(http_credentials={"username": CREDS.user_id, "password": CREDS.api_key})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=s.base)
        page = context.new_page()
        page.goto(s.base + "/")
        cards = page.locator(".card")
        assert [cards.nth(i).get_attribute("data-id") for i in range(cards.count())] == [ids[2], ids[1]]  # newest first
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert (
            page.locator(".card .facts")
            .first.inner_text()
            .endswith("600×300 px · " + f"{s.store.info(ids[2])['size'] / 1024:.1f} KB")
        )
        first = cards.first
        first.get_by_role("button", name="Copy URL").click()
        assert page.evaluate("navigator.clipboard.readText()") == f"{s.base}/v1/image/{ids[2]}"
        page.screenshot(path=str(Path(os.environ.get("HCTI_SHOTS", s.store.path)) / "gallery.png"), full_page=True)
        page.locator("#older").click()  # the next page of the store
        assert [cards.nth(i).get_attribute("data-id") for i in range(cards.count())] == [ids[0]]
        page.get_by_role("link", name="« Newest").click()

        first.get_by_role("button", name="Delete").click()
        assert cards.count() == 2  # the first click only arms the button
        first.get_by_role("button", name="Confirm delete").click()
        page.wait_for_function("document.querySelectorAll('.card').length === 1")
        assert page.locator("#status").inner_text().startswith(f"Deleted {ids[2]}")
        assert s.anon.get(f"/v1/image/{ids[2]}").status_code == 410
        page.reload()
        assert [cards.nth(i).get_attribute("data-id") for i in range(cards.count())] == [ids[1], ids[0]]
        assert page.locator("#older").count() == 0
        browser.close()


def test_hcti_serve_process_generates_a_key_once_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HCTI_USER_ID", "HCTI_API_KEY")}
    cmd = [sys.executable, "-m", "hcti_build.cli", "serve", "--port", "0", "--store", str(tmp_path / "store")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env, start_new_session=True)
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline() + proc.stderr.readline()
        base = re.search(r"hcti serve: (http://127\.0\.0\.1:\d+)", banner)
        found = re.search(r"user id (\S+)  API key (\S+)", banner)
        assert base and found, banner
        user, key = found.groups()
        with httpx.Client(base_url=base.group(1), timeout=60) as c:
            r = c.post("/v1/image", json={"html": HALVES}, auth=(user, key))
            assert r.status_code == 200 and r.json()["url"].startswith(base.group(1))
            assert c.post("/v1/image", json={"html": HALVES}, auth=(user, key + "x")).status_code == 401
            assert load(c.get(r.json()["url"]).content).size == (200, 100)
        browser = browser_pids(proc.pid)
        assert browser
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        deadline = time.monotonic() + 5
        while alive(browser):
            assert time.monotonic() < deadline, "Chromium outlived hcti serve"
            time.sleep(0.05)
        rest = proc.stderr.read()
        assert "Traceback" not in rest and key not in rest  # printed once, in the banner only
    finally:
        reap(proc)


@pytest.mark.parametrize("root", [None, "."], ids=["no-root", "root"])
def test_hcti_serve_in_a_project_folder_hands_out_no_files(tmp_path: Path, root: str | None) -> None:
    """Started in a project folder, `hcti serve` renders with no local files unless --root names a folder, and
    never the store or hidden files (.env) even then."""
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "secret.txt").write_text("the project's secret")
    (tmp_path / ".env").write_text("API_KEY=1")
    paths = ("red.png", "secret.txt", ".env", ".hcti/index.sqlite")
    env = {**os.environ, "HCTI_USER_ID": "u", "HCTI_API_KEY": "k"}
    env.pop("HCTI_STORE", None)
    cmd = [sys.executable, "-m", "hcti_build.cli", "serve", "--port", "0", *(["--root", root] if root else [])]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env, start_new_session=True)
    try:
        assert proc.stderr is not None
        base = re.search(r"hcti serve: (http://127\.0\.0\.1:\d+)", proc.stderr.readline())
        reads = proc.stderr.readline()
        assert base, reads
        assert ("no local files" in reads) == (root is None), reads
        with httpx.Client(base_url=base.group(1), auth=("u", "k"), timeout=60) as client:
            r = client.post("/v1/image", json={"html": probe_page(paths), "device_scale": 1, "ms_delay": 300})
            assert r.status_code == 200, r.text
            png = client.get(f"/v1/image/{r.json()['id']}").content
        assert readable(png, paths) == (set() if root is None else {"red.png", "secret.txt"})
        assert (tmp_path / ".hcti" / "index.sqlite").is_file()  # the store is there, and was not served
    finally:
        reap(proc)


def test_a_405_names_every_method_of_its_path(serve: Callable[..., Served]) -> None:
    """Found by Schemathesis (ST205): the Allow header named only the first route of a path."""
    s = serve()
    assert s.client.put("/v1/image/batch").headers["allow"] == "DELETE, POST"
    r = s.client.put("/v1/image/0badc0de-0000-8000-8000-000000000001")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD"


def test_a_conditional_get_is_answered_from_the_index(serve: Callable[..., Served], tmp_path: Path) -> None:
    """An id's bytes never change, so If-None-Match is answered from the hash the index keeps: the 304 reads no
    image (here: the master is gone from disk, and nothing renders it again until a plain GET)."""
    from fakes import FakeRenderer

    renderer = FakeRenderer()
    s = serve(renderer=renderer)
    image_id = s.client.post("/v1/image", json={"html": "<p>x</p>"}).json()["id"]
    for name in (image_id, f"{image_id}.jpg?width=5"):
        first = s.client.get(f"/v1/image/{name}")
        assert first.status_code == 200
        etag = first.headers["etag"]
        for path in (tmp_path / "store" / "objects").rglob("*"):
            if path.is_file():
                path.unlink()  # the master and the variant
        renders = renderer.renders
        again = s.client.get(f"/v1/image/{name}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag and renderer.renders == renders
        assert s.client.get(f"/v1/image/{name}").status_code == 200 and renderer.renders == renders + 1
    assert s.client.get(f"/v1/image/{image_id[:-1]}0", headers={"If-None-Match": etag}).status_code == 404
