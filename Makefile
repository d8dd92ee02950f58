# rdv — one Makefile for the whole life cycle. Every target installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEB_PACKAGES := prometheus prometheus-alertmanager wrk chromium fonts-dejavu-core
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench deps test-deps system-deps lint clean screenshots

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(STAMP)

# caldav (the tests' second CalDAV client) needs niquests, whose urllib3-future would otherwise
# replace urllib3 itself (through a .pth file) and break requests, which schemathesis uses: built
# from source with URLLIB3_NO_OVERRIDE=1 it installs beside urllib3 instead.
$(TEST_STAMP): pyproject.toml $(STAMP)
	URLLIB3_NO_OVERRIDE=1 $(BIN)/pip install -q --no-binary urllib3-future -e '.[test]'
	@if [ -e "$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')/urllib3_future.pth" ]; then \
	  echo "urllib3-future overrides urllib3: reinstalling both"; \
	  rm -f "$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')/urllib3_future.pth"; \
	  URLLIB3_NO_OVERRIDE=1 $(BIN)/pip install -q --force-reinstall --no-deps --no-binary urllib3-future \
	    "$$($(BIN)/pip show urllib3-future | sed -n 's/^Version: /urllib3-future==/p')" \
	    "$$($(BIN)/pip show urllib3 | sed -n 's/^Version: /urllib3==/p')"; \
	fi
	touch $(TEST_STAMP)

deps: $(STAMP)

test-deps: $(TEST_STAMP) system-deps

# Debian packages the tests drive for real (promtool, amtool, Prometheus, Alertmanager, wrk,
# Chromium for the console's browser tests); installed only when missing.
system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: deps
	@echo "rdv listening on http://$(HOST):$(PORT)"
	@echo "try: curl -s -X POST http://$(HOST):$(PORT)/api/conversations/conv_demo/messages -H 'content-type: application/json' -d '{\"text\": \"bonjour je voudrais un rendez-vous\"}'"
	$(BIN)/rdv serve --host $(HOST) --port $(PORT)

test: test-deps
	$(BIN)/python -m pytest

bench: test-deps
	$(BIN)/python -m bench

# The console's pages at 1280 and 390 pixels (screenshots/, not tracked), from its browser
# tests; the overview's goes into the README (docs/console-overview.png).
screenshots: test-deps
	RDV_SCREENSHOTS_DIR=screenshots $(BIN)/python -m pytest tests/console/test_console_browser.py
	mkdir -p docs && cp screenshots/overview-1280.png docs/console-overview.png

# ruff, mypy --strict and the import contracts (pyproject.toml; import_contracts.py holds the
# engine's allow-list contract type). CI runs it before the tests.
lint: test-deps
	$(BIN)/ruff check service telemetry tests bench tools import_contracts.py
	$(BIN)/mypy service telemetry bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) data .pytest_cache
