"""Word timestamps and confidences from CTC frame paths, and CTC forced alignment of known text.

A CTC model emits one label per output frame; an output frame lasts
``frame_s = asr.model.frame_seconds(features.hop_ms, model.subsample)`` seconds (10 ms x 4 =
40 ms by default).
A decoder's best path (greedy argmax, or the beam search's winning path) says, frame by frame,
which token was emitted, so a word starts at the first frame of its first character and ends
after the last frame of its last character. Its confidence is the mean posterior probability of
the path's labels over the frames where the word's characters are emitted (1.0 = the network was
certain of every character, ~1/vocab = it was guessing).

Forced alignment (:func:`align_text`) finds the most likely path of a *known* text through the
network output with ``torchaudio.functional.forced_align`` (Viterbi): word times for a reference
transcript, or for a hypothesis whose decoder gave no path.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF

from asr.text.vocab import Vocab


def path_units(path: list[int], vocab: Vocab) -> list[tuple[int, list[int]]]:
    """Collapse a frame-level CTC path (token ids) into emitted units: [(token id, [frames])],
    blanks dropped, a run of one token (no blank between) being one unit."""
    units: list[tuple[int, list[int]]] = []
    prev = vocab.blank
    for t, tok in enumerate(path):
        if tok != vocab.blank:
            if tok == prev:
                units[-1][1].append(t)
            else:
                units.append((tok, [t]))
        prev = tok
    return units


def _word(chars: list[tuple[int, list[int]]], probs: list[float], vocab: Vocab,
          frame_s: float, offset_s: float) -> dict:
    frames = [t for _, fr in chars for t in fr]
    return {"word": vocab.decode([tok for tok, _ in chars]).strip(),
            "start": round(offset_s + frames[0] * frame_s, 3),
            "end": round(offset_s + (frames[-1] + 1) * frame_s, 3),
            "conf": round(sum(probs[t] for t in frames) / len(frames), 4)}


def path_words(path, log_probs: torch.Tensor, vocab: Vocab, frame_s: float,
               offset_s: float = 0.0) -> list[dict]:
    """Words of a frame-level CTC path, with times and confidences.

    path: token id per output frame (blanks included, repeats not merged), length T.
    log_probs: (T, V) log-posteriors of the same frames (for the confidences).
    vocab: the model vocabulary (blank = 0, " " separates words; subword units: a piece
        beginning with "\u2581" starts a word; a vocabulary with neither, e.g. phones, gives
        one entry per emitted unit).
    frame_s: seconds per output frame. offset_s: added to every time (chunk start in a file).
    Returns [{"word", "start", "end", "conf"}] with times in seconds rounded to ms.
    """
    space = vocab.index.get(" ")
    path = path.tolist() if isinstance(path, torch.Tensor) else [int(i) for i in path]
    units = path_units(path, vocab)
    # each frame's posterior of its path label, gathered once: a word's confidence is their mean
    index = torch.tensor(path, dtype=torch.long, device=log_probs.device)
    probs = log_probs[torch.arange(len(path), device=log_probs.device), index].exp().tolist()
    if getattr(vocab, "word_prefix", None):  # sentencepiece: "\u2581he llo" is one word
        groups = []
        for unit in units:
            if not groups or vocab.word_starts(unit[0]):
                groups.append([])
            groups[-1].append(unit)
        words = [_word(g, probs, vocab, frame_s, offset_s) for g in groups]
        return [w for w in words if w["word"]]
    if space is None:  # no word separator (phone units): every unit is a "word"
        return [_word([u], probs, vocab, frame_s, offset_s) for u in units]
    groups, cur = [], []
    for unit in units + [(space, [])]:
        if unit[0] == space:
            if cur:
                groups.append(cur)
            cur = []
        else:
            cur.append(unit)
    return [_word(g, probs, vocab, frame_s, offset_s) for g in groups]


def lexicon_path_words(path, word_ends, word_dict, log_probs: torch.Tensor, vocab: Vocab,
                       frame_s: float, offset_s: float = 0.0) -> list[dict]:
    """Words of a lexicon search's path over units with no word boundary (phones): the search
    emits each word at a frame of its last unit, so a unit belongs to the first word not yet
    emitted when it starts. Units after the last emitted word (an unfinished one) are dropped.

    path: token id per frame; word_ends: per frame, the word index emitted there or -1;
    word_dict: the search's word dictionary (index -> word). Other arguments as path_words.
    """
    path = [int(i) for i in path]
    ends = [t for t, w in enumerate(word_ends) if w >= 0]
    index = torch.tensor(path, dtype=torch.long, device=log_probs.device)
    probs = log_probs[torch.arange(len(path), device=log_probs.device), index].exp().tolist()
    groups: list[list] = [[] for _ in ends]
    for unit in path_units(path, vocab):
        k = sum(1 for e in ends if e < unit[1][0])  # words emitted before this unit began
        if k < len(groups):
            groups[k].append(unit)
    words = []
    for group, end in zip(groups, ends):
        if group:
            words.append({**_word(group, probs, vocab, frame_s, offset_s),
                          "word": word_dict.get_entry(word_ends[end])})
    return words


def greedy_path(log_probs: torch.Tensor, length: int) -> torch.Tensor:
    """Argmax token per frame over the first `length` frames."""
    return log_probs[:length].argmax(dim=-1)


def align_text(log_probs: torch.Tensor, text: str, vocab: Vocab, frame_s: float,
               offset_s: float = 0.0) -> list[dict]:
    """Forced-align a known text to one utterance's network output; returns its timed words.

    log_probs: (T, V) log-posteriors (T output frames of one utterance, no padding).
    text: normalised text whose characters are all in vocab (words separated by one space).
    frame_s, offset_s: as path_words. Raises ValueError when the text needs more frames than
    there are (CTC needs one frame per label plus one between repeated letters).
    """
    targets = torch.tensor([vocab.encode(text)], dtype=torch.int32)
    if targets.shape[1] == 0:
        return []
    lp = log_probs.unsqueeze(0).float().cpu()
    try:
        labels, _ = AF.forced_align(lp, targets, blank=vocab.blank)
    except RuntimeError as e:
        raise ValueError(f"cannot align {text!r} to {lp.shape[1]} frames ({e})") from None
    return path_words(labels[0], log_probs, vocab, frame_s, offset_s)


def pause_segments(log_probs: torch.Tensor, min_pause_frames: int, blank: int = 0) -> list[tuple[int, int]]:
    """Split (T, V) network output at pauses: [(start, end)] frame ranges of the speech between
    runs of at least min_pause_frames blank (argmax) frames, each cut in the pause's middle.
    min_pause_frames <= 0: one segment."""
    T = log_probs.shape[0]
    if min_pause_frames <= 0 or T == 0:
        return [(0, T)]
    is_blank = (log_probs.argmax(dim=-1) == blank).tolist()
    cuts, run = [], 0
    for t, b in enumerate(is_blank + [False]):
        if b:
            run += 1
            continue
        if run >= min_pause_frames and run < t:  # a pause, not the window's beginning
            cuts.append(t - run // 2)
        run = 0
    bounds = [0] + [c for c in cuts if 0 < c < T] + [T]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def shift_words(words: list[dict], offset_s: float) -> list[dict]:
    """Words with offset_s added to their start/end (rounded to ms)."""
    return [{**w, "start": round(w["start"] + offset_s, 3), "end": round(w["end"] + offset_s, 3)}
            for w in words]
