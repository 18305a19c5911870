"""`hcti serve` under load: cached image GETs, as API clients and web pages fetch them.

The server runs as its own process (`hcti serve`, as a user runs it, access log on). 20 images are created
through POST /v1/image, and every URL is fetched once to warm the store's variants. Then wrk (Debian's
package: `apt-get install wrk`) on 127.0.0.1 drives each arm for --seconds, cycling over the 20 ids:

- `GET /v1/image/:id`                (the stored PNG master)
- `GET /v1/image/:id.jpg?width=300`  (a stored derived variant)

Side by side, the ceiling of the stack itself: the same uvicorn + Starlette, with the same options, answering
one image held in memory (no store, no file, no hash check). `vs_ceiling` is hcti's rate over that ceiling.

    python benchmarks/serve_load.py [--seconds 10] [--connections 16]

Last line: RESULT rps=<cached GET /v1/image/:id requests/s> p99_ms=<its p99 latency>
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

USER, KEY = "bench", "bench-key"
CEILING_APP = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

DATA = open(sys.argv[2], "rb").read()

async def image(request):
    return Response(DATA, media_type="image/png", headers={"ETag": '"x"', "Cache-Control": "public, max-age=31536000, immutable"})

app = Starlette(routes=[Route("/v1/image/{name}", image)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""
LUA = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def request(url: str, data: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=data)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode())
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return bytes(resp.read())


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 401 or 404: it is up
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not come up at {url}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(base: str, paths: list[str], seconds: float, connections: int, work: Path) -> tuple[float, float, float]:
    script = work / "paths.lua"
    script.write_text(LUA % ", ".join(json.dumps(p) for p in paths))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{round(seconds)}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error responses:\n{out}")

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return rps, ms("50"), ms("99")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    hcti = Path(sys.executable).with_name("hcti")
    work = Path(tempfile.mkdtemp(prefix="hcti-serve-bench-"))
    env = {**os.environ, "HCTI_USER_ID": USER, "HCTI_API_KEY": KEY}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(hcti), "serve", "--port", str(port), "--store", str(work / "store")],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        wait_up(base + "/v1/ping", server)
        ids = []
        for i in range(20):
            html = (
                f'<div style="width:600px;height:315px;background:hsl({i * 18},60%,45%);color:#fff;'
                f'font:48px sans-serif;display:grid;place-items:center">Card {i}</div>'
            )
            ids.append(json.loads(request(base + "/v1/image", json.dumps({"html": html}).encode()))["id"])
        masters = [f"/v1/image/{i}" for i in ids]
        variants = [f"/v1/image/{i}.jpg?width=300" for i in ids]
        for path in masters + variants:
            urllib.request.urlopen(base + path, timeout=60).read()  # warm: variants derived once, then stored
        sample = work / "sample.png"
        sample.write_bytes(urllib.request.urlopen(base + masters[0], timeout=60).read())
        for label, paths in (("hcti GET /v1/image/:id", masters), ("hcti GET /v1/image/:id.jpg?width=300", variants)):
            rows.append((label, *wrk(base, paths, args.seconds, args.connections, work)))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    cport = free_port()
    ceiling = subprocess.Popen(
        [sys.executable, "-c", CEILING_APP, str(cport), str(sample)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_up(f"http://127.0.0.1:{cport}/v1/image/x", ceiling)
        rows.append(
            (
                "ceiling: Starlette, bytes in memory",
                *wrk(f"http://127.0.0.1:{cport}", masters, args.seconds, args.connections, work),
            )
        )
    finally:
        ceiling.send_signal(signal.SIGINT)
        ceiling.wait(30)
    size = sample.stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    print(f"{'arm':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for label, rps, p50, p99 in rows:
        print(f"{label:42} {rps:9.0f} {p50:8.2f} {p99:8.2f}")
    print(f"({args.connections} connections, {args.seconds:g} s per arm, 20 images, PNG master {size / 1024:.0f} KB)")
    print(
        f"RESULT rps={rows[0][1]:.0f} p99_ms={rows[0][3]:.1f} jpg_rps={rows[1][1]:.0f} vs_ceiling={rows[0][1] / rows[2][1]:.2f}"
    )


if __name__ == "__main__":
    main()
