#!/bin/sh
# Audit an OCI runtime (runc or crun) in one of its common configurations:
#   runners/audit/oci.sh runc|crun default|userns|hostnet [audit options...]
# default: the runtime's own `spec` (pid, net, ipc, uts, mnt); userns: plus a
# user namespace (0 -> 100000, 65536 ids); hostnet: without the network
# namespace. The bundle's rootfs is the host's /usr, read-only, and the probe
# (this suite's binary, $NSCONFORM or `nsconform` on PATH) bind-mounted at
# /nsconform. The claims come from the bundle's config.json. Everything the
# run makes (bundle, the runtime's state directory, the container's cgroups)
# is removed on exit, failure and interrupt included.
set -eu
rt=${1:?usage: $0 runc|crun default|userns|hostnet [audit options...]}
cfg=${2:?usage: $0 runc|crun default|userns|hostnet [audit options...]}
shift 2
case $rt in runc | crun) ;; *) echo "$0: runtime $rt: runc or crun" >&2; exit 2 ;; esac
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
    # The container's processes first (its init may have a session of its
    # own, out of the reach of the audit's kill), then its state, bundle and
    # cgroups (every hierarchy: v1 controllers, unified).
    # shellcheck disable=SC2046 # one directory a word
    end_cgroups 0 $(cgroup_dirs "$id")
    [ -z "$tmp" ] || "$rt" --root "$tmp/state" delete --force "$id" >/dev/null 2>&1 || true
    [ -z "$tmp" ] || rm -rf "$tmp"
    # shellcheck disable=SC2046 # one directory a word
    end_cgroups 0 $(cgroup_dirs "$id")
}
# Before anything is made, so that an interrupt at any point cleans up.
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# Named before it is made: an interrupt in between still finds it.
tmp=/tmp/nsconform-audit-$$
mkdir -m 700 "$tmp"

# A user namespace's root must reach the bundle.
chmod 755 "$tmp"
b=$tmp/bundle
mkdir -p "$b/rootfs/usr" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$b/rootfs/$l"; done
: >"$b/rootfs/nsconform"
"$rt" spec --bundle "$b"

ns='.'
case $cfg in
default) ;;
userns)
    ns='.linux.namespaces += [{"type": "user"}]
        | .linux.uidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        | .linux.gidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]'
    ;;
hostnet) ns='.linux.namespaces |= map(select(.type != "network"))' ;;
*) echo "$0: configuration $cfg: default, userns or hostnet" >&2; exit 2 ;;
esac
# The probe is the container's command; its stdin (the auditor's line that
# lets it go) passes through, so no terminal.
jq --arg probe "$probe" --arg cg "/$id" "
    .process.args = [\"/nsconform\", \"audit\", \"--inside\"]
    | .process.terminal = false
    | .linux.cgroupsPath = \$cg
    | .mounts += [
        {\"destination\": \"/usr\", \"type\": \"bind\", \"source\": \"/usr\", \"options\": [\"rbind\", \"ro\"]},
        {\"destination\": \"/nsconform\", \"type\": \"bind\", \"source\": \$probe, \"options\": [\"bind\", \"ro\"]}
      ]
    | $ns" "$b/config.json" >"$b/config.new"
mv "$b/config.new" "$b/config.json"

run="$rt --root $tmp/state run --bundle $b $id"
if [ "$rt" = crun ] && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    # crun 1.8 refuses a hybrid hierarchy ("drop all controllers from
    # cgroupv2"): it runs where the v2 mount is gone, in a mount namespace
    # of its own. Only that mount is made private first, so the unmount
    # reaches nothing else and the rest keeps the auditor's propagation.
    run="unshare -m --propagation unchanged sh -c 'mount --make-private /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified && exec \"\$@\"' sh $run"
fi
set +e
# shellcheck disable=SC2086 # $run is split on purpose (paths without spaces)
eval "\"\$probe\" audit --config \"\$b/config.json\" \"\$@\" -- $run"
rc=$?
exit $rc
