#!/usr/bin/env bash
# The main job: the project's documentation site (social cards + directives), the example notebooks executed
# in a real kernel and converted with their images, and the example images of the core.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(cd "${BIN:-.venv/bin}" && pwd)"
export HCTI_STORE="${HCTI_STORE:-$PWD/.hcti}"   # one store: the kernel, nbconvert and the CLI share renders
# The site's cards show its site_url (mkdocs.yml's, or HCTI_SITE_URL: where the site is published).
"$BIN/mkdocs" build --strict                     # -> site/ (cards in site/assets/images/social)
"$BIN/jupyter" nbconvert --execute --to notebook --output-dir site/notebooks notebooks/*.ipynb
"$BIN/jupyter" nbconvert --to hcti-html site/notebooks/*.ipynb       # -> site/notebooks/*.html, images embedded
"$BIN/jupyter" nbconvert --to hcti-markdown site/notebooks/*.ipynb   # -> site/notebooks/*.md + *_files/hcti-*
HCTI="$BIN/hcti" bash examples/render-all.sh      # -> examples/out/
echo "built: site/index.html, site/notebooks/{gallery,report}.{html,md}, examples/out/"
