//! What each runtime's audit must say, by the audit's stable check IDs: one
//! table per runtime, a row per configuration its script runs. The rows hold
//! for a host with cgroup v1 controllers (this project's VM); `v2_claims`
//! says what a runtime's script claims more on a cgroup2-only host.
//!
//! A row names the IDs that must be LEAK and those left `open` (the truth is
//! arguable, or the engine may or may not see it; each is said why). Every
//! other ID of the contract must be present and not LEAK, and a claimed
//! namespace type not in `leak` must be OK where the container's processes
//! are host processes (`observable`): seen isolated, not merely unseen.

/// Every ID of the contract between the audit and these tests, but
/// `runtime.ends`, a NOTE only when a runtime outlives its command.
pub const CONTRACT: &[&str] = &[
    "ns.cgroup",
    "ns.ipc",
    "ns.mnt",
    "ns.net",
    "ns.pid",
    "ns.time",
    "ns.user",
    "ns.uts",
    "pid.missed_fork",
    "pid.proc_of_outside",
    "cred.host_root",
    "user.map_host_root",
    "user.map_near_full",
    "user.setgroups",
    "cap.initial_userns",
    "uts.hostname_marker",
    "ipc.sysv_marker",
    "ipc.mqueue_marker",
    "ipc.devshm_of_other_ns",
    "ipc.mqueuefs_of_other_ns",
    "net.link_marker",
    "net.abstract_marker",
    "net.sysfs_of_other_ns",
    "mnt.shared_propagation",
    "mnt.receives_host_mounts",
    "mnt.host_root_bound",
    "path.cwd_outside",
    "path.root_outside",
    "dev.host_disks",
    "sock.runtime_control",
    "cgroup.path_rooted",
    "cgroup.host_writable",
    "fd.outside",
    "fd.stdio",
    "sec.nnp_seccomp",
];

/// One configuration: its name (the script's argument), the namespace types
/// the script claims (sorted, comma-joined, as the JSON lists them), the IDs
/// that must be LEAK, and those left open.
pub struct Row {
    pub config: &'static str,
    pub claims: &'static str,
    pub leak: &'static [&'static str],
    pub open: &'static [&'static str],
}

/// A runtime's script and its table.
pub struct Runtime {
    /// The trials' prefix.
    pub name: &'static str,
    pub script: &'static str,
    /// Arguments before the configuration (oci.sh's runtime).
    pub before: &'static [&'static str],
    /// Programs the script runs: a name on PATH or an absolute path.
    pub tools: &'static [&'static str],
    /// The container's processes are host processes the audit can read.
    pub observable: bool,
    /// Its rows run under one Docker daemon per test run (docker.sh).
    pub shared_daemon: bool,
    pub v2_claims: &'static [&'static str],
    /// When the interrupted trial sends SIGINT, in ms after the start.
    pub interrupts: &'static [u64],
    pub rows: &'static [Row],
}

const ROOT_UNCLAIMED: &str = "cred.host_root";

// Without a user namespace (not claimed), the container's root is host root;
// whether the audit calls that a LEAK or states it is the engine's choice.
// With one, it must not be host root.
const OCI_ROWS: &[Row] = &[
    Row {
        config: "default",
        claims: "ipc,mnt,net,pid,uts",
        leak: &[],
        open: &[ROOT_UNCLAIMED],
    },
    Row {
        config: "userns",
        claims: "ipc,mnt,net,pid,user,uts",
        leak: &[],
        open: &[],
    },
    Row {
        config: "hostnet",
        claims: "ipc,mnt,pid,uts",
        leak: &[],
        open: &[ROOT_UNCLAIMED],
    },
];

const SHORT: &[u64] = &[20, 60, 120, 250];

pub const RUNC: Runtime = Runtime {
    name: "runc",
    script: "oci.sh",
    before: &["runc"],
    tools: &["runc", "jq"],
    observable: true,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: OCI_ROWS,
};

pub const CRUN: Runtime = Runtime {
    name: "crun",
    script: "oci.sh",
    before: &["crun"],
    tools: &["crun", "jq", "unshare"],
    observable: true,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: OCI_ROWS,
};

/// nspawn without -U keeps 25 capabilities in the host's user namespace,
/// CAP_SYS_ADMIN and CAP_SYS_PTRACE among them.
pub const NSPAWN: Runtime = Runtime {
    name: "nspawn",
    script: "nspawn.sh",
    before: &[],
    tools: &["systemd-nspawn", "flock"],
    observable: true,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: &[
        Row {
            config: "default",
            claims: "ipc,mnt,pid,uts",
            leak: &["cap.initial_userns"],
            open: &[ROOT_UNCLAIMED],
        },
        Row {
            config: "userns",
            claims: "ipc,mnt,pid,user,uts",
            leak: &[],
            open: &[],
        },
        Row {
            config: "privnet",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["cap.initial_userns"],
            open: &[ROOT_UNCLAIMED],
        },
    ],
};

pub const PODMAN: Runtime = Runtime {
    name: "podman",
    script: "podman.sh",
    before: &[],
    tools: &["podman", "runc", "conmon", "unshare"],
    observable: true,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: OCI_ROWS,
};

