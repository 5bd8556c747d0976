"""The `pasa` command line (Typer + Rich)."""
