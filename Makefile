# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The counting core compiled with mypyc (trending_arxiv/core/compiled.py), rebuilt when
# its sources change; used only while it matches them.
NATIVE := trending_arxiv/core/_native/manifest.json
NATIVE_SOURCES := $(addprefix trending_arxiv/core/,buckets.py counting.py alerting.py alert_log.py alert_book.py murmur.py ledger.py compiled.py) tools/build_native.py

.PHONY: browser-deps demo native test test-unit test-integration lint stack-up stack-down bench bench-quick clean

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The counting core compiled (~10 s); without a C compiler the same modules run as Python.
native: $(NATIVE)

$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	@$(BIN)/python tools/build_native.py || echo "native build skipped: the counting core runs as Python"

## The main job: real Kafka + Elasticsearch, replay the seed sample, print the top papers.
demo: $(STAMP) $(NATIVE)
	$(BIN)/trending-arxiv demo

## The whole test suite (unit, integration on real Kafka/Elasticsearch, browser).
test: $(STAMP) $(NATIVE) browser-deps
	$(BIN)/lint-imports
	$(BIN)/trending-arxiv stack up
	$(BIN)/python -m pytest -p no:cacheprovider

test-unit: $(STAMP) $(NATIVE)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy trending_arxiv producers streams sinks bench
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
bench-quick: $(STAMP) $(NATIVE)
	$(BIN)/trending-arxiv stack up
	$(BIN)/python -m bench.run_all --quick

bench: $(STAMP) $(NATIVE)
	$(BIN)/trending-arxiv stack up
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info trending_arxiv/core/_native
