#!/usr/bin/env bash
# Two API replicas on one PostgreSQL and one Redis, against the tests' LXD sandbox: what a
# scaled-out deployment shares, on loopback only (tests/integration/test_replicas.py,
# bench/replicas.py).
#
#   scripts/replicas.sh up [local|remote]   start what is not running; write the env file
#   scripts/replicas.sh down                stop what `up` started (and nothing else)
#   scripts/replicas.sh status              say what runs (exit 0 when everything does, else 3)
#
# What `up` starts:
#   PostgreSQL  scripts/postgres-sandbox.sh (127.0.0.1:15432), a database of its own
#               (REPLICAS_DB); left running by `down` when it was running before `up`
#   Redis       Debian's redis-server on 127.0.0.1:REDIS_PORT only, protected mode, no
#               persistence (--save '', no AOF), its dir under REPLICAS_DIR
#   replicas    `python -m app` twice, on 127.0.0.1:REPLICA_PORTS, started at the same moment
#               (they take turns migrating: an advisory lock), same JWT_SECRET, the rate
#               limits in that Redis
#   LXD         the tests' sandbox daemon (.sandbox/test/lxd, port 18543; started when it does
#               not run, and then stopped by `down`), local (unix socket) or remote (mTLS)
#
# Settings (environment):
#   REPLICAS_MODE     local or remote (or the argument of `up`)     (default local)
#   REPLICAS_DIR      state: pids, logs, secrets, env file           (default <repo>/.sandbox/replicas)
#   REPLICA_PORTS     the two replicas' ports                        (default "18101 18102")
#   REDIS_PORT        Redis's port                                   (default 16379)
#   REPLICAS_DB       the PostgreSQL database (dropped by `down`)    (default lxd_api_replicas)
#   REPLICAS_LXD_ENV  an env file with LXD_SOCKET_PATH, LXD_REMOTE_URL, LXD_CLIENT_CERT_PATH,
#                     LXD_CLIENT_KEY_PATH, LXD_TRUSTED_CA_PATH (lxd-sandbox.sh's format) for
#                     another LXD; then no sandbox is started
#   REPLICAS_ENV_FILE written by up                                  (default REPLICAS_DIR/replicas.env)
# Every other setting of the API (LOG_LEVEL, RATE_LIMIT_LOGIN, ...) comes from the caller's
# environment; no `.env` is read (the replicas run in REPLICAS_DIR).
set -euo pipefail

prog=replicas
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

REPLICAS_DIR=$(realpath -m "${REPLICAS_DIR:-$repo/.sandbox/replicas}")
REPLICA_PORTS=${REPLICA_PORTS:-18101 18102}
REDIS_PORT=${REDIS_PORT:-16379}
REPLICAS_DB=${REPLICAS_DB:-lxd_api_replicas}
REPLICAS_ENV_FILE=$(realpath -m "${REPLICAS_ENV_FILE:-$REPLICAS_DIR/replicas.env}")
PG_PORT=${PG_SANDBOX_PORT:-15432}
LXD_SANDBOX_DIR=$repo/.sandbox/test/lxd
LXD_SANDBOX_PORT=${LXD_TEST_SANDBOX_PORT:-18543}
python=$repo/.venv/bin/python
names=(a b)

case $REPLICAS_DIR in
    /|/*/|"") die "REPLICAS_DIR=$REPLICAS_DIR is not usable" ;;
esac
[[ $REPLICAS_DB =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "REPLICAS_DB=$REPLICAS_DB: need [a-z0-9_]"
read -r -a ports <<<"$REPLICA_PORTS"
[ "${#ports[@]}" = 2 ] || die "REPLICA_PORTS=\"$REPLICA_PORTS\": need two ports"
for p in "${ports[@]}" "$REDIS_PORT"; do
    [[ $p =~ ^[0-9]+$ ]] && [ "$p" -ge 1024 ] && [ "$p" -le 65535 ] || die "$p is not a port"
done

redis_dir=$REPLICAS_DIR/redis
redis_pidfile=$REPLICAS_DIR/redis.pid
pg_marker=$REPLICAS_DIR/started-postgres # `up` started PostgreSQL: `down` stops it
lxd_marker=$REPLICAS_DIR/started-lxd     # `up` started the LXD sandbox: `down` stops it
mode_file=$REPLICAS_DIR/mode
redis_url=async+redis://127.0.0.1:$REDIS_PORT
database_url=postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/$REPLICAS_DB

take_lock() {
    mkdir -p "$REPLICAS_DIR"
    chmod 0700 "$REPLICAS_DIR"
    exec 9>"$REPLICAS_DIR/.lock"
    flock -w 120 9 || die "another $prog run holds $REPLICAS_DIR/.lock"
}

# --- processes of ours: a pid file, and the process's own marker --------------------------------
ours() { # ours PIDFILE MARKER: print the pid if that process runs and carries MARKER
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1")
    [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/environ" ] || return 1
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "LXD_API_REPLICAS=$2" || return 1
    echo "$pid"
}

ours_redis() { # the pid of our redis-server (it rewrites its environment for its title, so
    # it is known by its title and by its working directory, our redis dir)
    local pid
    [ -f "$redis_pidfile" ] || return 1
    pid=$(cat "$redis_pidfile")
    [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "^redis-server " || return 1
    [ "$(readlink "/proc/$pid/cwd")" = "$redis_dir" ] || return 1
    echo "$pid"
}

stop_pid() { # stop_pid PID: SIGTERM, up to 15 s, then SIGKILL
    local i
    kill "$1" 2>/dev/null || return 0
    for ((i = 0; i < 150; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null || true
}

port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# --- PostgreSQL ---------------------------------------------------------------------------------
pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

start_postgres() {
    command -v pg_isready >/dev/null || die "PostgreSQL is not installed (apt-get install postgresql)"
    if ! pg_up; then
        say "starting PostgreSQL (scripts/postgres-sandbox.sh) on 127.0.0.1:$PG_PORT"
        "$here/postgres-sandbox.sh" up >/dev/null 9>&- # (the server must not hold our lock)
        : >"$pg_marker"
    fi
    if [ -z "$(psql_admin -Atc "SELECT 1 FROM pg_database WHERE datname = '$REPLICAS_DB'")" ]; then
        psql_admin -c "CREATE DATABASE $REPLICAS_DB"
    fi
}

stop_postgres() {
    if pg_up; then
        psql_admin -c "DROP DATABASE IF EXISTS $REPLICAS_DB WITH (FORCE)" || say "could not drop $REPLICAS_DB"
    fi
    if [ -f "$pg_marker" ]; then
        "$here/postgres-sandbox.sh" down
        rm -f "$pg_marker"
    fi
}

# --- Redis --------------------------------------------------------------------------------------
start_redis() {
    local pid i
    ours_redis >/dev/null && return 0
    command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
    port_free "$REDIS_PORT" || die "port $REDIS_PORT is taken (set REDIS_PORT)"
    mkdir -p "$redis_dir"
    say "starting redis-server on 127.0.0.1:$REDIS_PORT"
    # Loopback only, protected mode, nothing written to disk: counters live a minute or a day.
    setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
        --protected-mode yes --save '' --appendonly no --dir "$redis_dir" \
        --logfile "$redis_dir/redis.log" --daemonize no </dev/null >/dev/null 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$redis_pidfile"
    for ((i = 0; i < 100; i++)); do
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$redis_dir/redis.log" >&2 || true
    die "redis-server did not start (log above)"
}

stop_redis() {
    local pid
    if pid=$(ours_redis); then stop_pid "$pid"; fi
    rm -f "$redis_pidfile"
    rm -rf "$redis_dir"
}

# --- LXD ----------------------------------------------------------------------------------------
lxd_env_file() {
    if [ -n "${REPLICAS_LXD_ENV:-}" ]; then
        [ -f "$REPLICAS_LXD_ENV" ] || die "REPLICAS_LXD_ENV=$REPLICAS_LXD_ENV does not exist"
        echo "$REPLICAS_LXD_ENV"
        return
    fi
    if ! SANDBOX_DIR=$LXD_SANDBOX_DIR "$here/lxd-sandbox.sh" status >/dev/null 2>&1; then
        say "starting the tests' LXD sandbox ($LXD_SANDBOX_DIR)"
        SANDBOX_DIR=$LXD_SANDBOX_DIR SANDBOX_PORT=$LXD_SANDBOX_PORT "$here/lxd-sandbox.sh" up >/dev/null 9>&-
        : >"$lxd_marker"
    fi
    echo "$(dirname "$LXD_SANDBOX_DIR")/sandbox.env"
}

env_value() { # env_value FILE KEY
    sed -n "s/^$2=//p" "$1" | tail -n1 | sed "s/^'\(.*\)'$/\1/"
}

# --- the replicas -------------------------------------------------------------------------------
secret() { # secret NAME: a random value kept in REPLICAS_DIR (the same across restarts)
    local file=$REPLICAS_DIR/$1
    if [ ! -s "$file" ]; then
        (umask 077 && "$python" -c 'import secrets; print(secrets.token_urlsafe(36))' >"$file")
    fi
    cat "$file"
}

start_replicas() {
    local mode=$1 lxd_env i n pid port started=() url t jwt_secret admin_password
    lxd_env=$(lxd_env_file)
    local -a lxd_settings=(LXD_CONNECTION_MODE="$mode")
    if [ "$mode" = local ]; then
        lxd_settings+=(LXD_SOCKET_PATH="$(env_value "$lxd_env" LXD_SOCKET_PATH)")
    else
        [ -n "$(env_value "$lxd_env" LXD_REMOTE_URL)" ] || die "$lxd_env has no LXD_REMOTE_URL"
        lxd_settings+=(
            LXD_REMOTE_URL="$(env_value "$lxd_env" LXD_REMOTE_URL)"
            LXD_CLIENT_CERT_PATH="$(env_value "$lxd_env" LXD_CLIENT_CERT_PATH)"
            LXD_CLIENT_KEY_PATH="$(env_value "$lxd_env" LXD_CLIENT_KEY_PATH)"
            LXD_TRUSTED_CA_PATH="$(env_value "$lxd_env" LXD_TRUSTED_CA_PATH)"
        )
    fi
    # Made here, before the replicas start in the background: both must get the same ones.
    jwt_secret=$(secret jwt-secret) admin_password=$(secret admin-password)
    # Started together on purpose: both migrate at once, and take turns (alembic/env.py).
    for i in 0 1; do
        n=${names[$i]} port=${ports[$i]}
        ours "$REPLICAS_DIR/$n.pid" "$REPLICAS_DIR:$n" >/dev/null && continue
        port_free "$port" || die "port $port is taken (set REPLICA_PORTS)"
        say "starting replica $n on 127.0.0.1:$port ($mode mode)"
        (
            cd "$REPLICAS_DIR"
            export "${lxd_settings[@]}"
            export LXD_API_REPLICAS=$REPLICAS_DIR:$n PYTHONPATH=$repo APP_HOST=127.0.0.1 APP_PORT=$port \
                DATABASE_URL=$database_url RATE_LIMIT_STORAGE_URI=$redis_url \
                JWT_SECRET=$jwt_secret SEED_ADMIN_USERNAME=replicas-admin \
                SEED_ADMIN_PASSWORD=$admin_password
            exec setsid "$python" -m app </dev/null >>"$REPLICAS_DIR/$n.log" 2>&1 9>&-
        ) &
        echo "$!" >"$REPLICAS_DIR/$n.pid"
        started+=("$i")
    done
    for i in "${started[@]}"; do
        n=${names[$i]} url=http://127.0.0.1:${ports[$i]}
        pid=$(cat "$REPLICAS_DIR/$n.pid")
        for ((t = 0; t < 600; t++)); do
            curl -fsS -o /dev/null --max-time 1 "$url/health/live" 2>/dev/null && break
            if ! kill -0 "$pid" 2>/dev/null; then
                tail -n 20 "$REPLICAS_DIR/$n.log" >&2 || true
                die "replica $n exited during start-up (log above: $REPLICAS_DIR/$n.log)"
            fi
            sleep 0.1
        done
        [ "$t" -lt 600 ] || die "replica $n did not answer in 60 s ($REPLICAS_DIR/$n.log)"
    done
}

stop_replicas() {
    local n pid
    for n in "${names[@]}"; do
        if pid=$(ours "$REPLICAS_DIR/$n.pid" "$REPLICAS_DIR:$n"); then stop_pid "$pid"; fi
        rm -f "$REPLICAS_DIR/$n.pid"
    done
}

write_env_file() {
    local tmp
    tmp=$(mktemp "$REPLICAS_ENV_FILE.XXXXXX")
    {
        echo "# written by scripts/replicas.sh up ($1 mode); holds the admin password"
        echo "REPLICA_A_URL=http://127.0.0.1:${ports[0]}"
        echo "REPLICA_B_URL=http://127.0.0.1:${ports[1]}"
        echo "REPLICAS_MODE=$1"
        echo "REPLICAS_ADMIN_USERNAME=replicas-admin"
        echo "REPLICAS_ADMIN_PASSWORD=$(secret admin-password)"
        echo "REPLICAS_DATABASE_URL=$database_url"
        echo "REPLICAS_REDIS_URL=$redis_url"
        echo "REPLICAS_REDIS_PID_FILE=$redis_pidfile"
        echo "REPLICAS_DIR=$REPLICAS_DIR"
    } >"$tmp"
    chmod 0600 "$tmp"
    mv -f "$tmp" "$REPLICAS_ENV_FILE"
}

cmd_up() {
    local mode=${1:-${REPLICAS_MODE:-local}}
    case $mode in local | remote) ;; *) die "mode $mode: local or remote" ;; esac
    [ -x "$python" ] || die "no $python (make install)"
    take_lock
    if [ -f "$mode_file" ] && [ "$(cat "$mode_file")" != "$mode" ] \
        && { ours "$REPLICAS_DIR/a.pid" "$REPLICAS_DIR:a" >/dev/null || ours "$REPLICAS_DIR/b.pid" "$REPLICAS_DIR:b" >/dev/null; }; then
        die "the replicas run in $(cat "$mode_file") mode: $0 down first"
    fi
    echo "$mode" >"$mode_file"
    start_postgres
    start_redis
    start_replicas "$mode"
    write_env_file "$mode"
    cat "$REPLICAS_ENV_FILE"
}

cmd_down() {
    take_lock
    stop_replicas
    stop_redis
    stop_postgres
    if [ -f "$lxd_marker" ]; then
        SANDBOX_DIR=$LXD_SANDBOX_DIR "$here/lxd-sandbox.sh" down || say "could not stop the LXD sandbox"
        rm -f "$lxd_marker"
    fi
    rm -f "$REPLICAS_ENV_FILE" "$mode_file"
}

cmd_status() {
    local n i pid all=0
    for i in 0 1; do
        n=${names[$i]}
        if pid=$(ours "$REPLICAS_DIR/$n.pid" "$REPLICAS_DIR:$n"); then
            echo "replica $n: running, pid $pid, http://127.0.0.1:${ports[$i]} ($(cat "$mode_file" 2>/dev/null) mode)"
        else
            echo "replica $n: stopped"
            all=3
        fi
    done
    if pid=$(ours_redis); then
        echo "redis: running, pid $pid, 127.0.0.1:$REDIS_PORT"
    else
        echo "redis: stopped"
        all=3
    fi
    if pg_up; then
        echo "postgresql: running, 127.0.0.1:$PG_PORT, database $REPLICAS_DB"
    else
        echo "postgresql: stopped"
        all=3
    fi
    return "$all"
}

case ${1:-} in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up [local|remote] | down | status" >&2; exit 2 ;;
esac
