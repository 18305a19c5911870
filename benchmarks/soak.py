"""Soak: many cold `mkdocs build`s of a generated site, with every Chromium binary installed.

    python benchmarks/soak.py [--builds 20] [--pages 100] [--chromium PATH ...]

Each build is a real `mkdocs build` process with `plugins: [hcti]` (material theme, the site of
benchmarks/mkdocs_cards.py), HCTI_CHROMIUM set to the binary, and an empty store, so every card is rendered.
A build counts as failed when mkdocs exits non-zero, or when the site lacks a card for any page (an arm that
silently rendered nothing is a failure, not a fast build). Binaries: --chromium, or every one of Debian's
full `chromium`, its `chromium-headless-shell` and Google Chrome that is installed.

Why: the full browser behaves differently from the headless shell (it has windows, and throttles what it
believes hidden); a hang that shows in one build of four is invisible to a test suite that runs one build.

Last line: RESULT <binary>=<failed>/<builds> ... slowest_card_ms=<the slowest card of any build>
Exit status 1 when any build failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mkdocs_cards import cards_made, make_site  # noqa: E402

BINARIES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium-headless-shell", "/usr/bin/google-chrome")
SLOWEST = re.compile(r"slowest card (\d+) ms \(([^)]+)\)")


def soak(root: Path, chromium: str, builds: int, pages: int) -> tuple[int, float, float, str]:
    """(failed builds, slowest build s, slowest card ms, that card's page) for one binary."""
    failed, slowest_build, slowest_card, where = 0, 0.0, 0.0, ""
    env = {**os.environ, "HCTI_CHROMIUM": chromium, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    for n in range(1, builds + 1):
        shutil.rmtree(root / ".cache", ignore_errors=True)  # an empty store: every card renders
        t0 = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "-f", "hcti.yml", "-d", "site"],
            cwd=root,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        seconds = time.perf_counter() - t0
        cards = cards_made(root)
        card = SLOWEST.search(r.stderr)
        problem = ""
        if r.returncode != 0:
            problem = " | ".join(line.strip() for line in r.stderr.splitlines() if "ERROR" in line)[-400:] or r.stderr[-400:]
        elif cards != pages + 1:
            problem = f"{cards} cards on disk for {pages + 1} pages"
        elif card is None:
            problem = "no 'slowest card' in the build's log: did the plugin render anything?"
        if problem:
            failed += 1
            print(f"  build {n}: FAILED after {seconds:.1f} s: {problem}", flush=True)
            continue
        assert card is not None
        slowest_build = max(slowest_build, seconds)
        if int(card.group(1)) > slowest_card:
            slowest_card, where = float(card.group(1)), card.group(2)
        print(f"  build {n}: {seconds:.1f} s, {cards} cards, slowest card {card.group(1)} ms", flush=True)
    return failed, slowest_build, slowest_card, where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builds", type=int, default=20, help="cold builds per binary (default 20)")
    ap.add_argument("--pages", type=int, default=100, help="pages in the generated site (default 100)")
    ap.add_argument("--chromium", action="append", help="a binary to soak (repeatable); default: every one installed")
    args = ap.parse_args()
    binaries = args.chromium or [b for b in BINARIES if Path(b).is_file()]
    if not binaries:
        raise SystemExit(f"no Chromium installed at any of {', '.join(BINARIES)}; name one with --chromium")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_site(root, args.pages)
        for chromium in binaries:
            print(f"{chromium}: {args.builds} cold builds of {args.pages + 1} pages", flush=True)
            results.append((chromium, *soak(root, chromium, args.builds, args.pages)))
    print(f"{'binary':45} {'failed':>8} {'slowest build s':>16} {'slowest card ms':>16}  page")
    for chromium, failed, build_s, card_ms, where in results:
        print(f"{chromium:45} {failed:>5}/{args.builds:<2} {build_s:16.1f} {card_ms:16.0f}  {where}")
    summary = " ".join(f"{Path(c).name}={f}/{args.builds}" for c, f, *_ in results)
    print(f"RESULT {summary} slowest_card_ms={max(r[3] for r in results):.0f}")
    if any(r[1] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
