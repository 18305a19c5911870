"""The integrations: the hosts hcti-build plugs into (MkDocs and ProperDocs, Sphinx, IPython, nbconvert, any
Jinja2 environment, any built site with `hcti og`, `hcti watch`). Each keeps only what is its host's: reading
pages from it and writing where it wants; the work is the layers below."""
