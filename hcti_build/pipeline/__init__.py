"""The pipeline layer: directives found in pages (parse only), resolved into validated requests, Jinja2
templates, assets (an image and how a page shows it), notebooks, `hcti build`, and a built site's pages and
heads. It uses the store, and nothing above it."""
