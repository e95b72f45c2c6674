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

# The run's own cgroups (enter_run_cgroup), none until it is entered.
moved=

# enter_run_cgroup NAME: this shell, and so everything it starts from now
# on, moves into a cgroup NAME below its own in the hierarchies that track
# processes (name=systemd, cgroup2), so that nothing the run starts can
# outlive it unseen; their paths are in $moved (named before each is made,
# so an interrupt in between still finds it).
enter_run_cgroup() {
    moved=
    for h in /sys/fs/cgroup/systemd:name=systemd /sys/fs/cgroup/unified: /sys/fs/cgroup:; do
        dir=${h%:*}
        case $(stat -f -c %T "$dir" 2>/dev/null):${h#*:} in
        cgroupfs:name=systemd | cgroup2fs:) ;;
        *) continue ;;
        esac
        m=$dir$(awk -F: -v c="${h#*:}" '$2 == c { print $3 }' /proc/self/cgroup)
        m=${m%/}/$1
        moved="$moved $m"
        mkdir "$m" && echo $$ >"$m/cgroup.procs"
    done
}

# leave_run_cgroup: this shell back where it came from, so that the run's
# cgroups can be ended and removed.
leave_run_cgroup() {
    for m in $moved; do
        echo $$ >"${m%/*}/cgroup.procs" 2>/dev/null || true
    done
}


# runtime_options NSCONFORM NAME [DAEMON_PID]: the audit options that name
# the runtime (--runtime) and the daemon that starts its containers
# (--daemon-pid), each only if that nsconform's audit has it (an older one
# refuses both).
runtime_options() {
    help=$("$1" audit --help 2>/dev/null || true)
    case $help in *--runtime*) echo "--runtime $2" ;; esac
    [ -z "${3:-}" ] || case $help in *--daemon-pid*) echo "--daemon-pid $3" ;; esac
}
