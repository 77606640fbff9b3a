//! Facts about this machine that decide whether checkpoint/restore can work and whether a
//! checkpoint taken elsewhere can be restored here: kernel version, CPU model and flags, root and
//! capabilities, `ns_last_pid`, soft-dirty tracking. Read from /proc and uname; no side effects
//! beyond the soft-dirty probe on this process's own memory.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A dotted version like 6.18.44 or 4.2.1 (missing parts are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses the leading `MAJOR[.MINOR[.PATCH]]` of a string ("6.18.44-fc-v782" → 6.18.44).
    pub fn parse_prefix(s: &str) -> Option<Version> {
        let head: String = s
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut it = head
            .split('.')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u32>());
        let a = it.next()?.ok()?;
        let b = it.next().and_then(|r| r.ok()).unwrap_or(0);
        let c = it.next().and_then(|r| r.ok()).unwrap_or(0);
        Some(Version(a, b, c))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// `uname -r`.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn kernel_version() -> Option<Version> {
    Version::parse_prefix(&kernel_release())
}

/// CPU model name and flags of the first CPU in /proc/cpuinfo.
pub fn cpu() -> (String, Vec<String>) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    parse_cpuinfo(&text)
}

pub fn parse_cpuinfo(text: &str) -> (String, Vec<String>) {
    let mut model = String::new();
    let mut flags = Vec::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if k == "model name" && model.is_empty() {
                model = v.trim().to_string();
            }
            if k == "flags" && flags.is_empty() {
                flags = v.split_whitespace().map(str::to_string).collect();
            }
        }
        if !model.is_empty() && !flags.is_empty() {
            break;
        }
    }
    flags.sort();
    flags.dedup();
    (model, flags)
}

/// Flags that only describe the host (virtualisation, bugs, power management) and do not change
/// which instructions the JVM may have compiled code for. Missing ones are not a reason to refuse.
const HOST_ONLY_FLAGS: &[&str] = &[
    "hypervisor",
    "tsc",
    "constant_tsc",
    "nonstop_tsc",
    "rep_good",
    "nopl",
    "xtopology",
    "cpuid",
    "arch_perfmon",
    "vmmcall",
    "ibpb",
    "ibrs",
    "stibp",
    "ssbd",
    "amd_ssbd",
    "virt_ssbd",
    "flush_l1d",
    "md_clear",
    "arch_capabilities",
    "pti",
    "retpoline",
    "user_shstk",
    "ht",
    "monitor",
    "perfctr",
    "cpb",
    "hw_pstate",
    "decodeassists",
    "pausefilter",
    "pfthreshold",
    "npt",
    "lbrv",
    "svm_lock",
    "nrip_save",
    "tsc_scale",
    "vmcb_clean",
    "flushbyasid",
    "v_vmsave_vmload",
    "vgif",
    "v_spec_ctrl",
    "vnmi",
    "avic",
    "x2avic",
    "aperfmperf",
    "rapl",
    "extd_apicid",
    "overflow_recov",
    "succor",
    "smca",
    "fsrm",
    "ibrs_enhanced",
    "tsc_known_freq",
    "tsc_deadline_timer",
    "tsc_adjust",
    "tsc_reliable",
    "vme",
    "de",
    "pse",
    "msr",
    "mce",
    "mca",
    "apic",
    "mtrr",
    "pge",
    "pat",
    "pse36",
    "acpi",
    "dtes64",
    "ds_cpl",
    "est",
    "tm",
    "tm2",
    "xtpr",
    "pdcm",
    "pbe",
    "dts",
    "ida",
    "arat",
    "pln",
    "pts",
    "hwp",
    "epb",
    "cat_l3",
    "cdp_l3",
    "cqm",
    "rdt_a",
    "mba",
    "invpcid_single",
    "erms",
    "topoext",
    "perfctr_core",
    "perfctr_nb",
    "perfctr_llc",
    "mwaitx",
    "umip",
    "sme",
    "sev",
    "sev_es",
    "tce",
    "skinit",
    "wdt",
    "ibs",
    "osvw",
    "svm",
    "vmx",
    "vnmi",
    "ept",
    "vpid",
    "flexpriority",
    "tpr_shadow",
    "ept_ad",
    "clear_cpu_buf",
    "bus_lock_detect",
    "split_lock_detect",
    "lahf_lm",
];

