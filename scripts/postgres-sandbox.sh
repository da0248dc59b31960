#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests that need one (the migrations against PostgreSQL).
#
#   scripts/postgres-sandbox.sh up     # start it (initdb on first use); prints its URL
#   scripts/postgres-sandbox.sh url    # the URL for TEST_POSTGRES_URL
#   scripts/postgres-sandbox.sh down   # stop it and delete its data
#
# It is a cluster of its own under PG_SANDBOX_DIR, listening on 127.0.0.1:PG_SANDBOX_PORT
# (default 15432) only, trust auth, one empty database `lxd_api_test`. Needs Debian's
# `postgresql` package (initdb, pg_ctl). As root it runs as the `postgres` user (PostgreSQL
# refuses to run as root), so its default folder is under /tmp, one per checkout: that user
# may not be able to enter the checkout (a clone under /root, say).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=${PG_SANDBOX_DIR:-/tmp/lxd-api-postgres-$(pwd | sha256sum | cut -c1-12)}
PORT=${PG_SANDBOX_PORT:-15432}
DB=lxd_api_test
URL="postgresql+asyncpg://postgres@127.0.0.1:${PORT}/${DB}"

bindir() {
    local found
    found=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    [ -d "$found" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
    echo "$found"
}

as_owner() { # run a PostgreSQL tool as the cluster's owner (from /: it may not enter ours)
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

up() {
    local bin data
    bin=$(bindir)
    mkdir -p "$DIR"
    data=$(cd "$DIR" && pwd)/data
    if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$data" -w -l "$data/server.log" \
            -o "-p $PORT -k $data -c listen_addresses=127.0.0.1" start >/dev/null
    fi
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$PORT" -U postgres -Atc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
    fi
    echo "$URL"
}

down() {
    local bin data
    [ -d "$DIR/data" ] || return 0
    bin=$(bindir)
    data=$(cd "$DIR" && pwd)/data
    as_owner "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 up|down|url" >&2; exit 2 ;;
esac