/// As an ordinary user (nsconform-ci) with a subordinate range: the user is
/// root inside, its range above.
pub const PODMAN_ROOTLESS: Runtime = Runtime {
    name: "podman_rootless",
    script: "podman-rootless.sh",
    before: &[],
    tools: &[
        "podman",
        "crun",
        "conmon",
        "unshare",
        "setpriv",
        "newuidmap",
        "newgidmap",
    ],
    observable: true,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: &[Row {
        config: "default",
        claims: "ipc,mnt,net,pid,user,uts",
        leak: &[],
        open: &[],
    }],
};

/// Docker claims ipc, mnt, net, pid and uts in every configuration (cgroup
/// on cgroup v2, where its default cgroupns mode is private), so a
/// configuration that gives one up is the LEAK it is. What a `--X host`
/// shares may also show through that type's markers and files, which the
/// audit may plant in the host's namespaces or not: open. `-v /:/host`
/// brings the host's /dev, /proc, /sys, /dev/shm, cgroupfs and the daemon's
/// socket (in its temp directory) with it: whether each is seen through the
/// bind is open.
pub const DOCKER: Runtime = Runtime {
    name: "docker",
    script: "docker.sh",
    before: &[],
    tools: &[
        "dockerd",
        "containerd",
        "/usr/bin/docker",
        "useradd",
        "usermod",
        "userdel",
        "flock",
        "mountpoint",
    ],
    observable: true,
    shared_daemon: true,
    v2_claims: &["cgroup"],
    interrupts: &[20, 250, 1000, 2500, 4000],
    rows: &[
        Row {
            config: "default",
            claims: "ipc,mnt,net,pid,uts",
            leak: &[],
            open: &[ROOT_UNCLAIMED],
        },
        Row {
            config: "hostnet",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["ns.net"],
            open: &[ROOT_UNCLAIMED, "net.link_marker", "net.abstract_marker"],
        },
        Row {
            config: "hostpid",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["ns.pid"],
            // Its /proc is the host's, which is its own pid namespace's.
            open: &[ROOT_UNCLAIMED, "pid.proc_of_outside"],
        },
        Row {
            config: "hostipc",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["ns.ipc"],
            open: &[
                ROOT_UNCLAIMED,
                "ipc.sysv_marker",
                "ipc.mqueue_marker",
                "ipc.devshm_of_other_ns",
                "ipc.mqueuefs_of_other_ns",
            ],
        },
        Row {
            config: "hostuts",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["ns.uts"],
            open: &[ROOT_UNCLAIMED, "uts.hostname_marker"],
        },
        Row {
            config: "sysadmin",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["cap.initial_userns"],
            open: &[ROOT_UNCLAIMED],
        },
        Row {
            config: "hostroot",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["mnt.host_root_bound"],
            open: &[
                ROOT_UNCLAIMED,
                "dev.host_disks",
                "sock.runtime_control",
                "cgroup.host_writable",
                "pid.proc_of_outside",
                "net.sysfs_of_other_ns",
                "ipc.devshm_of_other_ns",
                "ipc.mqueuefs_of_other_ns",
            ],
        },
        Row {
            config: "userns",
            claims: "ipc,mnt,net,pid,user,uts",
            leak: &[],
            open: &[],
        },
    ],
};

/// gVisor: the container's processes live in its user-space kernel, not on
/// the host, so what the audit cannot see from outside is UNOBSERVABLE (not
/// LEAK, never OK unseen). `runsc do` gives the sandbox the host's root file
/// system (read-only under an overlay in memory, served by a gofer running
/// as root): every file root can read on the host can be read inside. Where
/// the command's cwd and root lie, and whether a host socket under that root
/// can be reached through the gofer, is open.
pub const RUNSC: Runtime = Runtime {
    name: "runsc",
    script: "runsc.sh",
    before: &[],
    tools: &["runsc", "jq"],
    observable: false,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: &[
        Row {
            config: "do",
            claims: "ipc,mnt,net,pid,uts",
            leak: &["mnt.host_root_bound"],
            open: &["path.cwd_outside", "path.root_outside", "sock.runtime_control"],
        },
        Row {
            config: "bundle",
            claims: "ipc,mnt,net,pid,uts",
            leak: &[],
            open: &[],
        },
    ],
};

/// lxc-execute, privileged: the container keeps 40 capabilities in the
/// host's user namespace, CAP_SYS_ADMIN among them; with id maps, none.
pub const LXC: Runtime = Runtime {
    name: "lxc",
    script: "lxc.sh",
    before: &[],
    tools: &["lxc-execute", "unshare", "paste"],
    observable: true,
    shared_daemon: false,
    v2_claims: &[],
    interrupts: SHORT,
    rows: &[
        Row {
            config: "default",
            claims: "cgroup,ipc,mnt,net,pid,uts",
            leak: &["cap.initial_userns"],
            open: &[ROOT_UNCLAIMED],
        },
        Row {
            config: "userns",
            claims: "cgroup,ipc,mnt,net,pid,user,uts",
            leak: &[],
            open: &[],
        },
    ],
};

pub const ALL: &[&Runtime] = &[&RUNC, &CRUN, &NSPAWN, &PODMAN, &PODMAN_ROOTLESS, &DOCKER, &RUNSC, &LXC];
