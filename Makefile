# The two set-up commands of the README, plus the checks they are made of.
#   make demo   synthetic COCO-format scenes -> cue-search dataset -> validate -> preview PNG (no torch needed)
#   make test   ruff + the whole test suite on CPU (GPU/vLLM tests skip themselves)
#   make test-fast   the inner loop: the suite without the end-to-end runs marked slow
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# the demo runs the CLI through the interpreter, so `make demo PY=/any/python` works wherever the project is installed
LOCUS_DATA = $(PY) -m locus_data.cli
DEMO ?= demo

.PHONY: demo test test-fast lint style bench clean-demo easyr1 test-easyr1 demo-train

$(VENV)/.core: setup.py constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

# torch first and pinned: a bare `torch` requirement would pull several GB of CUDA wheels on a CPU machine.
$(VENV)/.test: $(VENV)/.core
	$(PY) -m pip install -q -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

# a second run keeps the finished demo (same config and seed: the same bytes) and only checks and draws it again
demo: $(VENV)/.core
	@if [ -f $(DEMO)/locus_cue/stats.json ]; then \
		echo "$(DEMO)/locus_cue is already built; validating it again (make clean-demo to rebuild)"; \
	else \
		$(LOCUS_DATA) synth --out $(DEMO)/coco --num-images 60 --seed 0 --overwrite && \
		$(LOCUS_DATA) build --config config/data/locus_default.yaml --coco-root $(DEMO)/coco \
			--out $(DEMO)/locus_cue num_train=200 num_val=40; \
	fi
	$(LOCUS_DATA) validate $(DEMO)/locus_cue
	$(LOCUS_DATA) preview $(DEMO)/locus_cue --n 12
	@echo "demo done: $(DEMO)/locus_cue/{train,val}.parquet, stats.md, preview.png"

# GRPO visibly learning on a laptop: tiny model, random-label SFT warm start, then `locus-train trl` with the LOCUS
# reward on a quadrant-bias variant (~90 s on 2 cores, measured); one torch thread is faster for so small a model
demo-train: $(VENV)/.test
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m locus_train.trl.demo \
		--config config/trl/locus_tiny_cpu_demo.yaml --out $(DEMO)/trl
	$(BIN)/locus-eval plot-training $(DEMO)/trl/grpo
	@echo "demo-train done: $(DEMO)/trl/summary.json, $(DEMO)/trl/grpo/training_curves.png"

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# the inner loop while editing; CI and `make test` run everything, the slow tests included
test-fast: $(VENV)/.test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

# EasyR1 (package `verl`) is not on the package registry. EASYR1_SRC: the vendored archive of the pinned commit (what
# CI uses), or "git+https://github.com/hiyouga/EasyR1.git@b44b311b669bf1fd1aa2fc36f2251482ba33cb16". --no-deps: its
# requirements pull vLLM and flash-attn; the tests need only these CPU packages (versions in constraints.txt).
EASYR1_SRC ?= ../shared/vendor/easyr1-b44b311.tar.gz
EASYR1_CPU_DEPS := ray tensordict torchdata codetiming msgspec einops peft accelerate psutil

easyr1: $(VENV)/.test
	$(PY) -m pip install -q --no-deps "$(EASYR1_SRC)"
	$(PY) -m pip install -q -c constraints.txt $(EASYR1_CPU_DEPS)

# the README's test command with EasyR1 installed: tests/train/easyr1 runs instead of skipping
test-easyr1: easyr1
	$(MAKE) test

style: $(VENV)/.test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.test
	$(BIN)/python benchmarks/bench_reward.py
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_prompt_lengths.py

clean-demo:
	rm -rf $(DEMO)
