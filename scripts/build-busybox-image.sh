#!/usr/bin/env bash
# Build a tiny LXD container image (split format) from Debian's busybox-static.
#
#   scripts/build-busybox-image.sh OUT_DIR
#
# Writes OUT_DIR/meta.tar.gz and OUT_DIR/rootfs.tar.gz, ready for
#   lxc image import OUT_DIR/meta.tar.gz OUT_DIR/rootfs.tar.gz --alias busybox
#
# The build is reproducible: timestamps come from the busybox binary, tarballs are
# sorted and gzip carries no name/time, so the same busybox gives the same image
# fingerprint. Env: BUSYBOX (default /bin/busybox).
set -euo pipefail

die() { echo "build-busybox-image: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
out=$1
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
# A dynamically linked busybox would need its libraries inside the rootfs.
if command -v ldd >/dev/null 2>&1 && ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked; install busybox-static"
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

arch=$(uname -m)
epoch=$(stat -c %Y "$busybox")
# (awk reads all of it: "| head -n1" would SIGPIPE busybox and trip pipefail)
version=$({ "$busybox" 2>&1 || true; } | awk 'NR == 1 {print $2}')
version=${version:-unknown}

root="$work/rootfs"
mkdir -p "$root"
for d in bin sbin usr/bin usr/sbin dev proc sys tmp root etc etc/init.d var/run var/log mnt home; do
    mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
install -m 0755 "$busybox" "$root/bin/busybox"

# Applet links at their usual places (--list-full gives e.g. "usr/bin/head").
n=0
while IFS= read -r applet; do
    case $applet in
        ""|linuxrc|bin/busybox) continue ;;
        */*) ;;
        *) applet="bin/$applet" ;;
    esac
    [ -e "$root/$applet" ] || [ -L "$root/$applet" ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
    n=$((n + 1))
done < <("$busybox" --list-full)
# Anything --list knows but --list-full did not place (paranoia): put it in /bin.
while IFS= read -r applet; do
    [ -n "$applet" ] || continue
    found=
    for d in bin sbin usr/bin usr/sbin; do
        if [ -L "$root/$d/$applet" ] || [ -e "$root/$d/$applet" ]; then found=1; break; fi
    done
    [ -n "$found" ] || { ln -s /bin/busybox "$root/bin/$applet"; n=$((n + 1)); }
done < <("$busybox" --list)
[ "$n" -gt 100 ] || die "only $n applet links created; is $busybox really busybox?"
ln -sfn /bin/busybox "$root/sbin/init"

# Debian's busybox has no pgrep/pkill applets: add small shell versions (the common
# subset: [-SIGNAL | -s SIGNAL] [-f] [-x] PATTERN, exit 1 when nothing matched).
if [ ! -e "$root/usr/bin/pgrep" ]; then
    cat > "$root/usr/bin/pgrep" <<'PGREP'
#!/bin/sh
# pgrep/pkill for busybox images without those applets.
me=${0##*/}
sig=TERM full='' exact=''
while [ $# -gt 1 ]; do
    case $1 in
        -f) full=1 ;;
        -x) exact=1 ;;
        -fx|-xf) full=1; exact=1 ;;
        -s|--signal) shift; sig=${1#SIG} ;;
        --) shift; break ;;
        -[0-9]*|-[A-Z]*) sig=${1#-}; sig=${sig#SIG} ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 1 ] || { echo "usage: $me [-SIGNAL] [-f] [-x] PATTERN" >&2; exit 2; }
pat=$1
[ -n "$exact" ] && pat="^($pat)\$"
rc=1
for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = "$$" ] && continue
    if [ -n "$full" ]; then
        what=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
        what=${what% }
    else
        what=$(cat "$d/comm" 2>/dev/null) || continue
    fi
    [ -n "$what" ] || continue
    printf '%s\n' "$what" | grep -Eq -- "$pat" || continue
    if [ "$me" = pkill ]; then
        kill -"$sig" "$pid" 2>/dev/null && rc=0
    else
        echo "$pid"; rc=0
    fi
done
exit $rc
PGREP
    chmod 0755 "$root/usr/bin/pgrep"
    ln -s pgrep "$root/usr/bin/pkill"
fi

for a in sh ls cat echo sleep ps head stty dd kill pkill mkdir touch; do
    [ -L "$root/bin/$a" ] || [ -L "$root/usr/bin/$a" ] || [ -L "$root/sbin/$a" ] \
        || die "applet $a missing from $busybox"
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
cat > "$root/etc/shadow" <<'SHADOW'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
SHADOW
chmod 0640 "$root/etc/shadow"
echo busybox > "$root/etc/hostname"
cat > "$root/etc/hosts" <<'HOSTS'
127.0.0.1 localhost
::1 localhost
HOSTS
: > "$root/etc/resolv.conf"
cat > "$root/etc/profile" <<'PROFILE'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=${HOME:-/root}
PROFILE

# busybox init: no getty (LXD provides /dev/console), nothing to respawn.
# LXD stops a container by sending SIGPWR to init; busybox init takes SIGPWR (like
# SIGUSR2) as "poweroff": it runs the ::shutdown: actions, sends SIGTERM then SIGKILL
# to all processes and calls reboot(), which ends the container.
cat > "$root/etc/inittab" <<'INITTAB'
::sysinit:/etc/init.d/rcS
::ctrlaltdel:/sbin/poweroff
::shutdown:/bin/sync
INITTAB
cat > "$root/etc/init.d/rcS" <<'RCS'
#!/bin/sh
# LXD has mounted /proc, /sys and /dev already.
[ -s /etc/hostname ] && [ "$(hostname)" = "(none)" ] && hostname -F /etc/hostname
mkdir -p /var/run /var/log /tmp
exit 0
RCS
chmod 0755 "$root/etc/init.d/rcS"

meta="$work/meta"
mkdir -p "$meta/templates"
cat > "$meta/metadata.yaml" <<META
architecture: "$arch"
creation_date: $epoch
properties:
  architecture: "$arch"
  os: "busybox"
  release: "$version"
  variant: "static"
  description: "BusyBox $version static ($arch), for lxd-api tests"
templates:
  /etc/hostname:
    when:
      - create
      - copy
      - rename
    template: hostname.tpl
META
echo '{{ container.name }}' > "$meta/templates/hostname.tpl"

# Reproducible tarballs.
tarit() { # DIR OUTFILE
    tar -C "$1" --sort=name --numeric-owner --owner=0 --group=0 \
        --mtime="@$epoch" --format=gnu -cf - . | gzip -n -9 > "$2"
}
tarit "$root" "$work/rootfs.tar.gz"
tarit "$meta" "$work/meta.tar.gz"
mv -f "$work/rootfs.tar.gz" "$out/rootfs.tar.gz"
mv -f "$work/meta.tar.gz" "$out/meta.tar.gz"
