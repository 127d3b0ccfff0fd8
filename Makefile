# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: browser-deps demo test test-unit test-integration lint stack-up stack-down bench bench-quick clean

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The main job: real Kafka + Elasticsearch, replay the seed sample, print the top papers.
demo: $(STAMP)
	$(BIN)/trending-arxiv demo

## The whole test suite (unit, integration on real Kafka/Elasticsearch, browser).
test: $(STAMP) browser-deps
	$(BIN)/lint-imports
	$(BIN)/trending-arxiv stack up
	$(BIN)/python -m pytest -p no:cacheprovider

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy trending_arxiv producers streams sinks
	$(BIN)/lint-imports

## Debian's Chromium for the browser tests (installed once; needs root, as on CI).
browser-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { echo "installing chromium + chromium-driver from Debian"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

stack-up: $(STAMP)
	$(BIN)/trending-arxiv stack up

stack-down: $(STAMP)
	$(BIN)/trending-arxiv stack down

## Benchmarks in bounded time (smaller N); results in bench/results/*.json.
bench-quick: $(STAMP)
	$(BIN)/trending-arxiv stack up
	$(BIN)/python -m bench.run_all --quick

bench: $(STAMP)
	$(BIN)/trending-arxiv stack up
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info
