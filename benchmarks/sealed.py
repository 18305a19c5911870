"""What sealing renders costs (issue #28): the same renders through this checkout's engine and through an earlier
commit's (default: the one before the sealing), side by side in one run, each arm in a process of its own.

Every response a page gets now carries a CSP sandbox, every context is sealed, and a document that could run
scripts is retired (a blank page) after its render, off the caller's path. Two workloads, each rendered by a
server-like engine (a context per page, `Engine()`) with its two pages busy:

- static: 1200x630 HTML + CSS cards (nothing to retire)
- scripted: the same cards whose title a script writes (retired after each render)

    python benchmarks/sealed.py [--n 60] [--baseline REF]

Last line: RESULT static_vs_before=<ms per card now / before> scripted_vs_before=<same for scripted cards>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ARM = r"""
import concurrent.futures, json, sys, tempfile, time
from hcti_build import Engine, Store
n, kind = int(sys.argv[1]), sys.argv[2]
css = ".c{width:1200px;height:630px;background:linear-gradient(135deg,#7c3aed,#db2777);color:#fff;font:64px sans-serif}"
def html(i):
    if kind == "static":
        return f"<div class=c>Card {i}</div>"
    return f"<div class=c id=t></div><script>t.textContent = 'Card ' + {i}</script>"
with tempfile.TemporaryDirectory() as tmp:
    engine = Engine()
    store = Store(tmp + "/store", root=tmp, engine=engine, remote="")
    store.create({"html": "<p>warm</p>", "css": css})  # the browser is up before the clock starts
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(engine.pool_size) as pool:
        ids = list(pool.map(lambda i: store.create({"html": html(i), "css": css, "device_scale": 1})["id"], range(n)))
    seconds = time.perf_counter() - t0
    sizes = {store.info(i)["width"] for i in ids}
    store.close(); engine.close()
print(json.dumps({"ms": seconds / n * 1000, "images": len(set(ids)), "widths": sorted(sizes)}))
"""


def run_arm(checkout: Path, n: int, kind: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", ARM, str(n), kind], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{checkout} ({kind}) failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # Each arm did its work: n distinct 1200 px cards.
    if out["images"] != n or out["widths"] != [1200]:
        raise SystemExit(f"{checkout} ({kind}) did not make {n} cards: {out}")
    return float(out["ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--baseline", default="b23bedf", help="the commit to compare with (default: before the sealing)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcti-sealed-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "-q", "--detach", str(before), args.baseline], check=True)
        try:
            results: dict[str, dict[str, list[float]]] = {kind: {"now": [], "before": []} for kind in ("static", "scripted")}
            for _ in range(args.rounds):  # the arms take turns, so drift on the machine hits both
                for kind in results:
                    results[kind]["now"].append(run_arm(HERE, args.n, kind))
                    results[kind]["before"].append(run_arm(before, args.n, kind))
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(before)], check=False)
    ratios = {}
    for kind, arms in results.items():
        now, was = min(arms["now"]), min(arms["before"])
        ratios[kind] = now / was
        print(f"{kind:9} now {now:6.1f} ms/card   before {was:6.1f} ms/card   ratio {ratios[kind]:.3f}")
    print(f"RESULT static_vs_before={ratios['static']:.3f} scripted_vs_before={ratios['scripted']:.3f}")


if __name__ == "__main__":
    main()
