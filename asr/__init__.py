"""A small, readable toolkit for bidirectional-RNN CTC speech recognition.

    import asr
    model = asr.load("path/to/bundle")      # or a run folder, or a checkpoint
    print(model.transcribe("audio.wav").text)
"""

from asr.version import __version__  # noqa: F401 (asr.__version__)


def load(path, **options):
    """asr.api.load: a Model from a bundle, run folder or checkpoint (see asr.api)."""
    from asr.api import load as _load  # imported here so `import asr` stays instant
    return _load(path, **options)
