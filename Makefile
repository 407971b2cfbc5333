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
GPU_DIR ?= .gpu
GPU_PYTHON ?= python3
GPU_SITE ?= /tmp/site
GPU_ARGS ?=
CPU_JSON ?=
# pure-Python wheels the lent GPU machine lacks (py3-none-any), for the Python there (3.12)
GPU_WHEELS := jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0

.DEFAULT_GOAL := help
.PHONY: help install test test-full lint format bench fit leaderboard data benchmarks gpu-bundle gpu-check clean

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
	$(BIN)/python benchmarks/train_throughput.py

gpu-bundle: ## prepare .gpu/ for the lent GPU machine (wheels, 512-structure AMCSD cache) [CPU_JSON=file]
	rm -rf $(GPU_DIR)/wheels $(GPU_DIR)/cache && mkdir -p $(GPU_DIR)/wheels
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d $(GPU_DIR)/wheels $(GPU_WHEELS)
	PXRDBENCH_CACHE=$(GPU_DIR)/cache $(BIN)/pxrdbench data build amcsd --max-structures 512 --workers 1
	$(if $(CPU_JSON),cp $(CPU_JSON) $(GPU_DIR)/cpu_throughput.json)
	@du -sh $(GPU_DIR)/wheels $(GPU_DIR)/cache && du -sh $(GPU_DIR)
	@echo "working tree without .venv, $(GPU_DIR) and caches: $$(du -sh --exclude=.venv --exclude=$(GPU_DIR) \
		--exclude=.git --exclude=runs --exclude=__pycache__ --exclude='*.egg-info' --exclude=.pytest_cache \
		--exclude=.ruff_cache . | cut -f1) (with $(GPU_DIR): at most 64 MiB)"

gpu-check: ## on the lent GPU machine: install .gpu/wheels, run benchmarks/gpu_check.py [GPU_ARGS="..."]
	$(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
		--target $(GPU_SITE) $(GPU_DIR)/wheels/*.whl
	PYTHONPATH=$(GPU_SITE):src PXRDBENCH_CACHE=$(GPU_DIR)/cache $(GPU_PYTHON) benchmarks/gpu_check.py $(GPU_ARGS)

clean: ## remove caches and run outputs (not the dataset cache)
	rm -rf .pytest_cache .ruff_cache runs build dist
