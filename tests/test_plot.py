"""`asr plot` (asr.scoring.pictures, asr.plots.training): utterance and training pictures of a
tiny run trained here.

The run is a few updates on a handful of tone utterances (conftest.tone_phrases): it has
learnt nothing, but it has everything a picture reads (checkpoints, metrics.jsonl,
tensorboard/, train.log), and the pictures are checked as images, not by eye.
"""

import json
import shutil

import numpy as np
import pytest

from asr.cli import main
from asr.plots.training import plot_training
from asr.scoring import pictures
from asr.train_log import read_training
from conftest import small_config, write_tone_splits


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(run folder, test manifest) of 3 updates on 6 tone utterances (~5 s)."""
    from asr.train import Trainer
    root = tmp_path_factory.mktemp("plot")
    write_tone_splits(root, (("train", 6), ("dev", 2), ("test", 4)), two_phrase_every=0)
    Trainer(small_config(root, root / "exp", epochs=3, max_steps=3, log_every=1)).train()
    return root / "exp", root / "manifests" / "test.jsonl"


def image(path):
    """The PNG decoded (rows, columns, RGBA); it must not be blank."""
    import matplotlib.image
    assert path.is_file() and path.stat().st_size > 0
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img[..., :3].var() > 0, f"{path} is blank"
    return img


def test_utterance_pictures_by_id(tiny_run, tmp_path, capsys):
    run, manifest = tiny_run
    out = tmp_path / "pics"
    assert main(["plot", "utterances", str(run), str(manifest), "--ids", "test002,test000",
                 "--out", str(out)]) == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [uid for uid, _ in printed] == ["test002", "test000"]
    for uid in ("test000", "test002"):
        img = image(out / f"{uid}.png")
        assert img.shape[1] == 9 * pictures.DPI  # short utterances: the narrowest figure, 9 in
        assert 6 * pictures.DPI < img.shape[0] < 9 * pictures.DPI
    assert not list(out.glob(".*"))  # nothing half-written left behind


def test_view_is_what_transcribe_gives(tiny_run):
    run, manifest = tiny_run
    t = pictures.load_model(run)
    entry = next(e for e in pictures.select_utterances(manifest, ids=["test001"]))[0]
    view = pictures.utterance_view(t, entry)
    assert view.feats.shape[1] == 80 and view.probs.shape[1] == len(view.tokens)
    assert np.allclose(view.probs.sum(axis=1), 1.0, atol=1e-4)
    assert view.probs.shape[0] * view.frame_s == pytest.approx(view.feats.shape[0] * view.hop_s, abs=0.03)
    assert view.words == t.transcribe(entry["audio_filepath"])["words"]


def test_worst_picks_the_utterances_with_most_errors(tiny_run, tmp_path):
    run, manifest = tiny_run
    refs = {e["id"]: e["text"] for e in map(json.loads, manifest.read_text().splitlines())}
    wrong = {"test001": "zz yy xx ww vv uu", "test003": "zz yy"}  # most, then second most errors
    hyp = tmp_path / "hyp.jsonl"
    hyp.write_text("".join(json.dumps({"id": i, "text": wrong.get(i, r)}) + "\n" for i, r in refs.items()))
    paths = pictures.plot_utterances(run, manifest, tmp_path / "worst", worst=2, hyp=hyp)
    assert list(paths) == ["test001", "test003"]
    assert [p.name for p in paths.values()] == ["1_test001.png", "2_test003.png"]
    for p in paths.values():
        image(p)
    chosen = pictures.select_utterances(manifest, worst=2, hyp=hyp)
    assert [hyp_text for _, hyp_text in chosen] == [wrong["test001"], wrong["test003"]]


def test_choosing_nothing_or_unknown_ids_is_an_error(tiny_run, tmp_path, capsys):
    run, manifest = tiny_run
    assert main(["plot", "utterances", str(run), str(manifest), "--worst", "2",
                 "--out", str(tmp_path)]) == 2
    assert "--hyp" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no utterance nope"):
        pictures.select_utterances(manifest, ids=["test000", "nope"])
    with pytest.raises(SystemExit):
        main(["plot", "utterances", str(run), str(manifest)])  # neither --ids nor --worst


def test_training_picture_counts_the_last_line_of_a_repeated_step(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    rows = [json.loads(x) for x in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    with open(copy / "metrics.jsonl", "a") as f:  # a resumed run repeats step 3, then a torn line
        f.write(json.dumps({**rows[-1], "loss": 1.5}) + "\n" + '{"step": 4, "lo')
    h = read_training(copy)
    assert [r["step"] for r in h.updates] == [1, 2, 3] and h.updates[-1]["loss"] == 1.5
    assert h.evals and {"step", "loss", "wer", "cer"} <= set(h.evals[-1]) and h.speed
    assert h.source.endswith("tensorboard")
    assert main(["plot", "training", str(copy)]) == 0
    assert capsys.readouterr().out.strip() == str(copy / "training.png")
    img = image(copy / "training.png")
    assert img.shape[:2] == (1040, 1200)  # 5 panels + the summary: 3 rows of 2 at 100 dpi

    shutil.rmtree(copy / "tensorboard")  # without TensorBoard events: train.log says the same
    from_log = read_training(copy)
    assert from_log.source.endswith("train.log")
    assert [e["step"] for e in from_log.evals] == [e["step"] for e in h.evals]
    assert [e["cer"] for e in from_log.evals] == pytest.approx([e["cer"] for e in h.evals], abs=0.01)
    image(plot_training(copy, tmp_path / "t.png"))
    log = copy / "train.log"  # a phone model's run logs its dev phone error rate as "PER"
    log.write_text(log.read_text().replace("dev WER", "dev PER"))
    assert [e["step"] for e in read_training(copy).evals] == [e["step"] for e in h.evals]


def test_report_embeds_pictures(tiny_run, tmp_path):
    from asr.scoring.report import write_all
    from asr.scoring.score import score
    run, manifest = tiny_run
    png = pictures.plot_utterances(run, manifest, tmp_path / "report" / "utts", ids=["test000"])["test000"]
    paths = write_all(tmp_path / "report", score({"a": "x y"}, {"a": "x z"}, n_boot=0), plots=False,
                      pictures=[png])
    assert "utts/test000.png" in paths["markdown"].read_text()
    assert "alt='utts/test000.png' src='data:image/png;base64," in paths["html"].read_text()
