//! CPU portability of a checkpoint: `--cpu-baseline host|x86-64-v2|x86-64-v3|x86-64-v4`. A JVM
//! compiles code for every feature of the CPU it starts on, and glibc picks its string functions
//! the same way, so a checkpoint normally needs every feature of the machine it was taken on. A
//! baseline caps both at one of the x86-64 psABI levels (HotSpot flags through JAVA_TOOL_OPTIONS,
//! glibc through GLIBC_TUNABLES), and the checkpoint then records the features it really needs:
//! the level's, plus those the host has that no flag can switch off. A restore checks the host
//! against that set (`missing_on`), not against every flag of the build host. The host
//! description is injectable (`host_flags_from`) so the decision logic is tested on a CPU without
//! AVX2 while running on one with it. The choices and measurements are in docs/cpu.md.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Hidden, for tests: a file in /proc/cpuinfo format that replaces this host's CPU description
/// in the restore check (and only there).
pub const HOST_CPUINFO_ENV: &str = "CRACIN_HOST_CPUINFO";

/// How much of the CPU a checkpoint may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuBaseline {
    /// Everything this host has (no caps): the checkpoint needs every feature of this host.
    #[default]
    Host,
    /// x86-64-v2 (Nehalem and later): SSE4.2, POPCNT; no AVX.
    V2,
    /// x86-64-v3 (Haswell and later): AVX2, BMI1/2, FMA, LZCNT, MOVBE.
    V3,
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL.
    V4,
}

/// The psABI levels as /proc/cpuinfo names them (each level includes the ones below).
const V1: &[&str] = &["fpu", "cmov", "cx8", "fxsr", "mmx", "sse", "sse2"];
const V2: &[&str] = &[
    "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3",
];
const V3: &[&str] = &[
    "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
];
const V4: &[&str] = &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];

/// Features HotSpot uses whenever the host has them and no flag of JDK 17/21/25 switches off
/// at a given level, so a capped checkpoint still needs them when the host had them.
/// - `serialize`: HotSpot's cross-modify fence after safepoints (every level).
/// - `adx`: BigInteger multiply intrinsics next to BMI2 (v3, v4: BMI2 stays on there).
/// - `avx_vnni`: vector code generated for UseAVX >= 2 (v3, v4).
/// - AVX-512 extensions, VAES, VPCLMULQDQ, GFNI: used with UseAVX=3 (v4).
const UNCAPPABLE_ALL: &[&str] = &["serialize"];
const UNCAPPABLE_V3: &[&str] = &["adx", "avx_vnni"];
const UNCAPPABLE_V4: &[&str] = &[
    "avx512vbmi",
    "avx512_vbmi2",
    "avx512_vnni",
    "avx512ifma",
    "avx512_vpopcntdq",
    "avx512_bitalg",
    "avx512_fp16",
    "vaes",
    "vpclmulqdq",
    "gfni",
];

