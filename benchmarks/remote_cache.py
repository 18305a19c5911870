"""Remote cache benchmark: a CI runner with an empty store and a shared remote, against a cold render.

    python benchmarks/remote_cache.py [--pages 300] [--repeat 3]

The site is the 300-page one of benchmarks/mkdocs_cards.py, built once by `mkdocs build` without the plugin; its
cards are made by `hcti og` (what any generator's site gets). Two remotes: a real S3-compatible server (moto's
`moto_server`, the only one the package registries here have) on 127.0.0.1, and a shared folder (file://, as an
NFS or SMB mount is used). Arms, each on a fresh copy of the site with an empty local store:
  cold         no remote: every card rendered
  runner A     with a remote, empty: every card rendered and uploaded (once a remote, to fill it)
  runner B     with a remote filled by A: every card fetched, checked and written; none rendered
  local cache  no remote, a local store that already holds every card (a CI cache restored): the ceiling any
               sharing can reach, since this run still reads, templates and writes every page
cold, the runner B arms and local cache run --repeat times, taking turns; their medians are kept. Every run must leave one
card per page, and B must say it rendered none and fetched them all, or the benchmark stops naming the arm.
The requests B makes of S3 are counted from the server's log; the bytes, from the cards' sizes.

Last line: RESULT cold_vs_b_s3=<cold s / runner B on S3 s> cold_vs_b_folder=<...on the folder>
cold_vs_cache=<cold s / local cache s> s3_ms_per_card=<(runner B on S3 - local cache) / cards>
upload_overhead=<runner A on S3 s / cold s> mb_per_runner=<MB>
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, site_args  # noqa: E402
from mkdocs_cards import build, compile_packages, make_site  # noqa: E402

SITE_URL = "https://bench.example.org/"
BUCKET = "bench"
REMOTE = f"s3://{BUCKET}/cards"


def start_s3(root: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = root / "moto.log"
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(300):
        try:
            httpx.put(f"{endpoint}/{BUCKET}", timeout=2).raise_for_status()
            return proc, endpoint, log
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"moto_server did not start:\n{log.read_text()[-2000:]}")


def og(root: Path, cards: int, env: dict[str, str], expect: str, store: Path | None = None) -> float:
    """One `hcti og` on a fresh copy of the site with an empty store, or a copy of ``store`` (seconds). It must
    leave ``cards`` cards and its summary must contain ``expect``: an arm that did not do its work makes a
    meaningless ratio."""
    shutil.rmtree(root / "built", ignore_errors=True)
    shutil.rmtree(root / ".store", ignore_errors=True)
    shutil.copytree(root / "site", root / "built")
    if store is not None:
        shutil.copytree(store, root / ".store")
    hcti = Path(sys.executable).parent / "hcti"
    t0 = time.perf_counter()
    r = subprocess.run(
        [str(hcti), "og", "built", "--site-url", SITE_URL, "--store", ".store"],
        cwd=root, capture_output=True, text=True, env={**os.environ, **env},
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    summary = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    made = len(list((root / "built" / "assets" / "images" / "social").glob("*.png")))
    if r.returncode != 0 or made != cards or expect not in summary:
        raise SystemExit(f"hcti og made {made} cards (expected {cards}, and {expect!r} in the summary)\n{r.stderr[-3000:]}")
    return seconds


def prepare(root: Path, pages: int) -> Path:
    """The generated site, built once without cards: what every arm copies."""
    make_site(root, pages)
    compile_packages()
    build(root, "plain.yml", 0)
    return root


def main() -> None:
    args = site_args(__doc__, repeat=3)
    cards = args.pages + 1  # every page, the home page too
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare(Path(tmp), args.pages)
        proc, endpoint, log = start_s3(root)
        try:
            env = {
                "HCTI_REMOTE": REMOTE, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
            }  # fmt: skip
            local = {"HCTI_REMOTE": ""}
            folder = {"HCTI_REMOTE": (root / "shared").as_uri()}
            og(root, cards, local, f"{cards} rendered")  # warm the OS caches and bytecode for every arm alike
            runner_a = og(root, cards, env, f"{cards} rendered, 0 reused (0 from {REMOTE})")
            og(root, cards, folder, f"{cards} rendered, 0 reused (0 from {folder['HCTI_REMOTE']})")
            shutil.copytree(root / ".store", root / "filled", ignore=shutil.ignore_patterns("og-memo"))
            before = len(log.read_text())
            cold_runs, b_runs, folder_runs, cache_runs = alternate(
                args.repeat,
                lambda: og(root, cards, local, f"{cards} rendered"),
                lambda: og(root, cards, env, f"0 rendered, {cards} reused ({cards} from {REMOTE})"),
                lambda: og(root, cards, folder, f"0 rendered, {cards} reused ({cards} from {folder['HCTI_REMOTE']})"),
                lambda: og(root, cards, local, f"0 rendered, {cards} reused,", store=root / "filled"),
            )
            gets = re.findall(r'"GET /bench/cards/(\S+) HTTP/1.1" 200', log.read_text()[before:])
        finally:
            proc.kill()
        store_sizes = {p.name: p.stat().st_size for p in (root / ".store" / "objects").rglob("*.png")}
    per_runner = len(gets) / args.repeat
    # What B downloads: every card (its bytes are in its local store after the run), with its metadata and manifest.
    card_bytes = sum(store_sizes.values())
    runs = {"cold": cold_runs, "runner B, S3": b_runs, "runner B, folder": folder_runs, "local cache": cache_runs}
    median = {name: sorted(r)[len(r) // 2] for name, r in runs.items()}
    print(f"pages: {cards}; remote {REMOTE} on moto_server at {endpoint}, and a folder")
    for name, r in runs.items():
        print(f"{name} runs (s): {' '.join(f'{t:.2f}' for t in r)}")
    print(f"{'arm':18} {'s':>8} {'ms/card':>9}")
    for name, seconds in (*median.items(), ("runner A, S3", runner_a)):
        print(f"{name:18} {seconds:8.2f} {seconds * 1000 / cards:9.1f}")
    print(f"runner B on S3: {per_runner:.0f} GETs a run ({per_runner / cards:.1f} a card); cards {card_bytes / 1e6:.2f} MB")
    cold = median["cold"]
    print(
        f"RESULT cold_vs_b_s3={cold / median['runner B, S3']:.1f} cold_vs_b_folder={cold / median['runner B, folder']:.1f} "
        f"cold_vs_cache={cold / median['local cache']:.1f} "
        f"s3_ms_per_card={(median['runner B, S3'] - median['local cache']) * 1000 / cards:.1f} "
        f"upload_overhead={runner_a / cold:.2f} mb_per_runner={card_bytes / 1e6:.2f}"
    )


if __name__ == "__main__":
    main()
