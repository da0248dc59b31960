#!/bin/sh
# Migrate the user store, then serve. uvicorn trusts proxy headers only from
# FORWARDED_ALLOW_IPS (see `python -m app`).
set -eu
alembic upgrade head
exec python -m app "$@"
