"""Fine-tuning: a training run that starts from another model's weights (train.init_from), with
some of its layers frozen (train.freeze).

    asr train --config recipes/adapt/config.yaml train.init_from=exp/builtin/run1 \\
        train.freeze=[frontend]

The trainer calls two functions. prepare(), before the run's config.yaml is written, opens the
initial model (a bundle, a run folder or a checkpoint file), refuses one whose features differ
from the run's and takes from it every architecture key the recipe leaves at its default.
initialise(), once the model is built, copies every layer whose tensors all match by name and
shape, the output rows of the tokens both vocabularies share when the units differ, freezes
train.freeze and logs what was loaded, skipped and new (the run's train.log).

A fine-tuning run is a new run: fresh optimiser, learning-rate schedule and step counter.
`--resume` of it goes on from its own checkpoints/last.pt: the initial weights are not copied
again (the initial model is still opened, for its architecture).
"""

from __future__ import annotations

import dataclasses
import logging
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from asr.config import Config, FeatureConfig, ModelConfig
from asr.run_folder import RunFolder

log = logging.getLogger(__name__)

FEATURE_KEYS = ("kind", "sample_rate", "n_mels", "win_ms", "hop_ms")  # what a model hears
TRAINING_KEYS = ("dropout",)  # model keys that are training settings: always the recipe's
CMVN = ("cmvn_mean", "cmvn_std")
OUTPUT = "output"  # the output layer (a row per token)


@dataclass
class InitReport:
    """What train.init_from and train.freeze did to a run's model.

    source: init_from as given ("" without one); resumed: the run went on from its own
    last.pt (nothing copied); adopted: {model key: value} taken from the initial model;
    differs: {model key: (initial model's, this run's)} set otherwise by the recipe (kept);
    loaded: tensors copied whole; rows: "output.weight: 40/42 rows" when the units differ;
    skipped: the initial model's tensors not used, "name (why)"; new: this model's tensors
    left as initialised; frozen: parameters not trained."""

    source: str = ""
    resumed: bool = False
    adopted: dict = field(default_factory=dict)
    differs: dict = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)


@dataclass
class Initial:
    """The initial model between prepare() and initialise(): its checkpoint dict (None when the
    run resumes, and once its weights are copied) and the report being filled."""

    checkpoint: dict | None
    report: InitReport


# ---------------------------------------------------------------- before the model is built

def prepare(cfg: Config, run_dir: Path, resume: bool) -> Initial | None:
    """Open cfg.train.init_from (None when unset): check its features against cfg's and adopt
    its architecture into cfg.model (see adopt_architecture). resume: `--resume` was given;
    with checkpoints/last.pt in run_dir the run goes on from it and no weight is copied."""
    tc = cfg.train
    if not tc.init_from:
        return None
    from asr.source import model_source  # lazily: it imports much of the toolkit
    source = model_source(tc.init_from)
    # absolute, as config.yaml keeps every local path: the run resumes from any directory
    tc.init_from = str(Path(tc.init_from).resolve())
    saved = source.checkpoint.get("config") or {}
    check_features(cfg.features, saved.get("features") or {}, tc.init_from)
    adopted, differs = adopt_architecture(cfg.model, saved.get("model") or {})
    resumed = resume and RunFolder(run_dir).checkpoint("last").is_file()
    report = InitReport(tc.init_from, resumed, adopted, differs)
    return Initial(None if resumed else source.checkpoint, report)


def check_features(features: FeatureConfig, saved: dict, where: str) -> None:
    """ValueError naming every feature setting (kind, rate, mel bands, window, hop) in which
    the initial model (saved: its config's features section) differs from this run."""
    keys = [k for k in FEATURE_KEYS if k != "n_mels" or features.kind == "fbank"]
    differ = [f"features.{k}: {saved.get(k, getattr(FeatureConfig, k))!r} in the initial model, "
              f"{getattr(features, k)!r} in this run" for k in keys
              if saved.get(k, getattr(FeatureConfig, k)) != getattr(features, k)]
    if differ:
        raise ValueError(f"train.init_from={where}: its features differ from this run's "
                         f"({'; '.join(differ)}): a model hears only the features it was trained "
                         "on; give this run the model's features section (and extract the "
                         "features again: asr features)")


