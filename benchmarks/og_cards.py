"""`hcti og` benchmark: the cards of an already built site, against the MkDocs plugin's on the same pages.

    python benchmarks/og_cards.py [--pages 300] [--repeat 5]

The site is the 300-page one of benchmarks/mkdocs_cards.py, built by `mkdocs build` without the plugin (what
Zensical, Sphinx or Hugo leave is the same to `hcti og`: HTML files). Arms, in one run:
  plugin cold   `mkdocs build` with `plugins: [hcti]`, empty store; its card time is the build minus a plain build
  og cold       `hcti og SITE` on a fresh copy of the plain build, empty store
Cold arms run --cold times each, alternating, and report their medians (one cold run varies by ~10%).
  og warm       `hcti og SITE` again (all store hits, nothing written): --repeat runs, the median kept
Every arm must leave one card per page (and og warm must render none), or the benchmark stops naming the arm.

Last line: RESULT og_cold_vs_plugin=<og cold ms per card / plugin cold ms per card> og_warm_s=<median warm run>
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import site_args  # noqa: E402
from mkdocs_cards import build, cards_made, compile_packages, make_site  # noqa: E402

SITE_URL = "https://bench.example.org/"


def og(root: Path, site: str, cards: int, *, rendered: int | None = None) -> float:
    """One `hcti og` run (seconds), which must leave ``cards`` cards in the site (and, if given, say it rendered
    ``rendered``): a run that skipped the pages would make a meaningless ratio."""
    hcti = Path(sys.executable).parent / "hcti"
    t0 = time.perf_counter()
    r = subprocess.run(
        [str(hcti), "og", site, "--site-url", SITE_URL, "--store", ".og-store"], cwd=root, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    summary = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    made = len(list((root / site / "assets" / "images" / "social").glob("*.png")))
    if r.returncode != 0 or made != cards or f"{cards} pages," not in summary:
        raise SystemExit(f"hcti og made {made} cards, not {cards}: this arm did not do its work\n{r.stderr[-3000:]}")
    if rendered is not None and f" {rendered} rendered," not in summary:
        raise SystemExit(f"hcti og should have rendered {rendered}: {summary}")
    return seconds


def main() -> None:
    args = site_args(__doc__, repeat=5, counts={"cold": (3, "cold runs of each arm; the median is kept")})
    cards = args.pages + 1  # every page, the home page too
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_site(root, args.pages)
        compile_packages()
        build(root, "plain.yml", 0)  # warm the OS caches and Python's bytecode for every arm alike
        plain = sorted(build(root, "plain.yml", 0)[0] for _ in range(3))[1]
        shutil.copytree(root / "site", root / "plain-site")  # what a generator without the plugin leaves
        plugin_runs, og_runs = [], []
        for _ in range(args.cold):
            shutil.rmtree(root / ".cache", ignore_errors=True)
            plugin_runs.append(build(root, "hcti.yml", cards)[0] - plain)
            assert cards_made(root) == cards
            shutil.rmtree(root / ".og-store", ignore_errors=True)
            shutil.rmtree(root / "built", ignore_errors=True)
            shutil.copytree(root / "plain-site", root / "built")
            og_runs.append(og(root, "built", cards, rendered=cards))
        plugin, og_cold = sorted(plugin_runs)[args.cold // 2], sorted(og_runs)[args.cold // 2]
        warm = sorted(og(root, "built", cards, rendered=0) for _ in range(args.repeat))
    og_warm = warm[len(warm) // 2]
    print(f"pages: {cards}; plain mkdocs build {plain:.2f} s")
    for name, runs in (("plugin cold", plugin_runs), ("og cold", og_runs), ("og warm", warm)):
        print(f"{name} runs (s): {' '.join(f'{t:.2f}' for t in runs)}")
    print(f"{'arm':14} {'s':>8} {'ms/card':>9}")
    for name, seconds in (("plugin cold", plugin), ("og cold", og_cold), ("og warm", og_warm)):
        print(f"{name:14} {seconds:8.2f} {seconds * 1000 / cards:9.1f}")
    print(f"RESULT og_cold_vs_plugin={og_cold / plugin:.2f} og_warm_s={og_warm:.2f}")


if __name__ == "__main__":
    main()
