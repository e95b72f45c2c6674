//! The container from outside: every process of it (`view`), its file
//! system through the probe's root (`fsview`), its cgroup path as it sees it.

use super::fsview::Fs;
use super::host::Host;
use super::view::Proc;
use crate::observe::mounts::MountInfo;
use serde::Serialize;

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The container from outside.
#[derive(Debug, Serialize)]
pub struct Outside {
    pub probe: i32,
    /// Every process of the container, the probe first, then the threads
    /// seen apart.
    pub procs: Vec<Proc>,
    /// The probe's mountinfo, parsed.
    #[serde(skip)]
    pub mounts: Vec<MountInfo>,
    /// The probe's mountinfo as the host reads it (mount ids are the
    /// host's), for the evidence.
    pub mountinfo: String,
    pub fs: Fs,
    /// The probe's cgroup paths, read inside its cgroup namespace.
    pub cgroup_inside: String,
    pub timens_offsets: String,
}

impl Outside {
    pub fn take(probe: i32, members: &[i32], host: &Host) -> Result<Outside, String> {
        let first = Proc::take(probe, members, host).ok_or_else(|| format!("the probe (pid {probe}) is gone"))?;
        let mut procs = vec![first];
        procs.extend(
            members
                .iter()
                .filter(|&&p| p != probe)
                .filter_map(|&p| Proc::take(p, members, host)),
        );
        let apart: Vec<Proc> = procs.iter().flat_map(|p| p.threads_apart(members, host)).collect();
        procs.extend(apart);
        if let Some(container) = procs[0].root_place {
            for p in procs.iter_mut().skip(1) {
                p.judge_root_against(container, host);
            }
        }
        let (mountinfo, mounts) = crate::observe::mounts::load(&format!("/proc/{probe}/mountinfo"));
        Ok(Outside {
            probe,
            fs: Fs::take(probe, &mounts, &procs, host),
            procs,
            mounts,
            mountinfo,
            cgroup_inside: cgroup_inside(probe),
            timens_offsets: read(&format!("/proc/{probe}/timens_offsets")),
        })
    }

    pub fn probe(&self) -> &Proc {
        &self.procs[0]
    }

    /// The processes, without the threads seen apart (credentials are read
    /// for every thread of a process already).
    pub fn processes(&self) -> impl Iterator<Item = &Proc> {
        self.procs.iter().filter(|p| p.thread.is_none())
    }

    pub fn is_member(&self, pid: i32) -> bool {
        self.procs.iter().any(|p| p.pid == pid)
    }
}

/// The process's cgroup paths as it sees them: a thread joins its cgroup
/// namespace (per thread, and harmless to the auditor) and reads them there.
fn cgroup_inside(pid: i32) -> String {
    let path = format!("/proc/{pid}/ns/cgroup");
    let file = format!("/proc/{pid}/cgroup");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).ok()?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWCGROUP).ok()?;
        Some(read(&file))
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or_default()
}
