"""`python -m registry` is the `registry` command."""

from registry.cli import main

main()
