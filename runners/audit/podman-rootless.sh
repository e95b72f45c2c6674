#!/bin/sh
# Audit rootless podman: run as an ordinary user with a subordinate id range.
#   runners/audit/podman-rootless.sh default [audit options...]
# The user is $NSCONFORM_AUDIT_USER, or nsconform-ci (.ci/run makes it, with
# a range in /etc/subuid and /etc/subgid). podman runs with crun, no cgroups
# (a rootless podman on cgroup v1 cannot use them) and no network (the
# default, slirp4netns, is not needed: --network=none); the container's root
# is a directory (--rootfs) the user owns, with the host's /usr read-only and
# a copy of the probe ($NSCONFORM or `nsconform` on PATH) at /nsconform.
# Claims: ipc, mnt, net, pid, uts and user (a rootless podman always makes a
# user namespace, mapping the user to root and its range above).
#
# Nothing may stay: HOME, XDG_RUNTIME_DIR, storage and tmp are in a temp
# directory; podman runs in a mount namespace of its own (a slave of the
# auditor's) with a fresh tmpfs on /dev/shm, where its lock memory goes
# (libpod_rootless_lock_UID); there the cgroup2 mount of a hybrid host is
# unmounted, which crun 1.8 refuses even without cgroups; podman's pause
# process (it keeps the user namespace after the run), conmon and the
# container are in a cgroup of the run's own, ended before it is removed.
set -eu
usage="usage: $0 default [audit options...]"
[ "${1:-}" = default ] || { echo "$usage" >&2; exit 2; }
shift
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
user=${NSCONFORM_AUDIT_USER:-nsconform-ci}
uid=$(id -u "$user" 2>/dev/null) || { echo "$0: no user $user (set NSCONFORM_AUDIT_USER; .ci/run makes nsconform-ci)" >&2; exit 2; }
gid=$(id -g "$user")
for f in /etc/subuid /etc/subgid; do
    grep -q "^\($user\|$uid\):" "$f" 2>/dev/null || { echo "$0: $user has no range in $f" >&2; exit 2; }
done

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
    # conmon outlives podman run to clean up after the container: half a
    # second for it.
    # shellcheck disable=SC2086 # one directory a word
    end_cgroups 5 $moved
    # The user's files may be read-only to their owner (image layers).
    [ -z "$tmp" ] || { chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"; }
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
mkdir -p "$r/usr" "$r/proc" "$r/dev" "$r/sys" "$r/etc" "$tmp/home" "$tmp/run"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$r/$l"; done
: >"$r/nsconform"
# The user may not reach the probe where it was built.
cp "$probe" "$tmp/nsconform"
chmod 755 "$tmp/nsconform"
chown -R -h "$uid:$gid" "$r" "$tmp/home" "$tmp/run"
chmod 700 "$tmp/run"

in_ns="mount -t tmpfs tmpfs /dev/shm"
in_ns="$in_ns && if [ \"\$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)\" = cgroup2fs ]; then"
in_ns="$in_ns mount --make-private /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; fi"
in_ns="$in_ns && exec \"\$@\""
set +e
# shellcheck disable=SC2046 # the options are split on purpose
"$probe" audit --claims ipc,mnt,net,pid,user,uts --probe-path /nsconform $(runtime_options "$probe" podman) "$@" -- \
    unshare -m --propagation slave sh -c "$in_ns" sh \
    setpriv --reuid "$uid" --regid "$gid" --clear-groups --reset-env \
    env HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" \
    podman --root "$tmp/home/storage" --runroot "$tmp/run/storage" --tmpdir "$tmp/run/tmp" \
    --cgroup-manager cgroupfs --events-backend file --runtime crun \
    run -i --rm --cgroups=disabled --network=none \
    -v /usr:/usr:ro -v "$tmp/nsconform:/nsconform:ro" --rootfs "$r" "{probe}"
exit $?
