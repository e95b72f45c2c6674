#!/bin/sh
# Audit systemd-nspawn in one of its common configurations:
#   runners/audit/nspawn.sh default|userns|privnet [audit options...]
# default: the host's network (nspawn's own default); userns: -U as
# --private-users=pick; privnet: --private-network. The tree is the host's
# (-D /) under --volatile=yes: a fresh tmpfs root with the host's /usr
# read-only, so nothing of the host is written; the probe ($NSCONFORM or
# `nsconform` on PATH) is bind-mounted read-only at its own path. Claims: what
# nspawn's manual says it virtualizes (file systems, processes, IPC, host
# name), plus the configuration's own. --register=no --keep-unit: no
# machined or systemd unit (this host need not run systemd). What nspawn
# leaves under /run/systemd (propagate, nspawn-root, nspawn-uid) is removed
# on any exit when it was not there before and is empty.
set -eu
usage="usage: $0 default|userns|privnet [audit options...]"
cfg=${1:?$usage}
shift
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
claims=ipc,mnt,pid,uts
case $cfg in
default) opts= ;;
# Ownership off: never chown a tree, least of all the host's.
userns) opts="--private-users=pick --private-users-ownership=off"; claims=$claims,user ;;
privnet) opts=--private-network; claims=$claims,net ;;
*) echo "$0: configuration $cfg: $usage" >&2; exit 2 ;;
esac

# Directories nspawn makes and leaves, deepest first. Only those that were
# not there before are removed, and only empty ones: another nspawn on the
# machine may be using them (its image locks, say).
made=
for d in /run/systemd/nspawn/propagate /run/systemd/nspawn /run/systemd/nspawn-root \
    /run/systemd/nspawn-uid /run/systemd; do
    [ -e "$d" ] || made="$made $d"
done
# nspawn (--keep-unit) makes "payload" and "supervisor" cgroups in its
# caller's, in the hierarchies systemd uses (name=systemd, cgroup2), and
# leaves them: it runs in a cgroup of this run's own there, which also holds
# every process nspawn starts (its container has a session of its own, out
# of the reach of the audit's kill), ended and removed at the end.
. "$(dirname "$0")/lib.sh"
cg=nsconform-audit-$$
cleanup() {
    # Once, to the end, whatever fails on the way: a second interrupt (or
    # the first, arriving after the audit) is ignored here and by the
    # commands below, which would otherwise die of it halfway.
    trap - EXIT
    trap '' INT TERM HUP
    set +e
    leave_run_cgroup
    # shellcheck disable=SC2086 # one directory a word
    end_cgroups 0 $moved
    for d in $made; do
        [ -d "$d" ] || continue
        # A killed nspawn's uid-range locks: those nobody holds.
        if [ "$d" = /run/systemd/nspawn-uid ]; then
            for f in "$d"/*; do
                [ ! -f "$f" ] || flock -n "$f" rm -f "$f" || true
            done
        fi
        # One at a time, so that a parent is empty when its turn comes.
        find "$d" -depth -type d -empty -exec rmdir {} \; 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
enter_run_cgroup "$cg"

set +e
# shellcheck disable=SC2086 # $opts is split on purpose
"$probe" audit --claims "$claims" "$@" -- systemd-nspawn --register=no --keep-unit --quiet \
    -D / --volatile=yes --machine="$cg" $opts --bind-ro="$probe" --console=pipe -- "{probe}"
exit $?
