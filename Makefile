# The two commands of the README: `make serve` and `make test`. Both create .venv/ on first use.
# `make bench` runs the benchmark suite (bench/README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements-dev.lock | sha256sum | cut -c1-12)

.PHONY: serve test test-fast lint test-tools bench clean-venv

$(STAMP): requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m app

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (never a downloaded build); the clock-skew test runs
# a worker under libfaketime. Installed here when missing and this is root on Debian; elsewhere
# those tests skip, except under CI.
test-tools:
	@(command -v chromium >/dev/null && command -v faketime >/dev/null) || test "$$(id -u)" != 0 \
	  || ! command -v apt-get >/dev/null \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium faketime >/dev/null) \
	  || echo "could not install chromium and faketime: the tests that need them will skip (fail under CI)"

# Two workers, a test module to each at a time (pytest-xdist): on 2 cores, 16 min from a fresh
# clone against 22 in one process (the slow tests wait on what they start as much as they
# compute).
test: lint test-tools
	$(BIN)/pytest -q -n 2 --dist loadfile

# The edit-test loop: lint, types and every test that starts no server, workers, browser or
# Celery cluster (those marked live, browser or cluster; tests/conftest.py fails a test that
# starts one unmarked), on two workers (pytest-xdist, a module to each): 2.7 min, not 4.8.
test-fast: lint
	PC_TEST_LANE=fast $(BIN)/pytest -q -n 2 --dist loadfile -m "not live and not browser and not cluster"

# Not part of `make test`: several minutes of timing on a quiet machine. BENCH="--quick" for a
# two-minute smoke run.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

clean-venv:
	rm -rf $(VENV)
