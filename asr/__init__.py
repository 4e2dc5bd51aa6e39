"""A small, readable toolkit for bidirectional-RNN CTC speech recognition."""

__version__ = "0.1.0"
