# The two commands of the README: `make serve` and `make test`. Both create .venv/ on first use.
# `make bench` runs the benchmark suite (README, Benchmarks).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)

.PHONY: serve test lint bench clean-venv

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m app

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# Not part of `make test`: several minutes of timing on a quiet machine. BENCH="--quick" for a
# two-minute smoke run.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

clean-venv:
	rm -rf $(VENV)