def adopt_architecture(model_cfg: ModelConfig, saved: dict) -> tuple[dict, dict]:
    """Set each architecture key of model_cfg that is at its default to the initial model's
    (saved: its config's model section; a key it lacks was at its default, as when it is
    loaded for decoding). A key the recipe sets to another value is kept: a deliberate change
    (one layer more, say), after which only the tensors that still match are copied.
    Returns ({key: value taken}, {key: (initial model's, this run's)} of the kept ones)."""
    adopted, differs = {}, {}
    for f in dataclasses.fields(ModelConfig):
        theirs, ours = saved.get(f.name, f.default), getattr(model_cfg, f.name)
        if f.name in TRAINING_KEYS or theirs == ours:
            continue
        if ours == f.default:
            setattr(model_cfg, f.name, theirs)
            adopted[f.name] = theirs
        else:
            differs[f.name] = (theirs, ours)
    model_cfg.check()
    return adopted, differs


# ---------------------------------------------------------------- once the model is built

def initialise(model: nn.Module, vocab, tc, init: Initial | None) -> InitReport | None:
    """Copy the initial weights into model (unless the run resumes), freeze tc.freeze and log
    what was done. vocab: this run's vocabulary; tc: the train section. None when there is
    neither init_from nor freeze."""
    if init is None and not tc.freeze:
        return None
    report = init.report if init else InitReport()
    if init is not None and init.checkpoint is not None:
        copy_weights(model, vocab, init.checkpoint, report, keep_cmvn=tc.init_norm == "model")
        init.checkpoint = None  # the weights are in the model now: let them go
    if tc.freeze:
        report.frozen = freeze(model, tc.freeze)
    log_report(report, tc.init_norm)
    return report


def copy_weights(model: nn.Module, vocab, ckpt: dict, report: InitReport, keep_cmvn: bool) -> None:
    """Copy ckpt's weights into model layer by layer: a layer (frontend.norms.0, rnn.rnns.1,
    ...) whose tensors all match by name and shape is copied whole, any other stays new; the
    output layer row by row (the tokens both have) when the vocabularies differ; the CMVN
    statistics only with keep_cmvn (else this run's data's stay). Fills report; ValueError
    when no layer fits at all."""
    old, state = ckpt["model"], model.state_dict()
    merged = dict(state)
    for name in CMVN:
        if keep_cmvn:
            merged[name] = old[name]
            report.loaded.append(name)
        else:
            report.skipped.append(f"{name} (train.init_norm=data: this run's data statistics)")
    same_units = list(ckpt["vocab"]) == list(vocab.tokens)
    for layer, names in layers(state).items():
        if layer == OUTPUT and not same_units:
            copy_output(merged, old, names, token_rows(list(vocab.tokens), list(ckpt["vocab"])),
                        report)
        elif all(n in old and old[n].shape == state[n].shape for n in names):
            merged.update((n, old[n]) for n in names)
            report.loaded += names
        else:
            report.new += names
            report.skipped += [f"{n} ({mismatch(old[n], state[n])})" for n in names if n in old]
    report.skipped += [f"{n} (not in this model)" for n in old if n not in state]
    if not report.rows and all(n in CMVN for n in report.loaded):
        raise ValueError(nothing_fits(report))
    model.load_state_dict(merged)


def layers(state: dict) -> dict[str, list[str]]:
    """{layer: its tensor names} of a state dict (the CMVN buffers left out): a layer is all
    but the last part of a name (frontend.norms.0.running_mean is frontend.norms.0's)."""
    out: dict[str, list[str]] = {}
    for name in state:
        if name not in CMVN:
            out.setdefault(name.rsplit(".", 1)[0], []).append(name)
    return out


def mismatch(theirs: torch.Tensor, ours: torch.Tensor) -> str:
    if theirs.shape == ours.shape:
        return "its layer differs"
    return f"shape {tuple(theirs.shape)}, here {tuple(ours.shape)}"


