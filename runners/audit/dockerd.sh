#!/bin/sh
# A Docker daemon of this run's own, for the audit scripts:
#   runners/audit/dockerd.sh [--userns-remap] -- COMMAND [ARG...]
# starts Debian's dockerd (docker.io), imports the probe's image, runs
# COMMAND with the daemon named in its environment (DOCKER_HOST,
# DOCKER_CONFIG, NSCONFORM_DOCKERD_PID: dockerd's pid, NSCONFORM_DOCKER_IMAGE),
# then ends the daemon and everything it made. Its exit status is COMMAND's.
# It prints nothing of its own (the daemon's log is shown only when the daemon
# does not come up).
#
# The image holds the probe ($NSCONFORM or `nsconform` on PATH) at /nsconform,
# with the loader and libraries it names if it is not static: no registry is
# needed. --userns-remap: the daemon remaps containers to `dockremap`'s
# subordinate range (the user and a range are made where there is no
# dockremap, and removed by the last run that uses them; `.ci/run` makes
# them for good).
#
# Nothing of the daemon's may stay on the machine: its data root, exec root,
# pid file, socket, client configuration and trust key are in a temp
# directory; containerd is dockerd's own child, its state there too; no
# bridge, no iptables rules, no IP forwarding or masquerading; containers'
# cgroups under a parent of this run's own (cgroupfs driver), removed at the
# end. dockerd runs in a mount namespace of its own (a slave of the caller's),
# with a fresh tmpfs on /run, where containerd's shim sockets go whatever its
# state directory, so its overlay, netns and shm mounts go with it. dockerd,
# containerd, the shims and COMMAND run in a cgroup of the run's own, ended
# before it is removed, as are the containers.
set -eu
usage="usage: $0 [--userns-remap] -- COMMAND [ARG...]"
remap=
[ "${1:-}" != --userns-remap ] || { remap=default; shift; }
[ "${1:-}" = -- ] || { echo "$usage" >&2; exit 2; }
shift
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
# Debian's client (docker.io), whatever newer one a PATH puts first.
docker=/usr/bin/docker
for t in dockerd containerd "$docker"; do
    command -v "$t" >/dev/null || { echo "$0: needs $t (Debian's docker.io)" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cg=nsconform-audit-$$
tmp=
dpid=
# The comment of a dockremap this script made: the last run that uses it
# removes it.
mark="made by nsconform runners/audit/dockerd.sh"
cleanup() {
    # Once, to the end, whatever fails on the way: a second interrupt (or
    # the first, arriving after COMMAND) is ignored here and by the
    # commands below, which would otherwise die of it halfway.
    trap - EXIT
    trap '' INT TERM HUP
    set +e
    leave_run_cgroup
    # dockerd stops its containers and containerd when asked; whatever is
    # left after 5 s (of the daemon, the shims, the containers) is killed.
    [ -z "$dpid" ] || kill -TERM "$dpid" 2>/dev/null
    # shellcheck disable=SC2046,SC2086 # one directory a word
    end_cgroups 50 $moved $(cgroup_dirs "$cg")
    # Named again: a shim may have made one while it was being ended.
    # shellcheck disable=SC2046 # one directory a word
    end_cgroups 0 $(cgroup_dirs "$cg")
    [ -z "$tmp" ] || rm -rf "$tmp"
    [ -z "$remap" ] || unmake_remap_user
}
# Before anything is made, so that an interrupt at any point cleans up.
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The first id after every subordinate range already given, 65536 of them.
free_range() {
    start=$(cat /etc/subuid /etc/subgid 2>/dev/null |
        awk -F: 'NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print (m > 100000 ? m : 100000) }')
    echo "$start-$((start + 65535))"
}

# dockremap with a subordinate range: made, marked, where there is no
# dockremap. Every run that uses it holds a lock on dockerd's binary shared
# (the same file for every checkout of this script; only making it takes
# the lock alone, and only while it makes it), so no run removes it under
# another: the last one, alone with the lock at its end, removes a marked
# one (userdel takes its ranges too).
remap_user() {
    exec 9<"$(command -v dockerd)"
    flock -s 9
    id dockremap >/dev/null 2>&1 || {
        flock -x 9
        id dockremap >/dev/null 2>&1 || {
            range=$(free_range)
            useradd --system --no-create-home --shell /usr/sbin/nologin --comment "$mark" dockremap
            usermod --add-subuids "$range" --add-subgids "$range" dockremap
        }
        flock -s 9
    }
    grep -q '^dockremap:' /etc/subuid && grep -q '^dockremap:' /etc/subgid || {
        echo "$0: dockremap has no subordinate range in /etc/subuid and /etc/subgid" >&2
        exit 2
    }
}

unmake_remap_user() {
    flock -n -x 9 2>/dev/null || return 0
    [ "$(getent passwd dockremap | cut -d: -f5)" != "$mark" ] || userdel dockremap 2>/dev/null
}

enter_run_cgroup "$cg.run"
# Named before it is made: an interrupt in between still finds it.
tmp=/tmp/nsconform-audit-$$
mkdir -m 700 "$tmp"
# A remapped root must reach its part of the data root.
chmod 711 "$tmp"
[ -z "$remap" ] || remap_user

# The image: the probe and what it needs to start.
img=$tmp/image
mkdir -p "$img"
cp "$probe" "$img/nsconform"
for lib in $(ldd "$probe" 2>/dev/null | grep -o '/[^ ]*' || true); do
    cp --parents -L "$lib" "$img/"
done

# The containers' cgroup parent, in every hierarchy, from the start: dockerd
# makes it with the first container, which a test sharing the daemon would
# count as that container's residue.
for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    mountpoint -q "$h" || continue
    case $(stat -f -c %T "$h") in cgroupfs | cgroup2fs) mkdir "$h/$cg" ;; esac
done

# The trust key (/etc/docker/key.json by default) goes with the rest.
printf '{"deprecated-key-path": "%s/key.json"}\n' "$tmp" >"$tmp/daemon.json"
sock=$tmp/docker.sock
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m --propagation slave sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' sh \
    dockerd --config-file "$tmp/daemon.json" --data-root "$tmp/data" --exec-root "$tmp/exec" \
    --pidfile "$tmp/dockerd.pid" -H "unix://$sock" \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$cg" \
    ${remap:+--userns-remap=$remap} </dev/null >"$tmp/dockerd.log" 2>&1 &
dpid=$!

export DOCKER_HOST="unix://$sock" DOCKER_CONFIG="$tmp/client"
i=0
until "$docker" version >/dev/null 2>&1; do
    if ! kill -0 "$dpid" 2>/dev/null || [ $i -ge 600 ]; then
        echo "$0: dockerd did not come up; its log:" >&2
        tail -n 20 "$tmp/dockerd.log" >&2
        exit 2
    fi
    sleep 0.1
    i=$((i + 1))
done
tar -C "$img" -c . | "$docker" import - nsconform-probe >/dev/null
export NSCONFORM_DOCKERD_PID="$dpid" NSCONFORM_DOCKER_IMAGE=nsconform-probe

set +e
"$@"
exit $?
