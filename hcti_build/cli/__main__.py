"""`python -m hcti_build.cli`: the `hcti` command."""

from .main import main

main()
