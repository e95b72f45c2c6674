#!/bin/sh
# Audit gVisor (Debian's runsc) in its two common uses:
#   runners/audit/runsc.sh do|bundle [audit options...]
# do: `runsc --network=none do PROBE`, the host's root read-only under an
# overlay in memory (the probe is $NSCONFORM or `nsconform` on PATH, at its
# own path); bundle: `runsc --network=none run --bundle B ID`, an OCI bundle
# from runsc's own `spec` with the host's /usr read-only and the probe at
# /nsconform as process.args (as oci.sh). Claims: what the bundle's
# linux.namespaces name (pid, network, ipc, uts, mount), for both.
#
# runsc gives the container's stdio files to the sandbox's user (it changes
# their owner to nobody): the audit gives it only pipes, and nothing here
# starts a sandbox with any other stdio.
#
# Nothing may stay: runsc's state (--root, and the temp directory `do` makes,
# TMPDIR) is in a temp directory; runsc and its gofer and sandbox run in a
# cgroup of the run's own; the cgroups runsc makes for the sandbox (named by
# the container's id: ours for a bundle, runsc-N for `do`, read from its
# state and from the sandbox's processes) are ended and removed at the end.
set -eu
usage="usage: $0 do|bundle [audit options...]"
cfg=${1:?$usage}
shift
case $cfg in do | bundle) ;; *) echo "$0: configuration $cfg: $usage" >&2; exit 2 ;; esac
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
. "$(dirname "$0")/lib.sh"
id=nsconform-audit-$$
tmp=
# The ids of the sandboxes runsc made: from the names of its state files
# ("ID_sandbox:ID.lock"), and from the v1 cgroups its processes are in.
sandbox_ids() {
    for f in "$tmp"/state/* "$tmp"/runsc-do*/*; do
        case ${f##*/} in *_sandbox:*) echo "${f##*/}" | sed 's/_sandbox:.*//' ;; esac
    done
    # shellcheck disable=SC2086 # one directory a word
    for d in $moved; do
        [ ! -f "$d/cgroup.procs" ] || for p in $(cat "$d/cgroup.procs"); do
            sed -n 's,^[0-9]*:[^:]*:/\(runsc-[0-9]*\)$,\1,p' "/proc/$p/cgroup" 2>/dev/null
        done
    done
}
cleanup() {
    # Once, to the end, whatever fails on the way: a second interrupt (or
    # the first, arriving after the audit) is ignored here and by the
    # commands below, which would otherwise die of it halfway.
    trap - EXIT
    trap '' INT TERM HUP
    set +e
    leave_run_cgroup
    ids=$(sandbox_ids | sort -u)
    # Every process of the run (runsc, its gofer and sandbox: they stay in
    # the run's cgroup2 and name=systemd cgroups only if runsc leaves them
    # there), then the sandbox's own cgroups and the state.
    dirs=$(for i in $id $ids; do cgroup_dirs "$i"; done)
    # shellcheck disable=SC2086 # one directory a word
    end_cgroups 0 $moved $dirs
    [ -z "$tmp" ] || [ "$cfg" != bundle ] || runsc --root "$tmp/state" delete --force "$id" >/dev/null 2>&1
    # shellcheck disable=SC2086 # one directory a word
    end_cgroups 0 $dirs
    [ -z "$tmp" ] || rm -rf "$tmp"
}
# Before anything is made, so that an interrupt at any point cleans up.
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
enter_run_cgroup "$id.run"
# Named before it is made: an interrupt in between still finds it.
tmp=/tmp/nsconform-audit-$$
mkdir -m 700 "$tmp"
chmod 755 "$tmp"
export TMPDIR="$tmp"

set +e
if [ "$cfg" = "do" ]; then
    # shellcheck disable=SC2046 # the options are split on purpose
    "$probe" audit --claims ipc,mnt,net,pid,uts $(runtime_options "$probe" runsc) "$@" -- \
        runsc --network=none --root "$tmp/state" "do" "{probe}"
    exit $?
fi
set -e
b=$tmp/bundle
mkdir -p "$b/rootfs/usr" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$b/rootfs/$l"; done
: >"$b/rootfs/nsconform"
(cd "$b" && runsc spec)
jq --arg probe "$probe" --arg cg "/$id" '
    .process.args = ["/nsconform", "audit", "--inside"]
    | .process.terminal = false
    | .linux.cgroupsPath = $cg
    | .mounts += [
        {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
        {"destination": "/nsconform", "type": "bind", "source": $probe, "options": ["bind", "ro"]}
      ]' "$b/config.json" >"$b/config.new"
mv "$b/config.new" "$b/config.json"
set +e
# shellcheck disable=SC2046 # the options are split on purpose
"$probe" audit --config "$b/config.json" $(runtime_options "$probe" runsc) "$@" -- \
    runsc --network=none --root "$tmp/state" run --bundle "$b" "$id"
exit $?
