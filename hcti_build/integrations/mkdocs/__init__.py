"""The hcti MkDocs plugin (`plugins: [hcti]`): social cards and directives."""
