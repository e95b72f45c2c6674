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
# on any exit when it was not there before.
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

made=
[ -e /run/systemd ] || made=/run/systemd
for d in /run/systemd/nspawn /run/systemd/nspawn-root /run/systemd/nspawn-uid; do
    [ -e "$d" ] || made="$d $made"
done
cleanup() {
    for d in $made; do
        case $d in /run/systemd) rmdir "$d" 2>/dev/null || true ;; *) rm -rf "$d" ;; esac
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

set +e
# shellcheck disable=SC2086 # $opts is split on purpose
"$probe" audit --claims "$claims" "$@" -- systemd-nspawn --register=no --keep-unit --quiet \
    -D / --volatile=yes $opts --bind-ro="$probe" --console=pipe -- "{probe}"
exit $?