impl CpuBaseline {
    pub fn parse(s: &str) -> Result<CpuBaseline> {
        match s {
            "host" => Ok(CpuBaseline::Host),
            "x86-64-v2" => Ok(CpuBaseline::V2),
            "x86-64-v3" => Ok(CpuBaseline::V3),
            "x86-64-v4" => Ok(CpuBaseline::V4),
            _ => Err(Error::usage(
                format!("unknown CPU baseline `{s}`"),
                "use --cpu-baseline host (every feature of this CPU), x86-64-v2, x86-64-v3 or x86-64-v4",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CpuBaseline::Host => "host",
            CpuBaseline::V2 => "x86-64-v2",
            CpuBaseline::V3 => "x86-64-v3",
            CpuBaseline::V4 => "x86-64-v4",
        }
    }

    /// The level's own features (cpuinfo names), lower levels included; empty for `host`.
    pub fn level_features(self) -> Vec<&'static str> {
        let levels: &[&[&str]] = match self {
            CpuBaseline::Host => &[],
            CpuBaseline::V2 => &[V1, V2],
            CpuBaseline::V3 => &[V1, V2, V3],
            CpuBaseline::V4 => &[V1, V2, V3, V4],
        };
        levels.iter().flat_map(|l| l.iter().copied()).collect()
    }

    /// HotSpot options that keep the JIT and the stubs within the level (all product flags in
    /// JDK 17, 21 and 25; checked with -XX:+PrintFlagsFinal). UseAVX caps AVX/AVX2/AVX-512 (and
    /// with 0, F16C); BMI1/BMI2/LZCNT/TZCNT/FMA have their own flags; SHA-NI, AES-NI and
    /// PCLMULQDQ are in no level, so UseSHA, UseAES and UseCLMUL go off (which turns their
    /// intrinsics off too: UseAESIntrinsics is diagnostic and cannot be set directly).
    pub fn java_options(self) -> Vec<String> {
        let v: &[&str] = match self {
            CpuBaseline::Host => &[],
            CpuBaseline::V2 => &[
                "-XX:UseAVX=0",
                "-XX:-UseFMA",
                "-XX:-UseBMI1Instructions",
                "-XX:-UseBMI2Instructions",
                "-XX:-UseCountLeadingZerosInstruction",
                "-XX:-UseCountTrailingZerosInstruction",
                "-XX:-UseSHA",
                "-XX:-UseAES",
                "-XX:-UseCLMUL",
            ],
            CpuBaseline::V3 => &[
                "-XX:UseAVX=2",
                "-XX:-UseSHA",
                "-XX:-UseAES",
                "-XX:-UseCLMUL",
            ],
            CpuBaseline::V4 => &[
                "-XX:UseAVX=3",
                "-XX:-UseSHA",
                "-XX:-UseAES",
                "-XX:-UseCLMUL",
            ],
        };
        v.iter().map(|s| s.to_string()).collect()
    }

    /// GLIBC_TUNABLES for the level: the glibc.cpu.hwcaps names glibc 2.36 (bookworm) honours,
    /// measured with `ld.so --list-diagnostics` (the `_Usable` spellings of older glibc are
    /// ignored there, as are F16C, AES and SHA, which glibc's string functions do not use).
    /// XSAVEC off at every level (ld.so would size its register save area with it; `launch_env`
    /// also binds every symbol at load time, so that area is not used after a restore).
    pub fn glibc_tunables(self) -> Option<String> {
        let off: &[&str] = match self {
            CpuBaseline::Host => return None,
            CpuBaseline::V2 => &[
                "AVX", "AVX2", "AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL", "FMA",
                "BMI1", "BMI2", "LZCNT", "MOVBE", "XSAVEC",
            ],
            CpuBaseline::V3 => &[
                "AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL", "XSAVEC",
            ],
            CpuBaseline::V4 => &["XSAVEC"],
        };
        let list: Vec<String> = off.iter().map(|f| format!("-{f}")).collect();
        Some(format!("glibc.cpu.hwcaps={}", list.join(",")))
    }

    /// What a checkpoint taken under this baseline on a host with `host_flags` needs: for `host`
    /// every flag that matters (the old rule), else the level's features plus the uncappable
    /// ones the host has. Fails when the host is below the level.
    pub fn required(self, host_flags: &[String]) -> Result<Vec<String>> {
        if self == CpuBaseline::Host {
            let mut v: Vec<String> = host_flags
                .iter()
                .filter(|f| !crate::os::sysinfo::is_host_only_flag(f))
                .cloned()
                .collect();
            v.sort();
            v.dedup();
            return Ok(v);
        }
        let level: Vec<String> = self
            .level_features()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let below = missing_on(&level, host_flags);
        if !below.is_empty() {
            return Err(Error::usage(
                format!(
                    "this CPU is below {}: it lacks {}",
                    self.name(),
                    below.join(" ")
                ),
                "choose a lower --cpu-baseline (x86-64-v2 runs almost everywhere), or take the checkpoint on a newer machine",
            ));
        }
        let mut extra: Vec<&str> = UNCAPPABLE_ALL.to_vec();
        if matches!(self, CpuBaseline::V3 | CpuBaseline::V4) {
            extra.extend(UNCAPPABLE_V3);
        }
        if self == CpuBaseline::V4 {
            extra.extend(UNCAPPABLE_V4);
        }
        let mut v = level;
        v.extend(
            extra
                .iter()
                .filter(|f| host_flags.iter().any(|h| h == *f))
                .map(|f| f.to_string()),
        );
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// `-XX:CPUFeatures=` of a CRaC JDK (Azul): `native` uses this CPU, `generic` a portable
    /// x86-64 set. CRaC knows no psABI levels: every capped level maps to `generic`, which is
    /// at most the v2 set, so it is safe for all of them.
    pub fn crac_cpu_features(self) -> &'static str {
        match self {
            CpuBaseline::Host => "native",
            _ => "generic",
        }
    }

    /// OpenJ9's JIT targets portable processor features once CRIU support is on; an explicit
    /// -XX:+PortableSharedCache makes the shared classes cache portable too. `host` asks for
    /// nothing.
    pub fn openj9_options(self) -> Vec<String> {
        match self {
            CpuBaseline::Host => vec![],
            _ => vec!["-XX:+PortableSharedCache".to_string()],
        }
    }
}

/// Refuses a command or `--java-option` that sets one of the baseline's HotSpot flags itself:
/// the user's value would win (it comes later) and the recorded requirements would be wrong.
pub fn check_user_options(b: CpuBaseline, command: &[String], extra: &[String]) -> Result<()> {
    let ours: Vec<String> = b.java_options().iter().map(|o| flag_name(o)).collect();
    if let Some(clash) = command
        .iter()
        .chain(extra)
        .find(|a| a.starts_with("-XX:") && ours.contains(&flag_name(a)))
    {
        return Err(Error::usage(
            format!(
                "{clash} is set by the command, but --cpu-baseline {} sets {} itself",
                b.name(),
                flag_name(clash)
            ),
            "drop the option from the command, or use --cpu-baseline host and take care of the CPU yourself",
        ));
    }
    Ok(())
}

/// `-XX:UseAVX=0` → `UseAVX`, `-XX:-UseSHA` → `UseSHA`.
fn flag_name(opt: &str) -> String {
    let f = opt.trim_start_matches("-XX:");
    let f = f.trim_start_matches(['+', '-']);
    f.split('=').next().unwrap_or(f).to_string()
}

/// The highest psABI level a CPU with these flags reaches (None: below x86-64-v2).
pub fn highest_level(flags: &[String]) -> Option<CpuBaseline> {
    [CpuBaseline::V4, CpuBaseline::V3, CpuBaseline::V2]
        .into_iter()
        .find(|b| {
            b.level_features()
                .iter()
                .all(|f| flags.iter().any(|h| h == f))
        })
}

/// What a checkpoint recorded about its CPU needs (cracin.json `cpu`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuRecord {
    /// `host`, `x86-64-v2`, …
    pub baseline: String,
    /// cpuinfo flags a host must have to restore it.
    pub required: Vec<String>,
    /// HotSpot options cracin added for the baseline.
    pub java_options: Vec<String>,
    /// GLIBC_TUNABLES cracin set for the baseline.
    pub glibc_tunables: Option<String>,
}

