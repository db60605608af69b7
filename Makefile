# Every target bootstraps what it needs: a fresh machine with only python3 is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.symphony-installed
DISTS  := core sdk $(sort $(dir $(wildcard plugins/*/pyproject.toml))) $(sort $(dir $(wildcard examples/extensions/*/pyproject.toml)))
DISTS  := $(patsubst %/,%,$(DISTS))
PYTEST_ARGS ?=

.PHONY: help install demo test bench lint clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python requirements-dev.txt $(addsuffix /pyproject.toml,$(DISTS))
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-build-isolation $(addprefix -e ./,$(DISTS))
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install every distribution in the repo (editable)

demo: $(STAMP)  ## run the main job: a workflow over this repo's READMEs, live, then again from the memo
	$(BIN)/python examples/demo.py

test: $(STAMP)  ## run the whole suite (every async test on asyncio and trio)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)  ## run the benchmarks; prints one JSON object per line
	$(BIN)/python tests/benchmarks/run.py

lint: $(STAMP)  ## ruff (lint) and mypy --strict (every src/ listed in pyproject [tool.mypy] files)
	$(BIN)/ruff check core sdk plugins examples tests
	$(BIN)/python -m mypy

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis
