"""The choice types of the settings (one definition each) and the Section base class that
coerces every field to its declared type and checks it against its choices."""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar, Literal, get_args, get_origin, get_type_hints

# The choices of string (and small integer) settings: one definition each. Every section checks
# its fields against these when it is built, loaded or overridden (Section.__post_init__ and
# apply), with an error naming the key and the allowed values.
Units = Literal["char", "phone", "phone_lexicon", "bpe", "unigram"]
SUBWORD_UNITS = ("bpe", "unigram")
# units trained from normalised word transcripts (all but TIMIT's "phone" transcripts)
WORD_TEXT_UNITS = ("char", "phone_lexicon", *SUBWORD_UNITS)
Degradation = Literal["noise10", "noise0", "reverb", "telephone"]
FeatureKind = Literal["fbank", "spectrogram"]
RnnType = Literal["lstm", "gru"]
NormType = Literal["layer", "batch", "none"]
Amp = Literal["none", "bf16", "fp16"]
Allocator = Literal["auto", "tcmalloc", "glibc"]
DecoderName = Literal["greedy", "beam", "beam_lm"]  # the built-in decoders
LexiconMode = Literal["auto", "on", "off"]
LmBinary = Literal["probing", "trie", "trie-q8"]  # KenLM binary formats (asr.decoding.lm)
NoiseType = Literal["white", "pink", "babble", "recorded"]
LmSource = Literal["gcide", "manpages"]


# every name decode.decoder may take: the built-in decoders, and those added through
# asr.decoding.decoders.register_decoder (which appends here)
DECODER_NAMES: list[str] = list(get_args(DecoderName))


def choices(literal) -> tuple:
    """The allowed values of a Literal choice type, e.g. choices(RnnType) == ("lstm", "gru")."""
    return get_args(literal)


class Section:
    """Base of the config sections: fields are coerced to their declared types and checked
    against their choices whenever a section is built (and again after `apply`)."""

    SECTION: ClassVar[str] = ""
    # Ranges, checked when a section is built: every int and float field is >= 0 (counts,
    # sizes, durations, rates) except the SIGNED ones; POSITIVE ones are > 0; SHARES are in [0, 1].
    SIGNED: ClassVar[tuple[str, ...]] = ()
    POSITIVE: ClassVar[tuple[str, ...]] = ()
    SHARES: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        for name, typ in field_types(type(self)).items():
            setattr(self, name, _coerce(getattr(self, name), typ, f"{self.SECTION}.{name}"))
            self.check_range(name, typ)
        self.check_values()

    def check_range(self, name: str, typ: Any) -> None:
        value, key = getattr(self, name), f"{self.SECTION}.{name}"
        if typ not in (int, float) or name in self.SIGNED:
            return
        if name in self.POSITIVE and not value > 0:
            raise ValueError(f"{key} must be positive, not {value!r}")
        if name in self.SHARES and not 0 <= value <= 1:
            raise ValueError(f"{key} must be in [0, 1], not {value!r}")
        if not value >= 0:  # NaN too
            raise ValueError(f"{key} must be >= 0, not {value!r}")

    def check_values(self) -> None:
        """Rules between fields or on ranges (sections override it)."""


@cache
def field_types(cls) -> dict[str, Any]:
    """A section's fields and their declared types (annotations resolved once per class)."""
    return {k: v for k, v in get_type_hints(cls).items() if get_origin(v) is not ClassVar}


def _coerce(value: Any, typ: Any, name: str) -> Any:
    """Convert a YAML/command-line value to a field's declared type, or raise naming the field."""
    if get_origin(typ) is Literal:
        allowed = get_args(typ)
        if "on" in allowed and str(value).lower() in ("true", "yes", "1", "false", "no", "0"):
            value = "on" if str(value).lower() in ("true", "yes", "1") else "off"  # YAML: on = true
        for option in allowed:
            if not isinstance(value, bool) and str(value) == str(option):
                return option
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
    if typ is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {value!r}")
    if typ in (int, float):
        if isinstance(value, bool) or (typ is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{name}: expected {typ.__name__}, got {value!r}")
        try:
            return typ(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name}: expected {typ.__name__}, got {value!r}") from None
    if typ is dict or get_origin(typ) is dict:
        return _coerce_dict(value, typ, name)
    if typ is list or get_origin(typ) is list:
        items = [v for v in value.split(",") if v] if isinstance(value, str) else list(value)
        (item,) = get_args(typ) or (Any,)
        return items if item is Any else [_coerce(v, item, name) for v in items]
    return value if typ is not str else str(value)


def _coerce_dict(value: Any, typ: Any, name: str) -> dict:
    """A mapping from YAML, or "key:value,key:value" from the command line ("" = empty)."""
    if isinstance(value, str):
        pairs = [p.split(":", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"{name}: expected key:value,key:value, got {value!r}")
        value = {k.strip(): v.strip() for k, v in pairs}
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a mapping, got {value!r}")
    key_type, value_type = get_args(typ) or (Any, Any)
    return {(k if key_type is Any else _coerce(k, key_type, name)):
            (v if value_type is Any else _coerce(v, value_type, f"{name}.{k}"))
            for k, v in value.items()}
