# pxrdbench — common commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= alphadiffract
DATA ?= amcsd
PRESET ?= quick
GPUS ?= auto
ACCELERATOR ?= auto
SEED ?= 0
ENSEMBLE ?=
NODES ?= 1
MAX_STRUCTURES ?=
WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install test test-full lint format bench fit leaderboard data benchmarks clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python ## create .venv and install pxrdbench with dev extras (CPU torch pinned by constraints.txt)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"

test: ## fast test suite (no slow tests)
	$(BIN)/python -m pytest -m "not slow" -q

test-full: ## every test, including slow ones (pymatgen comparison on >= 100 real structures, ...)
	$(BIN)/python -m pytest -q

lint: ## ruff lint and format check
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

data: ## build the dataset cache: make data DATA=amcsd [MAX_STRUCTURES=N] [WORKERS=K]
	$(BIN)/pxrdbench data build $(DATA) --workers $(WORKERS) $(if $(MAX_STRUCTURES),--max-structures $(MAX_STRUCTURES))

bench: ## train + evaluate: make bench MODEL=alphadiffract DATA=amcsd PRESET=quick GPUS=auto ACCELERATOR=auto SEED=0 [ENSEMBLE=K] [NODES=N]
	$(BIN)/pxrdbench bench --model $(MODEL) --data $(DATA) --preset $(PRESET) --gpus $(GPUS) --accelerator $(ACCELERATOR) --seed $(SEED) --nodes $(NODES) $(if $(ENSEMBLE),--ensemble $(ENSEMBLE))

fit: ## LightningCLI on a method config: make fit CONFIG=configs/methods/den_kan_tiny.yaml ARGS="--trainer.fast_dev_run true"
	$(BIN)/pxrdbench fit --config $(CONFIG) $(ARGS)

leaderboard: ## regenerate leaderboards/ from leaderboards/results/*.json
	$(BIN)/pxrdbench leaderboard

benchmarks: ## speed benchmarks against the reference implementations (prints tables)
	$(BIN)/python benchmarks/simulate_vs_pymatgen.py
	$(BIN)/python benchmarks/render_profiles.py

clean: ## remove caches and run outputs (not the dataset cache)
	rm -rf .pytest_cache .ruff_cache runs build dist