def copy_output(merged: dict, old: dict, names: list[str], rows: dict[int, int],
                report: InitReport) -> None:
    """The output layer of other units: the rows of the tokens both vocabularies have (rows),
    when the layer's input size is the same; else it stays new."""
    if not all(n in old and old[n].shape[1:] == merged[n].shape[1:] for n in names):
        report.new += names
        report.skipped += [f"{n} (shape {tuple(old[n].shape)}, here {tuple(merged[n].shape)})"
                           for n in names if n in old]
        return
    for n in names:
        merged[n] = copy_rows(merged[n], old[n], rows)
        report.rows.append(f"{n}: {len(rows)}/{len(merged[n])} rows")


def token_rows(new: list[str], old: list[str]) -> dict[int, int]:
    """{row in the new output layer: row in the old} for the tokens both have (by their
    string), the blank (row 0 of every vocabulary) to the blank."""
    index = {t: i for i, t in enumerate(old)}
    rows = {i: index[t] for i, t in enumerate(new) if t in index}
    rows[0] = 0
    return rows


def copy_rows(ours: torch.Tensor, theirs: torch.Tensor, rows: dict[int, int]) -> torch.Tensor:
    """ours (freshly initialised) with its rows rows.keys() replaced by theirs' rows.values()."""
    out = ours.clone()
    new, old = list(rows), list(rows.values())
    out[new] = theirs[old].to(out.dtype)
    return out


def nothing_fits(report: InitReport) -> str:
    differs = "; ".join(f"model.{k}: {a!r} in the initial model, {b!r} in this run"
                        for k, (a, b) in report.differs.items())
    return (f"train.init_from={report.source}: none of its weights fits this model"
            + (f" ({differs}): leave these keys out of the recipe to take the initial model's"
               if differs else ""))


def freeze(model: nn.Module, prefixes: list[str]) -> list[str]:
    """Turn off training of every parameter whose name is a prefix or starts with prefix + "."
    (frontend, rnn.rnns.0, ...); a BatchNorm whose parameters are all frozen stays in eval mode
    (stay_in_eval). Returns the frozen names; ValueError naming a prefix that matches none."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            modules = sorted({n.rsplit(".", 1)[0] for n in names})
            raise ValueError(f"train.freeze: {prefix!r} names no parameter of this model; its "
                             f"parameters are under {', '.join(modules)}")
    frozen = []
    for name, p in model.named_parameters():
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            p.requires_grad_(False)
            frozen.append(name)
    for module in model.modules():
        params = list(module.parameters())
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and params \
                and not any(p.requires_grad for p in params):
            stay_in_eval(module)
    return frozen


def _train_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def stay_in_eval(module: nn.Module) -> None:
    """Keep module in eval mode whatever model.train() says: a frozen BatchNorm in training
    mode would normalise with each batch's statistics and update its running ones; in eval
    mode it normalises with the loaded ones and changes nothing. A bound method (not a
    closure), so that a copy of the model (copy.deepcopy) keeps its own."""
    module.train = types.MethodType(_train_in_eval, module)
    module.eval()


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimiser updates: all but the frozen ones."""
    return [p for p in model.parameters() if p.requires_grad]


def log_report(report: InitReport, init_norm: str) -> None:
    if report.resumed:
        log.info("train.init_from=%s: not applied, the run resumes from its own checkpoint",
                 report.source)
    elif report.source:
        log.info("train.init_from=%s: %d tensors loaded%s, %d skipped, %d new; CMVN from %s",
                 report.source, len(report.loaded), "".join(f", {r} copied" for r in report.rows),
                 len(report.skipped), len(report.new),
                 "the initial model" if init_norm == "model" else "this run's data")
        for what, names in (("loaded", report.loaded), ("skipped", report.skipped),
                            ("new", report.new)):
            if names:
                log.info("init_from %s: %s", what, ", ".join(names))
    if report.adopted:
        log.info("model keys taken from the initial model: %s",
                 ", ".join(f"{k}={v!r}" for k, v in report.adopted.items()))
    if report.differs:
        log.warning("model keys that differ from the initial model's (this run's kept): %s",
                    ", ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in report.differs.items()))
    if report.frozen:
        log.info("frozen (not trained): %s", ", ".join(report.frozen))
        fresh = [n for n in report.frozen if n in report.new]
        if report.source and not report.resumed and fresh:
            log.warning("frozen at their random initialisation (not in the initial model): %s",
                        ", ".join(fresh))
