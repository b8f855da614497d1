"""Amazon IVS real-time participant token service."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: The distribution's name: its version is written once, in pyproject.toml.
DISTRIBUTION = "ivs-token-service"


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, through its metadata)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        # Run from a source tree that was never installed: no metadata to read.
        return "0+unknown"
