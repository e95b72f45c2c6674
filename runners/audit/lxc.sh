#!/bin/sh
# Audit LXC (Debian's lxc) as an application container:
#   runners/audit/lxc.sh default|userns [audit options...]
# `lxc-execute` with a configuration of the run's own: a root directory with
# the host's /usr read-only and the probe ($NSCONFORM or `nsconform` on PATH)
# at /nsconform, a network namespace with only lo (lxc.net.0.type = empty),
# proc and sys mounted by LXC, no AppArmor profile (this host has none);
# userns: plus id maps 0 -> 100000, 65536 ids (the root directory is given
# to 100000). Claims: what lxc-execute makes (cgroup, ipc, mnt, net, pid,
# uts), user with userns.
#
# Nothing may stay: LXC makes its cgroups (payload, monitor and the
# lxc.pivot it leaves) in every hierarchy, at the top unless told: they are
# put under the run's own (lxc.cgroup.dir.*), ended and removed at the end;
# its lock directory (/run/lxc/lock) goes in a fresh tmpfs on /run, in a
# mount namespace of its own (a slave of the auditor's); its log, config and
# root directory are in a temp directory; lxc-execute and the container run in
# a cgroup of the run's own.
set -eu
usage="usage: $0 default|userns [audit options...]"
cfg=${1:?$usage}
shift
case $cfg in default | userns) ;; *) echo "$0: configuration $cfg: $usage" >&2; exit 2 ;; esac
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
. "$(dirname "$0")/lib.sh"
id=nsconform-audit-$$
tmp=
cleanup() {
    # Once, to the end, whatever fails on the way: a second interrupt (or
    # the first, arriving after the audit) is ignored here and by the
    # commands below, which would otherwise die of it halfway.
    trap - EXIT
    trap '' INT TERM HUP
    set +e
    leave_run_cgroup
    # shellcheck disable=SC2046,SC2086 # one directory a word
    end_cgroups 0 $moved $(cgroup_dirs "$id")
    # Named again: LXC may have made more while it was being ended.
    # shellcheck disable=SC2046 # one directory a word
    end_cgroups 0 $(cgroup_dirs "$id")
    [ -z "$tmp" ] || rm -rf "$tmp"
}
# Before anything is made, so that an interrupt at any point cleans up.
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
enter_run_cgroup "$id.run"
# Named before it is made: an interrupt in between still finds it.
tmp=/tmp/nsconform-audit-$$
mkdir -m 700 "$tmp"

# A user namespace's root must reach the root directory.
chmod 755 "$tmp"
r=$tmp/rootfs
mkdir -p "$r/usr" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$r/$l"; done
: >"$r/nsconform"
claims=cgroup,ipc,mnt,net,pid,uts
src=$probe
if [ "$cfg" = userns ]; then
    # LXC mounts as the container's root, which may not reach the probe
    # where it was built (under /root, say): a copy it can reach.
    src=$tmp/nsconform
    cp "$probe" "$src"
    chmod 755 "$src"
fi
cat >"$tmp/config" <<EOF
lxc.uts.name = $id
lxc.rootfs.path = dir:$r
lxc.mount.entry = /usr usr none bind,ro 0 0
lxc.mount.entry = $src nsconform none bind,ro 0 0
lxc.mount.auto = proc:mixed sys:ro
lxc.net.0.type = empty
lxc.apparmor.profile = unconfined
lxc.log.file = $tmp/lxc.log
lxc.cgroup.dir.container = $id/payload
lxc.cgroup.dir.monitor = $id/monitor
lxc.cgroup.dir.monitor.pivot = $id/pivot
EOF
if [ "$cfg" = userns ]; then
    claims=$claims,user
    printf 'lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n' >>"$tmp/config"
    chown -R -h 100000:100000 "$r"
fi

# As root, LXC writes the id maps through newuidmap/newgidmap when it finds
# them on PATH, and they refuse root without a range of its own in
# /etc/subuid: LXC finds only the directories that do not hold them, so it
# writes the maps itself.
path=$(for d in $(echo "$PATH" | tr : ' '); do [ -e "$d/newuidmap" ] || [ -e "$d/newgidmap" ] || echo "$d"; done | paste -sd:)

set +e
# shellcheck disable=SC2016,SC2046 # expanded by the inner shell; the options are split on purpose
"$probe" audit --claims "$claims" --probe-path /nsconform $(runtime_options "$probe" lxc) "$@" -- \
    unshare -m --propagation slave sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' sh \
    env PATH="$path" "$(command -v lxc-execute)" -n "$id" -P "$tmp" -f "$tmp/config" -- "{probe}"
exit $?
