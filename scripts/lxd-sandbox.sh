#!/usr/bin/env bash
# A private LXD daemon for development and tests (root, Debian 12, Debian's lxd package).
#
#   scripts/lxd-sandbox.sh up            start (first time: set up) the daemon, print its env
#   scripts/lxd-sandbox.sh down [--purge] stop instances and daemon, remove its bridge and
#                                        mounts; --purge also deletes SANDBOX_DIR
#   scripts/lxd-sandbox.sh status        say whether it runs (exit 0) or not (exit 3)
#   scripts/lxd-sandbox.sh env           print the env lines (KEY=value) on stdout
#
# Settings (environment):
#   SANDBOX_DIR          LXD_DIR of the daemon        (default <repo>/.sandbox/lxd)
#   SANDBOX_PORT         HTTPS port on 127.0.0.1      (default 18443)
#   SANDBOX_BRIDGE       managed bridge, no addresses (default lxdapi<hash of SANDBOX_DIR>)
#   SANDBOX_IMAGE_ALIAS  alias of the busybox image   (default busybox)
#   SANDBOX_PUBLIC_IMAGE 1: mark that image public (for a daemon that serves images)
#   SANDBOX_ENV_FILE     env file written by up       (default SANDBOX_DIR/../sandbox.env)
#   SANDBOX_TLS_DIR      client key pair + server.crt (default SANDBOX_DIR/../tls)
#   SANDBOX_IMAGE_DIR    cache of the built image     (default SANDBOX_DIR/../image)
#
# The default profile gets a root disk on the "default" dir pool and NO nic: instances
# have no network unless a test attaches one to the sandbox bridge, which has no address.
set -euo pipefail

prog=lxd-sandbox
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

SANDBOX_DIR=$(realpath -m "${SANDBOX_DIR:-$repo/.sandbox/lxd}")
home=$(dirname "$SANDBOX_DIR")
SANDBOX_PORT=${SANDBOX_PORT:-18443}
SANDBOX_BRIDGE=${SANDBOX_BRIDGE:-lxdapi$(printf '%s' "$SANDBOX_DIR" | sha256sum | cut -c1-8)}
SANDBOX_IMAGE_ALIAS=${SANDBOX_IMAGE_ALIAS:-busybox}
SANDBOX_PUBLIC_IMAGE=${SANDBOX_PUBLIC_IMAGE:-0}
SANDBOX_ENV_FILE=$(realpath -m "${SANDBOX_ENV_FILE:-$home/sandbox.env}")
SANDBOX_TLS_DIR=$(realpath -m "${SANDBOX_TLS_DIR:-$home/tls}")
SANDBOX_IMAGE_DIR=$(realpath -m "${SANDBOX_IMAGE_DIR:-$home/image}")

socket=$SANDBOX_DIR/unix.socket
pidfile=$SANDBOX_DIR/lxd.pid
logfile=$SANDBOX_DIR/lxd.log
marker=$SANDBOX_DIR/.lxd-sandbox
client_crt=$SANDBOX_TLS_DIR/client.crt
client_key=$SANDBOX_TLS_DIR/client.key
server_crt=$SANDBOX_TLS_DIR/server.crt

