#!/bin/sh
# Audit podman (rootful, with runc) in one of its common configurations:
#   runners/audit/podman.sh default|userns|hostnet [audit options...]
# default: podman's own defaults (a bridge network through CNI); userns:
# --uidmap/--gidmap 0:100000:65536 (--userns=auto needs /etc/subuid entries
# for "containers"); hostnet: --network=host. No image registry is needed: the
# container's root is a directory (--rootfs) with the host's /usr read-only
# and the probe ($NSCONFORM or `nsconform` on PATH) at /nsconform. Claims:
# what podman makes by default (ipc, mnt, net, pid, uts) and the
# configuration's own.
#
# Nothing of podman's may stay on the machine: its storage, run and tmp
# directories are in a temp directory; the cgroups go under a parent of this
# run's own, removed at the end; and podman runs in a mount namespace of its
# own (a slave of the auditor's) with fresh tmpfs on /run and /var/lib, where
# runc's state, the netns files and CNI's leases and cache would go, so they
# go with it, and on /dev/shm, where podman keeps its lock memory
# (libpod_lock); the copy of CNI's configuration is also bound on
# /etc/cni/net.d there, for the cleanup conmon runs after the container (it
# is not given --network-config-dir, and would leave its lock file in the
# machine's). No CONTAINERS_CONF: it would replace the packaged
# containers.conf, and with it podman's default capabilities. The bridge and its firewall rules are in the auditor's own
# network namespace.
set -eu
usage="usage: $0 default|userns|hostnet [audit options...]"
cfg=${1:?$usage}
shift
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
claims=ipc,mnt,net,pid,uts
case $cfg in
default) opts= ;;
userns) opts="--uidmap=0:100000:65536 --gidmap=0:100000:65536"; claims=$claims,user ;;
hostnet) opts=--network=host; claims=ipc,mnt,pid,uts ;;
*) echo "$0: configuration $cfg: $usage" >&2; exit 2 ;;
esac
# Podman raises the open-files and process limits to 1048576 and more,
# which needs CAP_SYS_RESOURCE; where that is not in the bounding set (a
# sandboxed root), modest limits are asked for instead (the caller's own
# hard limits are refused too: the container's init does not get them).
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
[ $(((0x$bnd >> 24) & 1)) = 1 ] || opts="$opts --ulimit=nofile=1024:1024 --ulimit=nproc=4096:4096"

. "$(dirname "$0")/lib.sh"
cg=nsconform-audit-$$
tmp=
cleanup() {
    # Once, to the end, whatever fails on the way: a second interrupt (or
    # the first, arriving after the audit) is ignored here and by the
    # commands below, which would otherwise die of it halfway.
    trap - EXIT
    trap '' INT TERM HUP
    set +e
    leave_run_cgroup
    # Everything of the run is in its own cgroup (podman itself, and what it
    # starts while it is being ended) or under podman's cgroup parent (the
    # container and conmon, which outlives podman run to clean up after the
    # container and is given half a second for it); then it is ended.
    # shellcheck disable=SC2046,SC2086 # one directory a word
    end_cgroups 10 $moved $(cgroup_dirs "$cg")
    # Named again: podman may have made more while it was being ended.
    # shellcheck disable=SC2046 # one directory a word
    end_cgroups 0 $(cgroup_dirs "$cg")
    [ -z "$tmp" ] || rm -rf "$tmp"
}
# Before anything is made, so that an interrupt at any point cleans up.
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
enter_run_cgroup "$cg.run"
# Named before it is made: an interrupt in between still finds it.
tmp=/tmp/nsconform-audit-$$
mkdir -m 700 "$tmp"

chmod 755 "$tmp"
r=$tmp/rootfs
mkdir -p "$r/usr" "$r/proc" "$r/dev" "$r/sys" "$r/etc" "$tmp/cni"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$r/$l"; done
: >"$r/nsconform"
# The container's root (100000 outside) makes its mount points (/etc/hosts,
# /run/.containerenv, ...) in the tree, as in an image unpacked for it.
[ "$cfg" != userns ] || chown -R -h 100000:100000 "$r"
[ ! -d /etc/cni/net.d ] || cp /etc/cni/net.d/*.conflist "$tmp/cni/" 2>/dev/null || true

in_ns="mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /dev/shm"
in_ns="$in_ns && { [ ! -d /etc/cni/net.d ] || mount --bind $tmp/cni /etc/cni/net.d; }"
in_ns="$in_ns && exec \"\$@\""
set +e
# shellcheck disable=SC2086 # $opts is split on purpose
"$probe" audit --claims "$claims" --probe-path /nsconform "$@" -- \
    unshare -m --propagation slave sh -c "$in_ns" sh \
    podman --root "$tmp/root" --runroot "$tmp/runroot" --tmpdir "$tmp/tmp" \
    --network-config-dir "$tmp/cni" --cgroup-manager cgroupfs --events-backend file --runtime runc \
    run -i --rm --cgroup-parent "/$cg" $opts \
    -v /usr:/usr:ro -v "$probe:/nsconform:ro" --rootfs "$r" "{probe}"
exit $?
