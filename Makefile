# brainlib: `make book` (the main job) and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= demo
# The GPU extra (tensorflow[and-cuda]) where nvidia-smi works, else tensorflow-cpu.
EXTRA ?= $(shell nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export TF_CPP_MIN_LOG_LEVEL := 2
# The real dataset for tests: ../shared/data beside the checkout unless set.
SHARED_DATA := $(abspath ../shared/data/brain-tumors-256x256)
export BRAINLIB_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA))

.PHONY: all venv test lint format book converged converged-results lock clean-venv clean bench

all: test

# (Re)install when .venv is missing or pyproject.toml changed since the last install.
# CONSTRAINTS=requirements/book.lock holds the install to the lock (publish.yml does).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 14), "brainlib needs Python 3.11, 3.12 or 3.13, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing brainlib[$(EXTRA),book,dev] into $(VENV) ..."
	$(BIN)/python -m pip install -q --upgrade pip uv 2>&1 | grep -v "^WARNING: Location" || true
	@# uv resolves and installs in parallel (seconds where its cache is warm); pip if it is missing
	set -o pipefail; if $(BIN)/python -m uv --version >/dev/null 2>&1; then \
		$(BIN)/python -m uv pip install -q --python $(BIN)/python -e ".[$(EXTRA),book,dev]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS)); \
	else $(BIN)/python -m pip install -q -e ".[$(EXTRA),book,dev]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) 2>&1 | { grep -v "^WARNING: Location" || true; }; fi
	@echo "$(EXTRA)" > $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two workers (pytest-xdist), each taking whole test files so that a module's fixtures
# (the smoke book, the smoke runs) are built once; --durations shows where the time goes.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= -n $(PYTEST_WORKERS) --dist loadfile --durations=20
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

book: $(STAMP)
	$(BIN)/brainlib run --profile $(PROFILE) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

# Converged models at 224 (issue: real-data evidence), one run at a time, resumable: the
# progressive-resizing grid of profile real224 (each run trains its real64 and real128
# stages first), the leakage pair of each seed (dedup, paper) first. Hours on 2 CPU cores.
GRID ?= dedup:42 paper:42 dedup:43 paper:43 dedup:44 paper:44 grouped:42 grouped:43 grouped:44
# CONVERGED_RUNS=/some/lasting/folder keeps the runs outside the checkout (a work tree that
# is laid anew each sitting loses _build/; a killed run resumes from its last epoch there).
CONVERGED_RUNS ?= _build/real224/runs
converged: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH scripts/train_grid.sh real224 $(CONVERGED_RUNS) "$(GRID)"

# The finished runs of that grid -> results/real224/ (added to the runs committed there):
# the data stage's duplicate flags, predictions and metrics, then what needs the weights
# (fit.json, saliency.json with the sanity check, Figure 5, the external test set's scores;
# minutes per run), then the export, which rewrites the README's results block.
EXTERNAL_DIR ?= $(abspath ../shared/data/brain-tumor-classification-mri)
converged-results: $(STAMP)
	$(BIN)/brainlib audit $(DATA_DIR) --profile real224 --flags-dir $(CONVERGED_RUNS)/real224/data > /dev/null
	$(BIN)/brainlib evaluate --profile real224 --runs $(CONVERGED_RUNS) --partial $(if $(DATA_DIR),--data-dir $(DATA_DIR))
	$(BIN)/brainlib analyse --profile real224 --runs $(CONVERGED_RUNS) --partial $(if $(DATA_DIR),--data-dir $(DATA_DIR))
	$(if $(wildcard $(EXTERNAL_DIR)),$(BIN)/brainlib evaluate --profile real224 --runs $(CONVERGED_RUNS) --partial \
		--external $(EXTERNAL_DIR) --class-map no_tumor=normal --name brain-tumor-classification-mri \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR)),@echo "no external test set at $(EXTERNAL_DIR): not scored")
	$(BIN)/brainlib export --profile real224 --runs $(CONVERGED_RUNS) --partial

# The versions the book environment (core + cpu + book) resolves to, for every platform
# (and Binder's environment.yml, written from them)
# and Python 3.11-3.13; tests/test_project.py checks it against pyproject's pins.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra book --universal \
		--python-version 3.11 --no-header -o requirements/book.lock
	$(BIN)/python scripts/binder_environment.py

bench: $(STAMP)
	$(BIN)/python bench/bench_training.py

clean-venv:
	rm -rf $(VENV)

clean:
	rm -rf _build build runs .pytest_cache
