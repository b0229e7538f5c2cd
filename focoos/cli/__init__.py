"""The `focoos` command, the composition root: each command imports the parts it uses (builder, client,
training) inside itself, so `focoos --help` and a command that needs none of them stay light."""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
