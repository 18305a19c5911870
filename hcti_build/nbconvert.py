"""`hcti_build.nbconvert`: the names nbconvert's configuration and its users write (the exporters, the
preprocessor); they are `hcti_build.integrations.nbconvert`."""

from .integrations.nbconvert import HctiHTMLExporter, HctiMarkdownExporter, HctiPreprocessor

__all__ = ["HctiHTMLExporter", "HctiMarkdownExporter", "HctiPreprocessor"]
