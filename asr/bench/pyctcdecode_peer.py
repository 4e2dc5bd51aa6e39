"""The pyctcdecode side of `make bench-decode`, run by asr.bench.decode in the separate venv
.venv/bench (pyctcdecode needs numpy<2): it imports nothing from asr.

    .venv/bench/bin/python asr/bench/pyctcdecode_peer.py JOB.json OUT.json

JOB.json: {"labels": [...], "lm": KenLM binary, "unigrams": lexicon file, "alpha", "beta",
"beam_width", "splits": {split: npz file of arrays u0, u1, ... (T, V) log-probs}}.
OUT.json: {"load_s", "splits": {split: {"texts": [...], "decode_s"}}}; decode_s excludes
loading the LM (load_s), as for the torchaudio decoders.
"""

import json
import sys
import time

import numpy as np
from pyctcdecode import build_ctcdecoder


def main(job_path: str, out_path: str) -> None:
    job = json.loads(open(job_path, encoding="utf-8").read())
    with open(job["unigrams"], encoding="utf-8") as f:
        unigrams = [line.split()[0] for line in f if line.strip()]
    t0 = time.perf_counter()
    decoder = build_ctcdecoder(job["labels"], kenlm_model_path=job["lm"], unigrams=unigrams,
                               alpha=job["alpha"], beta=job["beta"])
    out = {"load_s": time.perf_counter() - t0, "splits": {}}
    for split, path in job["splits"].items():
        data = np.load(path)
        arrays = [data[f"u{i}"] for i in range(len(data.files))]
        t0 = time.perf_counter()
        texts = [" ".join(decoder.decode(lp, beam_width=job["beam_width"]).split()) for lp in arrays]
        out["splits"][split] = {"texts": texts, "decode_s": time.perf_counter() - t0}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
