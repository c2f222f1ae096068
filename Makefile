# VUR — the two commands a fresh machine needs are `make run` and `make test`.
#
# The virtualenv lives in .venv; installs go through uv (installed into the venv from
# PyPI) with bytecode compiled, because this environment sets PYTHONDONTWRITEBYTECODE=1
# and without .pyc files every process would re-compile everything it imports.
# Each install is a stamp file that depends on pyproject.toml: when nothing changed,
# nothing is reinstalled and `make run` goes straight to the server.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
VUR := $(VENV)/bin/vur
PYTEST_ARGS ?=

# torch==2.13.0 (the `deep` extra) is a CPU wheel on this machine's disk; uv does not
# read pip's configuration, so it is told where the wheels are, when they are there.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
UV_INSTALL := UV_COMPILE_BYTECODE=1 $(UV) pip install --quiet --python $(PY) --compile-bytecode $(FIND_LINKS)
# VUR's own sources are an editable install, which uv does not compile; compileall only
# rewrites what changed, so this is cheap (~0.1 s) when nothing did.
COMPILE_SRC := $(PY) -m compileall -q src >/dev/null
COMPILE_TESTS := $(PY) -m compileall -q src tests >/dev/null

STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: help run test worker migrate bench clean install install-test

help:
	@echo "make run      install (first time) and serve the API (VUR_HOST, VUR_PORT, VUR_DATA_DIR)"
	@echo "make test     run the tests on SQLite, then on PostgreSQL if VUR_TEST_POSTGRES_URL is set"
	@echo "make worker   run background jobs in a separate process (with VUR_JOB_RUNNER=external)"
	@echo "make migrate  apply database migrations"
	@echo "make bench    start-up benchmark (bench/startup.py)"
	@echo "make clean    remove .venv and data/"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet uv

$(STAMP_RUN): pyproject.toml | $(UV)
	$(UV_INSTALL) -e '.[postgres,ml,deep,forge]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(UV)
	$(UV_INSTALL) -e '.[postgres,ml,deep,forge,scale,test]'
	touch $@

install: $(STAMP_RUN)
install-test: $(STAMP_TEST)

run: $(STAMP_RUN)
	@$(COMPILE_SRC)
	exec $(VUR) serve --migrate

migrate: $(STAMP_RUN)
	$(VUR) db upgrade

worker: $(STAMP_RUN)
	@$(COMPILE_SRC)
	exec $(VUR) worker

bench: $(STAMP_RUN)
	@$(COMPILE_SRC)
	$(PY) bench/startup.py $(BENCH_ARGS)

# The same suite twice: SQLite always, then PostgreSQL when VUR_TEST_POSTGRES_URL
# names a server (the conftest creates and drops a fresh database in it). Both run
# even if the first fails; `make test` fails if either does.
test: $(STAMP_TEST)
	@$(COMPILE_TESTS)
	@status=0; \
	echo "== tests on SQLite"; \
	env -u VUR_TEST_POSTGRES_URL $(PY) -m pytest $(PYTEST_ARGS) || status=1; \
	if [ -n "$${VUR_TEST_POSTGRES_URL:-}" ]; then \
		echo "== tests on PostgreSQL"; \
		$(PY) -m pytest $(PYTEST_ARGS) || status=1; \
	else \
		echo "== PostgreSQL pass skipped: VUR_TEST_POSTGRES_URL is not set"; \
	fi; \
	exit $$status

clean:
	rm -rf $(VENV) data
