# mono: self-supervised monocular depth. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline

.PHONY: help install train test test-fast lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install mono with pinned dependencies

train: $(STAMP)  ## the main job: render synthetic drives, train on CPU, evaluate on held-out drives
	$(BIN)/mono fit --config configs/synthetic.yaml --ckpt_path last  # continues an interrupted run
	$(BIN)/mono test --config configs/synthetic.yaml --ckpt_path runs/synthetic/checkpoints/last.ckpt

test: $(STAMP)  ## run the whole test suite (slow end-to-end tests included)
	$(BIN)/python -m pytest tests

test-fast: $(STAMP)  ## the test suite without the slow end-to-end runs
	$(BIN)/python -m pytest tests -m "not slow"

lint: $(STAMP)  ## ruff lint + format check
	$(BIN)/ruff check mono tests
	$(BIN)/ruff format --check mono tests

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix mono tests
	$(BIN)/ruff format mono tests

clean:  ## remove runs and caches (keeps .venv)
	rm -rf runs lightning_logs wandb .pytest_cache .ruff_cache
