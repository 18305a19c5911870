#!/usr/bin/env bash
# The main job: the project's documentation site (social cards + directives), the example notebook with its
# images, and the example images of the core.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(cd "${BIN:-.venv/bin}" && pwd)"
"$BIN/mkdocs" build --strict                        # -> site/ (cards in site/assets/images/social)
"$BIN/hcti" build notebooks --out site/notebooks   # -> site/notebooks/gallery.ipynb + its images
HCTI="$BIN/hcti" bash examples/render-all.sh         # -> examples/out/
echo "built: site/index.html, site/notebooks/gallery.ipynb, examples/out/"
