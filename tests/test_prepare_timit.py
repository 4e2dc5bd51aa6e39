"""TIMIT: a miniature corpus in the original layout (NIST SPHERE .WAV with a 1024-byte header,
.PHN/.WRD/.TXT) -> asr prepare (61 -> 39 phones; core test set, dev set) -> features ->
training steps -> decode; phone vocabulary and PER."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from test_prepare_common import corpus_config, pipeline, read_jsonl, tone

PHONES = ["h#", "sh", "iy", "hv", "ae", "dcl", "d", "q", "ix", "axr", "pau", "en", "ux", "h#"]


def sphere(path: Path, wav: np.ndarray, utt: str) -> None:
    """A TIMIT .WAV: NIST_1A header padded to 1024 bytes, then 16-bit little-endian PCM."""
    pcm = np.clip(wav * 32767, -32768, 32767).astype("<i2")
    header = ("NIST_1A\n   1024\ndatabase_id -s5 TIMIT\ndatabase_version -s3 1.0\n"
              f"utterance_id -s{len(utt)} {utt}\nchannel_count -i 1\nsample_count -i {len(pcm)}\n"
              f"sample_rate -i 16000\nsample_min -i {pcm.min()}\nsample_max -i {pcm.max()}\n"
              "sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_sig_bits -i 16\nend_head\n")
    path.write_bytes(header.encode("ascii").ljust(1024, b" ") + pcm.tobytes())


def make_timit(base: Path) -> Path:
    speakers = {("TRAIN", "DR1", "FCJF0"): ("SA1", "SI1027", "SI1657", "SX127", "SX217"),
                ("TRAIN", "DR2", "MKLS0"): ("SA2", "SI1437", "SX177", "SX267"),
                ("TEST", "DR1", "MDAB0"): ("SA1", "SI1039", "SX139"),    # core test
                ("TEST", "DR4", "FJLM0"): ("SI1043", "SX233"),           # core test
                ("TEST", "DR1", "FAKS0"): ("SI1573", "SX133"),           # dev
                ("TEST", "DR3", "MABC0"): ("SI1620",)}                   # neither: unused
    rng = np.random.default_rng(0)
    for (part, dr, spk), utts in speakers.items():
        d = base / "TIMIT" / part / dr / spk
        d.mkdir(parents=True)
        for utt in utts:
            phones = PHONES[:1] + list(rng.choice(PHONES[1:-1], size=6)) + PHONES[-1:]
            wav = tone("ab cd ef", seed=len(utt))
            sphere(d / f"{utt}.WAV", wav, f"{spk.lower()}_{utt.lower()}")
            step = len(wav) // len(phones)
            (d / f"{utt}.PHN").write_text("".join(f"{i * step} {(i + 1) * step} {p}\n"
                                                 for i, p in enumerate(phones)))
            (d / f"{utt}.WRD").write_text(f"{step} {3 * step} she\n{3 * step} {5 * step} had\n")
            (d / f"{utt}.TXT").write_text(f"0 {len(wav)} She had your dark suit.\n")
    return base


def test_timit_phone_prepare_train_decode(tmp_path):
    import torch

    from asr.data.store import FeatureStore
    from asr.decoding.decoders import greedy_decode
    from asr.model import CTCModel
    from asr.text.phones import TIMIT_39
    from asr.text.vocab import PhoneVocab, make_vocab
    source = make_timit(tmp_path / "timit")
    cfg = corpus_config(tmp_path, "timit", source, units="phone", phone_set=39)
    summary, _ = pipeline(cfg, {"train": 7, "dev": 2, "test": 4})
    mdir = Path(cfg.data.root) / "manifests"
    test = read_jsonl(mdir / "test.jsonl")
    assert {e["speaker"] for e in test} == {"mdab0", "fjlm0"}
    assert all(not e["id"].endswith("sa1") for e in test)
    tokens = [t for e in test for t in e["text"].split()]
    assert set(tokens) <= set(TIMIT_39) and tokens[0] == "sil" and "q" not in tokens
    # the phone vocabulary: a model with one output per phone decodes to phone strings (PER =
    # WER over these tokens)
    vocab = make_vocab("phone", phone_set=39)
    assert isinstance(vocab, PhoneVocab) and len(vocab) == 40
    store = FeatureStore(Path(cfg.data.root) / "features" / "test")
    model = CTCModel(cfg.model, store.dim, len(vocab)).eval()
    model.set_cmvn(*store.cmvn())
    feats = [torch.from_numpy(store.features(i)) for i in range(len(store))]
    with torch.no_grad():
        log_probs, lengths = model(torch.nn.utils.rnn.pad_sequence(feats, batch_first=True),
                                   torch.tensor([len(f) for f in feats]))
    hyps = greedy_decode(log_probs, lengths, vocab)
    assert len(hyps) == 4 and all(h and set(h.split()) <= set(TIMIT_39) for h in hyps)


def test_timit_61_phones_and_word_transcripts(tmp_path):
    from data_prep.prepare import run_prepare
    source = make_timit(tmp_path / "timit")
    cfg = corpus_config(tmp_path, "timit", source, units="phone", phone_set=61)
    run_prepare(cfg, progress=False)
    train = read_jsonl(Path(cfg.data.root) / "manifests" / "train.jsonl")
    assert train[0]["text"].split()[0] == "h#"
    cfg = corpus_config(tmp_path / "w", "timit", source, units="char")
    run_prepare(cfg, progress=False)
    train = read_jsonl(Path(cfg.data.root) / "manifests" / "train.jsonl")
    assert train[0]["text"] == "she had your dark suit"


def test_phone_folding_table():
    from asr.text.phones import TIMIT_39, TIMIT_48, TIMIT_61, fold_phones, fold_to_39
    from asr.text.vocab import PhoneVocab
    assert (len(TIMIT_61), len(TIMIT_48), len(TIMIT_39)) == (61, 48, 39)
    assert fold_phones("h# ao ax-h axr hv ix el em en nx eng zh ux q pcl epi pau".split()) == \
        "sil aa ah er hh ih l m n n ng sh uw sil sil sil".split()
    assert fold_to_39("cl vcl ax zh") == "sil sil ah sh"
    v = PhoneVocab.timit(61)
    assert v.decode(v.encode("h# ax-h q")) == "h# ax-h q" and not v.covers("h# xx")