/// Whether a cpuinfo flag only describes the host (see `HOST_ONLY_FLAGS`).
pub fn is_host_only_flag(f: &str) -> bool {
    HOST_ONLY_FLAGS.contains(&f)
}

/// CPU flags the checkpoint host had and this host lacks, ignoring host-only flags.
pub fn missing_cpu_flags(checkpoint_flags: &[String], here: &[String]) -> Vec<String> {
    checkpoint_flags
        .iter()
        .filter(|f| !here.contains(f))
        .filter(|f| !HOST_ONLY_FLAGS.contains(&f.as_str()))
        .cloned()
        .collect()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The effective capability mask of this process (from /proc/self/status).
pub fn effective_caps() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_CHECKPOINT_RESTORE: u32 = 40;

pub fn has_cap(cap: u32) -> bool {
    effective_caps() & (1u64 << cap) != 0
}

/// Whether `/proc/sys/kernel/ns_last_pid` exists (CONFIG_CHECKPOINT_RESTORE) and is writable.
pub fn ns_last_pid() -> (bool, bool) {
    let p = std::path::Path::new("/proc/sys/kernel/ns_last_pid");
    let exists = p.exists();
    let writable = exists && std::fs::OpenOptions::new().write(true).open(p).is_ok();
    (exists, writable)
}

/// Yama's ptrace_scope, when Yama is built in.
pub fn ptrace_scope() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Whether the kernel tracks soft-dirty pages (needed by `criu pre-dump` and `--track-mem`):
/// clears this process's soft-dirty bits, writes a page, and reads the bit back from pagemap.
pub fn soft_dirty_supported() -> bool {
    use std::io::{Read, Seek, SeekFrom, Write};
    let Ok(mut clear) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
    else {
        return false;
    };
    let page = vec![0u8; 8192].into_boxed_slice();
    let page = Box::leak(page);
    if clear.write_all(b"4").is_err() {
        return false;
    }
    // Touch the memory after clearing so that the bit must be set again if tracked.
    let addr = page.as_mut_ptr() as usize;
    unsafe { std::ptr::write_volatile(page.as_mut_ptr().add(4096 - (addr % 4096)), 1) };
    let target = addr + 4096 - (addr % 4096);
    let Ok(mut pm) = std::fs::File::open("/proc/self/pagemap") else {
        return false;
    };
    let idx = (target / 4096) as u64 * 8;
    let mut buf = [0u8; 8];
    if pm.seek(SeekFrom::Start(idx)).is_err() || pm.read_exact(&mut buf).is_err() {
        return false;
    }
    let entry = u64::from_le_bytes(buf);
    entry & (1 << 55) != 0
}

/// Free bytes on the filesystem holding `path`.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return None;
        }
    }
    let st = nix::sys::statvfs::statvfs(&p).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(
            Version::parse_prefix("6.18.44-fc-v782"),
            Some(Version(6, 18, 44))
        );
        assert_eq!(Version::parse_prefix("4.2"), Some(Version(4, 2, 0)));
        assert_eq!(Version::parse_prefix("x"), None);
        assert!(Version(4, 1, 1) < Version(4, 2, 0));
        assert_eq!(Version(4, 2, 1).to_string(), "4.2.1");
    }

    #[test]
    fn cpuinfo_parsing_and_missing_flags() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 hypervisor\n\nprocessor\t: 1\nflags\t: fpu\n";
        let (m, f) = parse_cpuinfo(text);
        assert_eq!(m, "AMD EPYC");
        assert_eq!(f, vec!["avx2", "fpu", "hypervisor", "sse"]);
        let here = vec!["fpu".to_string(), "sse".to_string()];
        assert_eq!(missing_cpu_flags(&f, &here), vec!["avx2"]);
    }
}