# Sanity checks: these values end up in `ip link`, `rm -rf` and a unix socket path.
case $SANDBOX_DIR in
    /|/*/|"") die "SANDBOX_DIR=$SANDBOX_DIR is not usable" ;;
esac
[ "$(echo "$SANDBOX_DIR" | tr -cd / | wc -c)" -ge 2 ] \
    || die "SANDBOX_DIR=$SANDBOX_DIR is too close to / (need at least two levels)"
[ "${#socket}" -lt 108 ] || die "socket path $socket is too long for a unix socket"
if ! [[ $SANDBOX_PORT =~ ^[0-9]+$ ]] || [ "$SANDBOX_PORT" -lt 1 ] || [ "$SANDBOX_PORT" -gt 65535 ]; then
    die "SANDBOX_PORT=$SANDBOX_PORT is not a port"
fi
[[ $SANDBOX_BRIDGE =~ ^[A-Za-z0-9_-]{1,15}$ ]] \
    || die "SANDBOX_BRIDGE=$SANDBOX_BRIDGE: need 1-15 characters of [A-Za-z0-9_-]"
[[ $SANDBOX_IMAGE_ALIAS =~ ^[A-Za-z0-9._-]+$ ]] \
    || die "SANDBOX_IMAGE_ALIAS=$SANDBOX_IMAGE_ALIAS is not a simple name"

# lxc and lxd talk to this daemon only (LXD_DIR); LXD_CONF keeps the client away from
# any ~/.config/lxc (its remotes, its default remote).
export LXD_DIR=$SANDBOX_DIR
export LXD_CONF=$SANDBOX_DIR/.lxc-client
sb_lxc() { lxc "$@"; }

is_up() {
    [ -S "$socket" ] && timeout 10 lxc query /1.0 >/dev/null 2>&1
}

daemon_pid() { # prints the pid from the pid file if that process is this sandbox's lxd
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "lxd --group root --logfile $logfile" || return 1
    echo "$pid"
}

take_lock() {
    mkdir -p "$home"
    exec 9>"$home/.$(basename "$SANDBOX_DIR").lock"
    flock -w 300 9 || die "another $prog run holds the lock for $SANDBOX_DIR"
}

quote() { # a value for a KEY=value line that sh, bash and python-dotenv all read
    if [[ $1 =~ ^[A-Za-z0-9_./:@%+=,-]*$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

env_lines() {
    local k v
    for k in LXD_SOCKET_PATH LXD_REMOTE_URL LXD_CLIENT_CERT_PATH LXD_CLIENT_KEY_PATH \
        LXD_TRUSTED_CA_PATH SANDBOX_BRIDGE SANDBOX_IMAGE_ALIAS SANDBOX_LXD_DIR; do
        case $k in
            LXD_SOCKET_PATH) v=$socket ;;
            LXD_REMOTE_URL) v=https://127.0.0.1:$SANDBOX_PORT ;;
            LXD_CLIENT_CERT_PATH) v=$client_crt ;;
            LXD_CLIENT_KEY_PATH) v=$client_key ;;
            LXD_TRUSTED_CA_PATH) v=$server_crt ;;
            SANDBOX_BRIDGE) v=$SANDBOX_BRIDGE ;;
            SANDBOX_IMAGE_ALIAS) v=$SANDBOX_IMAGE_ALIAS ;;
            SANDBOX_LXD_DIR) v=$SANDBOX_DIR ;;
        esac
        printf '%s=%s\n' "$k" "$(quote "$v")"
    done
}

note() {
    cat >&2 <<EOF
# LXD sandbox: $SANDBOX_DIR (env file: $SANDBOX_ENV_FILE)
# Load it:        set -a; . $SANDBOX_ENV_FILE; set +a
# Local mode:     LXD_CONNECTION_MODE=local  (unix socket LXD_SOCKET_PATH)
# Remote mode:    LXD_CONNECTION_MODE=remote (LXD_REMOTE_URL with the client cert/key,
#                 server cert LXD_TRUSTED_CA_PATH)
# lxc by hand:    LXD_DIR=$SANDBOX_DIR lxc list
EOF
}

env_file_owner() { # the SANDBOX_LXD_DIR an existing env file was written for
    [ -f "$SANDBOX_ENV_FILE" ] || return 0
    sed -n "s/^SANDBOX_LXD_DIR=//p" "$SANDBOX_ENV_FILE" | tr -d "'"
}

check_env_file_free() { # two running sandboxes must not share an env file / server.crt
    local owner
    owner=$(env_file_owner)
    if [ -n "$owner" ] && [ "$owner" != "$SANDBOX_DIR" ] && [ -S "$owner/unix.socket" ] \
        && LXD_DIR=$owner LXD_CONF=$owner/.lxc-client timeout 10 lxc query /1.0 >/dev/null 2>&1; then
        die "$SANDBOX_ENV_FILE belongs to the running sandbox $owner; give this one a" \
            "SANDBOX_DIR under another parent directory (or set SANDBOX_ENV_FILE and SANDBOX_TLS_DIR)"
    fi
}

write_env_file() {
    local tmp
    mkdir -p "$(dirname "$SANDBOX_ENV_FILE")"
    tmp=$(mktemp "$SANDBOX_ENV_FILE.XXXXXX")
    { echo "# written by scripts/lxd-sandbox.sh up"; env_lines; } > "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$SANDBOX_ENV_FILE"
}

start_daemon() {
    local pid i
    if ! command -v lxd >/dev/null || ! command -v lxc >/dev/null; then
        die "lxd/lxc not installed (apt-get install -y lxd lxd-client iptables busybox-static)"
    fi
    command -v iptables >/dev/null || die "iptables not installed (LXD needs it for bridges)"
    if pid=$(daemon_pid); then
        say "daemon $pid does not answer; killing it"
        kill -9 "$pid" 2>/dev/null || true
        sleep 1
    fi
    # The port is set in the daemon's database; fail before starting if another has it.
    if [ -n "$(ss -Hltn "sport = :$SANDBOX_PORT" 2>/dev/null)" ]; then
        die "port $SANDBOX_PORT is taken (set SANDBOX_PORT)"
    fi
    # Bridge names are global to the kernel: a leftover of a killed daemon blocks ours.
    if ip link show dev "$SANDBOX_BRIDGE" >/dev/null 2>&1; then
        say "removing stale bridge $SANDBOX_BRIDGE"
        ip link del dev "$SANDBOX_BRIDGE"
    fi
    mkdir -p "$SANDBOX_DIR"
    chmod 0711 "$SANDBOX_DIR"
    : > "$marker"
    rm -f "$socket"
    # setsid: own session, so that the caller's terminal signals do not reach it;
    # fd 9 (our lock) closed so that the daemon does not hold it.
    setsid lxd --group root --logfile "$logfile" </dev/null >>"$SANDBOX_DIR/lxd.out" 2>&1 9>&- &
    pid=$!
    echo "$pid" > "$pidfile"
    for ((i = 0; i < 120; i++)); do
        # (our own child: once dead it is a zombie, which kill -0 still finds)
        if [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo Z)" = Z ]; then
            tail -n 20 "$logfile" "$SANDBOX_DIR/lxd.out" >&2 || true
            die "lxd exited during start-up (logs above)"
        fi
        if timeout 2 lxd waitready --timeout=1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    tail -n 20 "$logfile" >&2 || true
    die "lxd did not become ready in 60 s (log: $logfile)"
}

setup() { # idempotent: cheap checks when everything is in place already
    local fp want cur
    if ! sb_lxc storage show default >/dev/null 2>&1; then
        sb_lxc storage create default dir -q >/dev/null
    fi
    if ! sb_lxc profile device get default root pool >/dev/null 2>&1; then
        sb_lxc profile device add default root disk path=/ pool=default -q >/dev/null
    fi
    if ! sb_lxc network show "$SANDBOX_BRIDGE" >/dev/null 2>&1; then
        sb_lxc network create "$SANDBOX_BRIDGE" ipv4.address=none ipv6.address=none -q >/dev/null
    fi

    if ! sb_lxc image info "$SANDBOX_IMAGE_ALIAS" >/dev/null 2>&1; then
        if [ ! -s "$SANDBOX_IMAGE_DIR/meta.tar.gz" ] || [ ! -s "$SANDBOX_IMAGE_DIR/rootfs.tar.gz" ]; then
            "$here/build-busybox-image.sh" "$SANDBOX_IMAGE_DIR"
        fi
        # A split image's fingerprint is the sha256 of both files, meta first.
        fp=$(cat "$SANDBOX_IMAGE_DIR/meta.tar.gz" "$SANDBOX_IMAGE_DIR/rootfs.tar.gz" | sha256sum | cut -d' ' -f1)
        if sb_lxc image info "$fp" >/dev/null 2>&1; then
            sb_lxc image alias create "$SANDBOX_IMAGE_ALIAS" "$fp" >/dev/null
        else
            sb_lxc image import "$SANDBOX_IMAGE_DIR/meta.tar.gz" "$SANDBOX_IMAGE_DIR/rootfs.tar.gz" \
                --alias "$SANDBOX_IMAGE_ALIAS" -q >/dev/null
        fi
    fi
    if [ "$SANDBOX_PUBLIC_IMAGE" = 1 ] && ! sb_lxc image info "$SANDBOX_IMAGE_ALIAS" | grep -qx 'Public: yes'; then
        fp=$(sb_lxc image info "$SANDBOX_IMAGE_ALIAS" | sed -n 's/^Fingerprint: //p')
        sb_lxc query -X PATCH "/1.0/images/$fp" --data '{"public": true}' >/dev/null
    fi

    want=127.0.0.1:$SANDBOX_PORT
    cur=$(sb_lxc config get core.https_address)
    if [ "$cur" != "$want" ]; then
        sb_lxc config set core.https_address "$want" \
            || die "could not listen on $want (port taken? set SANDBOX_PORT)"
    fi

    mkdir -p "$SANDBOX_TLS_DIR"
    chmod 0700 "$SANDBOX_TLS_DIR"
    if [ ! -s "$client_crt" ] || [ ! -s "$client_key" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 3650 \
            -subj /CN=lxd-api-sandbox -keyout "$client_key.tmp" -out "$client_crt.tmp" 2>/dev/null \
            || die "openssl could not make a client certificate"
        chmod 0600 "$client_key.tmp"
        mv -f "$client_key.tmp" "$client_key"
        mv -f "$client_crt.tmp" "$client_crt"
    fi
    fp=$(openssl x509 -in "$client_crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
    if ! sb_lxc query "/1.0/certificates/$fp" >/dev/null 2>&1; then
        sb_lxc config trust add "$client_crt" --name lxd-api-sandbox -q >/dev/null
    fi
    if ! cmp -s "$SANDBOX_DIR/server.crt" "$server_crt"; then
        install -m 0644 "$SANDBOX_DIR/server.crt" "$server_crt"
    fi
}

cmd_up() {
    take_lock
    check_env_file_free
    if ! is_up; then
        say "starting lxd in $SANDBOX_DIR"
        start_daemon
    fi
    setup
    write_env_file
    env_lines
    note
}

unmount_all() { # lazily unmount whatever is still mounted under SANDBOX_DIR, deepest first
    local m
    awk -v d="$SANDBOX_DIR" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts \
        | sort -r | while IFS= read -r m; do
            m=$(printf '%b' "${m//\\/\\0}") # /proc/mounts escapes spaces as \040
            umount -l "$m" 2>/dev/null || say "could not unmount $m"
        done
}

leftover_monitors() { # pids of liblxc monitors of this sandbox's containers
    ps -eo pid=,args= | awk -v p="[lxc monitor] $SANDBOX_DIR/containers " \
        '{ pid = $1; sub(/^ *[0-9]+ /, "") } index($0, p) == 1 { print pid }'
}

cmd_down() {
    local purge=0 pid p bridges i owner
    case ${1:-} in
        "") ;;
        --purge) purge=1 ;;
        *) die "usage: $0 down [--purge]" ;;
    esac
    take_lock
    bridges=$SANDBOX_BRIDGE
    if ! is_up && [ -n "$(leftover_monitors)" ]; then
        # A daemon that died left instances running: a new one adopts and stops them.
        say "instances left behind by a dead daemon; restarting it to stop them"
        (start_daemon) || say "could not restart lxd; killing the instances"
    fi
    if is_up; then
        # Force-stop instances of every project, so that nothing is left behind and the
        # daemon's own shutdown does not wait on any of them.
        for p in $(sb_lxc project list --format csv | cut -d, -f1 | sed 's/ (current)$//'); do
            sb_lxc stop --all --force --project "$p" -q 2>/dev/null || true
        done
        bridges+=" $(sb_lxc network list --format csv | awk -F, '$2 == "bridge" && $3 == "YES" { print $1 }' | tr '\n' ' ')"
        timeout 90 lxd shutdown --timeout=60 >/dev/null 2>&1 || say "lxd shutdown did not finish cleanly"
    fi
    if pid=$(daemon_pid); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    for pid in $(leftover_monitors); do
        say "killing leftover container monitor $pid and its container"
        # shellcheck disable=SC2046 # word splitting of the pid list is meant
        kill -9 $(ps -o pid= --ppid "$pid") "$pid" 2>/dev/null || true
    done
    for p in $bridges; do
        if ip link show dev "$p" >/dev/null 2>&1; then
            ip link del dev "$p" || say "could not remove bridge $p"
        fi
    done
    unmount_all
    if [ "$purge" = 1 ] && [ -d "$SANDBOX_DIR" ]; then
        [ -e "$marker" ] || die "$SANDBOX_DIR has no $(basename "$marker"); not deleting it"
        if awk -v d="$SANDBOX_DIR" 'index($2, d "/") == 1 || $2 == d { found = 1 } END { exit !found }' /proc/self/mounts; then
            die "something is still mounted under $SANDBOX_DIR; not deleting it"
        fi
        rm -rf --one-file-system -- "$SANDBOX_DIR"
        owner=$(env_file_owner)
        if [ "$owner" = "$SANDBOX_DIR" ]; then
            rm -f -- "$SANDBOX_ENV_FILE" "$server_crt"
        fi
        rm -f -- "$home/.$(basename "$SANDBOX_DIR").lock"
        say "purged $SANDBOX_DIR"
    fi
}

port_from_daemon() { # env/status without SANDBOX_PORT: report the port the daemon uses
    local addr
    addr=$(sb_lxc config get core.https_address 2>/dev/null) || return 0
    if [[ ${addr##*:} =~ ^[0-9]+$ ]]; then
        SANDBOX_PORT=${addr##*:}
    fi
}

cmd_status() {
    local pid n
    if is_up; then
        port_from_daemon
        pid=$(daemon_pid || echo "?")
        n=$(sb_lxc list --all-projects --format csv -c n 2>/dev/null | grep -c . || true)
        echo "running: pid $pid, LXD $(sb_lxc version | sed -n 's/^Server version: //p'), dir $SANDBOX_DIR," \
            "https 127.0.0.1:$SANDBOX_PORT, bridge $SANDBOX_BRIDGE, $n instance(s)"
        return 0
    fi
    echo "stopped: $SANDBOX_DIR"
    return 3
}

cmd_env() {
    if is_up; then
        port_from_daemon
    else
        say "warning: the sandbox is not running (run: $0 up)"
    fi
    env_lines
    note
}

case ${1:-} in
    up) cmd_up ;;
    down) shift; cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: $0 up | down [--purge] | status | env" >&2; exit 2 ;;
esac
