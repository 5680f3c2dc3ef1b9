# Parley's single entry point: CI (.ci/run) calls these same targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
# sam build needs python3.13 on PATH for the python3.13 runtime; pyenv provides it here.
export PYENV_VERSION ?= 3.11.7:3.13.0

HOST ?= 127.0.0.1
PORT ?= 3001
USER ?= alice
WORKSPACE ?= demo
# Local development only: the emulator's built-in development secret (ws_emulator.gateway.devtokens), seeded into
# its embedded SSM as Parley's JWT secret. The token endpoint refuses any other; never used by a deployed stack.
DEV_SECRET ?= ws-emulator-development-secret-not-for-production
SECRET_PARAM ?= /parley/jwt-secret

.PHONY: help install run token test test-fast test-web browser chromium lint typecheck template-check deploy-check build unit integration e2e reliability reliability-full clean bench bench-quick bench-render bench-cost asyncapi web-client

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt pyproject.toml emulator/pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e ./emulator
	$(BIN)/pip install --quiet --no-deps -e ./clients/python
	@touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(BIN)/.installed  ## create .venv with the pinned dev dependencies

run: install  ## start Parley locally: the emulator serving template.yaml and the web client (http://$(HOST):$(PORT)/)
	$(BIN)/ws-emulator serve --template template.yaml --host $(HOST) --port $(PORT) --static-dir web \
	  --ssm-parameter '$(SECRET_PARAM)=$(DEV_SECRET)' \
	  --dev-token-secret '$(DEV_SECRET)' --dev-token-claims '{"workspace": "$(WORKSPACE)"}' \
	  --dev-users alice,bob $(ARGS)

token: install  ## mint a local development token: make token USER=alice WORKSPACE=demo
	@$(BIN)/ws-emulator token --secret '$(DEV_SECRET)' --sub '$(USER)' --claims '{"workspace": "$(WORKSPACE)"}'

lint: install  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install  ## mypy (strict) over the layer, the handlers, the emulator, the Python client and scripts; tests and bench as pyproject relaxes
	$(BIN)/mypy layers/parley/parley emulator/ws_emulator clients/python/parley_client scripts
	$(BIN)/mypy tests bench
	@for f in functions/*/app.py; do echo "mypy $$f"; $(BIN)/mypy "$$f" || exit 1; done

template-check: install $(SAM_VENV)/.installed  ## cfn-lint, sam validate --lint, sam build
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(SAM_VENV)/bin/sam build --template template.yaml --build-dir .aws-sam/build

deploy-check: install  ## read-only AWS preflight before a first deploy: make deploy-check ARGS='--region eu-west-1'
	$(BIN)/python scripts/deploy_check.py $(ARGS)

unit: install  ## unit tests only (no network): Parley's and the emulator's
	$(BIN)/pytest tests/unit tests/emulator/unit -q

integration: install  ## handlers under moto, and the emulator's event sources and local AWS
	$(BIN)/pytest tests/integration tests/emulator/integration -q

e2e: install node_modules/.installed  ## end-to-end through the emulator over loopback, and the emulator's own
	$(BIN)/pytest tests/e2e tests/emulator/e2e -q

reliability: install  ## the fast reliability suites alone (they also run in test-fast)
	$(BIN)/pytest tests/reliability -q

# Thousands of fuzz cases and a 1,000-connection, 10-minute soak: about 30 minutes on 2 cores.
# Figures go to .reliability-full.jsonl (one JSON line per suite) for docs/reliability.md.
reliability-full: install  ## the full reliability variants (PARLEY_RELIABILITY_FULL=1), figures in .reliability-full.jsonl
	rm -f .reliability-full.jsonl
	PARLEY_RELIABILITY_FULL=1 PARLEY_RELIABILITY_REPORT=$(CURDIR)/.reliability-full.jsonl \
	  $(BIN)/pytest tests/reliability -q -p no:cacheprovider

test-fast: install node_modules/.installed  ## the pytest suite alone (the browser suite is `make browser`)
	$(BIN)/pytest -q --ignore=tests/browser --durations=15

test-web: node_modules/.installed  ## the JS client package (clients/js) and the AsyncAPI spec's validation, with Node's built-in test runner
	node --test clients/js/test/ scripts/test/

web-client:  ## copy the JS client package's module into web/ (the static site serves only web/)
	cp clients/js/src/index.js web/parley-client.js

asyncapi: install node_modules/.installed  ## regenerate docs/asyncapi.yaml from protocol.py and validate it
	PYTHONPATH=layers/parley $(BIN)/python -m scripts.asyncapi
	node scripts/validate_asyncapi.mjs docs/asyncapi.yaml

chromium:  ## Debian's chromium for the browser tests (Playwright never downloads one)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

browser: install chromium  ## the web client in real headless Chromium against the emulator
	$(BIN)/pytest tests/browser -q

test: lint typecheck template-check test-fast test-web browser  ## everything CI runs

$(BIN)/.bench-installed: $(BIN)/.installed requirements-bench.txt
	$(BIN)/pip install --quiet -r requirements-bench.txt
	@touch $@

bench: $(BIN)/.bench-installed  ## benchmarks (about an hour here): bench/results/latest.json -> docs/benchmarks.md, docs/img
	$(BIN)/python -m bench run

bench-quick: $(BIN)/.bench-installed  ## the same, smaller (a few minutes)
	$(BIN)/python -m bench run --quick

bench-render: $(BIN)/.bench-installed  ## regenerate docs/benchmarks.md and its plots from bench/results/latest.json
	$(BIN)/python -m bench render

bench-cost: install  ## AWS cost of a workload: make bench-cost ARGS='--connections 100000 --channel-size 50'
	$(BIN)/python -m bench cost $(ARGS)

clean:  ## remove build output and caches (keeps the virtualenvs)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
