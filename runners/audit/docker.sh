#!/bin/sh
# Audit Docker (Debian's docker.io) in one of its common configurations:
#   runners/audit/docker.sh CONFIG [audit options...]
# CONFIG: default; hostnet, hostpid, hostipc, hostuts (--network, --pid,
# --ipc or --uts host); sysadmin (--cap-add SYS_ADMIN); hostroot (-v
# /:/host); userns (a daemon with --userns-remap). The container is
# `docker run --rm -i nsconform-probe /nsconform ...`, with Debian's client.
#
# The claims are what Docker isolates by default, in every configuration, so
# that a configuration that gives one up shows as the LEAK it is: ipc, mnt,
# net, pid and uts, cgroup where the daemon runs on cgroup v2 (its default
# cgroupns mode there is private, on v1 host), user with --userns-remap.
#
# The daemon is the run's own (dockerd.sh, ended with the run), unless this
# runs under one already (NSCONFORM_DOCKERD_PID set by dockerd.sh: a test
# shares one daemon between its audits); userns needs one with
# --userns-remap, the others one without.
set -eu
usage="usage: $0 default|hostnet|hostpid|hostipc|hostuts|sysadmin|hostroot|userns [audit options...]"
cfg=${1:?$usage}
shift
here=$(cd "$(dirname "$0")" && pwd)
case $cfg in
default | userns | sysadmin) opts= ;;
hostnet) opts="--network host" ;;
hostpid) opts="--pid host" ;;
hostipc) opts="--ipc host" ;;
hostuts) opts="--uts host" ;;
hostroot) opts="-v /:/host" ;;
*) echo "$0: configuration $cfg: $usage" >&2; exit 2 ;;
esac
[ "$cfg" != sysadmin ] || opts="--cap-add SYS_ADMIN"
if [ -z "${NSCONFORM_DOCKERD_PID:-}" ]; then
    remap=
    [ "$cfg" != userns ] || remap=--userns-remap
    exec sh "$here/dockerd.sh" $remap -- sh "$here/docker.sh" "$cfg" "$@"
fi
probe=$(command -v "${NSCONFORM:-nsconform}") || { echo "$0: no nsconform binary (set NSCONFORM)" >&2; exit 2; }
probe=$(readlink -f "$probe")
docker=/usr/bin/docker

remapped=no
"$docker" info --format '{{json .SecurityOptions}}' | grep -q 'name=userns' && remapped=yes
case $cfg:$remapped in
userns:no) echo "$0: userns needs a daemon with --userns-remap" >&2; exit 2 ;;
userns:yes | *:no) ;;
*) echo "$0: $cfg needs a daemon without --userns-remap" >&2; exit 2 ;;
esac
claims=ipc,mnt,net,pid,uts
[ "$("$docker" info --format '{{.CgroupVersion}}')" != 2 ] || claims=$claims,cgroup
[ "$cfg" != userns ] || claims=$claims,user

. "$here/lib.sh"
# The container by name, removed at the end even if the audit could not
# end it (the daemon may be shared and outlive this run).
name=nsconform-audit-$$
cleanup() {
    trap - EXIT
    trap '' INT TERM HUP
    "$docker" rm -f "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

set +e
# shellcheck disable=SC2046,SC2086 # $opts and the runtime's options are split on purpose
"$probe" audit --claims "$claims" --probe-path /nsconform $(runtime_options "$probe" docker "$NSCONFORM_DOCKERD_PID") \
    "$@" -- "$docker" run --rm -i --name "$name" $opts "$NSCONFORM_DOCKER_IMAGE" "{probe}"
exit $?
