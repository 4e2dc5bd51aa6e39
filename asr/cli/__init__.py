"""The `asr` command: argparse and printing only; every verb calls library functions."""

from asr.cli.main import main

__all__ = ["main"]
