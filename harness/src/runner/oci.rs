//! OCI bundles: a runner's config.json template completed for one child
//! (namespaces, time offsets, id maps, the probe as the process), as the
//! runtime-spec describes `linux.namespaces`, `linux.uidMappings`,
//! `linux.gidMappings`, `linux.timeOffsets` and `process.args`.

use crate::load::model::TimeOffsets;
use crate::load::ns::Ns;
use serde_json::{Value, json};

/// Capability names by number (linux/capability.h), for a config that
/// asks for the creator's own bounding set.
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the capabilities in a mask (/proc/self/status CapBnd).
pub fn cap_names(mask: u64) -> Vec<&'static str> {
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// Keep the mounts whose condition holds: `if_new = "pid"` only with a new
/// pid namespace (a fresh proc needs one the runtime owns), `unless_new`
/// only without.
fn conditional_mounts(v: &mut Value, eff: &[Ns]) {
    let Some(mounts) = v.get_mut("mounts").and_then(|m| m.as_array_mut()) else {
        return;
    };
    let new = |m: &Value, key: &str| {
        m.get(key)
            .and_then(|t| t.as_str())
            .map(|t| eff.iter().any(|n| n.proc_name() == t || n.oci_name() == t))
    };
    mounts.retain(|m| new(m, "if_new") != Some(false) && new(m, "unless_new") != Some(true));
    for m in mounts.iter_mut() {
        if let Some(o) = m.as_object_mut() {
            o.remove("if_new");
            o.remove("unless_new");
        }
    }
}

/// The template with the child's namespaces and offsets. The mount
/// namespace is always listed: the runtime-spec needs one to set up the
/// root. `process.args` is `["{probe}"]` until the creator fills it.
pub fn complete(template: &Value, eff: &[Ns], offsets: Option<&TimeOffsets>) -> Value {
    let mut v = template.clone();
    conditional_mounts(&mut v, eff);
    let mut types: Vec<Ns> = eff.to_vec();
    if !types.contains(&Ns::Mnt) {
        types.push(Ns::Mnt);
    }
    let namespaces: Vec<Value> = types.iter().map(|n| json!({ "type": n.oci_name() })).collect();
    let linux = object(&mut v, "linux");
    linux.insert("namespaces".into(), Value::Array(namespaces));
    if let (Some(o), true) = (offsets, eff.contains(&Ns::Time)) {
        linux.insert(
            "timeOffsets".into(),
            json!({
                "monotonic": { "secs": o.monotonic, "nanosecs": 0 },
                "boottime": { "secs": o.boottime, "nanosecs": 0 },
            }),
        );
    }
    object(&mut v, "process").insert("args".into(), json!(["{probe}"]));
    v
}

fn object<'a>(v: &'a mut Value, key: &str) -> &'a mut serde_json::Map<String, Value> {
    let map = v.as_object_mut().expect("checked when the definition loaded");
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

/// Parse a map as written to /proc/PID/uid_map ("inside outside count"
/// lines, placeholders already filled) into runtime-spec id mappings.
pub fn mappings(text: &str) -> Result<Value, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let n: Vec<u64> = line
            .split_whitespace()
            .map(|w| w.parse::<u64>().map_err(|_| format!("not a map line: {line:?}")))
            .collect::<Result<_, _>>()?;
        let [inside, outside, count] = n[..] else {
            return Err(format!("a map line has three numbers: {line:?}"));
        };
        out.push(json!({ "containerID": inside, "hostID": outside, "size": count }));
    }
    Ok(Value::Array(out))
}

/// Put the id maps into the config (the runtime writes them).
pub fn set_maps(config: &mut Value, uid_map: &str, gid_map: &str) -> Result<(), String> {
    let uid = mappings(uid_map)?;
    let gid = mappings(gid_map)?;
    let linux = object(config, "linux");
    linux.insert("uidMappings".into(), uid);
    linux.insert("gidMappings".into(), gid);
    Ok(())
}

/// Replace `process.args` ("{probe}") with the probe's argv, every
/// placeholder in string values with `fill`, and `"capabilities": "inherit"`
/// with every set holding `bounding` (the creator's bounding set, so the
/// runtime is never asked for a capability it cannot grant).
pub fn finish(config: &mut Value, probe: &[String], bounding: u64, fill: &dyn Fn(&str) -> String) {
    let process = object(config, "process");
    process.insert("args".into(), json!(probe));
    if process.get("capabilities").and_then(|c| c.as_str()) == Some("inherit") {
        let names = cap_names(bounding);
        process.insert(
            "capabilities".into(),
            json!({ "bounding": names, "effective": names, "permitted": names, "inheritable": [], "ambient": [] }),
        );
    }
    fill_strings(config, fill);
}

fn fill_strings(v: &mut Value, fill: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) if s.contains('{') => *s = fill(s),
        Value::Array(a) => a.iter_mut().for_each(|x| fill_strings(x, fill)),
        Value::Object(o) => o.values_mut().for_each(|x| fill_strings(x, fill)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_offsets_and_maps_land_where_the_spec_says() {
        let t = json!({ "ociVersion": "1.0.2", "process": { "cwd": "/" }, "root": { "path": "{rootfs}" } });
        let o = TimeOffsets {
            monotonic: 5,
            boottime: -3,
        };
        let mut c = complete(&t, &[Ns::Net, Ns::Time], Some(&o));
        assert_eq!(
            c["linux"]["namespaces"],
            json!([{ "type": "network" }, { "type": "time" }, { "type": "mount" }])
        );
        assert_eq!(c["linux"]["timeOffsets"]["boottime"]["secs"], json!(-3));
        set_maps(&mut c, "0 1000 1\n1 100000 65536", "0 1000 1").unwrap();
        assert_eq!(
            c["linux"]["uidMappings"][1],
            json!({ "containerID": 1, "hostID": 100000, "size": 65536 })
        );
        finish(&mut c, &["/p".into(), "x".into()], 0b101, &|s| {
            s.replace("{rootfs}", "/r")
        });
        assert_eq!(c["process"]["args"], json!(["/p", "x"]));
        assert_eq!(c["root"]["path"], json!("/r"));
        assert!(mappings("0 1000").is_err());
    }

    #[test]
    fn mounts_follow_the_namespaces_and_caps_the_bounding_set() {
        let t = json!({
            "process": { "capabilities": "inherit" },
            "mounts": [
                { "destination": "/proc", "type": "proc", "if_new": "pid" },
                { "destination": "/proc", "type": "bind", "unless_new": "pid" },
                { "destination": "/sys", "type": "bind" }
            ]
        });
        let with = complete(&t, &[Ns::Pid], None);
        assert_eq!(with["mounts"][0], json!({ "destination": "/proc", "type": "proc" }));
        assert_eq!(with["mounts"].as_array().unwrap().len(), 2);
        let mut without = complete(&t, &[Ns::Net], None);
        assert_eq!(without["mounts"][0]["type"], json!("bind"));
        finish(&mut without, &[], (1 << 21) | 1, &|s| s.to_string());
        assert_eq!(
            without["process"]["capabilities"]["bounding"],
            json!(["CAP_CHOWN", "CAP_SYS_ADMIN"])
        );
    }
}
