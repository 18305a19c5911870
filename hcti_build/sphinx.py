"""`extensions = ["hcti_build.sphinx"]`: the name Sphinx users write; the extension is
`hcti_build.integrations.sphinx`."""

from .integrations.sphinx import setup

__all__ = ["setup"]
