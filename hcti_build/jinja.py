"""`extensions=["hcti_build.jinja.HctiExtension"]`: the name Jinja2 users write; the extension is
`hcti_build.integrations.jinja`."""

from .integrations.jinja import HctiExtension

__all__ = ["HctiExtension"]
