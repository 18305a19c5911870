#!/usr/bin/env bash
# The main job (for now): render the example images into examples/out/ through the local store.
set -euo pipefail
cd "$(dirname "$0")"
HCTI="${HCTI:-../.venv/bin/hcti}"
mkdir -p out
"$HCTI" render --html-file card.html --css-file card.css --device-scale 1 -o out/card.png
id=$("$HCTI" render --html-file card.html --css-file card.css --device-scale 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$HCTI" get "$id.jpg?width=600" -o out/card-600.jpg
"$HCTI" get "$id.webp?aspect_ratio=1_1&crop_height=100%&width=400" -o out/card-square.webp
"$HCTI" get "$id.pdf" -o out/card.pdf
"$HCTI" render --html-file badge.html --transparent-background -o out/badge.png
ls -l out
