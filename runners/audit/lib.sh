# Sourced by the audit scripts: the end of a run's processes and cgroups.

# The cgroup directories named $1 at the top of every hierarchy.
cgroup_dirs() {
    for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
        [ ! -d "$d" ] || echo "$d"
    done
}

# end_cgroups GRACE DIR...: the processes in these cgroups and below (a
# container whose runtime was killed, its init in a session of its own,
# conmon) get GRACE tenths of a second to end, then SIGKILL until none is
# left (2 s at most); then the cgroups are removed, deepest first. This
# script's own process is never among them.
end_cgroups() {
    grace=$(($1 * 2))
    shift
    i=0
    while [ $i -lt $((grace + 40)) ]; do
        pids=$(for d in "$@"; do
            [ ! -d "$d" ] || find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
        done | grep -vx "$$" | sort -u)
        [ -n "$pids" ] || break
        # shellcheck disable=SC2086 # one pid a word
        [ $i -lt "$grace" ] || kill -9 $pids 2>/dev/null || true
        sleep 0.05
        i=$((i + 1))
    done
    for d in "$@"; do
        [ ! -d "$d" ] || find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    return 0
}
