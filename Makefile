# lxd-api: every day-to-day command. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
SANDBOX   := scripts/lxd-sandbox.sh
SANDBOX_ENV := .sandbox/sandbox.env
# The mode `make dev` points the API at: local (unix socket) or remote (mTLS on 127.0.0.1).
DEV_MODE  ?= local
SYSTEM_PACKAGES := lxd lxd-client iptables busybox-static
TEST_PACKAGES   := postgresql chromium redis-server

.PHONY: help install lock outdated system-deps migrate run dev test test-unit test-integration lint format \
        typecheck up down logs lxd-sandbox lxd-sandbox-down bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt
	@touch $@

install: $(STAMP) ## Create .venv and install the locked, hashed requirements-dev.txt

LOCK_ARGS := --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock"

lock: $(STAMP) ## Regenerate requirements*.txt (exact versions + hashes) from pyproject.toml
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_ARGS) $(LOCK_UPGRADE) -o requirements.txt
	$(VENV)/bin/uv pip compile pyproject.toml --group dev -c requirements.txt $(LOCK_ARGS) \
		$(LOCK_UPGRADE) -o requirements-dev.txt

OUTDATED_VENV := .venv-outdated

outdated: $(STAMP) ## Newest allowed versions in a scratch venv, then the unit tests (drift shows early)
	rm -rf $(OUTDATED_VENV) && python3 -m venv $(OUTDATED_VENV)
	$(VENV)/bin/uv pip compile pyproject.toml --group dev --upgrade --python-version 3.11 --quiet \
		-o $(OUTDATED_VENV)/requirements.txt
	$(OUTDATED_VENV)/bin/pip install -q --disable-pip-version-check -r $(OUTDATED_VENV)/requirements.txt
	@diff <($(PY) -m pip freeze | sort) <($(OUTDATED_VENV)/bin/pip freeze | sort) | grep '^>' || true
	$(OUTDATED_VENV)/bin/pytest tests/unit -q -p no:cacheprovider

system-deps: ## Install LXD, busybox-static and iptables from Debian when missing (root)
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing:$$missing (run as root: apt-get install$$missing)"; exit 1; fi; \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

migrate: $(STAMP) ## Apply the database migrations (alembic upgrade head)
	$(VENV)/bin/alembic upgrade head

# The API refuses to start with no, a short or the placeholder JWT_SECRET. `make run` and
# `make dev` use one of their own, random and kept in JWT_SECRET_FILE (git-ignored), unless the
# environment sets JWT_SECRET (`make run`: or `.env` does).
JWT_SECRET_FILE ?= .sandbox/jwt-secret
USE_JWT_SECRET_FILE = JWT_SECRET=$$(scripts/jwt-secret.sh $(JWT_SECRET_FILE)) || exit 1; export JWT_SECRET
ENV_SETS_JWT_SECRET = grep -qsE '^[[:space:]]*(export[[:space:]]+)?JWT_SECRET=[^[:space:]]' .env

run: $(STAMP) ## Set up and serve the API on APP_PORT (settings from .env), migrating first
	@if [ -z "$${JWT_SECRET:-}" ] && ! $(ENV_SETS_JWT_SECRET); then $(USE_JWT_SECRET_FILE); fi; \
	$(VENV)/bin/alembic upgrade head && exec $(PY) -m app

dev: $(STAMP) system-deps lxd-sandbox ## Set up and serve the API against the private LXD sandbox (127.0.0.1 only)
	@set -a; source $(SANDBOX_ENV); set +a; \
	if [ -z "$${JWT_SECRET:-}" ]; then $(USE_JWT_SECRET_FILE); fi; \
	export APP_HOST=127.0.0.1; \
	export LXD_CONNECTION_MODE=$(DEV_MODE); \
	export SEED_ADMIN_USERNAME=$${SEED_ADMIN_USERNAME:-admin}; \
	export SEED_ADMIN_PASSWORD=$${SEED_ADMIN_PASSWORD:-changeme123}; \
	echo "lxd-api on http://127.0.0.1:$${APP_PORT:-8000} (LXD $(DEV_MODE) mode, login $$SEED_ADMIN_USERNAME)"; \
	$(VENV)/bin/alembic upgrade head && exec $(PY) -m app

test: $(STAMP) ## Set up and run every test (unit + real-LXD integration, both modes) with coverage
	@if [ "$$(id -u)" = 0 ]; then \
		$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="$(SYSTEM_PACKAGES) $(TEST_PACKAGES)"; \
	fi
	@# PostgreSQL, when installed, for the migration tests (scripts/postgres-sandbox.sh).
	@pg="$${TEST_POSTGRES_URL:-}"; \
	if [ -z "$$pg" ] && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then \
		pg=$$(scripts/postgres-sandbox.sh up) || exit 1; \
	fi; \
	TEST_POSTGRES_URL="$$pg" $(VENV)/bin/pytest --cov=app --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

test-unit: $(STAMP) ## Unit tests only (mocked LXD, no daemon needed)
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP) ## Integration tests only (real LXD, both connection modes)
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff format + ruff check --fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP) ## mypy (non-blocking: reports, never fails the build)
	-$(VENV)/bin/mypy app

up: ## docker compose up --build -d
	docker compose up --build -d

down: ## docker compose down
	docker compose down

logs: ## Follow the API container's logs
	docker compose logs -f api

lxd-sandbox: ## Start the private LXD daemon (.sandbox/) and print the settings for both modes
	@$(SANDBOX) up

lxd-sandbox-down: ## Stop the private LXD daemons (keeps their data; PURGE=1 removes it) and the tests' PostgreSQL
	@$(SANDBOX) down $(if $(PURGE),--purge,)
	@if [ -f .sandbox/test/lxd/.lxd-sandbox ]; then SANDBOX_DIR=.sandbox/test/lxd $(SANDBOX) down $(if $(PURGE),--purge,); fi
	@scripts/postgres-sandbox.sh down

bench: $(STAMP) lxd-sandbox ## Run every benchmark in bench/ against the sandbox (fails if a target is missed)
	@rc=0; for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || rc=1; done; exit $$rc

clean: ## Remove caches (not .venv, data/ or the sandbox)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov $(OUTDATED_VENV)
