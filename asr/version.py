"""The toolkit's version (written into bundles, exports and model cards)."""

__version__ = "0.1.0"
