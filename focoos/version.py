"""The package version, in a module that imports nothing, so any part (the hub client, the CLI, the build)
reads it without importing the package root."""

__version__ = "0.1.0"
