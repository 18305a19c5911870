"""Render benchmark: 1200x630 cards, side by side in one run.

(a) hcti-build: warm browser, every card a store miss, created concurrently through the page pool
(b) floor: a bare Playwright loop on one reused page, set_content + default page.screenshot()
(c) a new browser launched per image, the way html2image and dataframe_image do it: the system's `chromium`
    run as a command (`--headless --screenshot=OUT --window-size=W,H FILE.html`) per image
(c') the same launch per image through Playwright and the headless shell, with hcti's flags (shown, not in RESULT)
(d) the same cards as (a) again: all store hits

    python benchmarks/render.py [--n 100]

Last line: RESULT warm_vs_floor=<a/b> launch_vs_warm=<c/a> hit_ms=<median ms of d>
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import sync_playwright

from hcti_build import Engine, Store, find_chromium
from hcti_build.engine.chromium import ARGS

CSS = """
.card{width:1200px;height:630px;box-sizing:border-box;padding:72px;color:#fff;font-family:'Noto Sans',sans-serif;
background:linear-gradient(135deg,#7c3aed,#db2777 60%,#f59e0b)}
h1{font-size:64px;margin:32px 0 16px}p{font-size:30px;margin:0;opacity:.9}
"""
LOGO = '<svg viewBox="0 0 24 24" width="64" height="64"><circle cx="12" cy="12" r="10" fill="#fff"/></svg>'


def card(i: int) -> str:
    return (
        f'<div class="card">{LOGO}<h1>Release notes, part {i} 🚀</h1>'
        f"<p>Every card has a distinct title so nothing can be cached. Card number {i}.</p></div>"
    )


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's pixel size from its header; (0, 0) for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def page_html(i: int) -> str:
    return f"<!DOCTYPE html><html><head><style>body{{margin:0}}{CSS}</style></head><body>{card(i)}</body></html>"


class RssSampler:
    """Peak RSS of this process and all its descendants (Chromium's processes included)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            parents[int(entry)] = int(fields.get("PPid", "0").strip())
            rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
        me, total = os.getpid(), 0
        for pid in rss:
            p = pid
            while p and p != me:
                p = parents.get(p, 0)
            if p == me:
                total += rss[pid]
        return total * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(label: str, n: int, fn: Callable[[int], None], workers: int = 1) -> dict[str, float]:
    per: list[float] = []

    def one(i: int) -> None:
        t = time.perf_counter()
        fn(i)
        per.append((time.perf_counter() - t) * 1000)

    with RssSampler() as rss:
        t0 = time.perf_counter()
        if workers == 1:
            for i in range(n):
                one(i)
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, range(n)))
        total = time.perf_counter() - t0
    per.sort()
    return {
        "label": label,
        "total_s": total,
        "ms_per_image": total * 1000 / n,
        "median": statistics.median(per),
        "p90": per[int(0.9 * (len(per) - 1))],
        "ips": n / total,
        "rss_mb": rss.peak / 2**20,
    }  # type: ignore[dict-item]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="cards per arm (default 100)")
    ap.add_argument("--scale", type=float, default=1, help="device scale in every arm (default 1: 1200x630 px cards)")
    ap.add_argument("--browsers", type=int, default=None, help="hcti's browser processes (default: the engine's)")
    args = ap.parse_args()
    n, scale = args.n, args.scale
    exe = find_chromium()
    results = []

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(exe, browsers=args.browsers)
        store = Store(Path(tmp) / "store", root=tmp, engine=engine)
        store.create({"html": "<p>warm-up</p>"})  # (a) is "warm": launch and fingerprint outside the timing
        ids: dict[int, str] = {}

        def miss(i: int) -> None:
            ids[i] = store.create({"html": card(i), "css": CSS, "device_scale": scale})["id"]

        results.append(timed("(a) hcti warm, misses", n, miss, workers=engine.pool_size))
        # Every arm checks it made what it was timed for: n distinct cards of the right size here, a PNG below.
        assert len(set(ids.values())) == n, "(a) made fewer distinct images than cards"
        assert png_size(store.get(ids[0])) == (round(1200 * scale), round(630 * scale)), "(a) made a card of the wrong size"

        def hit(i: int) -> None:
            assert store.create({"html": card(i), "css": CSS, "device_scale": scale})["id"] == ids[i]

        launches = engine.launches
        results.append(timed("(d) hcti, store hits", n, hit))
        assert engine.launches == launches, "a store hit launched a browser"
        engine.close()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 630}, device_scale_factor=scale)
        page.set_content(page_html(-1))
        page.screenshot()

        def floor(i: int) -> None:
            page.set_content(page_html(i))
            assert png_size(page.screenshot()) == (round(1200 * scale), round(630 * scale))

        results.append(timed("(b) floor: bare Playwright", n, floor))
        browser.close()

        def launch(i: int) -> None:
            b = p.chromium.launch(executable_path=exe, args=ARGS)
            pg = b.new_page(viewport={"width": 1200, "height": 630}, device_scale_factor=scale)
            pg.set_content(page_html(i))
            assert png_size(pg.screenshot()) == (round(1200 * scale), round(630 * scale))
            b.close()

        results.append(timed("(c') launch per image, Playwright", n, launch))

    cli = shutil.which("chromium") or exe
    with tempfile.TemporaryDirectory() as tmp:

        def html2image(i: int) -> None:
            src, out = Path(tmp) / f"{i}.html", Path(tmp) / f"{i}.png"
            src.write_text(page_html(i))
            flags = ["--headless", "--no-sandbox", "--hide-scrollbars", "--default-background-color=00000000"]
            cmd = [cli, *flags, f"--screenshot={out}", "--window-size=1200,630", f"--force-device-scale-factor={scale}"]
            subprocess.run([*cmd, src.as_uri()], check=True, capture_output=True, timeout=60)
            assert png_size(out.read_bytes()) == (round(1200 * scale), round(630 * scale))

        results.append(timed("(c) browser per image, CLI", n, html2image))

    by = {r["label"][:3]: r for r in results}  # "(c)" and "(c')" differ in the 4th char
    print(
        f"chromium: {exe}; cpus: {os.cpu_count()}; hcti browsers: {args.browsers or 'default'}; scale: {scale}; "
        f"load average after: {os.getloadavg()}"
    )
    print(f"(c) runs {cli}")
    print(f"{'arm':32} {'ms/img':>8} {'median':>8} {'p90':>8} {'img/s':>8} {'peak RSS MB':>12}")
    for r in sorted(results, key=lambda r: r["label"]):
        print(f"{r['label']:32} {r['ms_per_image']:8.1f} {r['median']:8.1f} {r['p90']:8.1f} {r['ips']:8.1f} {r['rss_mb']:12.0f}")
    warm_vs_floor = by["(a)"]["total_s"] / by["(b)"]["total_s"]
    launch_vs_warm = by["(c)"]["total_s"] / by["(a)"]["total_s"]
    print(f"RESULT warm_vs_floor={warm_vs_floor:.3f} launch_vs_warm={launch_vs_warm:.1f} hit_ms={by['(d)']['median']:.3f}")


if __name__ == "__main__":
    main()
