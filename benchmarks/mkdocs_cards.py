"""MkDocs social cards benchmark: a generated site, side by side in one run.

    python benchmarks/mkdocs_cards.py [--pages 300]

Arms, each a real `mkdocs build` process on the same pages (material theme):
  plain          no card plugin
  hcti cold      `plugins: [hcti]`, empty store          hcti warm      the same again (all store hits)
  material cold  material's `social` plugin, empty cache  material warm  the same again
Warm arms (and plain) run --repeat times, alternating, and report the median run.

Material's social plugin downloads its font from Google Fonts on first use, which fails offline. To run it
offline the script places the system's Noto Sans (fonts-noto-core) in the plugin's font cache beforehand,
`<cache_dir>/fonts/Noto Sans/{Regular,Bold,...}.ttf`, and sets `theme.font.text: Noto Sans`; the cache is
emptied of everything else before the cold run. Card time = build time minus the plain build's.

Every arm builds into the same site folder (see `build`), and our packages get their bytecode first, as
`pip install` would. Warm figures move with the machine: on the 2-core VM this was written on, identical plain
builds took 2.5-3.1 s. Per 300 pages a warm build's card work in the build process is ~0.1 s of hooks and ~15 ms
of imports; the reused cards' images are hashed by a helper process on the other core (checking them in the build
cost another ~3%: their bytes pass through the caches MkDocs runs in). Warm builds once also ran ~99,000 page
faults instead of ~8,000 in about half the runs: adding the meta tags copied each ~450 KB page string, and glibc
gave the heap back and took it again for every page; the tags now come out of the theme's template (see
`HeadLoader` in mkdocs_plugin/meta.py).

Every build must leave one card per page in the site (none for plain), or the benchmark stops, naming the arm
and the warnings of its build: Material's social plugin without `cairosvg` only warns and writes no card, and
its "cold" build would otherwise be the baseline. `pip install -e '.[bench]'` brings mkdocs-material[imaging].

Last line: RESULT cold_vs_material=<hcti cold card time / material cold card time>
           warm_vs_plain=<hcti warm build / plain build> rss_mb=<peak RSS of the cold hcti build, all processes>
"""

from __future__ import annotations

import compileall
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, site_args  # noqa: E402
from render import RssSampler  # noqa: E402

NOTO = Path("/usr/share/fonts/truetype/noto")
WORDS = "release guide setup deploy cache render config plugin theme search install upgrade migrate api".split()
EXTRA = ["🚀", "✨", "日本語のガイド", "快速入门", "설정", "📦"]


def make_site(root: Path, pages: int) -> None:
    rng = random.Random(7)
    docs = root / "docs"
    docs.mkdir(parents=True)
    for i in range(pages):
        words = " ".join(rng.choice(WORDS).capitalize() for _ in range(rng.randint(1, 12)))
        title = f"{words} {i}" + (f" {rng.choice(EXTRA)}" if i % 5 == 0 else "")
        desc = f"Page {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20)))
        folder = docs / f"section{i % 10}"
        folder.mkdir(exist_ok=True)
        (folder / f"page{i}.md").write_text(f'---\ndescription: "{desc}"\n---\n# {title}\n\nSome text.\n')
    (docs / "index.md").write_text("# Home\n")
    base = "site_name: Bench Site\nsite_url: https://bench.example.org/\ntheme:\n  name: material\n  font:\n    text: Noto Sans\n"
    (root / "plain.yml").write_text(base + "plugins: []\n")
    (root / "hcti.yml").write_text(base + "plugins:\n  - hcti:\n      cache_dir: .cache/hcti\n")
    (root / "material.yml").write_text(base + "plugins:\n  - social:\n      cache_dir: .cache/social\n")


def seed_material_fonts(root: Path) -> None:
    """Offline fonts for material's social plugin (see the module docstring)."""
    cache = root / ".cache" / "social"
    shutil.rmtree(cache, ignore_errors=True)
    target = cache / "fonts" / "Noto Sans"
    target.mkdir(parents=True)
    for style in ("Regular", "Bold", "Medium", "Light", "Italic", "BoldItalic"):
        src = NOTO / f"NotoSans-{style}.ttf"
        if src.is_file():
            shutil.copy(src, target / f"{style.replace('BoldItalic', 'Bold Italic')}.ttf")


