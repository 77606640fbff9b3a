//! The JVM options and environment cracin gives the application for a checkpoint, and the
//! shrinking right before the dump: what cracin adds always (no hsperfdata file), what it adds
//! to keep the image small (a small initial heap with the collector the JVM would choose, see
//! `gc`), the environment the application starts with, and the full GC and native-heap trim run
//! through the attach API just before CRIU dumps it. The policy lives here; the local engine and
//! the benchmark apply it.

use std::time::Duration;

use crate::error::Result;

/// The JVM options cracin adds for a checkpoint (documented in the README): all of them, and
/// those that shrink the heap. The collector stays the one the JVM would choose (see `jvm::gc`).
pub fn java_options_for(command: &[String], shrink: bool) -> (Vec<String>, Vec<String>) {
    // hsperfdata is an mmapped file under /tmp named after the PID: every JVM that is PID 1
    // of its namespace would share it, and a restored JVM would find it changed.
    let mut always = vec!["-XX:-UsePerfData".to_string()];
    let shrink_opts = if shrink {
        crate::jvm::gc::choose(command, crate::jvm::gc::Machine::here()).options
    } else {
        Vec::new()
    };
    always.extend(shrink_opts.iter().cloned());
    (always, shrink_opts)
}

/// The environment the application starts with: cracin's own plus `--env` additions.
pub fn app_environment(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    env.extend(extra.iter().cloned());
    env
}

/// Right before the dump: a full GC (with `squeeze`, after the JIT went quiet and with the heap
/// squeezed to its live data: see jvm::squeeze), then glibc's free memory back to the kernel
/// (`System.trim_native_heap`, JDK 17.0.9+). Pages given back are not dumped. Runs through the
/// attach API, so JREs work too.
pub fn shrink_before_dump(pid: u32, squeeze: bool) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let r = crate::jvm::squeeze::full_gc(pid, squeeze);
    if let Ok(gc) = &r {
        done.push(gc.clone());
        // Older JDKs lack the command: that is fine, the GC was the bigger part.
        if crate::jvm::attach::jcmd(pid, "System.trim_native_heap", Duration::from_secs(10)).is_ok()
        {
            done.push("System.trim_native_heap".to_string());
        }
    }
    crate::jvm::attach::remove_socket_file(pid);
    r.map(|_| done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_data_always_off_and_shrink_options_only_when_asked() {
        let cmd: Vec<String> = ["java", "-jar", "app.jar"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (all, shrink) = java_options_for(&cmd, false);
        assert_eq!(all, vec!["-XX:-UsePerfData".to_string()]);
        assert!(shrink.is_empty());
        let (all, shrink) = java_options_for(&cmd, true);
        assert_eq!(all[0], "-XX:-UsePerfData");
        assert_eq!(&all[1..], &shrink[..]);
    }

    #[test]
    fn env_additions_replace_inherited_values() {
        let key = std::env::vars()
            .next()
            .map(|(k, _)| k)
            .unwrap_or_else(|| "PATH".into());
        let env = app_environment(&[(key.clone(), "from --env".into())]);
        let found: Vec<_> = env.iter().filter(|(k, _)| *k == key).collect();
        assert_eq!(found, vec![&(key, "from --env".to_string())]);
    }
}
