"""Watch latency: from a file write to the new asset complete on disk and its reference rewritten.

A project of 200 directives across 50 Markdown files (4 each; every file also links one shared stylesheet).
`hcti watch` runs as its own process, as a user runs it. Each edit changes one directive of one file (its
width, so the new image is a store miss and must be rendered); the clock stops when the output file names a
new asset and that asset is complete on disk (its PNG end chunk is there). Side by side, the baseline a user
has without watch mode: `hcti build` run again after each edit (a new process and a new browser each time,
the unchanged directives store hits).

    python benchmarks/watch_latency.py [--edits 20] [--files 50] [--per-file 4]

Last line: RESULT p50_ms=<watch median> p90_ms=<watch p90> rebuild_vs_watch=<hcti build median / watch median>
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIRECTIVE = (
    '```hcti alt="box {i}"\n<link rel="stylesheet" href="style.css">'
    '<div class="box" style="width:{w}px">File {f}, directive {i}</div>\n```\n'
)
STYLE = ".box{height:60px;background:linear-gradient(90deg,#5e35b1,#d81b60);color:#fff;font:16px 'Noto Sans',sans-serif}"
IEND = b"IEND\xaeB`\x82"


def page(f: int, per_file: int, widths: dict[tuple[int, int], int]) -> str:
    body = "\n".join(DIRECTIVE.format(i=i, f=f, w=widths[(f, i)]) for i in range(per_file))
    return f"# Page {f}\n\n{body}"


def asset_refs(text: str) -> list[str]:
    return re.findall(r'src="([^"]+)"', text)


def complete(path: Path) -> bool:
    try:
        return path.read_bytes().endswith(IEND)
    except OSError:
        return False


def wait_new(out: Path, rel: str, old: list[str], index: int, timeout: float = 30) -> None:
    """Until out/rel references a new asset at `index` and that asset is complete on disk."""
    deadline = time.monotonic() + timeout
    target = out / rel
    while time.monotonic() < deadline:
        try:
            refs = asset_refs(target.read_text())
        except OSError:
            refs = []
        if len(refs) == len(old) and refs[index] != old[index] and complete(target.parent / refs[index]):
            return
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {rel} to be rebuilt")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--per-file", type=int, default=4)
    args = ap.parse_args()
    hcti = [sys.executable, "-m", "hcti_build.cli"]
    with tempfile.TemporaryDirectory(prefix="hcti-watch-bench-") as tmp:
        root = Path(tmp)
        src, out = root / "src", root / "out"
        src.mkdir()
        (src / "style.css").write_text(STYLE)
        widths = {(f, i): 200 + i for f in range(args.files) for i in range(args.per_file)}
        for f in range(args.files):
            (src / f"page{f:02d}.md").write_text(page(f, args.per_file, widths))
        env = {**os.environ, "HCTI_STORE": str(root / "store")}

        t0 = time.perf_counter()
        proc = subprocess.Popen([*hcti, "watch", str(src), "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        while "initial build" not in (line := proc.stderr.readline()):
            if not line:
                raise SystemExit("hcti watch exited")
        print(f"initial build of {args.files * args.per_file} directives: {time.perf_counter() - t0:.1f} s ({line.strip()})")

        def edit(n: int) -> tuple[str, list[str], int]:
            f, i = (n * 7) % args.files, n % args.per_file
            rel = f"page{f:02d}.md"
            old = asset_refs((out / rel).read_text())
            widths[(f, i)] += 1 + n  # a size never used before: a store miss
            (src / rel).write_text(page(f, args.per_file, widths))
            return rel, old, i

        watch_ms: list[float] = []
        for n in range(args.edits):
            t = time.perf_counter()
            rel, old, i = edit(n)
            wait_new(out, rel, old, i)
            watch_ms.append((time.perf_counter() - t) * 1000)
            time.sleep(0.05)  # let the watcher go idle, as between a user's saves
        lines = []
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        lines = proc.stderr.read().splitlines()
        proc.stderr.close()
        print(f"watch: last rebuild lines: {lines[-2:] if lines else '(none)'}")

        # Baseline: `hcti build` after each edit (fewer edits: each costs a process and a browser launch).
        rebuild_ms: list[float] = []
        for n in range(args.edits, args.edits + max(3, args.edits // 4)):
            t = time.perf_counter()
            rel, old, i = edit(n)
            subprocess.run([*hcti, "build", str(src), "--out", str(out)], env=env, check=True, capture_output=True)
            wait_new(out, rel, old, i, timeout=1)
            rebuild_ms.append((time.perf_counter() - t) * 1000)

    print(f"{'arm':38} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, vals in (("hcti watch (warm, incremental)", watch_ms), ("hcti build after each edit", rebuild_ms)):
        print(f"{name:38} {len(vals):4d} {pct(vals, 0.5):8.0f} {pct(vals, 0.9):8.0f} {max(vals):8.0f}")
    p50, p90 = pct(watch_ms, 0.5), pct(watch_ms, 0.9)
    print(f"RESULT p50_ms={p50:.0f} p90_ms={p90:.0f} rebuild_vs_watch={pct(rebuild_ms, 0.5) / p50:.1f}")


if __name__ == "__main__":
    main()
