"""Amazon IVS real-time participant token service."""

__version__ = "0.1.0"
