"""Sphinx social cards benchmark: hcti_build.sphinx against sphinxext-opengraph's matplotlib cards, one run.

    python benchmarks/sphinx_cards.py [--pages 300] [--repeat 5]

A generated reST project, built by real `sphinx-build -E` processes into one output folder, with three conf.py:
  plain        no card extension
  hcti cold    `extensions = ["hcti_build.sphinx"]`, empty store    hcti warm   the same again (all store hits)
  ogp cold     `extensions = ["sphinxext.opengraph"]` with its social cards (matplotlib; `pip install -e '.[bench]'`)
Card time = the arm's build minus the plain build. Plain and hcti warm run --repeat times, alternating, medians
kept. Every build must leave one card per page (none for plain), or the benchmark stops naming the arm.

Last line: RESULT cold_vs_ogp=<hcti cold card time / ogp cold card time> warm_vs_plain=<hcti warm / plain>
           rss_mb=<peak RSS of the cold hcti build, all processes>
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, site_args  # noqa: E402
from mkdocs_cards import EXTRA, WORDS  # noqa: E402
from render import RssSampler  # noqa: E402

SITE = "https://bench.example.org/"
CONFS = {
    "plain": "",
    "hcti": f'extensions = ["hcti_build.sphinx"]\nhtml_baseurl = "{SITE}"\nhcti_store = "../.hcti"\n',
    "ogp": f'extensions = ["sphinxext.opengraph"]\nogp_site_url = "{SITE}"\n',
}
CARDS = {"plain": None, "hcti": "_images/social", "ogp": "_images/social_previews"}


def make_project(root: Path, pages: int) -> None:
    rng = random.Random(7)
    src = root / "src"
    src.mkdir()
    names = []
    for i in range(pages):
        words = " ".join(rng.choice(WORDS).capitalize() for _ in range(rng.randint(1, 12)))
        title = f"{words} {i}" + (f" {rng.choice(EXTRA)}" if i % 5 == 0 else "")
        desc = f"Page {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20)))
        names.append(f"section{i % 10}/page{i}")
        (src / f"section{i % 10}").mkdir(exist_ok=True)
        body = f"{title}\n{'=' * (len(title) * 2)}\n\n.. meta::\n   :description: {desc}\n\nSome text.\n"
        (src / f"{names[-1]}.rst").write_text(body)
    toctree = "\n".join(f"   {n}" for n in names)
    (src / "index.rst").write_text(f"Home\n====\n\n.. toctree::\n   :maxdepth: 1\n\n{toctree}\n")
    for name, extra in CONFS.items():
        (root / name).mkdir()
        (root / name / "conf.py").write_text(f'project = "Bench Site"\n{extra}')


def build(root: Path, arm: str, cards: int) -> tuple[float, float]:
    """One `sphinx-build -E` (seconds, peak RSS MB) that must leave ``cards`` cards of its kind."""
    out = root / "out"
    with RssSampler() as rss:
        t0 = time.perf_counter()
        sphinx = [str(Path(sys.executable).parent / "sphinx-build"), "-q", "-E", "-b", "html"]
        r = subprocess.run([*sphinx, "-c", arm, "src", "out"], cwd=root, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"sphinx-build ({arm}) failed:\n{r.stderr[-3000:]}")
    folder = CARDS[arm]
    made = len(list((out / folder).glob("*.png"))) if folder and (out / folder).is_dir() else 0
    if made != cards:
        raise SystemExit(f"sphinx-build ({arm}) made {made} cards, not {cards}: this arm did not do its work\n{r.stderr[-3000:]}")
    return seconds, rss.peak / 2**20


def main() -> None:
    args = site_args(__doc__, repeat=5)
    cards = args.pages + 1  # every page, the home page too
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, args.pages)
        build(root, "plain", 0)  # warm the OS caches and Python's bytecode for every arm alike
        rows = {"hcti cold": build(root, "hcti", cards)}
        plain_runs, warm_runs = alternate(args.repeat, lambda: build(root, "plain", 0), lambda: build(root, "hcti", cards))
        shutil.rmtree(root / "out")
        rows = {"plain": sorted(plain_runs)[args.repeat // 2], **rows, "hcti warm": sorted(warm_runs)[args.repeat // 2]}
        rows["ogp cold"] = build(root, "ogp", cards)
    plain = rows["plain"][0]
    for name, runs in (("plain", plain_runs), ("hcti warm", warm_runs)):
        print(f"{name} runs (s): {' '.join(f'{t:.2f}' for t, _ in runs)}")
    print(f"{'arm':12} {'build s':>9} {'card s':>9} {'ms/card':>9} {'peak RSS MB':>12}")
    for name, (seconds, rss) in rows.items():
        card = seconds - plain
        print(f"{name:12} {seconds:9.2f} {card:9.2f} {card * 1000 / cards if name != 'plain' else 0.0:9.1f} {rss:12.0f}")
    ratio = (rows["hcti cold"][0] - plain) / (rows["ogp cold"][0] - plain)
    print(f"RESULT cold_vs_ogp={ratio:.2f} warm_vs_plain={rows['hcti warm'][0] / plain:.3f} rss_mb={rows['hcti cold'][1]:.0f}")


if __name__ == "__main__":
    main()
