"""Typed run configuration: YAML recipe files mapped onto dataclasses, with key=value overrides.

A recipe YAML has one section per dataclass (data, features, model, train, decode, lm,
augment, builtin). Any field can be overridden on the command line, e.g. ``train.lr=2e-3
model.rnn_type=gru``; every field is checked against its type and choices when a section is
built, so a bad value fails at once with the key and the allowed values named. The resolved
configuration is saved beside every run (config.yaml).

Layout: ``types`` (the choice types and the checking Section base), ``sections`` (the
dataclasses), ``loading`` (YAML, overrides, saving). Import everything from ``asr.config``.
"""

from asr.config.loading import apply, load_config, parse_overrides, save_config, to_dict
from asr.config.sections import (AugmentConfig, BuiltinConfig, Config, DataConfig, DecodeConfig,
                                 FeatureConfig, LmConfig, ModelConfig, TrainConfig)
from asr.config.types import (SUBWORD_UNITS, WORD_TEXT_UNITS, Amp, DecoderName, Degradation, FeatureKind,
                              LexiconMode, LmSource, NoiseType, NormType, RnnType, Section, Units,
                              choices)

__all__ = ["SUBWORD_UNITS", "WORD_TEXT_UNITS", "Amp", "AugmentConfig", "BuiltinConfig", "Config", "DataConfig", "DecodeConfig",
           "DecoderName", "Degradation", "FeatureConfig", "FeatureKind", "LexiconMode",
           "LmConfig", "LmSource", "ModelConfig", "NoiseType", "NormType", "RnnType", "Section",
           "TrainConfig", "Units", "apply", "choices", "load_config", "parse_overrides",
           "save_config", "to_dict"]
