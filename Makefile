# Stages of a recipe. Examples:
#   make demo            # setup, data, features, lm, train, tune-lm, evaluate (decode greedy + beam_lm, score) in 30 min
#   make features train tune-lm evaluate CONFIG=recipes/builtin/real.yaml   # after make demo
#   make train RECIPE=builtin ARGS="train.epochs=2 model.rnn_type=gru"
#   make test
RECIPE ?= builtin
CONFIG ?= recipes/$(RECIPE)/config.yaml
ARGS ?=
DECODER ?=
DATA ?=
DECODE_ARGS := $(if $(DECODER),decode.decoder=$(DECODER))
DATA_ARGS := $(if $(DATA),data.source=$(DATA))
ASR := .venv/bin/asr
PY := .venv/bin/python

.PHONY: setup data features train resume lm tune-lm decode score evaluate demo test bench bench-train bench-memory bench-gpu benchmark bench-decode bundle bench-ship bench-serve

setup:
	@bash tools/setup.sh $(CONFIG)

data: setup
	$(ASR) prepare --config $(CONFIG) $(DATA_ARGS) $(ARGS)

features: setup
	$(ASR) features --config $(CONFIG) $(ARGS)

train: setup
	$(ASR) train --config $(CONFIG) $(ARGS)

resume: setup
	$(ASR) train --resume --config $(CONFIG) $(ARGS)

lm: setup
	$(ASR) lm build --config $(CONFIG) $(ARGS)

decode: setup
	$(ASR) decode --config $(CONFIG) $(DECODE_ARGS) $(ARGS)

score: setup
	$(ASR) score --config $(CONFIG) $(DECODE_ARGS) $(ARGS)

tune-lm: setup
	$(ASR) tune-lm --config $(CONFIG) $(ARGS)

bench-decode: setup
	$(PY) -m asr.bench.decode --config $(CONFIG) $(ARGS)

# bundle the run of CONFIG (its train.exp_dir, read by the asr config loader when needed) into
# a folder beside it: exp/builtin/run1 -> exp/builtin/bundle, exp/builtin/real -> exp/builtin/real-bundle
RUN ?= $(shell $(PY) -c 'import sys; from asr.config import load_config; print(load_config(sys.argv[1]).train.exp_dir)' $(CONFIG))
BUNDLE ?= $(if $(filter run1,$(notdir $(RUN))),$(dir $(RUN))bundle,$(RUN)-bundle)
bundle: setup
	$(ASR) bundle $(RUN) $(BUNDLE)

# PyTorch vs ONNX fp32 vs ONNX int8 (RTF, size, WER) and streaming, on a test manifest
BENCH_MANIFEST ?= data/$(RECIPE)/manifests/test.jsonl
STREAM_BUNDLE ?= exp/$(RECIPE)/streaming-bundle
bench-ship: setup
	$(PY) -m asr.bench.ship $(BUNDLE) $(BENCH_MANIFEST) $(if $(wildcard $(STREAM_BUNDLE)),--streaming-bundle $(STREAM_BUNDLE)) $(ARGS)

# greedy and beam + LM decoding of every test split (beam + LM only for phone models, whose
# best path is phones), then the results table
EVAL_DECODERS ?= $(shell $(PY) -c 'import sys; from asr.config import load_config; \
	print("beam_lm" if load_config(sys.argv[1], sys.argv[2:]).data.units == "phone_lexicon" else "greedy beam_lm")' $(CONFIG) $(ARGS))
evaluate: setup
	@for d in $(EVAL_DECODERS); do $(MAKE) --no-print-directory decode DECODER=$$d || exit 1; done
	$(MAKE) --no-print-directory score

# make demo: every stage of the recipe (tools/demo.sh), then each stage's minutes and the
# training updates. The built-in one runs whole, setup included, in DEMO_MINUTES of wall time:
# the LM is built before training, and training (at most the recipe's train.max_minutes) ends
# in time to leave DEMO_AFTER_TRAIN_S for tune-lm and evaluate, so a slow machine trains less,
# not longer. Other recipes train as configured (DEMO_MINUTES empty), unless it is given.
DEMO_MINUTES ?= $(if $(filter builtin,$(RECIPE)),30)
DEMO_AFTER_TRAIN_S ?= 360
# the built-in demo tunes the LM on a small grid over the real dev voices (9 trials, not 30)
BUILTIN_TUNE_ARGS := --split dev_real --lm-weights 1.5,2,2.5 --word-scores=-1,0,1
DEMO_TUNE_ARGS ?= $(if $(filter builtin,$(RECIPE)),$(BUILTIN_TUNE_ARGS))
demo:
	@bash tools/demo.sh $(CONFIG) "$(DEMO_MINUTES)" $(DEMO_AFTER_TRAIN_S) "$(DEMO_TUNE_ARGS)" $(ARGS)

# the tests' own Debian packages too (Chromium for the asr serve page)
test:
	@bash tools/setup.sh $(CONFIG) test
	$(PY) -m pytest -q tests

benchmark: setup
	$(ASR) benchmark --config $(CONFIG) $(ARGS)

bench-train: setup
	$(PY) -m asr.bench.train --config $(CONFIG) $(ARGS)

# the trainer's resident memory over time (default 60 min; ARGS="--minutes 15" or "--steps 500")
bench-memory: setup
	$(PY) -m asr.bench.memory --config $(CONFIG) $(ARGS)

# one GPU machine measured in one command, < 8 min on an H100 (docs/gpu.md): throughput, memory,
# phases, parity with the CPU, convergence, the CUDA decoder. No setup (the GPU machine has no
# network); without CUDA it is the CPU smoke run. ARGS="--out FILE --budget-s S"
BENCH_GPU_PY ?= $(or $(wildcard .venv/bin/python),python3)
bench-gpu:
	$(BENCH_GPU_PY) -m asr.bench.gpu $(ARGS)

# the server under load: asr serve MODEL in a subprocess on loopback, 1, 4 and 16 concurrent clients
# for a fixed time each: requests/s, latency p50/p95/p99, RTF, errors, the server's memory.
# MODEL: default exp/builtin/bundle (make demo, make bundle); ARGS="--seconds 3 --clients 1,4"
MODEL ?=
bench-serve: setup
	$(PY) -m asr.bench.serve $(MODEL) $(ARGS)

bench: bench-train bench-decode