impl CpuRecord {
    pub fn new(b: CpuBaseline, host_flags: &[String]) -> Result<CpuRecord> {
        Ok(CpuRecord {
            baseline: b.name().into(),
            required: b.required(host_flags)?,
            java_options: b.java_options(),
            glibc_tunables: b.glibc_tunables(),
        })
    }
}

/// Required features the host lacks (host-only flags never count).
pub fn missing_on(required: &[String], host_flags: &[String]) -> Vec<String> {
    crate::os::sysinfo::missing_cpu_flags(required, host_flags)
}

/// This host's CPU flags for the restore check: /proc/cpuinfo, or the file named by
/// `CRACIN_HOST_CPUINFO` (tests describe a CPU without AVX2 that way).
pub fn host_flags() -> Vec<String> {
    host_flags_from(
        std::env::var_os(HOST_CPUINFO_ENV)
            .as_deref()
            .map(std::path::Path::new),
    )
}

pub fn host_flags_from(cpuinfo: Option<&std::path::Path>) -> Vec<String> {
    match cpuinfo {
        Some(p) => {
            crate::os::sysinfo::parse_cpuinfo(&std::fs::read_to_string(p).unwrap_or_default()).1
        }
        None => crate::os::sysinfo::cpu().1,
    }
}

/// The GLIBC_TUNABLES value with the baseline's caps added to what the user set already (a
/// later `glibc.cpu.hwcaps` overrides an earlier one, so the lists are merged).
pub fn merge_tunables(existing: Option<&str>, ours: &str) -> String {
    let Some(existing) = existing.filter(|e| !e.is_empty()) else {
        return ours.to_string();
    };
    let ours_list = ours.strip_prefix("glibc.cpu.hwcaps=").unwrap_or(ours);
    let mut parts: Vec<String> = Vec::new();
    let mut merged = false;
    for part in existing.split(':') {
        if let Some(list) = part.strip_prefix("glibc.cpu.hwcaps=") {
            parts.push(format!("glibc.cpu.hwcaps={list},{ours_list}"));
            merged = true;
        } else {
            parts.push(part.to_string());
        }
    }
    if !merged {
        parts.push(ours.to_string());
    }
    parts.join(":")
}

