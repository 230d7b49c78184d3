# radmap: `make demo` opens the explorer on the demo data, `make test` runs the whole suite.
# Both do all set-up on a fresh machine (Debian packages, virtualenv, Python dependencies).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8050

.PHONY: demo test lint format bench bench-smoke system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

## system-deps: Debian's chromium + chromium-driver (browser tests, figure export)
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		echo "installing Debian chromium + chromium-driver"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

demo: system-deps $(STAMP)
	$(BIN)/radmap demo --host $(HOST) --port $(PORT)

test: system-deps $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: system-deps $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/run.py --sizes S --smoke

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