def compile_packages() -> None:
    """Bytecode for hcti_build and mkdocs_plugin, as `pip install` writes it: an editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile them in every hcti build (~0.1 s) and no plain one."""
    import mkdocs_plugin

    import hcti_build

    for package in (hcti_build, mkdocs_plugin):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)


def cards_made(root: Path) -> int:
    folder = root / "site" / "assets" / "images" / "social"
    return len(list(folder.rglob("*.png"))) if folder.is_dir() else 0  # material nests them by page


def build(root: Path, config: str, cards: int) -> tuple[float, float]:
    """One `mkdocs build` (seconds, peak RSS MB), which must leave ``cards`` cards in the site: an arm that did not
    do its work (a card plugin that logged a warning and wrote nothing) would make a meaningless ratio."""
    with RssSampler() as rss:
        t0 = time.perf_counter()
        r = subprocess.run(
            # One site folder for every arm: mkdocs empties it and writes ~1000 files, and on ext4 creating files
            # where many were just deleted costs kernel time that depends on the folder (measured: +0.5 s for
            # whichever arm's folder sat in the busier inode group). The same folder gives every arm the same.
            [sys.executable, "-m", "mkdocs", "build", "-q", "-f", config, "-d", "site"],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"},
        )
        seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"mkdocs build -f {config} failed:\n{r.stderr[-3000:]}")
    made = cards_made(root)
    if made != cards:
        warnings = "\n".join(line for line in r.stderr.splitlines() if "WARNING" in line or "ERROR" in line)[-3000:]
        raise SystemExit(f"mkdocs build -f {config} made {made} cards, not {cards}: this arm did not do its work\n{warnings}")
    return seconds, rss.peak / 2**20


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The run with the median time (and that run's peak RSS)."""
    return sorted(runs)[len(runs) // 2]


def main() -> None:
    args = site_args(__doc__, repeat=7, flags={"skip-material": "leave out material's social plugin"})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_site(root, args.pages)
        compile_packages()
        cards = args.pages + 1  # every page, the home page too
        build(root, "plain.yml", 0)  # warm the OS caches and Python's bytecode for every arm alike
        rows = {"hcti cold": build(root, "hcti.yml", cards)}
        # Warm builds take a few seconds and vary by ~10% run to run: plain and hcti warm alternate, medians kept.
        plain_runs, warm_runs = alternate(
            args.repeat, lambda: build(root, "plain.yml", 0), lambda: build(root, "hcti.yml", cards)
        )
        rows = {"plain": median(plain_runs), **rows, "hcti warm": median(warm_runs)}
        for name, runs in (("plain", plain_runs), ("hcti warm", warm_runs)):
            print(f"{name} runs (s): {' '.join(f'{t:.2f}' for t, _ in runs)}")
        if not args.skip_material:
            seed_material_fonts(root)
            rows["material cold"] = build(root, "material.yml", cards)
            rows["material warm"] = median([build(root, "material.yml", cards) for _ in range(args.repeat)])
    plain = rows["plain"][0]
    print(f"pages: {args.pages + 1}; hcti cards: {cards}; cpus: {os.cpu_count()}; load average after: {os.getloadavg()}")
    print(f"{'arm':16} {'build s':>9} {'card s':>9} {'ms/card':>9} {'peak RSS MB':>12}")
    for name, (seconds, rss) in rows.items():
        card = seconds - plain
        per = card * 1000 / (args.pages + 1) if name != "plain" else 0.0
        print(f"{name:16} {seconds:9.2f} {card:9.2f} {per:9.1f} {rss:12.0f}")
    hcti_cards = rows["hcti cold"][0] - plain
    ratio = f"{hcti_cards / (rows['material cold'][0] - plain):.2f}" if "material cold" in rows else "n/a"
    print(f"RESULT cold_vs_material={ratio} warm_vs_plain={rows['hcti warm'][0] / plain:.3f} rss_mb={rows['hcti cold'][1]:.0f}")


if __name__ == "__main__":
    main()
