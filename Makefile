# One command per routine task. `make lab` and `make test` set everything up on a fresh
# machine: a virtual environment in .venv (if missing) with the package and its tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root unless told to (containers, Colab-like machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install lab test unit lint format book clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade "pip>=23"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

install: $(STAMP)  ## create .venv and install the package with its dev tools

lab: $(STAMP)  ## start JupyterLab on the notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

test: $(STAMP) lint  ## lint, unit tests, and every notebook in quick mode
	$(BIN)/python -m pytest --nbval

unit: $(STAMP)  ## unit tests only (seconds)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

book: $(STAMP)  ## run every notebook top to bottom in full mode, in place; refreshes figures/
	for nb in notebooks/*.ipynb; do \
	  echo "== $$nb"; \
	  GAN_TUTORIAL_QUICK=0 TQDM_DISABLE=1 \
	    $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 "$$nb" || exit 1; \
	done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
