"""The `hcti` command: its subcommands (`main`), `hcti store ...` (`store`) and `hcti mcp` (`mcp`)."""

from .main import main

__all__ = ["main"]
