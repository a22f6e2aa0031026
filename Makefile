# One command per routine task. `make lab` and `make test` set everything up on a fresh
# machine: a virtual environment in .venv (if missing) with the package and its tools.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root unless told to (containers, Colab-like machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install lab test unit test-browser test-widgets7 site test-site lint format book clean

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

# Needs a Chromium (Debian: `apt-get install chromium`, or GAN_TUTORIAL_CHROMIUM=/path/to/chrome);
# without one it says so and skips.
test-browser: $(STAMP)  ## every chapter in JupyterLab and headless Chromium; screenshots in build/browser/
	$(BIN)/python -m pytest tests/browser -rsxX

# The notebooks as a static website, from their committed outputs: nothing runs, nothing is
# fetched (Jupyter Book 1; sources in website/, generated ones in build/site-src/).
site: $(STAMP)  ## every chapter as a web page in build/site/ (seconds; GitHub Pages publishes it)
	$(BIN)/python website/build.py

# Chromium as for test-browser; without one it says so and skips.
test-site: site  ## every page of build/site/ in headless Chromium, offline; screenshots in build/site-screens/
	$(BIN)/python -m pytest tests/site -rsxX

# ipywidgets 7.7.1 (Colab's) in a folder of its own, put first on the path for one run.
WIDGETS7 := build/widgets7
$(WIDGETS7)/.installed: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps --target $(WIDGETS7) "ipywidgets==7.7.1" "ipython_genutils==0.2.0"
	touch $@

test-widgets7: $(STAMP) $(WIDGETS7)/.installed  ## the explorer's tests under ipywidgets 7.7.1 (`make test` runs 8.x)
	PYTHONPATH=$(WIDGETS7) $(BIN)/python -c 'import sys, ipywidgets, pytest; \
	  assert ipywidgets.__version__ == "7.7.1", ipywidgets.__file__; \
	  print("ipywidgets", ipywidgets.__version__, "from", ipywidgets.__file__, flush=True); \
	  sys.exit(pytest.main(["tests/test_explorer.py", "-W", "ignore::DeprecationWarning:ipywidgets.widgets.widget"]))'

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
	$(BIN)/python tests/notebook_outputs.py notebooks/*.ipynb  # no saved widget state (see the file)

clean:
	rm -rf $(VENV) runs build .pytest_cache .ruff_cache