/// The features a checkpoint needs that `here` lacks: its recorded set (`cpu`) when it has one,
/// else (older checkpoints) every flag of the checkpoint host.
pub fn restore_check(
    cpu: Option<&CpuRecord>,
    host_flags: &[String],
    here: &[String],
) -> Vec<String> {
    match cpu {
        Some(c) => missing_on(&c.required, here),
        None => missing_on(host_flags, here),
    }
}

/// The launch environment with the baseline's GLIBC_TUNABLES merged into the user's (from
/// `env`, else cracin's own environment, which the application inherits), and LD_BIND_NOW=1:
/// ld.so's lazy-binding trampoline saves the vector registers with `xsave` into a stack area
/// sized by the CPU the process started on, so after a restore on a CPU with a larger xsave
/// area (AVX-512) it would write past it. Binding every symbol at load time means the
/// trampoline never runs. (CRIU guards against this only with `--cpu-cap`, whose check also
/// demands every instruction feature of the checkpoint host, so cracin does not pass it.)
pub fn launch_env(env: &[(String, String)], c: &CpuRecord) -> Vec<(String, String)> {
    let mut v = env.to_vec();
    if c.glibc_tunables.is_some() && !v.iter().any(|(k, _)| k == "LD_BIND_NOW") {
        v.push(("LD_BIND_NOW".into(), "1".into()));
    }
    if let Some(t) = &c.glibc_tunables {
        let existing = v
            .iter()
            .rev()
            .find(|(k, _)| k == "GLIBC_TUNABLES")
            .map(|(_, val)| val.clone())
            .or_else(|| std::env::var("GLIBC_TUNABLES").ok());
        v.retain(|(k, _)| k != "GLIBC_TUNABLES");
        v.push((
            "GLIBC_TUNABLES".into(),
            merge_tunables(existing.as_deref(), t),
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    /// A Sapphire-Rapids-like host: everything up to v4, plus SHA-NI, AES, AVX-512 extensions.
    fn big_host() -> Vec<String> {
        flags("fpu cmov cx8 fxsr mmx sse sse2 cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3 avx avx2 bmi1 bmi2 f16c fma abm movbe xsave avx512f avx512bw avx512cd avx512dq avx512vl avx512vbmi avx512_vnni sha_ni aes pclmulqdq adx serialize hypervisor tsc")
    }

    /// The same machine family without AVX (an old Xeon): x86-64-v2 only.
    fn v2_host() -> Vec<String> {
        flags("fpu cmov cx8 fxsr mmx sse sse2 cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3 aes pclmulqdq")
    }

    #[test]
    fn baselines_parse_and_name_round_trip() {
        for n in ["host", "x86-64-v2", "x86-64-v3", "x86-64-v4"] {
            assert_eq!(CpuBaseline::parse(n).unwrap().name(), n);
        }
        assert!(matches!(
            CpuBaseline::parse("haswell"),
            Err(Error::Usage { .. })
        ));
    }

    #[test]
    fn a_v2_checkpoint_restores_without_avx2_and_a_host_one_does_not() {
        let v2 = CpuRecord::new(CpuBaseline::V2, &big_host()).unwrap();
        assert!(!v2.required.contains(&"avx2".to_string()));
        assert!(v2.required.contains(&"sse4_2".to_string()));
        // serialize cannot be switched off in HotSpot: the host had it, so it is needed.
        assert!(v2.required.contains(&"serialize".to_string()));
        let mut no_avx2 = v2_host();
        no_avx2.push("serialize".into());
        assert_eq!(missing_on(&v2.required, &no_avx2), Vec::<String>::new());

        let host = CpuRecord::new(CpuBaseline::Host, &big_host()).unwrap();
        let missing = missing_on(&host.required, &no_avx2);
        assert!(missing.contains(&"avx2".to_string()), "{missing:?}");
        assert!(missing.contains(&"sha_ni".to_string()), "{missing:?}");
        // Host-only flags are never required.
        assert!(!host.required.contains(&"hypervisor".to_string()));
    }

    #[test]
    fn v3_needs_avx2_but_not_avx512_and_keeps_what_cannot_be_capped() {
        let r = CpuBaseline::V3.required(&big_host()).unwrap();
        for f in ["avx2", "bmi2", "fma", "adx"] {
            assert!(r.contains(&f.to_string()), "{f}: {r:?}");
        }
        for f in ["avx512f", "sha_ni", "aes", "avx512vbmi"] {
            assert!(!r.contains(&f.to_string()), "{f}: {r:?}");
        }
        let v4 = CpuBaseline::V4.required(&big_host()).unwrap();
        assert!(v4.contains(&"avx512vbmi".to_string()));
        assert!(!v4.contains(&"sha_ni".to_string()));
    }

    #[test]
    fn a_baseline_above_the_host_is_refused_naming_the_feature() {
        match CpuBaseline::V3.required(&v2_host()) {
            Err(Error::Usage { what, .. }) => {
                assert!(what.contains("x86-64-v3"), "{what}");
                assert!(what.contains("avx2"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_and_tunables_per_level() {
        assert!(CpuBaseline::Host.java_options().is_empty());
        assert_eq!(CpuBaseline::Host.glibc_tunables(), None);
        let o = CpuBaseline::V2.java_options();
        assert!(o.contains(&"-XX:UseAVX=0".to_string()));
        assert!(o.contains(&"-XX:-UseBMI2Instructions".to_string()));
        assert!(CpuBaseline::V3
            .java_options()
            .contains(&"-XX:UseAVX=2".to_string()));
        let t = CpuBaseline::V2.glibc_tunables().unwrap();
        assert!(t.starts_with("glibc.cpu.hwcaps=-AVX,-AVX2,"), "{t}");
        assert!(!CpuBaseline::V3.glibc_tunables().unwrap().contains("-AVX2"));
        assert_eq!(CpuBaseline::V2.crac_cpu_features(), "generic");
        assert_eq!(CpuBaseline::Host.crac_cpu_features(), "native");
    }

    #[test]
    fn a_command_that_sets_a_capped_flag_is_refused() {
        let cmd: Vec<String> = ["java", "-XX:UseAVX=3", "-jar", "a.jar"]
            .map(String::from)
            .to_vec();
        assert!(matches!(
            check_user_options(CpuBaseline::V2, &cmd, &[]),
            Err(Error::Usage { .. })
        ));
        assert!(check_user_options(CpuBaseline::Host, &cmd, &[]).is_ok());
        assert!(matches!(
            check_user_options(CpuBaseline::V3, &[], &["-XX:+UseSHA".into()]),
            Err(Error::Usage { .. })
        ));
        assert!(check_user_options(CpuBaseline::V2, &[], &["-XX:+UseSerialGC".into()]).is_ok());
    }

    #[test]
    fn a_capped_launch_binds_now_and_merges_tunables() {
        let c = CpuRecord::new(CpuBaseline::V2, &big_host()).unwrap();
        let env = launch_env(
            &[("GLIBC_TUNABLES".into(), "glibc.malloc.arena_max=2".into())],
            &c,
        );
        assert!(env.contains(&("LD_BIND_NOW".into(), "1".into())));
        let t = &env.iter().find(|(k, _)| k == "GLIBC_TUNABLES").unwrap().1;
        assert!(
            t.starts_with("glibc.malloc.arena_max=2:glibc.cpu.hwcaps=-AVX,"),
            "{t}"
        );
        let host = CpuRecord::new(CpuBaseline::Host, &big_host()).unwrap();
        assert!(launch_env(&[], &host).is_empty());
    }

    #[test]
    fn levels_of_hosts() {
        assert_eq!(highest_level(&big_host()), Some(CpuBaseline::V4));
        assert_eq!(highest_level(&v2_host()), Some(CpuBaseline::V2));
        assert_eq!(highest_level(&flags("fpu sse sse2")), None);
    }

    #[test]
    fn tunables_merge_with_the_users() {
        assert_eq!(
            merge_tunables(None, "glibc.cpu.hwcaps=-AVX"),
            "glibc.cpu.hwcaps=-AVX"
        );
        assert_eq!(
            merge_tunables(Some("glibc.malloc.arena_max=2"), "glibc.cpu.hwcaps=-AVX"),
            "glibc.malloc.arena_max=2:glibc.cpu.hwcaps=-AVX"
        );
        assert_eq!(
            merge_tunables(
                Some("glibc.cpu.hwcaps=-ERMS:glibc.malloc.arena_max=2"),
                "glibc.cpu.hwcaps=-AVX"
            ),
            "glibc.cpu.hwcaps=-ERMS,-AVX:glibc.malloc.arena_max=2"
        );
    }

    #[test]
    fn an_injected_cpuinfo_replaces_the_host() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cpuinfo");
        std::fs::write(
            &p,
            "processor\t: 0\nmodel name\t: Old Xeon\nflags\t\t: fpu sse sse2 sse4_2\n",
        )
        .unwrap();
        assert_eq!(host_flags_from(Some(&p)), flags("fpu sse sse2 sse4_2"));
    }
}
