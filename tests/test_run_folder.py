"""asr.run_folder: the one spelling of a run folder's paths; runs decoded in the older
decode_<split>_<decoder>/ layout stay readable."""

from asr.run_folder import RunFolder


def _hyps(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"id": "u1", "text": "a"}\n')


def test_decodes_are_written_in_the_new_layout_and_old_runs_are_read(tmp_path):
    run = RunFolder(tmp_path)
    assert run.new_hyps("test", "greedy") == tmp_path / "decode" / "test" / "greedy" / "hyp.jsonl"
    assert run.hyps("test", "greedy") == run.new_hyps("test", "greedy")  # nothing yet: the new one
    _hyps(tmp_path / "decode_test_greedy" / "hyp.jsonl")  # an older run's decode
    _hyps(tmp_path / "decode_test_real_beam_lm" / "hyp.jsonl")  # a longer split name's, old layout
    _hyps(run.new_hyps("test", "beam"))
    assert run.hyps("test", "greedy") == tmp_path / "decode_test_greedy" / "hyp.jsonl"
    assert run.decoders("test", ["test", "test_real"]) == ["beam", "greedy"]
    assert run.decoders("test_real", ["test", "test_real"]) == ["beam_lm"]
    _hyps(run.new_hyps("test", "greedy"))  # decoded again: the new folder wins
    assert run.hyps("test", "greedy") == run.new_hyps("test", "greedy")
    assert run.checkpoint("best") == tmp_path / "checkpoints" / "best.pt"
    assert (run.config.name, run.tuned.name, run.report.name) == ("config.yaml", "decode.yaml", "report.md")
