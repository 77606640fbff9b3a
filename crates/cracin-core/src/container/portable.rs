//! `--cpu-baseline` in generated container files. The plain-CRIU runtime passes the baseline to
//! cracin's in-container checkpoint (which caps HotSpot and glibc and records what a restore host
//! needs, see `crate::jvm::cpu`). CRaC JDKs have their own switch, `-XX:CPUFeatures=generic|native`,
//! and check the CPU themselves at restore; OpenJ9's JIT already emits portable code before a
//! checkpoint when CRIU support is on, and `-XX:+PortableSharedCache` makes its shared-cache AOT
//! code portable too. glibc's string functions are capped with GLIBC_TUNABLES on glibc bases.
//! The CRaC and OpenJ9 lines were never run here (no such JDK): they are snapshot-tested only.

use crate::jvm::cpu::CpuBaseline;

/// The criu runtime's in-container checkpoint command with `--cpu-baseline LEVEL` before `--`.
pub fn criu_checkpoint_cmd(mut cmd: Vec<String>, b: CpuBaseline) -> Vec<String> {
    if b != CpuBaseline::Host {
        let at = cmd.iter().position(|a| a == "--").unwrap_or(cmd.len());
        cmd.insert(at, b.name().to_string());
        cmd.insert(at, "--cpu-baseline".to_string());
    }
    cmd
}

/// Lines for CRaC's JAVA_OPTS_EXTRA (each ends the previous line with ` \`).
pub fn crac_java_opts(b: CpuBaseline) -> String {
    match b {
        CpuBaseline::Host => String::new(),
        _ => format!(" \\\n-XX:CPUFeatures={}", b.crac_cpu_features()),
    }
}

/// Lines for OpenJ9's JAVA_OPTS_EXTRA.
pub fn openj9_java_opts(b: CpuBaseline) -> String {
    b.openj9_options()
        .iter()
        .map(|o| format!(" \\\n{o}"))
        .collect()
}

/// `ENV GLIBC_TUNABLES=… LD_BIND_NOW=1` (with the reason) for CRaC and OpenJ9 images on a glibc
/// base (see `crate::jvm::cpu::launch_env`); the criu runtime sets both itself when it launches the
/// JVM. Empty for `host` and for musl (Alpine).
pub fn glibc_env(b: CpuBaseline, musl: bool) -> String {
    match b.glibc_tunables() {
        Some(t) if !musl => format!(
            "# --cpu-baseline {}: glibc's string functions stay within the level as well, and every\n# symbol is bound at start (ld.so's lazy binding saves registers sized for this CPU)\nENV GLIBC_TUNABLES={t} LD_BIND_NOW=1\n\n",
            b.name()
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::runtime::Base;

    #[test]
    fn the_baseline_goes_before_the_application_command() {
        let cmd: Vec<String> = ["cracin", "checkpoint", "--", "java", "-jar", "a.jar"]
            .map(String::from)
            .to_vec();
        assert_eq!(criu_checkpoint_cmd(cmd.clone(), CpuBaseline::Host), cmd);
        assert_eq!(
            criu_checkpoint_cmd(cmd, CpuBaseline::V3)[2..5],
            ["--cpu-baseline", "x86-64-v3", "--"]
        );
    }

    #[test]
    fn glibc_caps_only_on_glibc() {
        assert!(glibc_env(CpuBaseline::V2, Base::ZuluAlpineJre.is_alpine()).is_empty());
        assert!(glibc_env(CpuBaseline::Host, Base::ZuluUbuntuJdk.is_alpine()).is_empty());
        assert!(glibc_env(CpuBaseline::V2, Base::ZuluUbuntuJdk.is_alpine())
            .contains("ENV GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,"));
    }
}
